/*
 * Every deadline vmclusterd keeps, derived from the few inputs an
 * operator sets: corosync's token (corosync.conf), fence_timeout_s
 * (`clusterctl cluster set`), lease_io_timeout_s (the same) and
 * --stop-timeout (vmclusterd). Nothing else in the daemon may invent a
 * timeout. All deadlines run on vmc_now_ms()
 * (lib/clock.h), this node's monotonic clock; no two nodes' clocks are
 * ever compared.
 *
 * A node is powered off, the survivors bring its VMs back:
 *
 *   t0                node3 stops answering
 *   + membership_ms   corosync (token + consensus) forms a ring without it;
 *                     votequorum and CPG tell every survivor
 *   + <= hello_deadline_ms
 *                     the sync's hello phase: a member whose daemon has not
 *                     answered by then is excluded from this sync and
 *                     treated like a departed daemon (below)
 *   + ms              state phase (a snapshot when digests differ)
 *   sync done ------> the fencer of attempt 0 (lowest id) runs the agent
 *   + <= fence_run_ms the agent's deadline (fence_timeout_s); then SIGTERM to
 *                     its process group, SIGKILL fence_term_grace_ms later
 *   failure --------> FENCE_FAILED; attempt 1 belongs to the next member,
 *                     which waits fence_retry_ms first; and so on, round
 *                     the view
 *   silence --------> a fencer that says nothing for fence_turn_ms (its
 *                     daemon froze after the sync) loses its turn: any
 *                     member counts its attempt as failed
 *   success --------> NODE_FENCED, valid only in the epoch it was decided in;
 *                     every member applies the same recovery plan
 *   + <= vm_start_deadline_ms
 *                     each new owner's QEMU answers QMP "running"
 *
 * A node cut off from the others (a partition) stops its own VMs:
 *
 *   t0                its link goes down
 *   + membership_ms   votequorum says "not quorate": every VM is SIGKILLed
 *                     at once (self-fencing), while the survivors are still
 *                     forming their ring; they restart the VMs only after
 *                     fencing the node (or, with fence_method none, after
 *                     their own sync, which the kill precedes)
 *
 * A node whose corosync still runs but whose vmclusterd is gone (restart,
 * upgrade, SIGSTOP, a long fsync): its VMs keep running, so the others wait
 * daemon_grace_ms for it to come back before they treat it as lost.
 *
 * Host leases on shared volumes (the fence method `lease`), all from one
 * input, T = lease_io_timeout_s, as sanlock derives its own from its I/O
 * timeout. Times are since the *start* of this node's last successful
 * renewal (write and read-back of its slot), the earliest moment the
 * others may have seen that value:
 *
 *   0                 renewal issued; it must be done by T (lease_io_ms),
 *                     else the attempt failed, and the volume is reported
 *                     hung while the I/O stays out
 *   2T                the next renewal (lease_renewal_ms), and so on
 *   6T                no renewal succeeded since 0 (lease_kill_ms): every VM
 *                     here using the volume is SIGKILLed
 *   7T                the kills are done (lease_kill_grace_ms = T later);
 *                     if one is not, or the node has stopped being quorate
 *                     with a VM still running, the watchdog is no longer
 *                     petted (it is petted every watchdog_pet_ms otherwise)
 *   13T               the watchdog (watchdog_ms = 6T after the last pet)
 *                     has reset the node at the latest
 *   14T               lease_timeout_ms: a survivor that watched the slot
 *                     stay unchanged this long, on its own clock, from a
 *                     read made after it lost the node, knows the node is
 *                     dead or runs none of the volume's VMs
 *
 * A node that loses quorum stops renewing and kills its VMs at once; one
 * whose main loop stops (SIGSTOP, a hang) stops petting and renewing at
 * the same moment, so it is reset watchdog_ms later. The default T of 10 s
 * gives a lease timeout of 140 s, sanlock's host-dead time; tests use 1 s.
 *
 * Work that may block on storage (a VM's files on a hung NFS mount) runs in
 * a child with fs_check_deadline_ms; QEMU's own start has
 * vm_start_deadline_ms, its exit vm_exit_grace_ms after QMP closed, and a
 * stop stop_timeout_ms (ACPI, then SIGKILL).
 */
#ifndef VMC_TIMEOUTS_H
#define VMC_TIMEOUTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* corosync's own default, when cmap does not say */
#define VMC_TOKEN_MS_DEFAULT 1000
/* corosync: consensus = 1.2 x token */
#define VMC_CONSENSUS_PERCENT 120
#define VMC_HELLO_DEADLINE_MS_MIN 10000
#define VMC_HELLO_DEADLINE_TOKENS 5
#define VMC_DAEMON_GRACE_MS_MIN 30000
#define VMC_FENCE_RETRY_MS 5000
#define VMC_FENCE_TERM_GRACE_MS 2000
#define VMC_VM_START_DEADLINE_MS 30000
#define VMC_VM_EXIT_GRACE_MS 10000
#define VMC_FS_CHECK_DEADLINE_MS 10000
#define VMC_CPG_RETRY_FIRST_MS 10
#define VMC_CPG_RETRY_MAX_MS 500
#define VMC_LEASE_IO_TIMEOUT_S_DEFAULT 10
#define VMC_LEASE_IO_TIMEOUT_S_MAX 60
/* multiples of T, the lease I/O timeout */
#define VMC_LEASE_RENEWAL_TS 2
#define VMC_LEASE_KILL_TS 6
#define VMC_LEASE_KILL_GRACE_TS 1
#define VMC_WATCHDOG_TS 6
#define VMC_LEASE_MARGIN_TS 1
#define VMC_WATCHDOG_PET_MS_MAX 1000

struct vmc_timeouts {
	/* what the operator set */
	uint32_t token_ms;
	uint32_t fence_timeout_ms;
	uint32_t stop_timeout_ms;
	/* what follows from it */
	uint32_t membership_ms;
	uint32_t hello_deadline_ms;
	uint32_t daemon_grace_ms;
	uint32_t fence_run_ms;
	uint32_t fence_term_grace_ms;
	uint32_t fence_retry_ms;
	uint32_t fence_turn_ms;
	uint32_t vm_start_deadline_ms;
	uint32_t vm_exit_grace_ms;
	uint32_t fs_check_deadline_ms;
	uint32_t cpg_retry_first_ms;
	uint32_t cpg_retry_max_ms;
	/* host leases and the watchdog */
	uint32_t lease_io_ms;
	uint32_t lease_renewal_ms;
	uint32_t lease_kill_ms;
	uint32_t lease_kill_grace_ms;
	uint32_t watchdog_ms;
	uint32_t watchdog_pet_ms;
	uint32_t lease_timeout_ms;
};

/*
 * token_ms 0 means "corosync did not say": its default; lease_io_timeout_s
 * 0 means the default.
 */
void vmc_timeouts_derive(struct vmc_timeouts *t, uint32_t token_ms, uint32_t fence_timeout_s,
			 uint32_t stop_timeout_s, uint32_t lease_io_timeout_s);

/*
 * The lease arithmetic, for a survivor watching a lost node's slot: it
 * first read the slot's present value at seen_ms (on its clock, after it
 * lost the node) and reads it unchanged at now_ms. Expired once
 * lease_timeout_ms have passed between the two.
 */
bool vmc_lease_expired(const struct vmc_timeouts *t, uint64_t seen_ms, uint64_t now_ms);
/* How long until then (0 once expired). */
uint64_t vmc_lease_remaining_ms(const struct vmc_timeouts *t, uint64_t seen_ms, uint64_t now_ms);
/* This node, last renewed (started) at renewed_ms: must its volume's VMs die now? */
/*
 * Is a renewal overdue (none for a renewal interval and an I/O timeout)?
 * A VM does not start on such a volume: its kill deadline may be moments away.
 */
bool vmc_lease_overdue(const struct vmc_timeouts *t, uint64_t renewed_ms, uint64_t now_ms);
bool vmc_lease_must_kill(const struct vmc_timeouts *t, uint64_t renewed_ms, uint64_t now_ms);
/* ... and may the watchdog still be petted, with those VMs not yet gone? */
bool vmc_lease_may_pet(const struct vmc_timeouts *t, uint64_t renewed_ms, uint64_t now_ms);

/*
 * The orderings the timeline above relies on. 0, or -EINVAL with the
 * first one that does not hold in why.
 */
int vmc_timeouts_check(const struct vmc_timeouts *t, char *why, size_t len);

#endif
