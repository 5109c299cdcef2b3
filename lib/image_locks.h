/*
 * Image locks in the replicated state (volume.h says what they mean).
 *
 * The locks follow the groups: after every applied change, reconcile
 * makes them say what the groups do. A group that is starting, online,
 * stopping or migrating holds a lock on every image of its definition
 * that lies on a volume (disks marked local have none), held by its
 * owner (the target of its migration from the switchover on, migration.h);
 * once it is offline or failed it holds none. So a lock moves in
 * the same CPG message that moves its group (a recovery, a failover, a
 * migration's switchover), and a lost node keeps its locks until it is
 * proven dead, since its groups keep their owner until then.
 *
 * Exclusion is checked where a group enters `starting` by an operator's
 * start, and where an operator redefines a running group: an image held
 * by another group refuses the change, naming the holder. Reconcile never
 * takes an image another group holds; the owner's daemon starts a QEMU
 * only when every lock its images need is its own (vmc_locks_held_by).
 *
 * Reconcile does not allocate: vmc_locks_reserve, called before a change
 * is applied, makes room for every lock it could add (the apply rule,
 * apply.h).
 */
#ifndef VMC_IMAGE_LOCKS_H
#define VMC_IMAGE_LOCKS_H

#include <stdbool.h>
#include <stddef.h>

#include "state.h"

/* Room on every volume for the locks any one change could lead to. -ENOMEM, or 0. */
int vmc_locks_reserve(struct vmc_state *s);
void vmc_locks_reconcile(struct vmc_state *s);

/*
 * The lock another group than `self` holds on one of def's images, or
 * NULL. *on gets its volume.
 */
const struct vmc_image_lock *vmc_locks_conflict(const struct vmc_state *s, const struct vmc_group_def *def,
						const char *self, const struct vmc_volume **on);
/* "image /v/a.img on volume v1 is locked by vm db1 on node2" */
void vmc_locks_describe(const struct vmc_state *s, const struct vmc_image_lock *l, const struct vmc_volume *v,
			char *buf, size_t len);

/*
 * Does node hold, for group g at its present start attempt, the lock of
 * every image of g that lies on a volume? (what an owner checks before
 * it lets QEMU open a disk)
 */
bool vmc_locks_held_by(const struct vmc_state *s, const struct vmc_group *g, uint32_t node);

/* The first non-local disk of def on no volume, or NULL. */
const struct vmc_disk *vmc_locks_disk_off_volumes(const struct vmc_state *s, const struct vmc_group_def *def);

/* Who holds g's locks: a migration's target from its switchover on, else the owner. */
uint32_t vmc_group_lock_holder(const struct vmc_group *g);

/* Is the group in a state that holds locks? */
bool vmc_group_holds_locks(const struct vmc_group *g);

#endif
