/*
 * What this node does about its VMs: a pure function of the replicated
 * state, corosync's quorum verdict, the replica's sync, and what this node
 * knows of each VM (what runs, what it started, how a QEMU ended, what it
 * reported). The daemon (daemon/local_vms.c) keeps those facts, calls
 * vmc_local_decide() after every event, and carries the decisions out.
 * Level-triggered: a decision missed is made again at the next pass, so
 * every decision must be safe to repeat; reports are deduplicated by the
 * (event, start attempt) they carry, never by the group's state alone.
 *
 * The rules, in order, for every VM this node knows (high priority first):
 *   corosync says this partition is not quorate
 *       a VM running here                  -> self-fence (SIGKILL now): the
 *                                             others may restart it
 *   a VM running here uses a volume whose lease this node has not renewed
 *   for the kill deadline (timeouts.h)     -> kill it (volume lost): the
 *                                             others may soon restart it
 *   the sync has not finished, or this copy may not take changes
 *                                          -> nothing (the state is about
 *                                             to be replaced, or too few
 *                                             daemons are here to decide)
 *   runs here, the cluster has no such VM  -> kill
 *   runs here, its owner is lost (not an active member)
 *                                          -> keep: the recovery adopts it
 *                                             here rather than start a copy
 *   runs here paused, moved away (online elsewhere)
 *                                          -> end the source QEMU
 *   runs here, owned elsewhere, or offline/failed
 *                                          -> kill (never two copies)
 *   owned here, starting at attempt A
 *       running, QMP said "running"        -> report running (A)
 *       a QEMU runs here unfollowed        -> adopt it (attach), never
 *                                             "start failed"
 *       killed when quorum was lost        -> report self_fenced (A)
 *       killed for a lost volume, or not yet started and one of its
 *       volumes is lost here               -> report volume_lost (A)
 *       its QEMU for A ended               -> report how (A), then wait: a
 *                                             new start only for a new
 *                                             attempt, once the cluster
 *                                             decided
 *       not started for A yet, a volume it uses
 *       has its renewal overdue here       -> wait (its kill deadline nears)
 *       not started for A yet, a group of its
 *       start_after is wanted but not online,
 *       for less than start_after_timeout_s -> wait (start order, start_order.h)
 *       not started for A yet, and this node
 *       holds every image lock it needs    -> start (A); else wait
 *   migrating here from another node (transfer or switchover)
 *       its incoming QEMU runs             -> nothing (the agent feeds it)
 *       not started for this migration     -> start incoming (paused once fed)
 *       started for it and gone            -> wait (the move is rolled back)
 *   owned here, online (or migrating)
 *       running, paused by a migration and
 *       online                             -> resume (announce if it came here)
 *       not running (none pending)         -> report crashed, stopped
 *                                             (guest off) or self_fenced (A)
 *   owned here, stopping
 *       running                            -> stop (once)
 *       not running                        -> report stopped (A)
 *
 * vmc_local_on_corosync_lost() decides what happens to the VMs when
 * corosync goes away under the daemon.
 */
#ifndef VMC_LOCAL_POLICY_H
#define VMC_LOCAL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "group_def.h"
#include "settings.h"
#include "state.h"

/* How this node's last QEMU for a VM ended. */
enum vmc_local_exit {
	VMC_EXIT_NONE = 0,
	VMC_EXIT_START_FAILED, /* never reached running (or the start was refused here) */
	VMC_EXIT_CRASHED,      /* died unasked */
	VMC_EXIT_STOPPED,      /* the guest powered itself off, or a stop completed */
};

/* What this node knows of one VM; the daemon keeps these between passes. */
struct vmc_local_vm {
	char name[VMC_NAME_MAX + 1];
	bool running;             /* the driver follows a QEMU for it here */
	bool start_pending;       /* started, QMP has not said "running" yet */
	bool stop_pending;        /* a stop was asked and is under way */
	bool started;             /* a start was launched here for started_attempt */
	uint32_t started_attempt;
	enum vmc_local_exit exit; /* how the QEMU of exit_attempt ended */
	uint32_t exit_attempt;
	char exit_reason[256];
	bool self_fenced;         /* killed here on losing quorum (its exit says which attempt) */
	bool volume_lost;         /* killed here because a volume it uses was lost here */
	bool exists_unfollowed;   /* a start found a QEMU for it that the driver does not follow */
	bool paused;              /* its QEMU is paused by a migration ("paused", "postmigrate") */
	char incoming_id[VMC_MIG_ID_MAX + 1]; /* its QEMU was started to receive this migration; "" if not */
	uint32_t order_attempt;   /* the start attempt that waits for its start_after groups, since: */
	int64_t order_since_ms;
	bool reported;            /* the last report sent: */
	char reported_event[16];
	uint32_t reported_attempt;
};

struct vmc_local_input {
	const struct vmc_state *state;
	uint32_t my_id;
	bool quorum_known;        /* votequorum has said at least once */
	bool quorate;             /* ... and says quorate */
	bool synced;              /* the replica's sync of this view is done */
	bool writable;            /* ... and it may take changes (primary, not tainted) */
	const uint32_t *members;  /* the active members of the view */
	size_t n_members;
	const struct vmc_local_vm *vms; /* every VM this node knows: owned here or running here */
	size_t n_vms;
	uint32_t volumes_lost;    /* bit i: state->volumes[i]'s lease is past the kill deadline here */
	uint32_t volumes_overdue; /* bit i: ... its renewal is overdue here (the kill deadline nears) */
	int64_t now_ms;           /* monotonic: how long a start has waited for its start_after groups */
};

enum vmc_local_action {
	VMC_LOCAL_NONE = 0,
	VMC_LOCAL_START,      /* start its QEMU here, for attempt */
	VMC_LOCAL_ADOPT,      /* attach to the unfollowed QEMU that runs it here */
	VMC_LOCAL_REPORT,     /* GROUP_REPORT event, for attempt */
	VMC_LOCAL_STOP,       /* ACPI shutdown, SIGKILL after the stop timeout */
	VMC_LOCAL_KILL,       /* SIGKILL: it must not run here */
	VMC_LOCAL_SELF_FENCE, /* SIGKILL: this node lost quorum */
	VMC_LOCAL_KEEP,       /* runs here while its owner is lost: left for the recovery to adopt */
	VMC_LOCAL_VOLUME_KILL,/* SIGKILL: a volume it uses was lost here */
	VMC_LOCAL_WAIT,       /* reported; the cluster decides next */
	VMC_LOCAL_START_INCOMING, /* start a QEMU here that waits for the migration mig_id */
	VMC_LOCAL_RESUME,     /* cont: a migration paused it and it is this node's to run */
	VMC_LOCAL_END_SOURCE, /* SIGKILL the paused source QEMU of a VM that moved away */
};

struct vmc_local_decision {
	char vm[VMC_NAME_MAX + 1];
	enum vmc_local_action action;
	const char *event;    /* REPORT: a VMC_REPORT_* */
	uint32_t attempt;     /* START, REPORT */
	char mig_id[VMC_MIG_ID_MAX + 1]; /* START_INCOMING */
	bool announce;        /* RESUME: it arrived here, so it announces itself on the network */
	int64_t order_wait_ms; /* WAIT for start_after groups: how much longer at most (0: not that wait) */
	char why[288];
};

/*
 * One decision per VM of in->vms that is in the state or runs here, in
 * the order to carry them out (high priority first, then by name; VMs the
 * state does not know last). out holds max; returns how many were written.
 */
size_t vmc_local_decide(const struct vmc_local_input *in, struct vmc_local_decision *out, size_t max);

/*
 * Corosync went away under the daemon, which must exit: KILL its VMs when
 * the survivors may restart them without reaching this node (fence_method
 * none, or unset — an operator may choose none later), else KEEP them: the
 * survivors fence this node, and that stops them.
 */
enum vmc_local_action vmc_local_on_corosync_lost(const struct vmc_settings *st, char *why, size_t len);

const char *vmc_local_action_to_str(enum vmc_local_action a);
const char *vmc_local_exit_to_str(enum vmc_local_exit e);

#endif
