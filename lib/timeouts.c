/*
 * The timeline's arithmetic (timeouts.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "timeouts.h"

static uint32_t at_least(uint64_t v, uint32_t min)
{
	if (v > UINT32_MAX) {
		return UINT32_MAX;
	}
	return v < min ? min : (uint32_t)v;
}

void vmc_timeouts_derive(struct vmc_timeouts *t, uint32_t token_ms, uint32_t fence_timeout_s,
			 uint32_t stop_timeout_s, uint32_t lease_io_timeout_s)
{
	uint64_t token = token_ms ? token_ms : VMC_TOKEN_MS_DEFAULT;
	uint64_t io = (uint64_t)(lease_io_timeout_s ? lease_io_timeout_s : VMC_LEASE_IO_TIMEOUT_S_DEFAULT) * 1000;

	t->token_ms = (uint32_t)token;
	t->fence_timeout_ms = at_least((uint64_t)fence_timeout_s * 1000, 1000);
	t->stop_timeout_ms = at_least((uint64_t)stop_timeout_s * 1000, 0);
	t->membership_ms = at_least(token + token * VMC_CONSENSUS_PERCENT / 100, 0);
	t->hello_deadline_ms = at_least(token * VMC_HELLO_DEADLINE_TOKENS, VMC_HELLO_DEADLINE_MS_MIN);
	t->daemon_grace_ms = at_least((uint64_t)t->hello_deadline_ms * 3, VMC_DAEMON_GRACE_MS_MIN);
	t->fence_run_ms = t->fence_timeout_ms;
	t->fence_term_grace_ms = VMC_FENCE_TERM_GRACE_MS;
	t->fence_retry_ms = VMC_FENCE_RETRY_MS;
	/* A turn: the pause before it, the agent's whole run and kill, a sync's worth of slack. */
	t->fence_turn_ms = at_least((uint64_t)t->fence_retry_ms + t->fence_run_ms + t->fence_term_grace_ms +
					    t->hello_deadline_ms,
				    0);
	t->vm_start_deadline_ms = VMC_VM_START_DEADLINE_MS;
	t->vm_exit_grace_ms = VMC_VM_EXIT_GRACE_MS;
	t->fs_check_deadline_ms = VMC_FS_CHECK_DEADLINE_MS;
	t->cpg_retry_first_ms = VMC_CPG_RETRY_FIRST_MS;
	t->cpg_retry_max_ms = VMC_CPG_RETRY_MAX_MS;
	t->lease_io_ms = at_least(io, 0);
	t->lease_renewal_ms = at_least(io * VMC_LEASE_RENEWAL_TS, 0);
	t->lease_kill_ms = at_least(io * VMC_LEASE_KILL_TS, 0);
	t->lease_kill_grace_ms = at_least(io * VMC_LEASE_KILL_GRACE_TS, 0);
	t->watchdog_ms = at_least(io * VMC_WATCHDOG_TS, 0);
	t->watchdog_pet_ms = at_least(io / 4 < VMC_WATCHDOG_PET_MS_MAX ? io / 4 : VMC_WATCHDOG_PET_MS_MAX, 1);
	t->lease_timeout_ms = at_least((uint64_t)t->lease_kill_ms + t->lease_kill_grace_ms + t->watchdog_ms +
					       io * VMC_LEASE_MARGIN_TS,
				       0);
}

bool vmc_lease_expired(const struct vmc_timeouts *t, uint64_t seen_ms, uint64_t now_ms)
{
	return now_ms >= seen_ms && now_ms - seen_ms >= t->lease_timeout_ms;
}

uint64_t vmc_lease_remaining_ms(const struct vmc_timeouts *t, uint64_t seen_ms, uint64_t now_ms)
{
	if (now_ms < seen_ms) {
		return t->lease_timeout_ms;
	}
	return now_ms - seen_ms >= t->lease_timeout_ms ? 0 : t->lease_timeout_ms - (now_ms - seen_ms);
}

bool vmc_lease_overdue(const struct vmc_timeouts *t, uint64_t renewed_ms, uint64_t now_ms)
{
	return now_ms < renewed_ms || now_ms - renewed_ms >= (uint64_t)t->lease_renewal_ms + t->lease_io_ms;
}

bool vmc_lease_must_kill(const struct vmc_timeouts *t, uint64_t renewed_ms, uint64_t now_ms)
{
	return now_ms < renewed_ms || now_ms - renewed_ms >= t->lease_kill_ms;
}

bool vmc_lease_may_pet(const struct vmc_timeouts *t, uint64_t renewed_ms, uint64_t now_ms)
{
	return now_ms >= renewed_ms && now_ms - renewed_ms < (uint64_t)t->lease_kill_ms + t->lease_kill_grace_ms;
}

int vmc_timeouts_check(const struct vmc_timeouts *t, char *why, size_t len)
{
	/* Each pair: the first must be shorter than the second, and why. */
	const struct {
		uint32_t shorter, longer;
		const char *rule;
	} rules[] = {
		{ t->membership_ms, t->hello_deadline_ms,
		  "a hello must be awaited longer than corosync takes to settle a ring" },
		{ t->hello_deadline_ms, t->daemon_grace_ms,
		  "a daemon gets longer to come back than a hello to arrive" },
		{ t->cpg_retry_max_ms, t->hello_deadline_ms,
		  "a retried CPG send must fit inside the hello deadline" },
		{ t->fence_term_grace_ms, t->fence_retry_ms,
		  "a killed fence agent is gone before the next attempt" },
		{ t->fs_check_deadline_ms, t->vm_start_deadline_ms,
		  "a file check must end before the start it precedes times out" },
		{ t->fence_run_ms, t->fence_turn_ms,
		  "a fencer's turn outlasts its agent's run, or a slow agent would lose its turn" },
		{ t->lease_io_ms, t->lease_renewal_ms,
		  "a lease renewal's I/O must end before the next renewal starts" },
		{ t->lease_renewal_ms + t->lease_io_ms, t->lease_kill_ms,
		  "one failed renewal must not kill the VMs" },
		{ 2 * t->watchdog_pet_ms, t->watchdog_ms,
		  "the watchdog must be petted at least twice in its timeout" },
		{ t->lease_kill_ms + t->lease_kill_grace_ms + t->watchdog_ms, t->lease_timeout_ms,
		  "a node whose renewals stop is reset by its watchdog before its lease expires" },
		/* A node cut off renews until it sees quorum lost, at most one
		 * interval after its last renewal, then kills or stops petting. */
		{ t->lease_renewal_ms + t->watchdog_pet_ms + t->watchdog_ms, t->lease_timeout_ms,
		  "a node cut off is reset by its watchdog before its lease expires" },
	};

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (rules[i].shorter >= rules[i].longer) {
			snprintf(why, len, "timeouts: %s (%u ms is not below %u ms)", rules[i].rule,
				 rules[i].shorter, rules[i].longer);
			return -EINVAL;
		}
	}
	return 0;
}
