/*
 * Restart, fail over or give up (rules in health.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "health.h"

const char *vmc_health_action_to_str(enum vmc_health_action a)
{
	switch (a) {
	case VMC_HEALTH_RESTART_HERE:
		return "restart";
	case VMC_HEALTH_FAIL_OVER:
		return "fail-over";
	case VMC_HEALTH_GIVE_UP:
		return "give-up";
	}
	return "unknown";
}

static bool in_window(uint64_t at_s, uint64_t now_s, uint32_t period_s)
{
	return at_s <= now_s && now_s - at_s < period_s;
}

enum vmc_health_action vmc_health_on_failure(const struct vmc_group_def *def,
					     const struct vmc_failure *history, size_t n,
					     uint32_t node, uint64_t now_s, char *why, size_t len)
{
	uint32_t period = def->failover_period_s;
	size_t recent = 1; /* this one */
	bool here_before = false;

	for (size_t i = 0; i < n; i++) {
		if (!in_window(history[i].at_s, now_s, period)) {
			continue;
		}
		recent++;
		if (history[i].node == node) {
			here_before = true;
		}
	}
	if (recent > def->failover_max_failures) {
		snprintf(why, len,
			 "failed %zu times within %u s, more than failover.max_failures (%u): left failed "
			 "until an operator starts it",
			 recent, period, def->failover_max_failures);
		return VMC_HEALTH_GIVE_UP;
	}
	if (here_before) {
		snprintf(why, len, "failed again on the same node within %u s: failing over (%zu of %u failures)",
			 period, recent, def->failover_max_failures);
		return VMC_HEALTH_FAIL_OVER;
	}
	snprintf(why, len, "failed: restarting on the same node (%zu of %u failures within %u s)",
		 recent, def->failover_max_failures, period);
	return VMC_HEALTH_RESTART_HERE;
}

void vmc_health_record(struct vmc_failure *history, size_t *n, uint32_t node, uint64_t now_s)
{
	if (*n == VMC_FAILURES_KEPT) {
		size_t oldest = 0;
		for (size_t i = 1; i < *n; i++) {
			if (history[i].at_s < history[oldest].at_s) {
				oldest = i;
			}
		}
		history[oldest] = history[--*n];
	}
	history[*n].at_s = now_s;
	history[*n].node = node;
	(*n)++;
}
