/*
 * The table of message types and the parsers of their bodies (msg_types.h).
 * A parser refuses with -VMC_E_PROTOCOL and names the field; a body it
 * accepts has every required field with its type and range.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "config_apply.h"
#include "drain.h"
#include "json_util.h"
#include "lifecycle.h"
#include "migration.h"
#include "msg_types.h"
#include "vmc_errors.h"
#include "volume_apply.h"

static int need_name(json_object *body, const char *what, const char **out, char *detail, size_t len)
{
	*out = vmc_json_str(body, "name");
	if (*out == NULL) {
		snprintf(detail, len, "%s without a name", what);
		return -VMC_E_PROTOCOL;
	}
	return 0;
}

/* An optional non-negative at_s. */
static int optional_at(json_object *body, const char *what, uint64_t *out, char *detail, size_t len)
{
	int64_t at = 0;

	if (json_object_object_get_ex(body, "at_s", NULL) && (!vmc_json_int64(body, "at_s", &at) || at < 0)) {
		snprintf(detail, len, "%s with a bad at_s", what);
		return -VMC_E_PROTOCOL;
	}
	*out = (uint64_t)at;
	return 0;
}

static int parse_group_add(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	if (!json_object_object_get_ex(body, "definition", &out->group_add.definition)) {
		snprintf(detail, len, "group-add without a definition");
		return -VMC_E_PROTOCOL;
	}
	return 0;
}

static int parse_name(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	out->name.node = 0;
	if (json_object_object_get_ex(body, "node", NULL) && (!vmc_json_u32(body, "node", &out->name.node) ||
							       out->name.node == 0)) {
		snprintf(detail, len, "a group change with a node that is not a node id");
		return -VMC_E_PROTOCOL;
	}
	return need_name(body, "a group change", &out->name.name, detail, len);
}

static int parse_set(json_object *body, struct vmc_body_set *out, const char *what, char *detail,
		     size_t len)
{
	json_object *set = vmc_json_array(body, "set");

	if (set == NULL) {
		snprintf(detail, len, "%s without set", what);
		return -VMC_E_PROTOCOL;
	}
	return vmc_set_assignments(set, out->assignments, VMC_SET_MAX, &out->n, detail, len);
}

static int parse_group_set(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	int rc = need_name(body, "group-set", &out->set.name, detail, len);

	return rc != 0 ? rc : parse_set(body, &out->set, "group-set", detail, len);
}

static int parse_settings_set(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	out->set.name = NULL;
	return parse_set(body, &out->set, "settings-set", detail, len);
}

static int parse_node_facts(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	struct vmc_body_node_facts *f = &out->node_facts;

	f->name = vmc_json_str(body, "name");
	if (f->name == NULL || !vmc_json_u32(body, "mem_mib", &f->mem_mib)) {
		snprintf(detail, len, "node-facts without a sender, a valid name and mem_mib");
		return -VMC_E_PROTOCOL;
	}
	f->watchdog = false;
	if (json_object_object_get_ex(body, "watchdog", NULL) && !vmc_json_bool(body, "watchdog", &f->watchdog)) {
		snprintf(detail, len, "node-facts with a watchdog that is not true or false");
		return -VMC_E_PROTOCOL;
	}
	f->migration_addr = vmc_json_str(body, "migration_addr");
	f->cpu_vendor = vmc_json_str(body, "cpu_vendor");
	f->qemu_version = vmc_json_str(body, "qemu_version");
	f->accel = vmc_json_str(body, "accel");
	f->cpu_models = vmc_json_str(body, "cpu_models");
	if (json_object_object_get_ex(body, "incarnation", NULL) && !vmc_json_u64(body, "incarnation", &f->incarnation)) {
		snprintf(detail, len, "node-facts with an incarnation that is not a number");
		return -VMC_E_PROTOCOL;
	}
	return optional_at(body, "node-facts", &f->at_s, detail, len);
}

static int parse_volume(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	struct vmc_body_volume *v = &out->volume;
	int rc = need_name(body, "a volume change", &v->name, detail, len);

	v->path = vmc_json_str(body, "path");
	v->node = vmc_json_str(body, "node");
	if (rc == 0 && (json_object_object_get_ex(body, "path", NULL) != (v->path != NULL) ||
			json_object_object_get_ex(body, "node", NULL) != (v->node != NULL))) {
		snprintf(detail, len, "a volume change whose path or node is not a string");
		return -VMC_E_PROTOCOL;
	}
	return rc;
}

static int parse_volume_add(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	int rc = parse_volume(body, out, detail, len);

	if (rc == 0 && out->volume.path == NULL) {
		snprintf(detail, len, "volume-add without a path");
		return -VMC_E_PROTOCOL;
	}
	return rc;
}

static int parse_volume_move(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	int rc = parse_volume(body, out, detail, len);

	if (rc == 0 && out->volume.node == NULL) {
		snprintf(detail, len, "volume-move without a node");
		return -VMC_E_PROTOCOL;
	}
	return rc;
}

static int parse_volume_health(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	struct vmc_body_volume_health *h = &out->volume_health;
	int64_t err, at;
	int rc = need_name(body, "volume-health", &h->name, detail, len);

	if (rc != 0) {
		return rc;
	}
	h->health = vmc_json_str(body, "health");
	h->detail = vmc_json_str(body, "detail") ? vmc_json_str(body, "detail") : "";
	if (h->health == NULL || !vmc_json_int64(body, "errno", &err) || !vmc_json_int64(body, "at_s", &at) ||
	    err < 0 || err > 4095 || at < 0) {
		snprintf(detail, len, "volume-health without health, errno (0-4095) or at_s");
		return -VMC_E_PROTOCOL;
	}
	h->err = (int32_t)err;
	h->at_s = (uint64_t)at;
	return 0;
}

static int parse_group_report(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	struct vmc_body_group_report *r = &out->report;
	int64_t at;
	int rc = need_name(body, "a group change", &r->name, detail, len);

	if (rc != 0) {
		return rc;
	}
	r->event = vmc_json_str(body, "event");
	if (r->event == NULL || !vmc_json_int64(body, "at_s", &at)) {
		snprintf(detail, len, "group-report without event or at_s");
		return -VMC_E_PROTOCOL;
	}
	if (at < 0) {
		snprintf(detail, len, "group-report with a negative at_s");
		return -VMC_E_PROTOCOL;
	}
	r->at_s = (uint64_t)at;
	r->reason = vmc_json_str(body, "reason") ? vmc_json_str(body, "reason") : "";
	r->has_attempt = json_object_object_get_ex(body, "attempt", NULL);
	if (r->has_attempt && !vmc_json_u32(body, "attempt", &r->attempt)) {
		snprintf(detail, len, "group-report with an attempt that is not a counter");
		return -VMC_E_PROTOCOL;
	}
	return 0;
}

static int parse_node_fenced(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	struct vmc_body_node_fenced *f = &out->fenced;

	if (!vmc_json_u32(body, "node", &f->node) || f->node == 0) {
		snprintf(detail, len, "node-fenced without a node");
		return -VMC_E_PROTOCOL;
	}
	f->method = vmc_json_str(body, "method") ? vmc_json_str(body, "method") : "";
	f->has_epoch = json_object_object_get_ex(body, "epoch", NULL);
	if (f->has_epoch && !vmc_json_u64(body, "epoch", &f->epoch)) {
		snprintf(detail, len, "node-fenced with an epoch that is not a counter");
		return -VMC_E_PROTOCOL;
	}
	f->reports = vmc_json_array(body, "reports");
	f->by = vmc_json_str(body, "by");
	return optional_at(body, "node-fenced", &f->at_s, detail, len);
}

static int parse_fence_failed(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	struct vmc_body_fence_failed *f = &out->fence_failed;

	f->method = vmc_json_str(body, "method");
	f->error = vmc_json_str(body, "error");
	if (!vmc_json_u32(body, "node", &f->node) || f->node == 0 ||
	    !vmc_json_u32(body, "attempt", &f->attempt) || f->method == NULL || f->error == NULL) {
		snprintf(detail, len, "fence-failed without node, attempt, method or error");
		return -VMC_E_PROTOCOL;
	}
	return 0;
}

static int parse_migrate(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	struct vmc_body_migrate *m = &out->migrate;
	const char *mode = vmc_json_str(body, "mode");
	int64_t at = 0;

	m->name = vmc_json_str(body, "name");
	m->id = vmc_json_str(body, "id");
	if (m->name == NULL || m->id == NULL || strlen(m->id) != VMC_MIG_ID_MAX) {
		snprintf(detail, len, "migrate message without a name or a 32-digit id");
		return -VMC_E_PROTOCOL;
	}
	m->reason = vmc_json_str(body, "reason") ? vmc_json_str(body, "reason") : "";
	if (json_object_object_get_ex(body, "target", NULL) &&
	    (!vmc_json_u32(body, "target", &m->target) || m->target == 0)) {
		snprintf(detail, len, "migrate message with a target that is not a node id");
		return -VMC_E_PROTOCOL;
	}
	if (mode != NULL && strcmp(mode, "live") != 0 && strcmp(mode, "quick") != 0) {
		snprintf(detail, len, "migrate message with mode '%s' (live or quick)", mode);
		return -VMC_E_PROTOCOL;
	}
	m->quick = mode != NULL && strcmp(mode, "quick") == 0;
	if (json_object_object_get_ex(body, "at_s", NULL) && (!vmc_json_int64(body, "at_s", &at) || at < 0)) {
		snprintf(detail, len, "migrate message with a bad at_s");
		return -VMC_E_PROTOCOL;
	}
	m->at_s = (uint64_t)at;
	m->cause = VMC_MIG_BY_OPERATOR;
	if (vmc_json_str(body, "cause") != NULL && vmc_mig_cause_from_str(vmc_json_str(body, "cause"), &m->cause) != 0) {
		snprintf(detail, len, "migrate message with cause '%s' (operator, failback or pacemaker)", vmc_json_str(body, "cause"));
		return -VMC_E_PROTOCOL;
	}
	return 0;
}

static int parse_node_admin(json_object *body, union vmc_body *out, const char *what, char *detail, size_t len)
{
	struct vmc_body_node_admin *a = &out->node_admin;

	if (!vmc_json_u32(body, "node", &a->node) || a->node == 0) {
		snprintf(detail, len, "%s without a node", what);
		return -VMC_E_PROTOCOL;
	}
	if ((json_object_object_get_ex(body, "force", NULL) && !vmc_json_bool(body, "force", &a->force)) ||
	    (json_object_object_get_ex(body, "expired", NULL) && !vmc_json_bool(body, "expired", &a->expired)) ||
	    (json_object_object_get_ex(body, "shutdown", NULL) && !vmc_json_bool(body, "shutdown", &a->shutdown)) ||
	    (json_object_object_get_ex(body, "target", NULL) && !vmc_json_u32(body, "target", &a->target))) {
		snprintf(detail, len, "%s with force, expired, shutdown or target of the wrong type", what);
		return -VMC_E_PROTOCOL;
	}
	return optional_at(body, what, &a->at_s, detail, len);
}

static int parse_window(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	if (!vmc_json_u32(body, "window", &out->window.window) || out->window.window == 0 ||
	    out->window.window > VMC_MIGRATION_MAX_PARALLEL_MAX) {
		snprintf(detail, len, "migrate-window without a window from 1 to %d", VMC_MIGRATION_MAX_PARALLEL_MAX);
		return -VMC_E_PROTOCOL;
	}
	return 0;
}

static int parse_node_drain(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	return parse_node_admin(body, out, "node-drain", detail, len);
}

static int parse_node_resume(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	int rc = parse_node_admin(body, out, "node-resume", detail, len);
	const char *f = vmc_json_str(body, "failback");

	if (rc != 0) {
		return rc;
	}
	if (f == NULL || (strcmp(f, "none") != 0 && strcmp(f, "immediate") != 0 && strcmp(f, "policy") != 0)) {
		snprintf(detail, len, "node-resume with failback '%s' (none, immediate or policy)", f ? f : "");
		return -VMC_E_PROTOCOL;
	}
	out->node_admin.failback = f;
	return 0;
}

static int parse_migrate_request(json_object *body, union vmc_body *out, char *detail, size_t len)
{
	int rc = parse_migrate(body, out, detail, len);

	if (rc == 0 && out->migrate.target == 0) {
		snprintf(detail, len, "migrate-request without a target");
		return -VMC_E_PROTOCOL;
	}
	return rc;
}

static const struct vmc_msg_type_info msg_types[] = {
	{ VMC_MSG_HELLO, "hello", 1, NULL, NULL },
	{ VMC_MSG_STATE_CHUNK, "state-chunk", 1, NULL, NULL },
	{ VMC_MSG_GROUP_ADD, "group-add", 1, parse_group_add, vmc_apply_group_add },
	{ VMC_MSG_GROUP_REMOVE, "group-remove", 1, parse_name, vmc_apply_group_remove },
	{ VMC_MSG_GROUP_SET, "group-set", 1, parse_group_set, vmc_apply_group_set },
	{ VMC_MSG_SETTINGS_SET, "settings-set", 1, parse_settings_set, vmc_apply_settings_set },
	{ VMC_MSG_NODE_FACTS, "node-facts", 1, parse_node_facts, vmc_apply_node_facts, true },
	{ VMC_MSG_GROUP_START, "group-start", 1, parse_name, vmc_apply_group_start },
	{ VMC_MSG_GROUP_STOP, "group-stop", 1, parse_name, vmc_apply_group_stop },
	{ VMC_MSG_GROUP_REPORT, "group-report", 1, parse_group_report, vmc_apply_group_report, true },
	{ VMC_MSG_NODE_FENCED, "node-fenced", 1, parse_node_fenced, vmc_apply_node_fenced, true },
	{ VMC_MSG_FENCE_FAILED, "fence-failed", 2, parse_fence_failed, vmc_apply_fence_failed, true },
	{ VMC_MSG_SYNC_EXCLUDE, "sync-exclude", 2, NULL, NULL },
	{ VMC_MSG_SYNC_RESTART, "sync-restart", 2, NULL, NULL },
	{ VMC_MSG_COMMIT_CONFIRM, "commit-confirm", 3, NULL, NULL },
	{ VMC_MSG_VOLUME_ADD, "volume-add", 4, parse_volume_add, vmc_apply_volume_add },
	{ VMC_MSG_VOLUME_REMOVE, "volume-remove", 4, parse_volume, vmc_apply_volume_remove },
	{ VMC_MSG_VOLUME_MOVE, "volume-move", 4, parse_volume_move, vmc_apply_volume_move },
	{ VMC_MSG_VOLUME_HEALTH, "volume-health", 4, parse_volume_health, vmc_apply_volume_health, true },
	{ VMC_MSG_MIGRATE_REQUEST, "migrate-request", 5, parse_migrate_request, vmc_apply_migrate_request },
	{ VMC_MSG_MIGRATE_SWITCHOVER, "migrate-switchover", 5, parse_migrate, vmc_apply_migrate_switchover, true },
	{ VMC_MSG_MIGRATE_DONE, "migrate-done", 5, parse_migrate, vmc_apply_migrate_done, true },
	{ VMC_MSG_MIGRATE_ABORT, "migrate-abort", 5, parse_migrate, vmc_apply_migrate_abort, true },
	{ VMC_MSG_NODE_DRAIN, "node-drain", 6, parse_node_drain, vmc_apply_node_drain },
	{ VMC_MSG_NODE_RESUME, "node-resume", 6, parse_node_resume, vmc_apply_node_resume },
	{ VMC_MSG_MIGRATE_WINDOW, "migrate-window", 6, parse_window, vmc_apply_migrate_window, true },
};

const struct vmc_msg_type_info *vmc_msg_type_info(uint16_t type)
{
	for (size_t i = 0; i < sizeof(msg_types) / sizeof(msg_types[0]); i++) {
		if (msg_types[i].type == type) {
			return &msg_types[i];
		}
	}
	return NULL;
}
