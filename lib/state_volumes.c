/*
 * The state's volume table and its part of the snapshot (state.h).
 * Kept sorted by name, each volume's reports by node and its locks by
 * image, so the snapshot depends only on the content.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "state.h"
#include "state_volumes.h"

struct vmc_volume *vmc_state_volume_find(const struct vmc_state *s, const char *name)
{
	for (size_t i = 0; i < s->n_volumes; i++) {
		if (strcmp(s->volumes[i].name, name) == 0) {
			return &s->volumes[i];
		}
	}
	return NULL;
}

struct vmc_volume *vmc_state_volume_of(const struct vmc_state *s, const char *path)
{
	for (size_t i = 0; i < s->n_volumes; i++) {
		if (vmc_path_inside(path, s->volumes[i].path)) {
			return &s->volumes[i];
		}
	}
	return NULL;
}

int vmc_state_volume_add(struct vmc_state *s, const struct vmc_volume *v)
{
	struct vmc_volume *a;
	size_t i = 0;

	if (vmc_state_volume_find(s, v->name) != NULL) {
		return -EEXIST;
	}
	if (s->n_volumes == VMC_VOLUMES_MAX) {
		return -ENOSPC;
	}
	a = realloc(s->volumes, (s->n_volumes + 1) * sizeof(*a));
	if (a == NULL) {
		return -ENOMEM;
	}
	s->volumes = a;
	while (i < s->n_volumes && strcmp(a[i].name, v->name) < 0) {
		i++;
	}
	memmove(&a[i + 1], &a[i], (s->n_volumes - i) * sizeof(*a));
	a[i] = *v;
	a[i].locks = NULL;
	a[i].n_locks = 0;
	a[i].cap_locks = 0;
	s->n_volumes++;
	return 0;
}

int vmc_state_volume_remove(struct vmc_state *s, const char *name)
{
	struct vmc_volume *v = vmc_state_volume_find(s, name);
	size_t i;

	if (v == NULL) {
		return -ENOENT;
	}
	i = (size_t)(v - s->volumes);
	free(v->locks);
	memmove(&s->volumes[i], &s->volumes[i + 1], (s->n_volumes - i - 1) * sizeof(*v));
	s->n_volumes--;
	return 0;
}

int vmc_state_volume_seen_set(struct vmc_volume *v, const struct vmc_volume_seen *seen)
{
	size_t i = 0;

	while (i < v->n_seen && v->seen[i].node < seen->node) {
		i++;
	}
	if (i < v->n_seen && v->seen[i].node == seen->node) {
		v->seen[i] = *seen;
		return 0;
	}
	if (v->n_seen == VMC_VOLUME_SEEN_MAX) {
		return -ENOSPC;
	}
	memmove(&v->seen[i + 1], &v->seen[i], (v->n_seen - i) * sizeof(v->seen[0]));
	v->seen[i] = *seen;
	v->n_seen++;
	return 0;
}

void vmc_state_volumes_forget_node(struct vmc_state *s, uint32_t node)
{
	for (size_t i = 0; i < s->n_volumes; i++) {
		struct vmc_volume *v = &s->volumes[i];
		for (size_t k = 0; k < v->n_seen; k++) {
			if (v->seen[k].node == node) {
				memmove(&v->seen[k], &v->seen[k + 1], (v->n_seen - k - 1) * sizeof(v->seen[0]));
				v->n_seen--;
				break;
			}
		}
	}
}

void vmc_state_volumes_free(struct vmc_state *s)
{
	for (size_t i = 0; i < s->n_volumes; i++) {
		free(s->volumes[i].locks);
	}
	free(s->volumes);
	s->volumes = NULL;
	s->n_volumes = 0;
}

static json_object *volume_to_json(const struct vmc_volume *v)
{
	json_object *o = json_object_new_object();
	json_object *seen = json_object_new_array();
	json_object *locks = json_object_new_array();

	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "path", json_object_new_string(v->path));
	json_object_object_add(o, "coordinator", json_object_new_int64(v->coordinator));
	json_object_object_add(o, "preferred", json_object_new_int64(v->preferred));
	for (size_t i = 0; i < v->n_seen; i++) {
		const struct vmc_volume_seen *e = &v->seen[i];
		json_object *r = json_object_new_object();
		json_object_object_add(r, "node", json_object_new_int64(e->node));
		json_object_object_add(r, "health", json_object_new_string(vmc_volume_health_to_str(e->health)));
		json_object_object_add(r, "errno", json_object_new_int(e->err));
		json_object_object_add(r, "since_s", json_object_new_uint64(e->since_s));
		json_object_object_add(r, "detail", json_object_new_string(e->detail));
		json_object_array_add(seen, r);
	}
	for (size_t i = 0; i < v->n_locks; i++) {
		const struct vmc_image_lock *l = &v->locks[i];
		json_object *r = json_object_new_object();
		json_object_object_add(r, "image", json_object_new_string(l->image));
		json_object_object_add(r, "group", json_object_new_string(l->group));
		json_object_object_add(r, "node", json_object_new_int64(l->node));
		json_object_object_add(r, "epoch", json_object_new_uint64(l->epoch));
		json_object_object_add(r, "attempt", json_object_new_int64(l->attempt));
		json_object_array_add(locks, r);
	}
	json_object_object_add(o, "seen", seen);
	json_object_object_add(o, "locks", locks);
	return o;
}

json_object *vmc_state_volumes_to_json(const struct vmc_state *s)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < s->n_volumes; i++) {
		json_object_array_add(a, volume_to_json(&s->volumes[i]));
	}
	return a;
}

/* A string field into a fixed buffer: false when absent, not a string or too long. */
static bool text_field(json_object *o, const char *key, char *out, size_t size)
{
	const char *v = vmc_json_str(o, key);

	if (v == NULL || strlen(v) >= size) {
		return false;
	}
	memcpy(out, v, strlen(v) + 1);
	return true;
}

static int seen_from_json(json_object *a, struct vmc_volume *v)
{
	for (size_t k = 0; json_object_is_type(a, json_type_array) && k < json_object_array_length(a); k++) {
		json_object *r = json_object_array_get_idx(a, k);
		struct vmc_volume_seen e = { 0 };
		const char *h = vmc_json_str(r, "health");
		int64_t err;
		if (!vmc_json_u32(r, "node", &e.node) || e.node == 0 || h == NULL ||
		    vmc_volume_health_from_str(h, &e.health) != 0 || !vmc_json_int64(r, "errno", &err) ||
		    err < 0 || err > 4095 || !vmc_json_u64(r, "since_s", &e.since_s) ||
		    !text_field(r, "detail", e.detail, sizeof(e.detail))) {
			return -EINVAL;
		}
		e.err = (int32_t)err;
		if (vmc_state_volume_seen_set(v, &e) != 0) {
			return -EINVAL;
		}
	}
	return json_object_is_type(a, json_type_array) ? 0 : -EINVAL;
}

static int locks_from_json(json_object *a, struct vmc_volume *v)
{
	size_t n;

	if (!json_object_is_type(a, json_type_array)) {
		return -EINVAL;
	}
	n = json_object_array_length(a);
	if (n == 0) {
		return 0;
	}
	v->locks = calloc(n, sizeof(*v->locks));
	if (v->locks == NULL) {
		return -ENOMEM;
	}
	v->cap_locks = n;
	for (size_t k = 0; k < n; k++) {
		json_object *r = json_object_array_get_idx(a, k);
		struct vmc_image_lock *l = &v->locks[k];
		if (!text_field(r, "image", l->image, sizeof(l->image)) ||
		    !vmc_path_inside(l->image, v->path) || !text_field(r, "group", l->group, sizeof(l->group)) ||
		    !vmc_json_u32(r, "node", &l->node) || l->node == 0 || !vmc_json_u64(r, "epoch", &l->epoch) ||
		    !vmc_json_u32(r, "attempt", &l->attempt) ||
		    (k > 0 && strcmp(v->locks[k - 1].image, l->image) >= 0)) {
			return -EINVAL;
		}
		v->n_locks = k + 1;
	}
	return 0;
}

int vmc_state_volumes_from_json(json_object *obj, struct vmc_state *s, char *err, size_t errlen)
{
	json_object *a;
	char why[160];

	if (!json_object_object_get_ex(obj, "volumes", &a)) {
		return 0;
	}
	if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) > VMC_VOLUMES_MAX) {
		snprintf(err, errlen, "snapshot: volumes is not an array of at most %d", VMC_VOLUMES_MAX);
		return -EINVAL;
	}
	for (size_t k = 0; k < json_object_array_length(a); k++) {
		json_object *o = json_object_array_get_idx(a, k), *seen, *locks;
		struct vmc_volume v = { 0 };
		struct vmc_volume *added;
		int rc;
		if (!text_field(o, "name", v.name, sizeof(v.name)) || !text_field(o, "path", v.path, sizeof(v.path)) ||
		    !vmc_volume_path_valid(v.path, why, sizeof(why)) ||
		    !vmc_json_u32(o, "coordinator", &v.coordinator) || !vmc_json_u32(o, "preferred", &v.preferred) ||
		    !json_object_object_get_ex(o, "seen", &seen) || seen_from_json(seen, &v) != 0 ||
		    !json_object_object_get_ex(o, "locks", &locks)) {
			snprintf(err, errlen, "snapshot: volumes[%zu] is not {name, path, coordinator, preferred, "
					      "seen, locks}", k);
			return -EINVAL;
		}
		rc = vmc_state_volume_add(s, &v);
		if (rc == -EEXIST) {
			snprintf(err, errlen, "snapshot: volume '%s' appears twice", v.name);
			return -EINVAL;
		}
		if (rc != 0) {
			return rc;
		}
		added = vmc_state_volume_find(s, v.name);
		rc = locks_from_json(locks, added);
		if (rc != 0) {
			if (rc == -EINVAL) {
				snprintf(err, errlen, "snapshot: volume '%s': a lock is not {image inside it, group, "
						      "node, epoch, attempt}, sorted by image", v.name);
			}
			return rc;
		}
	}
	return 0;
}
