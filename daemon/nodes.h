/*
 * The corosync nodelist (names, ids, addresses, votes), read from cmap at
 * start-up and again after every membership change, so a node added to
 * corosync.conf later is known by its name.
 */
#ifndef VMCD_NODES_H
#define VMCD_NODES_H

#include "context.h"

/* Reads the nodelist into d; 0, -ENOTCONN (no corosync) or -ENOENT (empty). */
int vmcd_nodes_load(struct vmcd *d);
/* corosync's token timeout in ms (runtime value), 0 when cmap does not say. */
uint32_t vmcd_nodes_token_ms(void);

const struct vmcd_node *vmcd_node_by_id(const struct vmcd *d, uint32_t id);
const struct vmcd_node *vmcd_node_by_name(const struct vmcd *d, const char *name);
/* The node's name: its replicated facts, else the nodelist, else "node id N". */
const char *vmcd_node_name(const struct vmcd *d, uint32_t id);
/* Is the node in corosync's membership (votequorum's list)? */
bool vmcd_corosync_member(const struct vmcd *d, uint32_t id);

#endif
