/*
 * Volume changes (volume_apply.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_locks.h"
#include "vmc_errors.h"
#include "migration.h"
#include "volume_apply.h"

static int need_protocol(const struct vmc_apply_ctx *ctx, char *detail, size_t len)
{
	if (!VMC_PROTO_HAS_VOLUMES(ctx->version)) {
		snprintf(detail, len, "volumes need protocol 4; a member of this view speaks %u (upgrade it)",
			 ctx->version);
		return -VMC_E_VERSION;
	}
	return 0;
}

/* The volume a change is about, in a view that speaks volumes; NULL with *rc set otherwise. */
static struct vmc_volume *volume_target(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
					const char *name, char *detail, size_t len, int *rc)
{
	struct vmc_volume *v;

	*rc = need_protocol(ctx, detail, len);
	if (*rc != 0) {
		return NULL;
	}
	v = vmc_state_volume_find(s, name);
	if (v == NULL) {
		snprintf(detail, len, "no volume named '%s' (see 'clusterctl volume list')", name);
		*rc = -VMC_E_NOT_FOUND;
	}
	return v;
}

/* The coordinator may be none. */
static const char *node_name(const struct vmc_state *s, uint32_t id, char *buf, size_t len)
{
	return id == 0 ? "no node" : vmc_state_node_label(s, id, buf, len);
}

bool vmc_group_uses_volume(const struct vmc_group_def *def, const struct vmc_volume *v)
{
	for (size_t k = 0; k < def->n_disks; k++) {
		if (!def->disks[k].local && vmc_path_inside(def->disks[k].path, v->path)) {
			return true;
		}
	}
	return false;
}

static void coordinator_update(const struct vmc_apply_ctx *ctx, struct vmc_volume *v)
{
	uint32_t c = vmc_volume_coordinator_choose(v, ctx->members, ctx->n_members);

	if (c != 0 || ctx->n_members > 0) {
		v->coordinator = c;
	}
}

void vmc_volumes_coordinators_update(struct vmc_state *s, const struct vmc_apply_ctx *ctx)
{
	for (size_t i = 0; i < s->n_volumes; i++) {
		coordinator_update(ctx, &s->volumes[i]);
	}
}

int vmc_apply_volume_add(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			 char *detail, size_t len)
{
	const struct vmc_body_volume *body = &b->volume;
	struct vmc_volume *v, *added;
	char why[160];
	size_t need = VMC_DISKS_MAX;
	int rc = need_protocol(ctx, detail, len);

	if (rc != 0) {
		return rc;
	}
	if (!vmc_valid_name(body->name)) {
		snprintf(detail, len, "'%s' is not a valid volume name (1-%d letters, digits, '-', '_', '.')",
			 body->name, VMC_NAME_MAX);
		return -VMC_E_INVALID;
	}
	if (!vmc_volume_path_valid(body->path, why, sizeof(why))) {
		snprintf(detail, len, "volume %s: %s", body->name, why);
		return -VMC_E_INVALID;
	}
	if (vmc_state_volume_find(s, body->name) != NULL) {
		snprintf(detail, len, "volume '%s' already exists; choose another name or remove it first",
			 body->name);
		return -VMC_E_EXISTS;
	}
	for (size_t i = 0; i < s->n_volumes; i++) {
		const struct vmc_volume *o = &s->volumes[i];
		if (strcmp(o->path, body->path) == 0 || vmc_path_inside(body->path, o->path) ||
		    vmc_path_inside(o->path, body->path)) {
			snprintf(detail, len, "volume %s: %s overlaps volume %s at %s", body->name, body->path,
				 o->name, o->path);
			return -VMC_E_EXISTS;
		}
	}
	if (s->n_volumes == VMC_VOLUMES_MAX) {
		snprintf(detail, len, "volume %s: the cluster has %d volumes, the most it takes", body->name,
			 VMC_VOLUMES_MAX);
		return -VMC_E_INVALID;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		return -ENOMEM;
	}
	memcpy(v->name, body->name, strlen(body->name) + 1);
	memcpy(v->path, body->path, strlen(body->path) + 1);
	v->coordinator = ctx->sender; /* it checked the path; health reports follow */
	/* Room for the locks of groups whose disks already lie there (image_locks.h). */
	for (size_t j = 0; j < s->n_groups; j++) {
		need += s->groups[j].def->n_disks;
	}
	rc = vmc_state_volume_add(s, v);
	free(v);
	if (rc != 0) {
		return rc;
	}
	added = vmc_state_volume_find(s, body->name);
	added->locks = calloc(need, sizeof(*added->locks));
	if (added->locks == NULL) {
		vmc_state_volume_remove(s, body->name);
		return -ENOMEM;
	}
	added->cap_locks = need;
	snprintf(detail, len, "volume %s added at %s; coordinator %s", added->name, added->path,
		 node_name(s, added->coordinator, why, sizeof(why)));
	return 0;
}

int vmc_apply_volume_remove(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			    char *detail, size_t len)
{
	const char *user = NULL;
	size_t users = 0;
	int rc;
	struct vmc_volume *v = volume_target(s, ctx, b->volume.name, detail, len, &rc);

	if (v == NULL) {
		return rc;
	}
	for (size_t j = 0; j < s->n_groups; j++) {
		if (vmc_group_uses_volume(s->groups[j].def, v)) {
			user = user ? user : s->groups[j].def->name;
			users++;
		}
	}
	if (users > 0) {
		snprintf(detail, len, "volume %s is used by vm %s%s: remove %s or move %s disks first", v->name,
			 user, users > 1 ? " and others" : "", users > 1 ? "them" : "it",
			 users > 1 ? "their" : "its");
		return -VMC_E_BUSY;
	}
	snprintf(detail, len, "volume %s removed", v->name);
	return vmc_state_volume_remove(s, v->name);
}

int vmc_apply_volume_move(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			  char *detail, size_t len)
{
	const struct vmc_volume_seen *seen;
	uint32_t id = 0;
	bool member = false;
	int rc;
	struct vmc_volume *v = volume_target(s, ctx, b->volume.name, detail, len, &rc);

	if (v == NULL) {
		return rc;
	}
	for (size_t i = 0; i < s->n_nodes; i++) {
		if (strcmp(s->nodes[i].name, b->volume.node) == 0) {
			id = s->nodes[i].id;
		}
	}
	if (id == 0) {
		snprintf(detail, len, "no node named '%s' (see 'clusterctl node list')", b->volume.node);
		return -VMC_E_NOT_FOUND;
	}
	for (size_t i = 0; i < ctx->n_members; i++) {
		member = member || ctx->members[i] == id;
	}
	if (!member) {
		snprintf(detail, len, "volume %s: %s is not in the cluster's view now", v->name, b->volume.node);
		return -VMC_E_BUSY;
	}
	seen = vmc_volume_seen_by(v, id);
	if (seen == NULL || seen->health != VMC_VOLUME_OK) {
		snprintf(detail, len, "volume %s is %s on %s: it cannot coordinate it", v->name,
			 vmc_volume_health_to_str(seen ? seen->health : VMC_VOLUME_UNKNOWN), b->volume.node);
		return -VMC_E_BUSY;
	}
	v->preferred = id;
	v->coordinator = id;
	snprintf(detail, len, "volume %s: coordinator %s", v->name, b->volume.node);
	return 0;
}

int vmc_apply_volume_health(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			    char *detail, size_t len)
{
	const struct vmc_body_volume_health *h = &b->volume_health;
	struct vmc_volume_seen e = { .node = ctx->sender, .err = h->err, .since_s = h->at_s };
	uint32_t before;
	size_t moved;
	char nb[24], cb[24];
	int rc;
	struct vmc_volume *v = volume_target(s, ctx, h->name, detail, len, &rc);

	if (v == NULL) {
		return rc;
	}
	if (ctx->sender == 0 || vmc_volume_health_from_str(h->health, &e.health) != 0) {
		snprintf(detail, len, "volume-health for %s: '%s' is not ok, failing, hung or unknown", v->name,
			 h->health);
		return -VMC_E_PROTOCOL;
	}
	snprintf(e.detail, sizeof(e.detail), "%s", h->detail);
	if (vmc_state_volume_seen_set(v, &e) != 0) {
		snprintf(detail, len, "volume %s: more than %d nodes report on it", v->name, VMC_VOLUME_SEEN_MAX);
		return -VMC_E_INVALID;
	}
	before = v->coordinator;
	coordinator_update(ctx, v);
	snprintf(detail, len, "volume %s %s on %s%s%s%s%s", v->name, vmc_volume_health_to_str(e.health),
		 node_name(s, ctx->sender, nb, sizeof(nb)), e.detail[0] ? " (" : "", e.detail,
		 e.detail[0] ? ")" : "", before != v->coordinator ? "; coordinator moves to " : "");
	if (before != v->coordinator && strlen(detail) + 1 < len) {
		snprintf(detail + strlen(detail), len - strlen(detail), "%s",
			 node_name(s, v->coordinator, cb, sizeof(cb)));
	}
	/* Its VMs there leave live while they still can, before the kill deadline makes them. */
	if ((e.health == VMC_VOLUME_FAILING || e.health == VMC_VOLUME_HUNG) &&
	    (moved = vmc_migrations_evacuate(s, ctx, v, ctx->sender)) > 0 && strlen(detail) + 1 < len) {
		snprintf(detail + strlen(detail), len - strlen(detail), "; %zu VM%s move%s live to other nodes", moved,
			 moved == 1 ? "" : "s", moved == 1 ? "s" : "");
	}
	return 0;
}
