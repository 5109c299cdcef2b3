/*
 * The nodes' records (node_admin.h). Never allocates: the table is fixed.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json_util.h"
#include "node_admin.h"

#define LOSS_WINDOW_S 3600

static const char *const mode_names[] = {
	[VMC_NODE_ACTIVE] = "active",
	[VMC_NODE_DRAINING] = "draining",
	[VMC_NODE_PAUSED] = "paused",
	[VMC_NODE_DRAIN_FAILED] = "drain-failed",
	[VMC_NODE_QUARANTINED] = "quarantined",
};

#define N_MODES (sizeof(mode_names) / sizeof(mode_names[0]))

const char *vmc_node_mode_to_str(enum vmc_node_mode m)
{
	return (size_t)m < N_MODES ? mode_names[m] : "unknown";
}

const struct vmc_node_admin *vmc_node_admin(const struct vmc_state *s, uint32_t node)
{
	for (size_t i = 0; i < s->n_admin; i++) {
		if (s->admin[i].node == node) {
			return &s->admin[i];
		}
	}
	return NULL;
}

struct vmc_node_admin *vmc_node_admin_edit(struct vmc_state *s, uint32_t node)
{
	size_t i = 0;

	while (i < s->n_admin && s->admin[i].node < node) {
		i++;
	}
	if (i < s->n_admin && s->admin[i].node == node) {
		return &s->admin[i];
	}
	if (s->n_admin == VMC_STATE_NODES_MAX) {
		return NULL;
	}
	memmove(&s->admin[i + 1], &s->admin[i], (s->n_admin - i) * sizeof(s->admin[0]));
	s->admin[i] = (struct vmc_node_admin){ .node = node, .mode = VMC_NODE_ACTIVE };
	s->n_admin++;
	return &s->admin[i];
}

void vmc_node_admin_tidy(struct vmc_state *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n_admin; i++) {
		const struct vmc_node_admin *a = &s->admin[i];
		if (a->mode != VMC_NODE_ACTIVE || a->lost || a->n_failures > 0 || a->back_s != 0 || a->shutdown) {
			s->admin[k++] = *a;
		}
	}
	s->n_admin = k;
}

enum vmc_node_mode vmc_node_mode(const struct vmc_state *s, uint32_t node)
{
	const struct vmc_node_admin *a = vmc_node_admin(s, node);

	return a != NULL ? a->mode : VMC_NODE_ACTIVE;
}

bool vmc_node_takes_groups(const struct vmc_state *s, uint32_t node)
{
	return vmc_node_mode(s, node) == VMC_NODE_ACTIVE;
}

size_t vmc_node_admin_recent_losses(const struct vmc_node_admin *a, uint64_t now_s)
{
	size_t n = 0;

	for (size_t i = 0; a != NULL && i < a->n_failures; i++) {
		if (a->failures[i] <= now_s && now_s - a->failures[i] < LOSS_WINDOW_S) {
			n++;
		}
	}
	return n;
}

bool vmc_node_admin_lost(struct vmc_state *s, uint32_t node, uint64_t at_s)
{
	struct vmc_node_admin *a = vmc_node_admin_edit(s, node);

	if (a == NULL) {
		return false;
	}
	if (a->n_failures == VMC_NODE_FAILURES_KEPT) {
		memmove(&a->failures[0], &a->failures[1], (VMC_NODE_FAILURES_KEPT - 1) * sizeof(a->failures[0]));
		a->n_failures--;
	}
	a->failures[a->n_failures++] = at_s;
	a->lost = true;
	if (s->settings.quarantine_threshold == 0 || a->mode == VMC_NODE_QUARANTINED ||
	    vmc_node_admin_recent_losses(a, at_s) < s->settings.quarantine_threshold) {
		return false;
	}
	/* A drain it was in is over: what ran there failed over with it. */
	a->mode = VMC_NODE_QUARANTINED;
	a->since_s = at_s;
	a->until_s = at_s + s->settings.quarantine_duration_s;
	a->force = false;
	a->drain_target = 0;
	return true;
}

void vmc_node_admin_back(struct vmc_state *s, uint32_t node, uint64_t at_s)
{
	struct vmc_node_admin *a = (struct vmc_node_admin *)vmc_node_admin(s, node);

	if (a != NULL && a->lost) {
		a->lost = false;
		a->back_s = at_s;
	}
}

json_object *vmc_node_admin_to_json(const struct vmc_state *s)
{
	json_object *arr;

	if (s->n_admin == 0) {
		return NULL;
	}
	arr = json_object_new_array();
	for (size_t i = 0; i < s->n_admin; i++) {
		const struct vmc_node_admin *a = &s->admin[i];
		json_object *o = json_object_new_object(), *f = json_object_new_array();
		json_object_object_add(o, "node", json_object_new_int64(a->node));
		json_object_object_add(o, "mode", json_object_new_string(vmc_node_mode_to_str(a->mode)));
		json_object_object_add(o, "force", json_object_new_boolean(a->force));
		/* Absent while false, as before shutdowns existed. */
		if (a->stop) {
			json_object_object_add(o, "stop", json_object_new_boolean(true));
		}
		if (a->freeze) {
			json_object_object_add(o, "freeze", json_object_new_boolean(true));
		}
		if (a->shutdown) {
			json_object_object_add(o, "shutdown", json_object_new_boolean(true));
			json_object_object_add(o, "incarnation", json_object_new_uint64(a->incarnation));
			json_object_object_add(o, "resume_on_return", json_object_new_boolean(a->resume_on_return));
		}
		json_object_object_add(o, "drain_target", json_object_new_int64(a->drain_target));
		json_object_object_add(o, "since_s", json_object_new_uint64(a->since_s));
		json_object_object_add(o, "until_s", json_object_new_uint64(a->until_s));
		json_object_object_add(o, "lost", json_object_new_boolean(a->lost));
		json_object_object_add(o, "back_s", json_object_new_uint64(a->back_s));
		for (size_t k = 0; k < a->n_failures; k++) {
			json_object_array_add(f, json_object_new_uint64(a->failures[k]));
		}
		json_object_object_add(o, "failures", f);
		json_object_array_add(arr, o);
	}
	return arr;
}

static int mode_parse(const char *str, enum vmc_node_mode *out)
{
	for (size_t i = 0; str != NULL && i < N_MODES; i++) {
		if (strcmp(str, mode_names[i]) == 0) {
			*out = (enum vmc_node_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int one_from_json(json_object *o, struct vmc_node_admin *a)
{
	json_object *f = vmc_json_array(o, "failures");

	*a = (struct vmc_node_admin){ 0 };
	if (!vmc_json_u32(o, "node", &a->node) || a->node == 0 || mode_parse(vmc_json_str(o, "mode"), &a->mode) != 0 ||
	    !vmc_json_bool(o, "force", &a->force) || !vmc_json_u32(o, "drain_target", &a->drain_target) ||
	    !vmc_json_u64(o, "since_s", &a->since_s) || !vmc_json_u64(o, "until_s", &a->until_s) ||
	    !vmc_json_bool(o, "lost", &a->lost) || !vmc_json_u64(o, "back_s", &a->back_s) || f == NULL ||
	    json_object_array_length(f) > VMC_NODE_FAILURES_KEPT) {
		return -EINVAL;
	}
	if ((json_object_object_get_ex(o, "stop", NULL) && !vmc_json_bool(o, "stop", &a->stop)) ||
	    (json_object_object_get_ex(o, "freeze", NULL) && !vmc_json_bool(o, "freeze", &a->freeze)) ||
	    (json_object_object_get_ex(o, "shutdown", NULL) &&
	     (!vmc_json_bool(o, "shutdown", &a->shutdown) || !vmc_json_u64(o, "incarnation", &a->incarnation) ||
	      !vmc_json_bool(o, "resume_on_return", &a->resume_on_return)))) {
		return -EINVAL;
	}
	for (size_t k = 0; k < json_object_array_length(f); k++) {
		json_object *t = json_object_array_get_idx(f, k);
		if (!json_object_is_type(t, json_type_int) || json_object_get_int64(t) < 0) {
			return -EINVAL;
		}
		a->failures[a->n_failures++] = json_object_get_uint64(t);
	}
	return 0;
}

int vmc_node_admin_from_json(json_object *obj, struct vmc_state *s, char *err, size_t errlen)
{
	json_object *arr;

	s->n_admin = 0;
	if (!json_object_object_get_ex(obj, "node_admin", &arr)) {
		return 0;
	}
	if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > VMC_STATE_NODES_MAX) {
		snprintf(err, errlen, "snapshot: node_admin is not an array of at most %d records", VMC_STATE_NODES_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct vmc_node_admin a;
		struct vmc_node_admin *slot;
		if (one_from_json(json_object_array_get_idx(arr, i), &a) != 0 ||
		    vmc_node_admin(s, a.node) != NULL) {
			snprintf(err, errlen,
				 "snapshot: node_admin[%zu] is not {node, mode, force, drain_target, since_s, until_s, lost, "
				 "back_s, failures}, once per node", i);
			return -EINVAL;
		}
		slot = vmc_node_admin_edit(s, a.node);
		*slot = a;
	}
	return 0;
}
