/*
 * Image locks following their groups (image_locks.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_locks.h"

bool vmc_group_holds_locks(const struct vmc_group *g)
{
	return g->owner != 0 && g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED;
}

static struct vmc_image_lock *lock_find(const struct vmc_volume *v, const char *image)
{
	size_t lo = 0, hi = v->n_locks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v->locks[mid].image, image);
		if (c == 0) {
			return &v->locks[mid];
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return NULL;
}

/* The volume a disk's lock lives on, or NULL (local, or on none). */
static struct vmc_volume *disk_volume(const struct vmc_state *s, const struct vmc_disk *d)
{
	char why[96];

	if (d->local || !vmc_volume_path_valid(d->path, why, sizeof(why))) {
		return NULL;
	}
	return vmc_state_volume_of(s, d->path);
}

const struct vmc_disk *vmc_locks_disk_off_volumes(const struct vmc_state *s, const struct vmc_group_def *def)
{
	for (size_t i = 0; i < def->n_disks; i++) {
		if (!def->disks[i].local && disk_volume(s, &def->disks[i]) == NULL) {
			return &def->disks[i];
		}
	}
	return NULL;
}

int vmc_locks_reserve(struct vmc_state *s)
{
	for (size_t i = 0; i < s->n_volumes; i++) {
		struct vmc_volume *v = &s->volumes[i];
		/* Every disk of every group, plus one new definition's worth. */
		size_t need = v->n_locks + VMC_DISKS_MAX;
		struct vmc_image_lock *a;
		for (size_t j = 0; j < s->n_groups; j++) {
			const struct vmc_group_def *def = s->groups[j].def;
			for (size_t k = 0; k < def->n_disks; k++) {
				need += disk_volume(s, &def->disks[k]) == v;
			}
		}
		if (need <= v->cap_locks) {
			continue;
		}
		a = realloc(v->locks, need * sizeof(*a));
		if (a == NULL) {
			return -ENOMEM;
		}
		v->locks = a;
		v->cap_locks = need;
	}
	return 0;
}

static bool def_has_image(const struct vmc_group_def *def, const char *image)
{
	for (size_t k = 0; k < def->n_disks; k++) {
		if (!def->disks[k].local && strcmp(def->disks[k].path, image) == 0) {
			return true;
		}
	}
	return false;
}

/* Keep or drop each lock, and move it with its group. */
uint32_t vmc_group_lock_holder(const struct vmc_group *g)
{
	if (g->state == VMC_GROUP_MIGRATING && g->mig.phase == VMC_MIG_SWITCHOVER) {
		return g->mig.target;
	}
	return g->owner;
}

static void locks_follow(struct vmc_state *s, struct vmc_volume *v)
{
	size_t kept = 0;

	for (size_t i = 0; i < v->n_locks; i++) {
		struct vmc_image_lock *l = &v->locks[i];
		const struct vmc_group *g = vmc_state_group_find(s, l->group);
		if (g == NULL || !vmc_group_holds_locks(g)) {
			continue; /* released */
		}
		/* A new start attempt opens what the definition says now. */
		if (l->attempt != g->attempt && !def_has_image(g->def, l->image)) {
			continue;
		}
		l->attempt = g->attempt;
		if (l->node != vmc_group_lock_holder(g)) {
			l->node = vmc_group_lock_holder(g);
			l->epoch = s->epoch;
		}
		v->locks[kept++] = *l;
	}
	v->n_locks = kept;
}

static void lock_take(struct vmc_state *s, struct vmc_volume *v, const struct vmc_group *g, const char *image)
{
	size_t i = 0;

	if (lock_find(v, image) != NULL || v->n_locks == v->cap_locks) {
		return; /* held (by g, or by another group: never taken from it) */
	}
	while (i < v->n_locks && strcmp(v->locks[i].image, image) < 0) {
		i++;
	}
	memmove(&v->locks[i + 1], &v->locks[i], (v->n_locks - i) * sizeof(v->locks[0]));
	memset(&v->locks[i], 0, sizeof(v->locks[i]));
	snprintf(v->locks[i].image, sizeof(v->locks[i].image), "%s", image);
	snprintf(v->locks[i].group, sizeof(v->locks[i].group), "%s", g->def->name);
	v->locks[i].node = vmc_group_lock_holder(g);
	v->locks[i].epoch = s->epoch;
	v->locks[i].attempt = g->attempt;
	v->n_locks++;
}

void vmc_locks_reconcile(struct vmc_state *s)
{
	for (size_t i = 0; i < s->n_volumes; i++) {
		locks_follow(s, &s->volumes[i]);
	}
	for (size_t j = 0; j < s->n_groups; j++) {
		const struct vmc_group *g = &s->groups[j];
		if (!vmc_group_holds_locks(g)) {
			continue;
		}
		for (size_t k = 0; k < g->def->n_disks; k++) {
			struct vmc_volume *v = disk_volume(s, &g->def->disks[k]);
			if (v != NULL) {
				lock_take(s, v, g, g->def->disks[k].path);
			}
		}
	}
}

const struct vmc_image_lock *vmc_locks_conflict(const struct vmc_state *s, const struct vmc_group_def *def,
						const char *self, const struct vmc_volume **on)
{
	for (size_t k = 0; k < def->n_disks; k++) {
		struct vmc_volume *v = disk_volume(s, &def->disks[k]);
		const struct vmc_image_lock *l = v ? lock_find(v, def->disks[k].path) : NULL;
		if (l != NULL && strcmp(l->group, self) != 0) {
			*on = v;
			return l;
		}
	}
	return NULL;
}

void vmc_locks_describe(const struct vmc_state *s, const struct vmc_image_lock *l, const struct vmc_volume *v,
			char *buf, size_t len)
{
	char node[24];

	snprintf(buf, len, "image %s on volume %s is locked by vm %s on %s", l->image, v->name, l->group,
		 vmc_state_node_label(s, l->node, node, sizeof(node)));
}

bool vmc_locks_held_by(const struct vmc_state *s, const struct vmc_group *g, uint32_t node)
{
	for (size_t k = 0; k < g->def->n_disks; k++) {
		struct vmc_volume *v = disk_volume(s, &g->def->disks[k]);
		const struct vmc_image_lock *l = v ? lock_find(v, g->def->disks[k].path) : NULL;
		if (v == NULL) {
			continue;
		}
		if (l == NULL || l->node != node || strcmp(l->group, g->def->name) != 0 || l->attempt != g->attempt) {
			return false;
		}
	}
	return true;
}
