/*
 * Fencing of lost nodes that own VMs: carries out what the fencing policy
 * (lib/fence_policy.h) decides — runs the fence agent or stonith_admin,
 * kills it past its deadline, multicasts NODE_FENCED or FENCE_FAILED —
 * and keeps what this node knows of its runs.
 */
#ifndef VMCD_FENCE_H
#define VMCD_FENCE_H

#include "context.h"
#include "views.h"

struct vmcd_fence_hooks {
	void (*changed)(struct vmcd *d); /* an agent ended: decide again */
};

int vmcd_fence_init(struct vmcd *d, const struct vmcd_fence_hooks *hooks);
void vmcd_fence_fini(struct vmcd *d);
/* Decide and act; also runs from its own timer while anything is pending. */
void vmcd_fence_check(struct vmcd *d);
/* A change this module sent was decided (rc 0: applied). */
void vmcd_fence_outcome(struct vmcd *d, uint64_t request_id, int rc, const char *detail);
/* What fencing waits for now, for status. */
size_t vmcd_fence_waits(const struct vmcd *d, struct vmc_wait *out, size_t max);
/*
 * May an operator confirm node dead now? 0, or -VMC_E_BUSY with why when
 * it is a member (of the view or of corosync) or owns nothing, -VMC_E_RETRY
 * between syncs.
 */
int vmcd_fence_confirm_check(struct vmcd *d, uint32_t node, char *why, size_t len);
/*
 * An operator confirms that node is dead (clusterctl node confirm-fenced):
 * multicast NODE_FENCED with method manual, after vmcd_fence_confirm_check.
 * The request id (> 0) or -errno.
 */
int64_t vmcd_fence_confirm(struct vmcd *d, uint32_t node, const char *by, uint64_t request_id,
			   char *why, size_t len);

#endif
