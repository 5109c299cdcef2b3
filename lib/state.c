/*
 * Cluster state container, snapshot codec and digest.
 *
 * Groups are kept sorted by name so that the snapshot — and therefore the
 * digest — depends only on the content, never on the order changes came in.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "json_util.h"
#include "state.h"
#include "drain.h"
#include "failback.h"
#include "migration.h"
#include "node_admin.h"
#include "state_volumes.h"

static const char *const group_state_names[] = {
	[VMC_GROUP_OFFLINE] = "offline",     [VMC_GROUP_STARTING] = "starting",
	[VMC_GROUP_ONLINE] = "online",       [VMC_GROUP_STOPPING] = "stopping",
	[VMC_GROUP_MIGRATING] = "migrating", [VMC_GROUP_FAILED] = "failed",
};

const char *vmc_group_state_to_str(enum vmc_group_state st)
{
	if ((size_t)st < sizeof(group_state_names) / sizeof(group_state_names[0])) {
		return group_state_names[st];
	}
	return "unknown";
}

int vmc_group_state_from_str(const char *str, enum vmc_group_state *out)
{
	for (size_t i = 0; i < sizeof(group_state_names) / sizeof(group_state_names[0]); i++) {
		if (strcmp(str, group_state_names[i]) == 0) {
			*out = (enum vmc_group_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

struct vmc_state *vmc_state_new(void)
{
	struct vmc_state *s = calloc(1, sizeof(struct vmc_state));

	if (s != NULL) {
		vmc_settings_defaults(&s->settings);
	}
	return s;
}

void vmc_state_free(struct vmc_state *s)
{
	if (s == NULL) {
		return;
	}
	for (size_t i = 0; i < s->n_groups; i++) {
		vmc_group_def_free(s->groups[i].def);
	}
	free(s->groups);
	vmc_state_volumes_free(s);
	free(s);
}

/* Index of name, or of where it would be inserted (with *found false). */
static size_t group_index(const struct vmc_state *s, const char *name, bool *found)
{
	size_t lo = 0, hi = s->n_groups;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->groups[mid].def->name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*found = false;
	return lo;
}

struct vmc_group *vmc_state_group_find(const struct vmc_state *s, const char *name)
{
	bool found;
	size_t i = group_index(s, name, &found);

	return found ? &s->groups[i] : NULL;
}

static int groups_reserve(struct vmc_state *s, size_t n)
{
	struct vmc_group *g;
	size_t cap;

	if (n <= s->cap_groups) {
		return 0;
	}
	cap = s->cap_groups ? s->cap_groups * 2 : 64;
	while (cap < n) {
		cap *= 2;
	}
	g = realloc(s->groups, cap * sizeof(*g));
	if (g == NULL) {
		return -ENOMEM;
	}
	s->groups = g;
	s->cap_groups = cap;
	return 0;
}

static int group_insert(struct vmc_state *s, const struct vmc_group *g)
{
	bool found;
	size_t i = group_index(s, g->def->name, &found);
	int rc;

	if (found) {
		return -EEXIST;
	}
	rc = groups_reserve(s, s->n_groups + 1);
	if (rc != 0) {
		return rc;
	}
	memmove(&s->groups[i + 1], &s->groups[i], (s->n_groups - i) * sizeof(*s->groups));
	s->groups[i] = *g;
	s->n_groups++;
	return 0;
}

int vmc_state_group_add(struct vmc_state *s, struct vmc_group_def *def)
{
	struct vmc_group g = { .def = def, .owner = 0, .state = VMC_GROUP_OFFLINE, .reason = "" };

	return group_insert(s, &g);
}

int vmc_state_group_remove(struct vmc_state *s, const char *name)
{
	bool found;
	size_t i = group_index(s, name, &found);

	if (!found) {
		return -ENOENT;
	}
	vmc_group_def_free(s->groups[i].def);
	memmove(&s->groups[i], &s->groups[i + 1], (s->n_groups - i - 1) * sizeof(*s->groups));
	s->n_groups--;
	return 0;
}

int vmc_state_group_redefine(struct vmc_state *s, struct vmc_group_def *def)
{
	struct vmc_group *g = vmc_state_group_find(s, def->name);

	if (g == NULL) {
		return -ENOENT;
	}
	vmc_group_def_free(g->def);
	g->def = def;
	return 0;
}

const struct vmc_node_facts *vmc_state_node(const struct vmc_state *s, uint32_t id)
{
	for (size_t i = 0; i < s->n_nodes; i++) {
		if (s->nodes[i].id == id) {
			return &s->nodes[i];
		}
	}
	return NULL;
}

int vmc_state_node_set(struct vmc_state *s, const struct vmc_node_facts *f)
{
	size_t i = 0;

	while (i < s->n_nodes && s->nodes[i].id < f->id) {
		i++;
	}
	if (i < s->n_nodes && s->nodes[i].id == f->id) {
		s->nodes[i] = *f;
		return 0;
	}
	if (s->n_nodes == VMC_STATE_NODES_MAX) {
		return -ENOSPC;
	}
	memmove(&s->nodes[i + 1], &s->nodes[i], (s->n_nodes - i) * sizeof(s->nodes[0]));
	s->nodes[i] = *f;
	s->n_nodes++;
	return 0;
}

const char *vmc_state_node_label(const struct vmc_state *s, uint32_t id, char *buf, size_t len)
{
	const struct vmc_node_facts *f = vmc_state_node(s, id);

	if (f != NULL && f->name[0] != '\0') {
		return f->name;
	}
	snprintf(buf, len, "node id %u", id);
	return buf;
}

const struct vmc_fence_record *vmc_state_fencing(const struct vmc_state *s, uint32_t node)
{
	for (size_t i = 0; i < s->n_fencing; i++) {
		if (s->fencing[i].node == node) {
			return &s->fencing[i];
		}
	}
	return NULL;
}

int vmc_state_fencing_set(struct vmc_state *s, const struct vmc_fence_record *f)
{
	size_t i = 0;

	while (i < s->n_fencing && s->fencing[i].node < f->node) {
		i++;
	}
	if (i < s->n_fencing && s->fencing[i].node == f->node) {
		s->fencing[i] = *f;
		return 0;
	}
	if (s->n_fencing == VMC_STATE_NODES_MAX) {
		return -ENOSPC;
	}
	memmove(&s->fencing[i + 1], &s->fencing[i], (s->n_fencing - i) * sizeof(s->fencing[0]));
	s->fencing[i] = *f;
	s->n_fencing++;
	return 0;
}

void vmc_state_fencing_clear(struct vmc_state *s, uint32_t node)
{
	for (size_t i = 0; i < s->n_fencing; i++) {
		if (s->fencing[i].node == node) {
			memmove(&s->fencing[i], &s->fencing[i + 1],
				(s->n_fencing - i - 1) * sizeof(s->fencing[0]));
			s->n_fencing--;
			return;
		}
	}
}

void vmc_state_recent_add(struct vmc_state *s, uint32_t origin, uint64_t id)
{
	struct vmc_recent *r = &s->recent;
	size_t k;

	if (id == 0) {
		return;
	}
	if (r->n == VMC_RECENT_MAX) {
		r->ring[r->head] = (struct vmc_request_ref){ origin, id };
		r->head = (r->head + 1) % VMC_RECENT_MAX;
	} else {
		r->ring[(r->head + r->n) % VMC_RECENT_MAX] = (struct vmc_request_ref){ origin, id };
		r->n++;
	}
	for (k = 0; k < r->n_max && r->max_id[k].origin != origin; k++) {
	}
	if (k == r->n_max && k < VMC_STATE_NODES_MAX) {
		r->max_id[r->n_max++] = (struct vmc_request_ref){ origin, id };
	} else if (k < r->n_max && id > r->max_id[k].id) {
		r->max_id[k].id = id;
	}
}

int vmc_state_recent_find(const struct vmc_state *s, uint32_t origin, uint64_t id)
{
	const struct vmc_recent *r = &s->recent;

	for (size_t i = 0; i < r->n; i++) {
		const struct vmc_request_ref *e = &r->ring[(r->head + i) % VMC_RECENT_MAX];
		if (e->origin == origin && e->id == id) {
			return 1;
		}
	}
	for (size_t k = 0; k < r->n_max; k++) {
		if (r->max_id[k].origin == origin) {
			/* An origin's ids rise: one above its highest applied was never applied. */
			return id > r->max_id[k].id ? 0 : -1;
		}
	}
	return 0;
}

uint64_t vmc_epoch_counter(uint64_t epoch)
{
	return epoch >> 32 != 0 ? epoch >> 32 : epoch;
}

uint64_t vmc_epoch_next(uint64_t max, uint32_t node)
{
	return ((vmc_epoch_counter(max) + 1) << 32) | node;
}

static json_object *recent_to_json(const struct vmc_recent *r)
{
	json_object *o = json_object_new_object();
	json_object *ring = json_object_new_array();
	json_object *max = json_object_new_array();

	for (size_t i = 0; i < r->n; i++) {
		const struct vmc_request_ref *e = &r->ring[(r->head + i) % VMC_RECENT_MAX];
		json_object *pair = json_object_new_array();
		json_object_array_add(pair, json_object_new_int64(e->origin));
		json_object_array_add(pair, json_object_new_uint64(e->id));
		json_object_array_add(ring, pair);
	}
	for (size_t k = 0; k < r->n_max; k++) {
		json_object *pair = json_object_new_array();
		json_object_array_add(pair, json_object_new_int64(r->max_id[k].origin));
		json_object_array_add(pair, json_object_new_uint64(r->max_id[k].id));
		json_object_array_add(max, pair);
	}
	json_object_object_add(o, "applied", ring);
	json_object_object_add(o, "max", max);
	return o;
}

/* [origin, id] pairs into out (in order); -EINVAL when one is not. */
static int refs_from_json(json_object *a, struct vmc_request_ref *out, size_t max, size_t *n)
{
	*n = 0;
	if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > max) {
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *pair = json_object_array_get_idx(a, i);
		json_object *origin = json_object_array_get_idx(pair, 0), *id = json_object_array_get_idx(pair, 1);
		if (!json_object_is_type(origin, json_type_int) || !json_object_is_type(id, json_type_int) ||
		    json_object_get_int64(origin) < 0 || json_object_get_int64(origin) > UINT32_MAX) {
			return -EINVAL;
		}
		out[(*n)++] = (struct vmc_request_ref){ (uint32_t)json_object_get_int64(origin),
							 json_object_get_uint64(id) };
	}
	return 0;
}

static int recent_from_json(json_object *obj, struct vmc_recent *r, char *err, size_t errlen)
{
	json_object *o, *ring, *max;

	if (!json_object_object_get_ex(obj, "recent", &o)) {
		return 0;
	}
	if (!json_object_object_get_ex(o, "applied", &ring) || !json_object_object_get_ex(o, "max", &max) ||
	    refs_from_json(ring, r->ring, VMC_RECENT_MAX, &r->n) != 0 ||
	    refs_from_json(max, r->max_id, VMC_STATE_NODES_MAX, &r->n_max) != 0) {
		snprintf(err, errlen, "snapshot: recent is not {applied: [[origin, id]...], max: [[origin, id]...]}");
		return -EINVAL;
	}
	r->head = 0;
	return 0;
}

static json_object *group_to_json(const struct vmc_group *g)
{
	json_object *o = json_object_new_object();
	json_object *failures = json_object_new_array();

	json_object_object_add(o, "definition", vmc_group_def_to_json(g->def));
	json_object_object_add(o, "owner", json_object_new_int64(g->owner));
	json_object_object_add(o, "state", json_object_new_string(vmc_group_state_to_str(g->state)));
	json_object_object_add(o, "want_started", json_object_new_boolean(g->want_started));
	/* Absent while 0, so a state from before attempts existed keeps its digest. */
	if (g->attempt != 0) {
		json_object_object_add(o, "attempt", json_object_new_int64(g->attempt));
	}
	json_object_object_add(o, "reason", json_object_new_string(g->reason));
	for (size_t i = 0; i < g->n_failures; i++) {
		json_object *f = json_object_new_array();
		json_object_array_add(f, json_object_new_uint64(g->failures[i].at_s));
		json_object_array_add(f, json_object_new_int64(g->failures[i].node));
		json_object_array_add(failures, f);
	}
	json_object_object_add(o, "failures", failures);
	if (g->mig.phase != VMC_MIG_NONE) {
		json_object_object_add(o, "migration", vmc_migration_to_json(&g->mig));
	}
	/* Both absent while empty, as in states from before protocol 6. */
	if (g->home.kind != VMC_HOME_NONE) {
		json_object_object_add(o, "home", vmc_home_to_json(&g->home));
	}
	if (g->drain.live_failed != 0 || g->drain.quick_failed != 0) {
		json_object_object_add(o, "drain", vmc_drain_tries_to_json(&g->drain));
	}
	if (g->relocate) {
		json_object_object_add(o, "relocate", json_object_new_boolean(true));
	}
	/* Absent while 0, as in states from before protocol 7. */
	if (g->failed_on != 0) {
		json_object_object_add(o, "failed_on", json_object_new_int64(g->failed_on));
	}
	return o;
}

static json_object *nodes_to_json(const struct vmc_state *s)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < s->n_nodes; i++) {
		json_object *n = json_object_new_object();
		json_object_object_add(n, "id", json_object_new_int64(s->nodes[i].id));
		json_object_object_add(n, "name", json_object_new_string(s->nodes[i].name));
		json_object_object_add(n, "mem_mib", json_object_new_int64(s->nodes[i].mem_mib));
		/* Absent while false, so a state of an older daemon keeps its digest. */
		if (s->nodes[i].migration_addr[0] != '\0') {
			json_object_object_add(n, "migration_addr", json_object_new_string(s->nodes[i].migration_addr));
		}
#define ADD_CAP(field)                                                                            \
		if (s->nodes[i].field[0] != '\0') {                                                 \
			json_object_object_add(n, #field, json_object_new_string(s->nodes[i].field)); \
		}
		ADD_CAP(cpu_vendor)
		ADD_CAP(qemu_version)
		ADD_CAP(accel)
		ADD_CAP(cpu_models)
#undef ADD_CAP
		if (s->nodes[i].watchdog) {
			json_object_object_add(n, "watchdog", json_object_new_boolean(true));
		}
		if (s->nodes[i].incarnation != 0) {
			json_object_object_add(n, "incarnation", json_object_new_uint64(s->nodes[i].incarnation));
		}
		if (s->nodes[i].mig_window != 0) {
			json_object_object_add(n, "mig_window", json_object_new_int64(s->nodes[i].mig_window));
		}
		json_object_array_add(a, n);
	}
	return a;
}

static json_object *fencing_to_json(const struct vmc_state *s)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < s->n_fencing; i++) {
		const struct vmc_fence_record *f = &s->fencing[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "node", json_object_new_int64(f->node));
		json_object_object_add(o, "attempts", json_object_new_int64(f->attempts));
		json_object_object_add(o, "last_fencer", json_object_new_int64(f->last_fencer));
		json_object_object_add(o, "last_error", json_object_new_string(f->last_error));
		json_object_array_add(a, o);
	}
	return a;
}

/* with_local: also what is this node's own (persisted, never compared). */
static json_object *state_to_json(const struct vmc_state *s, bool with_local)
{
	json_object *o = json_object_new_object();
	json_object *groups = json_object_new_array_ext((int)s->n_groups);

	json_object_object_add(o, "format", json_object_new_int(VMC_SNAPSHOT_FORMAT));
	json_object_object_add(o, "epoch", json_object_new_uint64(s->epoch));
	json_object_object_add(o, "config_version", json_object_new_uint64(s->config_version));
	json_object_object_add(o, "settings", vmc_settings_to_json(&s->settings));
	json_object_object_add(o, "nodes", nodes_to_json(s));
	if (s->n_fencing > 0) {
		json_object_object_add(o, "fencing", fencing_to_json(s));
	}
	if (s->n_admin > 0) {
		json_object_object_add(o, "node_admin", vmc_node_admin_to_json(s));
	}
	/* Absent while empty, so a state of an older daemon keeps its digest. */
	if (s->recent.n > 0) {
		json_object_object_add(o, "recent", recent_to_json(&s->recent));
	}
	if (with_local && s->promised > 0) {
		json_object_object_add(o, "promised", json_object_new_uint64(s->promised));
	}
	for (size_t i = 0; i < s->n_groups; i++) {
		json_object_array_add(groups, group_to_json(&s->groups[i]));
	}
	json_object_object_add(o, "groups", groups);
	/* Absent while there are none, as in states from before protocol 4. */
	if (s->n_volumes > 0) {
		json_object_object_add(o, "volumes", vmc_state_volumes_to_json(s));
	}
	return o;
}

json_object *vmc_state_to_json(const struct vmc_state *s)
{
	return state_to_json(s, true);
}

static char *json_to_text(json_object *o)
{
	char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));

	json_object_put(o);
	return text;
}

char *vmc_state_to_string(const struct vmc_state *s)
{
	return json_to_text(state_to_json(s, true));
}

/* Fields added after the first snapshot format are optional. */
static int group_runtime_from_json(json_object *o, size_t i, struct vmc_group *g, char *err,
				   size_t errlen)
{
	json_object *reason, *failures, *attempt, *mig;
	char why[160];

	if (json_object_object_get_ex(o, "attempt", &attempt)) {
		if (!vmc_json_u32(o, "attempt", &g->attempt)) {
			snprintf(err, errlen, "snapshot: groups[%zu].attempt is not a counter", i);
			vmc_group_def_free(g->def);
			return -EINVAL;
		}
	}
	if (json_object_object_get_ex(o, "reason", &reason)) {
		if (!json_object_is_type(reason, json_type_string)) {
			snprintf(err, errlen, "snapshot: groups[%zu].reason is not a string", i);
			vmc_group_def_free(g->def);
			return -EINVAL;
		}
		snprintf(g->reason, sizeof(g->reason), "%s", json_object_get_string(reason));
	}
	if (json_object_object_get_ex(o, "migration", &mig) &&
	    vmc_migration_from_json(mig, &g->mig, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "snapshot: groups[%zu]: %s", i, why);
		vmc_group_def_free(g->def);
		return -EINVAL;
	}
	if ((json_object_object_get_ex(o, "home", &mig) && vmc_home_from_json(mig, &g->home) != 0) ||
	    (json_object_object_get_ex(o, "drain", &mig) && vmc_drain_tries_from_json(mig, &g->drain) != 0)) {
		snprintf(err, errlen, "snapshot: groups[%zu]: home is not {kind, node, since_s, failed} or drain not "
			 "{live_failed, quick_failed}", i);
		vmc_group_def_free(g->def);
		return -EINVAL;
	}
	if (json_object_object_get_ex(o, "relocate", NULL) && !vmc_json_bool(o, "relocate", &g->relocate)) {
		snprintf(err, errlen, "snapshot: groups[%zu].relocate is not true or false", i);
		vmc_group_def_free(g->def);
		return -EINVAL;
	}
	if (json_object_object_get_ex(o, "failed_on", NULL) && !vmc_json_u32(o, "failed_on", &g->failed_on)) {
		snprintf(err, errlen, "snapshot: groups[%zu].failed_on is not a node id", i);
		vmc_group_def_free(g->def);
		return -EINVAL;
	}
	if (!json_object_object_get_ex(o, "failures", &failures)) {
		return 0;
	}
	for (size_t k = 0; json_object_is_type(failures, json_type_array) &&
			   k < json_object_array_length(failures) && k < VMC_FAILURES_KEPT; k++) {
		json_object *f = json_object_array_get_idx(failures, k);
		json_object *at = json_object_array_get_idx(f, 0), *node = json_object_array_get_idx(f, 1);
		if (!json_object_is_type(at, json_type_int) || !json_object_is_type(node, json_type_int)) {
			snprintf(err, errlen, "snapshot: groups[%zu].failures[%zu] is not [at_s, node]", i, k);
			vmc_group_def_free(g->def);
			return -EINVAL;
		}
		g->failures[k].at_s = json_object_get_uint64(at);
		g->failures[k].node = (uint32_t)json_object_get_int64(node);
		g->n_failures = k + 1;
	}
	return 0;
}

static int nodes_from_json(json_object *obj, struct vmc_state *s, char *err, size_t errlen)
{
	json_object *nodes;

	if (!json_object_object_get_ex(obj, "nodes", &nodes)) {
		return 0;
	}
	for (size_t k = 0; json_object_is_type(nodes, json_type_array) && k < json_object_array_length(nodes);
	     k++) {
		json_object *n = json_object_array_get_idx(nodes, k), *id, *mem, *name;
		struct vmc_node_facts f = { 0 };
		if (!json_object_object_get_ex(n, "id", &id) || !json_object_object_get_ex(n, "mem_mib", &mem) ||
		    !json_object_is_type(id, json_type_int) || !json_object_is_type(mem, json_type_int) ||
		    json_object_get_int64(id) <= 0 || json_object_get_int64(mem) < 0) {
			snprintf(err, errlen, "snapshot: nodes[%zu] is not {id, mem_mib}", k);
			return -EINVAL;
		}
		f.id = (uint32_t)json_object_get_int64(id);
		f.mem_mib = (uint32_t)json_object_get_int64(mem);
		if (json_object_object_get_ex(n, "name", &name) && json_object_is_type(name, json_type_string)) {
			snprintf(f.name, sizeof(f.name), "%s", json_object_get_string(name));
		}
		if (json_object_object_get_ex(n, "watchdog", NULL) && !vmc_json_bool(n, "watchdog", &f.watchdog)) {
			snprintf(err, errlen, "snapshot: nodes[%zu].watchdog is not true or false", k);
			return -EINVAL;
		}
		if (vmc_json_str(n, "migration_addr") != NULL) {
			snprintf(f.migration_addr, sizeof(f.migration_addr), "%s", vmc_json_str(n, "migration_addr"));
		}
#define GET_CAP(field)                                                                  \
		if (vmc_json_str(n, #field) != NULL) {                                   \
			snprintf(f.field, sizeof(f.field), "%s", vmc_json_str(n, #field)); \
		}
		GET_CAP(cpu_vendor)
		GET_CAP(qemu_version)
		GET_CAP(accel)
		GET_CAP(cpu_models)
#undef GET_CAP
		if ((json_object_object_get_ex(n, "incarnation", NULL) && !vmc_json_u64(n, "incarnation", &f.incarnation)) ||
		    (json_object_object_get_ex(n, "mig_window", NULL) && !vmc_json_u32(n, "mig_window", &f.mig_window))) {
			snprintf(err, errlen, "snapshot: nodes[%zu].incarnation or mig_window is not a number", k);
			return -EINVAL;
		}
		if (vmc_state_node_set(s, &f) != 0) {
			snprintf(err, errlen, "snapshot: more than %d nodes", VMC_STATE_NODES_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

static int fencing_from_json(json_object *obj, struct vmc_state *s, char *err, size_t errlen)
{
	json_object *a;

	if (!json_object_object_get_ex(obj, "fencing", &a)) {
		return 0;
	}
	if (!json_object_is_type(a, json_type_array)) {
		snprintf(err, errlen, "snapshot: fencing is not an array");
		return -EINVAL;
	}
	for (size_t k = 0; k < json_object_array_length(a); k++) {
		json_object *o = json_object_array_get_idx(a, k);
		struct vmc_fence_record f = { 0 };
		const char *last = vmc_json_str(o, "last_error");
		if (!vmc_json_u32(o, "node", &f.node) ||
		    f.node == 0 || !vmc_json_u32(o, "attempts", &f.attempts) ||
		    !vmc_json_u32(o, "last_fencer", &f.last_fencer) || last == NULL) {
			snprintf(err, errlen, "snapshot: fencing[%zu] is not {node, attempts, last_fencer, last_error}", k);
			return -EINVAL;
		}
		snprintf(f.last_error, sizeof(f.last_error), "%s", last);
		if (vmc_state_fencing_set(s, &f) != 0) {
			snprintf(err, errlen, "snapshot: more than %d fencing records", VMC_STATE_NODES_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

static int group_from_json(json_object *o, size_t i, struct vmc_group *g, char *err, size_t errlen)
{
	json_object *def, *owner, *state, *want;
	char deferr[256];
	int64_t id;

	if (!json_object_object_get_ex(o, "definition", &def) ||
	    !json_object_object_get_ex(o, "owner", &owner) ||
	    !json_object_object_get_ex(o, "state", &state) ||
	    !json_object_object_get_ex(o, "want_started", &want) ||
	    !json_object_is_type(owner, json_type_int) ||
	    !json_object_is_type(state, json_type_string) ||
	    !json_object_is_type(want, json_type_boolean)) {
		snprintf(err, errlen, "snapshot: groups[%zu] lacks definition, owner, state or want_started", i);
		return -EINVAL;
	}
	id = json_object_get_int64(owner);
	if (id < 0 || id > UINT32_MAX) {
		snprintf(err, errlen, "snapshot: groups[%zu].owner out of range", i);
		return -EINVAL;
	}
	if (vmc_group_state_from_str(json_object_get_string(state), &g->state) != 0) {
		snprintf(err, errlen, "snapshot: groups[%zu].state '%s' unknown", i,
			 json_object_get_string(state));
		return -EINVAL;
	}
	if (vmc_group_def_from_json(def, &g->def, deferr, sizeof(deferr)) != 0) {
		snprintf(err, errlen, "snapshot: groups[%zu]: %s", i, deferr);
		return -EINVAL;
	}
	g->owner = (uint32_t)id;
	g->want_started = json_object_get_boolean(want);
	return group_runtime_from_json(o, i, g, err, errlen);
}

int vmc_state_from_json(json_object *obj, struct vmc_state **out, char *err, size_t errlen)
{
	json_object *format, *epoch, *version, *groups, *settings;
	struct vmc_state *s;
	char why[256];
	int rc;

	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "format", &format) ||
	    !json_object_object_get_ex(obj, "epoch", &epoch) ||
	    !json_object_object_get_ex(obj, "config_version", &version) ||
	    !json_object_object_get_ex(obj, "groups", &groups) ||
	    !json_object_is_type(format, json_type_int) ||
	    !json_object_is_type(epoch, json_type_int) ||
	    !json_object_is_type(version, json_type_int) ||
	    json_object_get_int64(epoch) < 0 || json_object_get_int64(version) < 0 ||
	    !json_object_is_type(groups, json_type_array)) {
		snprintf(err, errlen, "snapshot: not an object with integer format, epoch, config_version and a groups array");
		return -EINVAL;
	}
	if (json_object_get_int(format) != VMC_SNAPSHOT_FORMAT) {
		snprintf(err, errlen, "snapshot: format %d is not supported (this build reads %d)",
			 json_object_get_int(format), VMC_SNAPSHOT_FORMAT);
		return -EPROTO;
	}
	s = vmc_state_new();
	if (s == NULL) {
		return -ENOMEM;
	}
	s->epoch = json_object_get_uint64(epoch);
	s->config_version = json_object_get_uint64(version);
	if (nodes_from_json(obj, s, err, errlen) != 0 || fencing_from_json(obj, s, err, errlen) != 0 ||
	    vmc_node_admin_from_json(obj, s, err, errlen) != 0 ||
	    recent_from_json(obj, &s->recent, err, errlen) != 0) {
		vmc_state_free(s);
		return -EINVAL;
	}
	rc = vmc_state_volumes_from_json(obj, s, err, errlen);
	if (rc != 0) {
		vmc_state_free(s);
		return rc;
	}
	if (json_object_object_get_ex(obj, "promised", NULL) && !vmc_json_u64(obj, "promised", &s->promised)) {
		vmc_state_free(s);
		snprintf(err, errlen, "snapshot: promised is not a non-negative integer");
		return -EINVAL;
	}
	/* Snapshots from before settings existed carry none: defaults. */
	if (json_object_object_get_ex(obj, "settings", &settings) &&
	    vmc_settings_from_json(settings, &s->settings, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "snapshot: %s", why);
		vmc_state_free(s);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(groups); i++) {
		struct vmc_group g = { 0 };
		rc = group_from_json(json_object_array_get_idx(groups, i), i, &g, err, errlen);
		if (rc == 0) {
			rc = group_insert(s, &g);
			if (rc == -EEXIST) {
				snprintf(err, errlen, "snapshot: group '%s' appears twice", g.def->name);
				vmc_group_def_free(g.def);
			}
		}
		if (rc != 0) {
			vmc_state_free(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}

int vmc_state_from_string(const char *text, struct vmc_state **out, char *err, size_t errlen)
{
	char why[128];
	json_object *o = vmc_json_parse(text, why, sizeof(why));
	int rc;

	if (o == NULL) {
		snprintf(err, errlen, "snapshot: %s", why);
		return -EINVAL;
	}
	rc = vmc_state_from_json(o, out, err, errlen);
	json_object_put(o);
	return rc;
}

struct vmc_state *vmc_state_copy(const struct vmc_state *s)
{
	json_object *o = vmc_state_to_json(s);
	struct vmc_state *copy = NULL;
	char err[256];

	if (vmc_state_from_json(o, &copy, err, sizeof(err)) != 0) {
		copy = NULL;
	}
	json_object_put(o);
	return copy;
}

void vmc_state_digest(const struct vmc_state *s, char hex[VMC_DIGEST_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int md_len = 0;
	/* The replicated content only: what a node promised is its own. */
	char *text = json_to_text(state_to_json(s, false));

	EVP_Digest(text, strlen(text), md, &md_len, EVP_sha256(), NULL);
	free(text);
	for (unsigned int i = 0; i < 32; i++) {
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	}
	hex[VMC_DIGEST_HEX_LEN] = '\0';
}
