/*
 * The daemon's context, passed to every module (no globals across files).
 * Modules keep their own state static behind their init and fini functions,
 * in main.c in dependency order and finalised in reverse.
 */
#ifndef VMCLUSTERD_H
#define VMCLUSTERD_H

#include <stdbool.h>
#include <stdint.h>
#include <qb/qbloop.h>

#include "options.h"
#include "replica.h"

/* Named exit codes: each fatal path has its own. */
enum vmcd_exit {
	VMCD_EXIT_OK = 0,
	VMCD_EXIT_USAGE = 2,
	VMCD_EXIT_ALREADY_RUNNING = 3,
	VMCD_EXIT_STATE_UNREADABLE = 4,
	VMCD_EXIT_COROSYNC_UNAVAILABLE = 5,
	VMCD_EXIT_COROSYNC_LOST = 6,
	VMCD_EXIT_IPC = 7,
	VMCD_EXIT_PERSIST = 8,
	VMCD_EXIT_DIRS = 9,
	VMCD_EXIT_DETACH = 10,
};

struct vmcd_node {
	uint32_t id;
	char name[64];
	char addr[64];
	uint32_t votes;
};

struct vmcd {
	qb_loop_t *loop;
	struct vmcd_options opt;
	uint32_t my_id;
	char cluster_name[64];
	struct vmcd_node nodes[VMC_NODES_MAX]; /* corosync nodelist */
	size_t n_nodes;
	bool quorate;            /* votequorum's verdict */
	bool quorum_known;       /* votequorum has told us at least once */
	uint32_t cs_members[VMC_NODES_MAX]; /* corosync's membership (votequorum) */
	size_t n_cs_members;
	uint32_t vq_expected_votes;
	uint32_t vq_total_votes;
	struct vmc_replica replica;
	uint64_t next_request_id;
	int exit_code;
};

/* Stop the main loop and exit with code. */
void vmcd_shutdown(struct vmcd *d, int code);

/* Look-ups in the corosync nodelist (nodes.c). */
const struct vmcd_node *vmcd_node_by_id(const struct vmcd *d, uint32_t id);
const struct vmcd_node *vmcd_node_by_name(const struct vmcd *d, const char *name);
const char *vmcd_node_name(const struct vmcd *d, uint32_t id);
int vmcd_nodes_load(struct vmcd *d);

/* votequorum (quorum.c) */
int vmcd_quorum_init(struct vmcd *d);
void vmcd_quorum_fini(struct vmcd *d);

/* CPG (cpg.c) */
int vmcd_cpg_init(struct vmcd *d);
void vmcd_cpg_fini(struct vmcd *d);
/* Multicast a change request; returns the request id (>0) or -errno. */
int64_t vmcd_cpg_send_request(struct vmcd *d, uint16_t type, json_object *body);
/* The same with an id the caller took from ++d->next_request_id. */
int64_t vmcd_cpg_send_request_as(struct vmcd *d, uint16_t type, json_object *body, uint64_t id);
bool vmcd_cpg_is_member(const struct vmcd *d, uint32_t id);

/* Bring what runs here in line with the replicated state (reconcile.c) */
int vmcd_reconcile_init(struct vmcd *d);
void vmcd_reconcile_fini(struct vmcd *d);
void vmcd_reconcile(struct vmcd *d);
/* After a sync: reports may have been lost, send them again when due. */
void vmcd_reconcile_resync(struct vmcd *d);

bool vmcd_corosync_member(const struct vmcd *d, uint32_t id);

/* Fencing of lost nodes that own VMs (fence.c) */
void vmcd_fence_check(struct vmcd *d);
void vmcd_fence_fini(struct vmcd *d);

/* This node's facts in the replicated state (facts.c) */
void vmcd_facts_announce(struct vmcd *d);

/* IPC server (ipc.c) */
int vmcd_ipc_init(struct vmcd *d);
void vmcd_ipc_fini(struct vmcd *d);
/* A request this node sent was decided; the reply waits for vmcd_ipc_flush(). */
void vmcd_ipc_request_done(struct vmcd *d, uint64_t request_id, int rc, const char *detail);
void vmcd_ipc_flush(struct vmcd *d);

/* Persistence (persist.c) */
int vmcd_persist_load(const char *state_dir, struct vmc_state **out);
/* After a batch of deliveries: persist if changed, then release replies. */
void vmcd_commit(struct vmcd *d);
void vmcd_persist_fini(struct vmcd *d);

#endif
