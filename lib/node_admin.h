/*
 * What the cluster decided about each node (struct vmc_node_admin in
 * state.h): its mode — active, draining, paused, drain-failed,
 * quarantined — and the record of its losses that quarantine counts. It
 * is replicated state, changed only by applied messages (drain.h,
 * lifecycle.h), so every node places groups alike: a node takes new
 * groups only while it is active.
 *
 * A node has a record only while something is to be said about it; an
 * active node that never failed has none, so a cluster that never drained
 * keeps the snapshot (and digest) it had before protocol 6.
 */
#ifndef VMC_NODE_ADMIN_H
#define VMC_NODE_ADMIN_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "state.h"

/* The record of node, NULL when it has none (active, never failed). */
const struct vmc_node_admin *vmc_node_admin(const struct vmc_state *s, uint32_t node);
/* The record of node to change, created active when it has none; NULL when the table is full. */
struct vmc_node_admin *vmc_node_admin_edit(struct vmc_state *s, uint32_t node);
/* Drops records that say nothing any more (active, not lost, no failures, no return time). */
void vmc_node_admin_tidy(struct vmc_state *s);

enum vmc_node_mode vmc_node_mode(const struct vmc_state *s, uint32_t node);
/* May the cluster place or move a group onto node? (active: not draining, paused or quarantined) */
bool vmc_node_takes_groups(const struct vmc_state *s, uint32_t node);
const char *vmc_node_mode_to_str(enum vmc_node_mode m);

/*
 * node was proven dead at at_s: the loss is recorded, and a node lost
 * quarantine_threshold times within an hour is quarantined until at_s +
 * quarantine_duration_s. Returns true when this loss quarantined it.
 * Never allocates.
 */
bool vmc_node_admin_lost(struct vmc_state *s, uint32_t node, uint64_t at_s);
/* node announced itself at at_s: if it was lost, it is back since then. */
void vmc_node_admin_back(struct vmc_state *s, uint32_t node, uint64_t at_s);
/* Losses of node within the hour before now_s. */
size_t vmc_node_admin_recent_losses(const struct vmc_node_admin *a, uint64_t now_s);

/* The snapshot's "node_admin" array; NULL when there are no records. */
json_object *vmc_node_admin_to_json(const struct vmc_state *s);
int vmc_node_admin_from_json(json_object *obj, struct vmc_state *s, char *err, size_t errlen);

#endif
