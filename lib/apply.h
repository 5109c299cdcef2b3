/*
 * Applying change requests to a state: what every replica runs at the
 * same point of the total order (replica.c), what journal replay runs
 * again, and what the unit tests drive directly.
 *
 * The rule of the apply path: a verdict (applied, or refused with this
 * reason) is replicated — every member must reach the same one. So a
 * handler may refuse only for reasons every member sees alike: the
 * state, the message, the view. A failure of this node alone — out of
 * memory — is never a verdict: a handler allocates everything it needs
 * before it changes the state and returns -ENOMEM untouched, and the
 * replica then stops taking changes and has itself resynced
 * (replica.h, "tainted"), so its copy cannot silently diverge.
 */
#ifndef VMC_APPLY_H
#define VMC_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "state.h"

/* What a change may depend on besides the state: who sent it, who is in the view. */
struct vmc_apply_ctx {
	uint32_t sender;
	uint16_t version;        /* protocol version the message was written in; 0 reads as 1 */
	const uint32_t *members; /* the view it was delivered in; placement's "up" nodes */
	size_t n_members;
};

/*
 * Does the view speak protocol need? 0, or -VMC_E_VERSION with "WHAT
 * protocol N; a member of this view speaks M (upgrade it)" in detail
 * (what: "migration needs", say).
 */
int vmc_apply_need_version(const struct vmc_apply_ctx *ctx, uint16_t need, const char *what, char *detail,
			   size_t len);

/*
 * Does pacemaker decide where def's group runs? Its manager is pacemaker,
 * and the message speaks protocol 7: every copy applies a protocol-6
 * message by the rules of 6 (such a group is then recovered like any
 * other, except after a lost node), so mixed versions never diverge.
 */
bool vmc_apply_by_pacemaker(const struct vmc_apply_ctx *ctx, const struct vmc_group_def *def);

/* Is node id a member of the view the change was delivered in? */
bool vmc_apply_in_view(const struct vmc_apply_ctx *ctx, uint32_t id);

/*
 * Apply one change request to a state (pure). Returns 0 and bumps
 * config_version, a negative verdict with a one-line reason in detail,
 * or -ENOMEM (not a verdict, see above).
 */
int vmc_state_apply(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_msg *m,
		    char *detail, size_t detail_len);
/* The same with an empty view (changes that place nothing). */
int vmc_state_apply_request(struct vmc_state *s, const struct vmc_msg *m, char *detail,
			    size_t detail_len);
/* The KEY=VALUE strings of a group-set body, refusing anything but strings. */
int vmc_set_assignments(json_object *set, const char **out, size_t max, size_t *n, char *detail,
			size_t len);

#endif
