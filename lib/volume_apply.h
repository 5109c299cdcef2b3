/*
 * Volume changes in the apply path (apply.h's rule holds): operators add,
 * remove and move volumes; nodes report what their lease renewals say
 * about each (VOLUME_HEALTH), from which the coordinator follows
 * (volume.h). All from protocol 4: a view with an older member refuses
 * them, since that member would not apply them.
 */
#ifndef VMC_VOLUME_APPLY_H
#define VMC_VOLUME_APPLY_H

#include <stddef.h>

#include "msg_types.h"
#include "state.h"

int vmc_apply_volume_add(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			 char *detail, size_t len);
/* Refused while a VM's definition has a disk on it. */
int vmc_apply_volume_remove(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			    char *detail, size_t len);
int vmc_apply_volume_move(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			  char *detail, size_t len);
int vmc_apply_volume_health(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			    char *detail, size_t len);

/* Every volume's coordinator chosen again for this view (after a node was proven dead). */
void vmc_volumes_coordinators_update(struct vmc_state *s, const struct vmc_apply_ctx *ctx);
/* Does group use volume v (a disk on it, not local)? */
bool vmc_group_uses_volume(const struct vmc_group_def *def, const struct vmc_volume *v);

#endif
