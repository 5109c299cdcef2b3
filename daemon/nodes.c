/*
 * The corosync nodelist (nodes.h). Every node reads the same
 * corosync.conf, so every daemon has the same list; the replica's quorum
 * gate takes its expected votes from it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <corosync/cmap.h>

#include "log.h"
#include "nodes.h"

static uint32_t token_ms;
static size_t logged_nodes;

static void node_read(cmap_handle_t h, unsigned int i, struct vmcd *d)
{
	struct vmcd_node *n = &d->nodes[d->n_nodes];
	char key[128];
	char *str = NULL;
	uint32_t id;

	snprintf(key, sizeof(key), "nodelist.node.%u.nodeid", i);
	if (cmap_get_uint32(h, key, &id) != CS_OK) {
		return;
	}
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->votes = 1;
	snprintf(key, sizeof(key), "nodelist.node.%u.quorum_votes", i);
	cmap_get_uint32(h, key, &n->votes);
	snprintf(key, sizeof(key), "nodelist.node.%u.ring0_addr", i);
	if (cmap_get_string(h, key, &str) == CS_OK) {
		snprintf(n->addr, sizeof(n->addr), "%s", str);
		free(str);
		str = NULL;
	}
	snprintf(key, sizeof(key), "nodelist.node.%u.name", i);
	if (cmap_get_string(h, key, &str) == CS_OK) {
		snprintf(n->name, sizeof(n->name), "%s", str);
		free(str);
	} else {
		snprintf(n->name, sizeof(n->name), "node%u", id);
	}
	d->n_nodes++;
}

int vmcd_nodes_load(struct vmcd *d)
{
	cmap_handle_t h;
	char *str = NULL;
	cs_error_t err = cmap_initialize(&h);

	if (err != CS_OK) {
		return -ENOTCONN;
	}
	d->n_nodes = 0;
	for (unsigned int i = 0; i < VMC_NODES_MAX; i++) {
		node_read(h, i, d);
	}
	if (cmap_get_string(h, "totem.cluster_name", &str) == CS_OK) {
		snprintf(d->cluster_name, sizeof(d->cluster_name), "%s", str);
		free(str);
	}
	if (cmap_get_uint32(h, "runtime.config.totem.token", &token_ms) != CS_OK &&
	    cmap_get_uint32(h, "totem.token", &token_ms) != CS_OK) {
		token_ms = 0;
	}
	cmap_finalize(h);
	if (d->n_nodes != logged_nodes) {
		log_notice("corosync nodelist: %zu nodes in cluster '%s'", d->n_nodes, d->cluster_name);
		logged_nodes = d->n_nodes;
	}
	return d->n_nodes > 0 ? 0 : -ENOENT;
}

uint32_t vmcd_nodes_token_ms(void)
{
	return token_ms;
}

bool vmcd_corosync_member(const struct vmcd *d, uint32_t id)
{
	for (size_t i = 0; i < d->n_cs_members; i++) {
		if (d->cs_members[i] == id) {
			return true;
		}
	}
	return false;
}

const struct vmcd_node *vmcd_node_by_id(const struct vmcd *d, uint32_t id)
{
	for (size_t i = 0; i < d->n_nodes; i++) {
		if (d->nodes[i].id == id) {
			return &d->nodes[i];
		}
	}
	return NULL;
}

const struct vmcd_node *vmcd_node_by_name(const struct vmcd *d, const char *name)
{
	for (size_t i = 0; i < d->n_nodes; i++) {
		if (strcmp(d->nodes[i].name, name) == 0) {
			return &d->nodes[i];
		}
	}
	return NULL;
}

const char *vmcd_node_name(const struct vmcd *d, uint32_t id)
{
	static char unknown[4][24];
	static unsigned int next;
	const struct vmc_node_facts *f = d->replica.state ? vmc_state_node(d->replica.state, id) : NULL;
	const struct vmcd_node *n = vmcd_node_by_id(d, id);
	char *buf;

	if (f != NULL && f->name[0] != '\0') {
		return f->name;
	}
	if (n != NULL) {
		return n->name;
	}
	/* A few at a time may be in one log line. */
	buf = unknown[next++ % 4];
	snprintf(buf, sizeof(unknown[0]), "node id %u", id);
	return buf;
}
