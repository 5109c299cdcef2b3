/*
 * Who fences whom, and when: a pure function of the replicated state
 * (group owners, settings, node facts and fencing records), the view, the
 * corosync membership, and what this node knows of its own fence runs.
 * The daemon (daemon/fence.c) keeps those facts, calls vmc_fence_decide()
 * after every event and on a timer, and carries the decisions out: it
 * spawns the agent, kills it, multicasts NODE_FENCED or FENCE_FAILED.
 *
 * A node is lost when it owns a running (or starting, stopping,
 * migrating) group and is not an active member of the view. For each,
 * in a synced primary view:
 *   its corosync still runs (only its daemon is gone, or silent)
 *                       -> grace: wait daemon_grace_ms for it to come back
 *                          (with fence_method none: wait until corosync
 *                          loses it too; without fencing there is no proof)
 *   fence_method unset  -> lease when it is usable (below), else warn: its
 *                          VMs are not restarted
 *   fence_method lease  -> once its lease has expired on every volume,
 *                          watched here from after its loss (the daemon
 *                          says so: lease_proven), any member that saw it
 *                          announces NODE_FENCED (method lease); until
 *                          then wait (wait_ms: at least how long); a
 *                          volume it cannot read makes it wait for the
 *                          others. Usable only while the cluster has a
 *                          volume and every node with facts holds an
 *                          armed watchdog; else a warning says why
 *   fence_method none   -> the member of attempt 0 announces NODE_FENCED
 *                          without proof (once the sync's reports are in)
 *   agent or pacemaker  -> attempt k belongs to the active member k mod n
 *                          (members in id order; k = failed attempts in the
 *                          state), so a member that cannot reach the fence
 *                          device does not stall the others:
 *       our agent runs  -> wait, or kill it past fence_run_ms
 *       our agent ended -> announce: NODE_FENCED (with the epoch and the
 *                          sync's reports) or FENCE_FAILED (with the attempt)
 *       our turn        -> run it, fence_retry_ms after the failure before
 *       another's turn  -> nothing, but say whose; past fence_turn_ms
 *                          without a word from that member (frozen after
 *                          the sync), count its attempt as failed for it
 *     and, when lease is usable, a lease expiry proven here first is
 *     announced as with fence_method lease (whichever proof comes first)
 * A node that is no longer lost (back in the view, or owns nothing any
 * more) has its run's result dropped, never announced; so has a success
 * from an earlier epoch (the membership changed while the agent ran: it
 * is fenced again).
 */
#ifndef VMC_FENCE_POLICY_H
#define VMC_FENCE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state.h"
#include "timeouts.h"

/* What this node knows of its own fencing of one node; the daemon keeps these. */
struct vmc_fence_local {
	uint32_t node;
	int64_t daemon_gone_since_ms; /* its daemon seen gone while its corosync stays (0: not) */
	int64_t failure_seen_ms;      /* when this node saw the state's failed attempts reach (0: never): */
	uint32_t failure_seen_attempts; /* (a view of protocol 1 counts none: its own failure pauses it) */
	int64_t turn_seen_ms;         /* when this node saw the current attempt's turn begin (0: not yet) */
	uint32_t turn_seen_attempts;  /*   the failed attempts then */
	bool running;                 /* an agent runs here for it */
	uint32_t run_attempt;         /* ... for this attempt */
	int64_t run_started_ms;
	uint64_t run_epoch;           /* the epoch it started in: a success proves nothing in a later one */
	bool result_ready;            /* the agent ended; its result is not announced yet */
	bool result_ok;
	char result_error[160];
	bool announced;               /* an announcement is on its way: */
	uint32_t announced_attempts;  /*   sent while the state had this many failed attempts */
	uint64_t announced_epoch;     /*   in this epoch */
	bool warned_unset;
	int lease;                    /* its leases here: 1 expired everywhere, 0 not yet, -1 cannot tell */
	int64_t lease_left_ms;        /*   when 0: at least this long still */
	char lease_why[160];          /*   when -1: why */
};

/* A corosync nodelist entry, for a node that never announced its name. */
struct vmc_fence_name {
	uint32_t id;
	const char *name;
};

struct vmc_fence_input {
	const struct vmc_state *state;
	uint32_t my_id;
	bool writable;                /* synced primary view */
	bool reports_ready;           /* every active member's running VMs are known (the barrier) */
	const uint32_t *members;      /* active members of the view, in id order */
	size_t n_members;
	const uint32_t *cs_members;   /* corosync's membership */
	size_t n_cs_members;
	const struct vmc_fence_name *nodelist;
	size_t n_nodelist;
	const struct vmc_fence_local *locals;
	size_t n_locals;
	int64_t now_ms;
	const struct vmc_timeouts *t;
};

/* Can lost nodes be proven dead by their leases? (a volume, and every node's armed watchdog) why when not. */
bool vmc_fence_lease_usable(const struct vmc_state *s, char *why, size_t len);
/* How lost nodes are proven dead now, in words for `status` ("lease", "agent or lease", ...). */
const char *vmc_fence_summary(const struct vmc_state *s, char *buf, size_t len);
/* The warning status shows about fencing, or NULL: vmc_settings_warning's, unless leases serve. */
const char *vmc_fence_warning(const struct vmc_state *s);

enum vmc_fence_action {
	VMC_FENCE_NOTHING = 0,
	VMC_FENCE_GRACE,          /* its daemon left, its corosync stays: wait (wait_ms left) */
	VMC_FENCE_WAIT_NONE,      /* fence_method none and still in corosync: wait for corosync */
	VMC_FENCE_WARN_UNSET,     /* fencing not configured */
	VMC_FENCE_WAIT_BARRIER,   /* the sync's reports are not all in yet */
	VMC_FENCE_ANNOUNCE_NONE,  /* multicast NODE_FENCED, method none */
	VMC_FENCE_RUN,            /* run the agent now (attempt, plug) */
	VMC_FENCE_WAIT_RUN,       /* our agent runs (wait_ms: its age) */
	VMC_FENCE_KILL_RUN,       /* our agent is past its deadline */
	VMC_FENCE_ANNOUNCE_FENCED,/* our agent succeeded: multicast NODE_FENCED */
	VMC_FENCE_ANNOUNCE_FAILED,/* our agent failed: multicast FENCE_FAILED (attempt) */
	VMC_FENCE_WAIT_APPLIED,   /* our announcement is on its way */
	VMC_FENCE_RETRY_LATER,    /* our turn, after the pause (wait_ms left) */
	VMC_FENCE_OTHERS_TURN,    /* fencer runs attempt */
	VMC_FENCE_NO_NAME,        /* our turn, but no name to give the agent */
	VMC_FENCE_DROP_RESULT,    /* the node is not lost any more: forget our agent's result */
	VMC_FENCE_TURN_EXPIRED,   /* the fencer of attempt said nothing in time: FENCE_FAILED for it */
	VMC_FENCE_WAIT_LEASE,     /* its leases have not expired yet (wait_ms: at least this long) */
	VMC_FENCE_ANNOUNCE_LEASE, /* its leases expired: multicast NODE_FENCED, method lease */
	VMC_FENCE_WARN_LEASE,     /* lease fencing asked for but not usable (why) */
};

struct vmc_fence_decision {
	uint32_t node;
	enum vmc_fence_action action;
	uint32_t fencer;          /* whose turn the attempt is */
	uint32_t attempt;         /* 0 for the first */
	char plug[64];            /* RUN: the node's name for the agent */
	int64_t wait_ms;
	char why[256];
};

/*
 * One decision per node that is lost or that this node has a fence record
 * (local) for, by node id. out holds max; returns how many were written.
 */
size_t vmc_fence_decide(const struct vmc_fence_input *in, struct vmc_fence_decision *out, size_t max);

const char *vmc_fence_action_to_str(enum vmc_fence_action a);

#endif
