/*
 * The daemon's context, passed to every module (no globals across files),
 * and its named exit codes. Only data lives here: each module has its own
 * header with its functions, so the includes of daemon/ show which module
 * uses which (tools/include-graph prints them and refuses a cycle).
 * Modules keep their own state static behind their init and fini
 * functions, called by main.c in dependency order and finalised in
 * reverse. A lower module tells the ones above what happened through the
 * hooks it was given at init, never by calling up.
 */
#ifndef VMCD_CONTEXT_H
#define VMCD_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>
#include <qb/qbloop.h>

#include "options.h"
#include "replica.h"
#include "timeouts.h"

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

/* One node of corosync's nodelist. */
struct vmcd_node {
	uint32_t id;
	char name[64];
	char addr[64];
	uint32_t votes;
};

struct vmcd {
	qb_loop_t *loop;
	struct vmcd_options opt;
	struct vmc_timeouts timeouts;            /* lib/timeouts.h, from corosync's token and the settings */
	uint32_t my_id;
	char cluster_name[64];
	struct vmcd_node nodes[VMC_NODES_MAX];   /* corosync nodelist (nodes.c) */
	size_t n_nodes;
	bool quorate;                            /* votequorum's verdict (quorum.c) */
	bool quorum_known;                       /* votequorum has told us at least once */
	uint32_t cs_members[VMC_NODES_MAX];      /* corosync's membership (votequorum) */
	size_t n_cs_members;
	uint32_t vq_expected_votes;
	uint32_t vq_total_votes;
	struct vmc_quorum_info vq;               /* what hellos carry (quorum.c fills it) */
	uint64_t stale_since_s;                  /* wall clock: since when this copy may lag (0: current) */
	struct vmc_replica replica;              /* the replicated state (cpg.c feeds it) */
	uint64_t next_request_id;
	bool watchdog_armed;                     /* this node holds an armed watchdog (watchdog.c) */
	uint64_t incarnation;                    /* random at start: the facts say a new daemon runs here */
	int exit_code;
};

/* Stop the main loop; the daemon exits with code (the first one given wins). */
void vmcd_shutdown(struct vmcd *d, int code);

#endif
