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
 *
 * A member that is in the view but does not answer (its daemon stopped,
 * stuck in a long fsync) must not hang the sync either. Each member's
 * daemon calls vmc_replica_hello_deadline() when the hello phase has
 * lasted the hello deadline (lib/timeouts.h); that multicasts a
 * SYNC_EXCLUDE, and the first one delivered excludes every member whose
 * hello has not been delivered by then — on every member alike, since
 * all see the same order. The sync goes on without them: they are not
 * "active" (not in the barrier, not placement's up nodes, their requests
 * ignored), though their votes still count (their corosync is in the
 * ring with ours, so they cannot be part of another primary view). An
 * excluded member that wakes up reads its own exclusion and multicasts
 * SYNC_RESTART, and everyone starts the sync of this view again; so
 * does a member whose copy is "tainted" (apply.h: it failed locally,
 * out of memory, so its copy may lack a change the others applied). A
 * tainted copy is never chosen as the source. Each restart raises the
 * view's sync_seq, which hellos and exclusions carry, so nothing sent for
 * an earlier sync of the same view is taken for the current one.
 * Exclusion needs every answering member to speak protocol 2; in a view of
 * protocol 1 a tainted node asks for no restart and takes no changes until
 * the next membership change, and a request written in a newer protocol
 * than the view's is refused on every member (an older one dropped it).
 * A taint is cured only by a sync whose hello announced it.
 */
#ifndef VMC_REPLICA_H
#define VMC_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "apply.h"
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
	/* The quorum votes of a node per the nodelist (optional; 1 otherwise):
	 * what an excluded member, which sent no hello, counts for. */
	uint32_t (*votes)(void *ctx, uint32_t node);
	/* A new hello phase began: the owner arms the hello deadline (optional). */
	void (*sync_started)(void *ctx);
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
	uint32_t sync_seq;       /* which sync of the view (0 from senders before protocol 2) */
	bool tainted;            /* its copy may lack a change: never the source */
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

	uint32_t members[VMC_NODES_MAX]; /* the CPG view, sorted */
	size_t n_members;
	uint32_t active[VMC_NODES_MAX];  /* the members not excluded from this sync */
	size_t n_active;
	uint32_t excluded[VMC_NODES_MAX];
	size_t n_excluded;
	bool excluded_self;      /* this node was excluded: it has asked for a restart */
	bool tainted;            /* see above: this copy may lack a change */
	bool hello_tainted;      /* what this round's hello said of it */
	struct {
		uint32_t node;
		uint16_t proto;
	} proto_seen[VMC_NODES_MAX]; /* the protocol each node last spoke in a hello */
	size_t n_proto_seen;
	uint32_t round;          /* views seen by this replica */
	uint32_t sync_seq;       /* syncs of this view: 0 at a view change, +1 per restart */
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
	uint64_t sync_restarts;
	uint64_t exclusions;
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
 * The sync has lasted the hello deadline on this node: ask that members
 * still silent be excluded from this sync (see above) — in the hello
 * phase, those without a hello; in the state phase, a source whose
 * snapshot has not ended. Only members this node heard speak protocol 2
 * are named (vouched for), so an older daemon is never excluded: it would
 * not understand it. Does nothing once the sync is done.
 */
void vmc_replica_hello_deadline(struct vmc_replica *r);

/*
 * This node failed where the others did not (out of memory outside the
 * apply path, e.g. decoding a message): taint it (see above).
 */
void vmc_replica_local_failure(struct vmc_replica *r, const char *why);

/* Is node an active member (in the view and not excluded from its sync)? */
bool vmc_replica_is_active(const struct vmc_replica *r, uint32_t node);

/*
 * What every active member of the current, synced view reported running, as
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

#endif
