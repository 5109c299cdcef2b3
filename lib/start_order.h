/*
 * Start order (a group's start_after, group_def.h): a group starts only
 * once the groups it lists are online, or once it has waited
 * start_after_timeout_s for them — at a cluster start, in a recovery,
 * after a failover, whenever it enters starting. The owner holds the
 * start (local_policy.h); the graph may have no cycle, checked when a
 * definition is added or changed, against every other group's.
 */
#ifndef VMC_START_ORDER_H
#define VMC_START_ORDER_H

#include <stdbool.h>
#include <stddef.h>

#include "group_def.h"
#include "state.h"

/*
 * Would def (new, or replacing the group of its name) close a cycle of
 * start_after? 0, or -VMC_E_INVALID with the cycle in why ("web -> db -> web").
 */
int vmc_start_order_check(const struct vmc_state *s, const struct vmc_group_def *def, char *why, size_t len);

/*
 * The group g waits for now, or NULL: one it lists that is wanted
 * started and is neither online (or moving) nor failed. A name no
 * group has is not waited for.
 */
const struct vmc_group *vmc_start_order_blocker(const struct vmc_state *s, const struct vmc_group *g);

#endif
