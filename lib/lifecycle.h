/*
 * The life of VM groups in the replicated state, driven by CPG messages:
 * operators start and stop groups, owners report what their QEMUs do,
 * fencers report lost nodes proven dead (or an attempt that failed).
 * Every state change goes through the group table (group_fsm.h, which has
 * the diagram); every handler decides at its place in the total order,
 * from the state and the view it was delivered in, so every node reaches
 * the same outcome, and follows the rule of apply.h (allocate first, an
 * allocation failure is not a verdict).
 *
 * The owner node acts on what the state says (starts or stops its QEMU)
 * and reports back with GROUP_REPORT naming the start attempt it is
 * about; a report from a node that does not own the group, or about
 * another attempt, is stale and refused.
 */
#ifndef VMC_LIFECYCLE_H
#define VMC_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>

#include "msg_types.h"
#include "placement.h"
#include "state.h"

/* What an owner reports about its VM (GROUP_REPORT "event"). */
#define VMC_REPORT_RUNNING "running"
#define VMC_REPORT_STOPPED "stopped"
#define VMC_REPORT_CRASHED "crashed"
#define VMC_REPORT_START_FAILED "start_failed"
/* Since protocol 2: killed by its own node on losing quorum (not a failure). */
#define VMC_REPORT_SELF_FENCED "self_fenced"
/* Since protocol 4: killed because a volume it uses failed on its node (not a failure). */
#define VMC_REPORT_VOLUME_LOST "volume_lost"

/* What NODE_FENCED's "method" says when an operator confirmed it by hand. */
#define VMC_FENCED_MANUAL "manual"

int vmc_apply_node_facts(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			 char *detail, size_t len);
int vmc_apply_group_start(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			  char *detail, size_t len);
int vmc_apply_group_stop(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			 char *detail, size_t len);
int vmc_apply_group_report(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			   const union vmc_body *b, char *detail, size_t len);
/*
 * A lost node is proven dead (fenced, fence_method none, or confirmed by
 * an operator): its groups are recovered on the nodes of this view, high
 * priority first (placement.h). Refused while the node is a member of the
 * view again and, from protocol 2, when it was decided in another epoch
 * than the current one or lacks the running VMs of every member.
 */
int vmc_apply_node_fenced(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			  const union vmc_body *b, char *detail, size_t len);
/* A fencing attempt failed: the next one is the next member's (fence_policy.h). */
int vmc_apply_fence_failed(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			   const union vmc_body *b, char *detail, size_t len);
/*
 * Where g would start now by placement (placement.h), never on node
 * exclude: 0 with the verdict, or -ENOMEM. Moves asked for count at
 * their targets.
 */
int vmc_group_place(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
		    uint32_t exclude, enum vmc_place_verdict *verdict, uint32_t *node, char *why, size_t why_len);
/* May g start on node now (placement's hard rules)? 0 with the verdict, or -ENOMEM. */
int vmc_group_place_on(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
		       uint32_t node, enum vmc_place_verdict *verdict, char *why, size_t why_len);
/* Does any group still run, or is about to, on this node? (fencing is needed) */
bool vmc_state_node_has_groups(const struct vmc_state *s, uint32_t node);

#endif
