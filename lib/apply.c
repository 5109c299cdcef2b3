/*
 * Change requests and how they are applied to the state. Every replica runs
 * this at the same point of the total order with the same state, so every
 * verdict — applied, or refused with this reason — is the same on all
 * nodes. Nothing here may look at the local machine.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lifecycle.h"
#include "replica.h"
#include "vmc_errors.h"

typedef int (*request_handler)(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			       char *detail, size_t len);

static const char *body_string(json_object *body, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(body, key, &v) || !json_object_is_type(v, json_type_string)) {
		return NULL;
	}
	return json_object_get_string(v);
}

/* A MAC address on two running VMs breaks both: refuse it cluster-wide. */
static int mac_check(const struct vmc_state *s, const struct vmc_group_def *def, char *detail,
		     size_t len)
{
	for (size_t n = 0; n < def->n_nics; n++) {
		const char *mac = def->nics[n].mac;
		for (size_t g = 0; mac != NULL && g < s->n_groups; g++) {
			const struct vmc_group_def *other = s->groups[g].def;
			if (strcmp(other->name, def->name) == 0) {
				continue;
			}
			for (size_t k = 0; k < other->n_nics; k++) {
				if (other->nics[k].mac != NULL && strcasecmp(other->nics[k].mac, mac) == 0) {
					snprintf(detail, len, "field 'nics[%zu].mac': %s is already used by vm '%s'",
						 n, mac, other->name);
					return -VMC_E_EXISTS;
				}
			}
		}
	}
	return 0;
}

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

static int apply_group_add(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			char *detail, size_t len)
{
	struct vmc_group_def *def = NULL;
	json_object *j;
	int rc;

	if (!json_object_object_get_ex(body, "definition", &j)) {
		snprintf(detail, len, "group-add without a definition");
		return -VMC_E_PROTOCOL;
	}
	rc = vmc_group_def_from_json(j, &def, detail, len);
	if (rc != 0) {
		return rc == -EINVAL ? -VMC_E_INVALID : rc;
	}
	rc = mac_check(s, def, detail, len);
	if (rc != 0) {
		vmc_group_def_free(def);
		return rc;
	}
	rc = vmc_state_group_add(s, def);
	if (rc == -EEXIST) {
		snprintf(detail, len, "vm '%s' already exists; choose another name or remove it first",
			 def->name);
		vmc_group_def_free(def);
		return -VMC_E_EXISTS;
	}
	if (rc != 0) {
		vmc_group_def_free(def);
		return rc;
	}
	snprintf(detail, len, "vm %s added", def->name);
	return 0;
}

static int apply_group_remove(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			char *detail, size_t len)
{
	const char *name = body_string(body, "name");
	struct vmc_group *g;

	if (name == NULL) {
		snprintf(detail, len, "group-remove without a name");
		return -VMC_E_PROTOCOL;
	}
	g = vmc_state_group_find(s, name);
	if (g == NULL) {
		snprintf(detail, len, "no vm named '%s' (see 'clusterctl vm list')", name);
		return -VMC_E_NOT_FOUND;
	}
	if (g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED) {
		snprintf(detail, len, "vm '%s' is %s: it must be stopped before it can be removed", name,
			 vmc_group_state_to_str(g->state));
		return -VMC_E_BUSY;
	}
	snprintf(detail, len, "vm %s removed", name);
	return vmc_state_group_remove(s, name);
}

/* "vm web1 changed: memory_mib=512 priority=high" for the log. */
static void describe_set(const char *name, const char **assignments, size_t n, char *detail,
			 size_t len)
{
	int used = snprintf(detail, len, "vm %s changed:", name);

	for (size_t i = 0; i < n && used > 0 && (size_t)used < len; i++) {
		used += snprintf(detail + used, len - (size_t)used, " %s", assignments[i]);
	}
}

static int apply_group_set(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			char *detail, size_t len)
{
	const char *name = body_string(body, "name");
	const char *assignments[64];
	struct vmc_group_def *def = NULL;
	struct vmc_group *g;
	json_object *set;
	size_t n;
	int rc;

	if (name == NULL || !json_object_object_get_ex(body, "set", &set) ||
	    !json_object_is_type(set, json_type_array)) {
		snprintf(detail, len, "group-set without name or set");
		return -VMC_E_PROTOCOL;
	}
	g = vmc_state_group_find(s, name);
	if (g == NULL) {
		snprintf(detail, len, "no vm named '%s' (see 'clusterctl vm list')", name);
		return -VMC_E_NOT_FOUND;
	}
	rc = vmc_set_assignments(set, assignments, sizeof(assignments) / sizeof(assignments[0]), &n,
				 detail, len);
	if (rc != 0) {
		return rc;
	}
	rc = vmc_group_def_set(g->def, assignments, n, &def, detail, len);
	if (rc != 0) {
		return rc == -EINVAL ? -VMC_E_INVALID : rc;
	}
	rc = mac_check(s, def, detail, len);
	if (rc != 0) {
		vmc_group_def_free(def);
		return rc;
	}
	describe_set(name, assignments, n, detail, len);
	return vmc_state_group_redefine(s, def);
}

static int apply_settings_set(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			char *detail, size_t len)
{
	const char *assignments[16];
	struct vmc_settings next;
	json_object *set;
	size_t n;
	int rc;

	if (!json_object_object_get_ex(body, "set", &set) || !json_object_is_type(set, json_type_array)) {
		snprintf(detail, len, "settings-set without set");
		return -VMC_E_PROTOCOL;
	}
	rc = vmc_set_assignments(set, assignments, sizeof(assignments) / sizeof(assignments[0]), &n,
				 detail, len);
	if (rc != 0) {
		return rc;
	}
	if (vmc_settings_set(&s->settings, assignments, n, &next, detail, len) != 0) {
		return -VMC_E_INVALID;
	}
	s->settings = next;
	snprintf(detail, len, "cluster settings changed:");
	for (size_t i = 0; i < n && strlen(detail) + 1 < len; i++) {
		snprintf(detail + strlen(detail), len - strlen(detail), " %s", assignments[i]);
	}
	return 0;
}

struct request_type {
	uint16_t type;
	request_handler apply;
};

static const struct request_type request_types[] = {
	{ VMC_MSG_GROUP_ADD, apply_group_add },
	{ VMC_MSG_GROUP_REMOVE, apply_group_remove },
	{ VMC_MSG_GROUP_SET, apply_group_set },
	{ VMC_MSG_SETTINGS_SET, apply_settings_set },
	{ VMC_MSG_NODE_FACTS, vmc_apply_node_facts },
	{ VMC_MSG_GROUP_START, vmc_apply_group_start },
	{ VMC_MSG_GROUP_STOP, vmc_apply_group_stop },
	{ VMC_MSG_GROUP_REPORT, vmc_apply_group_report },
	{ VMC_MSG_NODE_FENCED, vmc_apply_node_fenced },
};

int vmc_state_apply_request(struct vmc_state *s, const struct vmc_msg *m, char *detail,
			    size_t detail_len)
{
	struct vmc_apply_ctx ctx = { .sender = m->sender };

	return vmc_state_apply(s, &ctx, m, detail, detail_len);
}

int vmc_state_apply(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_msg *m,
		    char *detail, size_t detail_len)
{
	detail[0] = '\0';
	for (size_t i = 0; i < sizeof(request_types) / sizeof(request_types[0]); i++) {
		if (request_types[i].type == m->type) {
			int rc = request_types[i].apply(s, ctx, m->body, detail, detail_len);
			if (rc == 0) {
				s->config_version++;
			} else if (detail[0] == '\0') {
				snprintf(detail, detail_len, "%s", vmc_strerror(rc));
			}
			return rc;
		}
	}
	snprintf(detail, detail_len, "message type %u is not a change request", m->type);
	return -VMC_E_PROTOCOL;
}
