/*
 * Dispatch of change requests (apply.h): the message's row in the type
 * table (msg_types.h), its typed body, then the apply function. Every
 * replica runs this at the same point of the total order with the same
 * state, so every verdict is the same on all nodes. Nothing here may look
 * at the local machine.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apply.h"
#include "drain.h"
#include "image_locks.h"
#include "migration.h"
#include "msg_types.h"
#include "vmc_errors.h"

/* The assignments of a group-set body: strings only. */
int vmc_set_assignments(json_object *set, const char **out, size_t max, size_t *n, char *detail,
			size_t len)
{
	*n = json_object_array_length(set);
	if (*n > max) {
		snprintf(detail, len, "at most %zu assignments at once", max);
		return -VMC_E_INVALID;
	}
	for (size_t i = 0; i < *n; i++) {
		json_object *item = json_object_array_get_idx(set, i);
		if (!json_object_is_type(item, json_type_string)) {
			snprintf(detail, len, "assignment %zu is not a KEY=VALUE string", i + 1);
			return -VMC_E_INVALID;
		}
		out[i] = json_object_get_string(item);
	}
	return 0;
}

int vmc_apply_need_version(const struct vmc_apply_ctx *ctx, uint16_t need, const char *what, char *detail,
			   size_t len)
{
	uint16_t v = ctx->version != 0 ? ctx->version : 1;

	if (v >= need) {
		return 0;
	}
	snprintf(detail, len, "%s protocol %u; a member of this view speaks %u (upgrade it)", what, need, v);
	return -VMC_E_VERSION;
}

bool vmc_apply_by_pacemaker(const struct vmc_apply_ctx *ctx, const struct vmc_group_def *def)
{
	return vmc_group_def_by_pacemaker(def) && VMC_PROTO_HAS_PACEMAKER(ctx->version);
}

bool vmc_apply_in_view(const struct vmc_apply_ctx *ctx, uint32_t id)
{
	for (size_t i = 0; ctx != NULL && i < ctx->n_members; i++) {
		if (ctx->members[i] == id) {
			return true;
		}
	}
	return false;
}

int vmc_state_apply_request(struct vmc_state *s, const struct vmc_msg *m, char *detail,
			    size_t detail_len)
{
	struct vmc_apply_ctx ctx = { .sender = m->sender, .version = m->version };

	return vmc_state_apply(s, &ctx, m, detail, detail_len);
}

int vmc_state_apply(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_msg *m,
		    char *detail, size_t detail_len)
{
	const struct vmc_msg_type_info *t = vmc_msg_type_info(m->type);
	union vmc_body body;
	int rc;

	detail[0] = '\0';
	if (t == NULL || t->apply == NULL) {
		snprintf(detail, detail_len, "message type %u is not a change request", m->type);
		return -VMC_E_PROTOCOL;
	}
	memset(&body, 0, sizeof(body));
	rc = t->parse(m->body, &body, detail, detail_len);
	if (rc == 0) {
		rc = vmc_locks_reserve(s);
	}
	if (rc == 0) {
		rc = t->apply(s, ctx, &body, detail, detail_len);
	}
	if (rc == 0) {
		/* A slot it freed starts the next queued move (journal replay has the view too). */
		if (ctx->n_members > 0) {
			vmc_migrations_promote(s, ctx);
			/* and a drain asks for the next moves of its node, or settles. */
			vmc_drains_progress(s, ctx);
		}
		/* The image locks follow what the change did to the groups. */
		vmc_locks_reconcile(s);
		s->config_version++;
		/* From protocol 3 the state remembers what it applied, so an origin
		 * caught in a membership change can tell (replica.h). */
		if (VMC_PROTO_HAS_CONFIRM(ctx->version)) {
			vmc_state_recent_add(s, ctx->sender, m->request_id);
		}
	} else if (detail[0] == '\0') {
		snprintf(detail, detail_len, "%s", vmc_strerror(rc));
	}
	return rc;
}
