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
 * Requests delivered before DONE are held and applied, in order, at DONE;
 * a new view change drops them and starts the sync over, so a member that
 * dies mid-sync costs a restart of the sync, never a hang. Requests in a
 * non-primary view are refused on every member alike.
 *
 * Which view is primary (protocol 3): corosync's votequorum decides. Each
 * hello carries what votequorum told its sender (quorate, ring id, quorum,
 * qdevice votes); the view is primary when every active member says
 * quorate on the same ring and the active members with a history hold,
 * with the qdevice's votes, the quorum. A node has a history once it has
 * taken part in a primary sync (it persisted that sync's promise, below,
 * with that sync's state): a node that is new or was wiped, even holding
 * a copy it installed from a peer in a view that was not primary, does
 * not count, since it cannot know what was acknowledged without it. With
 * every node of the nodelist present (as a new cluster starts) the view
 * is primary whatever they hold: everything anyone holds is in it. Views
 * of older protocols count the daemons' votes against the nodelist's, as
 * before.
 *
 * A primary sync then establishes a new epoch (protocol 3, "confirm"
 * phase): every active member persists a promise of the next epoch
 * counter (one above any epoch or promise in the hellos) and confirms it;
 * once all have, the epoch becomes (counter << 32 | source's node id) and
 * the view takes changes. A later primary view intersects this one, so it
 * sees the promise and picks a higher counter: epochs are unique and
 * follow time, and the sync's source (highest epoch) always holds every
 * change acknowledged before.
 *
 * Acknowledged (protocol 3): every member confirms, once per commit group,
 * the config_version it has applied and persisted (COMMIT_CONFIRM, from
 * vmc_replica_confirm()). The origin answers its client (ops->answer) once
 * every active member of the view in which its change was applied has
 * confirmed it. If the view changes first, it answers after the next
 * primary sync is established, from the state that sync settled on
 * (state.h, "recent"): the change is there (it then waits for this view's
 * confirmations), or it is not ("not applied: retry"), or the state no
 * longer remembers (outcome unknown). A minority never answers "done".
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
	VMC_SYNC_CONFIRM, /* establishing the epoch of a primary view (protocol 3) */
	VMC_SYNC_DONE,
};

/* What corosync's votequorum says on this node (protocol 3 hellos carry it). */
struct vmc_quorum_info {
	bool known;              /* votequorum has answered at least once */
	bool quorate;
	uint32_t ring_node;      /* the ring id: representative and sequence */
	uint64_t ring_seq;
	uint32_t quorum;         /* votes needed */
	uint32_t qdevice_votes;  /* what a quorum device casts (0: none) */
};

struct vmc_replica_ops {
	/* Multicast a message of this type with this body (reference taken). */
	void (*send)(void *ctx, uint16_t type, json_object *body);
	/* A request was decided here: rc 0 applied, else refused or dropped. */
	void (*outcome)(void *ctx, uint32_t origin, uint64_t request_id, int rc, const char *detail);
	/* What this node's client is told of its own request (optional): rc 0
	 * acknowledged (held by the primary view), -VMC_E_RETRY not applied,
	 * -VMC_E_UNKNOWN outcome unknown, else the refusal. Once per request. */
	void (*answer)(void *ctx, uint64_t request_id, int rc, const char *detail);
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
	bool has_vq;             /* protocol 3: what votequorum says on the sender */
	struct vmc_quorum_info vq;
	uint64_t promised;       /* the highest epoch counter it promised */
	json_object *running;    /* the VMs it runs (array of names), NULL if not reported */
	uint32_t steady[VMC_NODES_MAX]; /* "steady": members of its views ever since its last primary sync */
	size_t n_steady;
};

struct vmc_held_msg {
	struct vmc_msg msg;
	struct vmc_held_msg *next;
};

/* What one member of the view has confirmed in this sync (COMMIT_CONFIRM). */
struct vmc_confirm {
	uint32_t node;
	bool promised;           /* the promise of this sync's epoch counter */
	uint64_t promise;        /* the counter it promised, kept from before this node's confirm phase */
	bool confirmed;          /* a config_version in this epoch */
	uint64_t version;        /* the highest it confirmed */
};

/* One of this node's requests whose client waits for its answer. */
struct vmc_pending {
	uint64_t request_id;
	uint32_t round;          /* the sync it was applied in (round, sync_seq); */
	uint32_t sync_seq;
	bool resolved;           /* verdict known for that sync (else a view change caught it) */
	int verdict;             /* 0 applied, -VMC_E_RETRY not: told once version is confirmed */
	uint64_t version;        /* the config_version whose confirmation by all tells it */
	uint16_t msg_version;    /* the protocol it was written in (recorded in "recent" from 3) */
	char detail[160];
};

struct vmc_replica {
	uint32_t my_id;
	uint32_t my_votes;       /* this node's quorum votes (corosync nodelist) */
	uint32_t nodelist_votes; /* sum of the nodelist's votes, as this node read it */
	uint32_t expected_votes; /* the highest nodelist sum among this round's hellos */
	uint32_t view_votes;     /* votes of this view's members, once all hellos are in */
	char not_primary[256];   /* why the view is not primary, for refusals */
	/* Not primary, but quorate counting its excluded members' votes (their
	 * corosync is in this ring, so no other partition can be quorate): the
	 * view may fence and recover (reports apply) but takes no operator's
	 * change, and raises no epoch, until the silent members answer or
	 * leave. What it applies is answered "outcome unknown": it is not held
	 * by every node. */
	bool recovery_only;
	struct vmc_state *state;
	/* What the owner must persist (see journal.h): lines to append, or a
	 * whole snapshot when the state was replaced by a sync. */
	char **journal;
	size_t n_journal;
	size_t cap_journal;
	bool snapshot_needed;
	bool prev_primary;
	/*
	 * The active members of this node's last primary sync that have been in
	 * every view since: whatever such a member did since, this node saw
	 * (virtual synchrony). A view may count a silent member's votes for
	 * recovery only when an up-to-date member vouches for it so
	 * (replica_quorum.c); not kept across a daemon restart.
	 */
	uint32_t steady[VMC_NODES_MAX];
	size_t n_steady;

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

	/* Protocol 3: votequorum, the epoch's establishment and acknowledgements. */
	struct vmc_quorum_info vq;       /* what votequorum says now */
	struct vmc_quorum_info hello_vq; /* what this round's hello said */
	bool hello_sent;
	uint64_t counter;        /* the epoch counter this sync establishes */
	bool promise_sent;
	struct vmc_confirm confirms[VMC_NODES_MAX]; /* per active member */
	size_t n_confirms;
	bool confirm_sent;
	uint64_t confirm_sent_version;
	struct vmc_pending *pending;
	size_t n_pending;
	size_t cap_pending;
	/* The old rule, kept to show what it loses (tests/unit): answer once this
	 * node persisted, and raise the epoch by one without a promise. */
	bool legacy_ack;
	/* The highest protocol this replica speaks (VMC_PROTO_VERSION_MAX; lower in tests
	 * that play an older daemon). */
	uint16_t proto_max;

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
	uint64_t answers_done;
	uint64_t answers_not_applied;
	uint64_t answers_unknown;
};

/* Takes ownership of state. */
void vmc_replica_init(struct vmc_replica *r, uint32_t my_id, uint32_t my_votes,
		      uint32_t expected_votes, struct vmc_state *state,
		      const struct vmc_replica_ops *ops, void *ctx);
void vmc_replica_fini(struct vmc_replica *r);

/* The nodelist was (re)read: this node's votes and the sum (from the next sync on). */
void vmc_replica_nodelist(struct vmc_replica *r, uint32_t my_votes, uint32_t nodelist_votes);

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

/*
 * What votequorum says changed (or said it the first time). When it
 * differs from what this round's hello said, the sync starts again
 * (SYNC_RESTART), so the view is judged on what corosync says now.
 */
void vmc_replica_quorum(struct vmc_replica *r, const struct vmc_quorum_info *q);

/*
 * The owner has persisted everything (vmc_replica_persisted()): confirm
 * it to the view (protocol 3), at most one message per call. Call it after
 * each commit group.
 */
void vmc_replica_confirm(struct vmc_replica *r);

/* The oldest of this node's requests still waiting for its answer (0: none). */
uint64_t vmc_replica_oldest_pending(const struct vmc_replica *r);

/*
 * Confirmations of this node's changes have not come within the deadline
 * (a member stopped answering after the sync): ask for the sync again, so
 * the hello deadline excludes the silent member and the changes resolve.
 */
void vmc_replica_ack_deadline(struct vmc_replica *r);

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

/* Synced and primary, or recovery only: this node may fence, recover and report. */
bool vmc_replica_writable(const struct vmc_replica *r);
/* Synced and primary: operators' changes are taken and acknowledged. */
bool vmc_replica_accepts_changes(const struct vmc_replica *r);
const char *vmc_sync_phase_to_str(enum vmc_sync_phase p);

#endif
