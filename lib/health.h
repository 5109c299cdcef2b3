/*
 * What to do when a VM fails (its QEMU dies unasked, or will not start):
 * restart it where it was, fail it over to another node, or give up and
 * leave it failed. Pure policy over the group's failure history, so every
 * node reaches the same verdict; times come from the message that reported
 * the failure, never from the local clock.
 *
 * The rule (like a Windows failover cluster's restart and failover
 * thresholds): count the failures inside the last failover.period_s,
 * this one included.
 *   - more than failover.max_failures: give up, the group is left failed
 *     with the reason, until an operator starts it again;
 *   - else, if it already failed on this node inside the period: fail over
 *     (placement excludes this node);
 *   - else: restart it on the same node.
 */
#ifndef VMC_HEALTH_H
#define VMC_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "group_def.h"

#define VMC_FAILURES_KEPT 16

struct vmc_failure {
	uint64_t at_s;   /* seconds since the epoch, as the reporting node saw it */
	uint32_t node;
};

enum vmc_health_action {
	VMC_HEALTH_RESTART_HERE = 0,
	VMC_HEALTH_FAIL_OVER,
	VMC_HEALTH_GIVE_UP,
};

/*
 * history holds earlier failures (any order, older ones are ignored);
 * the new failure is (node, now_s). why gets one line for `vm show`.
 */
enum vmc_health_action vmc_health_on_failure(const struct vmc_group_def *def,
					     const struct vmc_failure *history, size_t n,
					     uint32_t node, uint64_t now_s, char *why, size_t len);

/* Adds a failure, dropping the oldest when VMC_FAILURES_KEPT are held. */
void vmc_health_record(struct vmc_failure *history, size_t *n, uint32_t node, uint64_t now_s);

const char *vmc_health_action_to_str(enum vmc_health_action a);

#endif
