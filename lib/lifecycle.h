/*
 * The life of a VM group in the replicated state, driven by CPG messages:
 *
 *            start (placed)              running (owner)
 *   offline ---------------> starting -----------------> online
 *      ^                      |   ^                        |
 *      | stopped (owner)      |   | crashed: restart here  | stop
 *      |                      |   | or fail over           v
 *      +------------------ stopping <----------------- (any running)
 *
 *   starting/online --crashed, start_failed--> failed (past the threshold;
 *   lib/health.h), kept until an operator starts it again.
 *
 * Each handler decides at its place in the total order, from the state and
 * the view it was delivered in, so every node reaches the same outcome.
 * The owner node acts on what the state says (starts or stops its QEMU)
 * and reports back with GROUP_REPORT; a report from a node that is not
 * the owner is stale and refused.
 */
#ifndef VMC_LIFECYCLE_H
#define VMC_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "replica.h"
#include "state.h"

/* What an owner reports about its VM (GROUP_REPORT "event"). */
#define VMC_REPORT_RUNNING "running"
#define VMC_REPORT_STOPPED "stopped"
#define VMC_REPORT_CRASHED "crashed"
#define VMC_REPORT_START_FAILED "start_failed"

int vmc_apply_node_facts(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			 char *detail, size_t len);
int vmc_apply_group_start(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			  char *detail, size_t len);
int vmc_apply_group_stop(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			 char *detail, size_t len);
int vmc_apply_group_report(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			   char *detail, size_t len);
/*
 * A lost node is proven dead (fenced, or fence_method none): its groups are
 * recovered on the nodes of this view, high priority first (placement.h).
 * Refused while the node is a member of the view again.
 */
int vmc_apply_node_fenced(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			  char *detail, size_t len);
/* Does any group still run, or is about to, on this node? (fencing is needed) */
bool vmc_state_node_has_groups(const struct vmc_state *s, uint32_t node);

#endif
