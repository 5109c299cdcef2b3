/*
 * The read views clusterctl shows (status, node list, vm list, vm show),
 * as pure functions from the replicated state and what the asked daemon
 * knows (the nodelist, the memberships, quorum, the waits in flight) to
 * JSON. Pure so that their output is tested as golden files
 * (tests/views), like pacemaker's cts/cli, and so that every field an
 * operator reads is computed in one place.
 *
 * A node is "up" when it is an active member of the view; "excluded" when
 * it is in the view but its daemon did not answer in the last sync;
 * "daemon-down" when corosync has it but its daemon is not in the view;
 * "down" otherwise. Off a quorate primary view (a minority, a sync in
 * progress) every view says "stale": what it shows is this node's last
 * copy, which may lag the cluster's, and since when. A group whose owner is not up shows "unknown": the
 * cluster last knew it as its "cluster_state", but nobody can tell what
 * runs there until the owner answers or is fenced.
 */
#ifndef VMC_VIEWS_H
#define VMC_VIEWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "state.h"

struct vmc_view_node {
	uint32_t id;
	const char *name;
	const char *addr;
	uint32_t votes;
};

/* Something the daemon waits for, for `clusterctl status`. */
struct vmc_wait {
	char kind[24];          /* sync, excluded, daemon-grace, fencing, fencing-retry, ... */
	uint32_t node;          /* the node it is about, 0 for none */
	char vm[VMC_NAME_MAX + 1];
	char method[16];
	int64_t attempt;        /* counted from 1; 0 for none */
	uint32_t fencer;        /* whose turn; 0 for none */
	int64_t age_ms;         /* since when; -1 unknown */
	int64_t left_ms;        /* until when; -1 unknown */
	char detail[224];
};

struct vmc_view_input {
	const struct vmc_state *state;
	uint32_t my_id;
	const char *cluster_name;
	const struct vmc_view_node *nodes;  /* corosync's nodelist */
	size_t n_nodes;
	const uint32_t *view;               /* the CPG view */
	size_t n_view;
	const uint32_t *active;             /* its members not excluded from the sync */
	size_t n_active;
	const uint32_t *corosync;           /* corosync's membership */
	size_t n_corosync;
	bool quorate;
	bool accepting_changes;
	const char *sync_phase;
	uint16_t protocol;
	uint32_t expected_votes;
	uint32_t total_votes;
	const char *digest;
	const char *warning;                /* one line every status shows, or NULL */
	const struct vmc_wait *waits;
	size_t n_waits;
	uint64_t now_s;                     /* wall clock: which failures are recent */
	int minute_of_day;                  /* now in the cluster's timezone (failback windows); -1 unknown */
	uint64_t stale_since_s;             /* wall clock: since when this copy may lag; 0 current */
};

json_object *vmc_view_status(const struct vmc_view_input *in);
/* A node's mode into n: "mode", and for a drain what is left and why, for a quarantine until when. */
void vmc_view_node_mode(const struct vmc_view_input *in, uint32_t id, json_object *n);
/* Where g would fail back to and when: {plan, home, kind, due_s, text}. */
json_object *vmc_view_failback(const struct vmc_view_input *in, const struct vmc_group *g);
json_object *vmc_view_node_list(const struct vmc_view_input *in);
json_object *vmc_view_vm_list(const struct vmc_view_input *in);
json_object *vmc_view_vm_show(const struct vmc_view_input *in, const struct vmc_group *g);
/* Volumes: {stale, volumes: [...]} and one volume with what each node reported and its image locks. */
json_object *vmc_view_volume_list(const struct vmc_view_input *in);
json_object *vmc_view_volume_show(const struct vmc_view_input *in, const struct vmc_volume *v);
/* A node's state word (above). */
const char *vmc_view_node_state(const struct vmc_view_input *in, uint32_t id);
/* The wait as one line an operator reads ("fencing node3 (agent, attempt 2, 12 s)"). */
void vmc_wait_describe(const struct vmc_view_input *in, const struct vmc_wait *w, char *buf, size_t len);

#endif
