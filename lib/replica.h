/*
 * One replica of the cluster state machine: the state, the sync that runs
 * after every membership change, and the quorum gate. It does no I/O: the
 * daemon feeds it CPG configuration changes and delivered messages and
 * carries out what it asks through the ops callbacks; the simulator in
 * tests/unit does the same with N replicas in one process.
 *
 * Sync, after every view change (all members see the same sequence of
 * messages after the change, so they all reach the same decisions):
 *
 *   view change --> HELLO phase: every member multicasts a hello
 *                   (epoch, config_version, digest, prev_primary, votes)
 *       all hellos in --> same digest everywhere? --> DONE
 *                     --> otherwise STATE phase: the source (highest
 *                         epoch, then config_version; then one that was
 *                         primary; then lowest node id) multicasts its
 *                         snapshot in chunks
 *       last chunk  -----> members whose digest differs install it --> DONE
 *
 * A primary view that finishes its sync raises the epoch, so after a
 * partition heals the side that last had quorum wins even if the other
 * side applied more messages before it noticed the split.
 *
 * Requests delivered before DONE are held and applied, in order, at DONE;
 * a new view change drops them (the origin tells its client to retry) and
 * starts the sync over, so a member that dies mid-sync costs a restart of
 * the sync, never a hang. A view is primary when its members' votes (as
 * each announces in its hello) are a majority of the expected votes; requests in a non-primary view are
 * refused on every member alike.
 */
#ifndef VMC_REPLICA_H
#define VMC_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "state.h"

#define VMC_NODES_MAX 64
/* Snapshot bytes per STATE_CHUNK message. */
#define VMC_SNAPSHOT_CHUNK_LEN (256 * 1024)

enum vmc_sync_phase {
	VMC_SYNC_HELLO = 0,
	VMC_SYNC_STATE,
	VMC_SYNC_DONE,
};

struct vmc_replica_ops {
	/* Multicast a message of this type with this body (reference taken). */
	void (*send)(void *ctx, uint16_t type, json_object *body);
	/* A request was decided: rc 0 applied, else refused or dropped. */
	void (*outcome)(void *ctx, uint32_t origin, uint64_t request_id, int rc, const char *detail);
	/* Sync finished for the current view (state may have been replaced). */
	void (*synced)(void *ctx);
	/* Something an operator should know about (optional). */
	void (*warn)(void *ctx, const char *what);
	/* The VMs running on this node, a new JSON array of names (optional):
	 * every hello reports them, so a sync ends with every member's report. */
	json_object *(*running)(void *ctx);
};

struct vmc_hello {
	uint32_t node_id;
	uint64_t epoch;
	uint64_t config_version;
	char digest[VMC_DIGEST_HEX_LEN + 1];
	bool prev_primary;
	uint32_t expected_votes;
	uint32_t votes;          /* the sender's own quorum votes */
	uint16_t proto_max;
	uint32_t round;
	json_object *running;    /* the VMs it runs (array of names), NULL if not reported */
};

struct vmc_held_msg {
	struct vmc_msg msg;
	struct vmc_held_msg *next;
};

struct vmc_replica {
	uint32_t my_id;
	uint32_t my_votes;       /* this node's quorum votes (corosync nodelist) */
	uint32_t expected_votes; /* sum of the nodelist's votes */
	uint32_t view_votes;     /* votes of this view's members, once all hellos are in */
	struct vmc_state *state;
	/* What the owner must persist (see journal.h): lines to append, or a
	 * whole snapshot when the state was replaced by a sync. */
	char **journal;
	size_t n_journal;
	size_t cap_journal;
	bool snapshot_needed;
	bool prev_primary;

	uint32_t members[VMC_NODES_MAX];
	size_t n_members;
	uint32_t round;          /* views seen by this replica */
	enum vmc_sync_phase phase;
	bool primary;
	uint16_t proto;          /* version the view speaks */
	struct vmc_hello hellos[VMC_NODES_MAX];
	size_t n_hellos;
	const struct vmc_hello *source;
	uint64_t max_epoch;      /* highest epoch among the hellos */
	char *snapshot;          /* chunks gathered so far */
	size_t snapshot_len;
	uint32_t next_chunk;

	struct vmc_held_msg *held_head;
	struct vmc_held_msg **held_tail;

	const struct vmc_replica_ops *ops;
	void *ctx;
	/* Bumped whenever the state changes; keys the digest cache. */
	uint64_t generation;
	uint64_t digest_generation;
	char digest[VMC_DIGEST_HEX_LEN + 1];
	uint64_t syncs_done;
	uint64_t snapshots_installed;
};

/* Takes ownership of state. */
void vmc_replica_init(struct vmc_replica *r, uint32_t my_id, uint32_t my_votes,
		      uint32_t expected_votes, struct vmc_state *state,
		      const struct vmc_replica_ops *ops, void *ctx);
void vmc_replica_fini(struct vmc_replica *r);

/* A CPG configuration change: the full, new member list. */
void vmc_replica_view(struct vmc_replica *r, const uint32_t *members, size_t n);
/* A delivered message (ownership of m->body stays with the caller). */
void vmc_replica_deliver(struct vmc_replica *r, const struct vmc_msg *m);

/*
 * What every member of the current, synced view reported running, as
 * [[node, [names...]], ...]; NULL while a member has not reported (sync
 * not done, or an older daemon). A new reference.
 */
json_object *vmc_replica_reports(const struct vmc_replica *r);

/* Anything to persist since the last vmc_replica_persisted()? */
bool vmc_replica_has_changes(const struct vmc_replica *r);
/* The owner persisted everything: forget the pending journal lines. */
void vmc_replica_persisted(struct vmc_replica *r);

/* The state digest, computed once per change rather than once per call. */
const char *vmc_replica_digest(struct vmc_replica *r);

/* Synced and primary: this node's copy is current and may change. */
bool vmc_replica_writable(const struct vmc_replica *r);
const char *vmc_sync_phase_to_str(enum vmc_sync_phase p);

/* What a change may depend on besides the state: who sent it, who is in the view. */
struct vmc_apply_ctx {
	uint32_t sender;
	const uint32_t *members; /* the view it was delivered in; placement's "up" nodes */
	size_t n_members;
};

/*
 * Apply one change request to a state (pure; used by the replica, journal
 * replay and tests). Returns 0 and bumps config_version, or a negative
 * error with a one-line reason in detail.
 */
int vmc_state_apply(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_msg *m,
		    char *detail, size_t detail_len);
/* The same with an empty view (changes that place nothing). */
int vmc_state_apply_request(struct vmc_state *s, const struct vmc_msg *m, char *detail,
			    size_t detail_len);
/* The KEY=VALUE strings of a group-set body, refusing anything but strings. */
int vmc_set_assignments(json_object *set, const char **out, size_t max, size_t *n, char *detail,
			size_t len);

#endif
