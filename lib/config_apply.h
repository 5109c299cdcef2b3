/*
 * Changes to the cluster's configuration: VM definitions added, removed
 * and changed, cluster-wide settings. Applied from typed bodies
 * (msg_types.h) under the rule of apply.h.
 */
#ifndef VMC_CONFIG_APPLY_H
#define VMC_CONFIG_APPLY_H

#include "msg_types.h"

int vmc_apply_group_add(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			char *detail, size_t len);
int vmc_apply_group_remove(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			   const union vmc_body *b, char *detail, size_t len);
int vmc_apply_group_set(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			char *detail, size_t len);
int vmc_apply_settings_set(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			   const union vmc_body *b, char *detail, size_t len);

#endif
