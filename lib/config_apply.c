/*
 * Configuration changes (config_apply.h): VM definitions and cluster-wide
 * settings. A definition is validated again here, by every replica, from
 * the bytes in the message, whatever the sender checked before.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_apply.h"
#include "start_order.h"
#include "image_locks.h"
#include "vmc_errors.h"

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

/*
 * From protocol 4 every disk lies on a volume unless marked local; and a
 * running group cannot be given an image another group holds.
 */
static int disks_check(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
		       const struct vmc_group_def *def, const struct vmc_group *running, char *detail,
		       size_t len)
{
	const struct vmc_disk *off;
	const struct vmc_image_lock *l;
	const struct vmc_volume *on = NULL;
	char why[320];

	/* A cluster with no volume yet keeps the disks it had (clusterctl volume
	 * add comes with the daemon's volume commands). */
	if (!VMC_PROTO_HAS_VOLUMES(ctx->version) || s->n_volumes == 0) {
		return 0;
	}
	off = vmc_locks_disk_off_volumes(s, def);
	if (off != NULL) {
		snprintf(detail, len,
			 "vm %s: disk %s is on no volume: register its directory ('clusterctl volume add NAME "
			 "DIR') or mark the disk \"local\": true",
			 def->name, off->path);
		return -VMC_E_INVALID;
	}
	l = running != NULL && vmc_group_holds_locks(running) ? vmc_locks_conflict(s, def, def->name, &on) : NULL;
	if (l != NULL) {
		vmc_locks_describe(s, l, on, why, sizeof(why));
		snprintf(detail, len, "vm %s: %.300s", def->name, why);
		return -VMC_E_BUSY;
	}
	return 0;
}

/* What older members cannot read (start order, a window with minutes), and start_after cycles. */
static int start_order_check(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			     const struct vmc_group_def *def, char *detail, size_t len)
{
	bool newer = def->start_after.n > 0 || def->start_after_timeout_s != VMC_START_AFTER_TIMEOUT_S_DEFAULT ||
		     (def->failback == VMC_FAILBACK_WINDOW &&
		      (def->failback_start_min % 60 != 0 || def->failback_end_min % 60 != 0));

	if (newer && !VMC_PROTO_HAS_DRAIN(ctx->version)) {
		snprintf(detail, len, "start_after, start_after_timeout_s and failback windows with minutes need protocol 6; "
			 "a member of this view speaks %u (upgrade it)", ctx->version);
		return -VMC_E_VERSION;
	}
	return vmc_start_order_check(s, def, detail, len);
}

int vmc_apply_group_add(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			char *detail, size_t len)
{
	struct vmc_group_def *def = NULL;
	int rc;

	rc = vmc_group_def_from_json(b->group_add.definition, &def, detail, len);
	if (rc != 0) {
		return rc == -EINVAL ? -VMC_E_INVALID : rc;
	}
	rc = mac_check(s, def, detail, len);
	if (rc == 0) {
		rc = disks_check(s, ctx, def, NULL, detail, len);
	}
	if (rc == 0) {
		rc = start_order_check(s, ctx, def, detail, len);
	}
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

int vmc_apply_group_remove(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			   const union vmc_body *b, char *detail, size_t len)
{
	const char *name = b->name.name;
	struct vmc_group *g;

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
static void describe_set(const char *name, const char *const *assignments, size_t n, char *detail,
			 size_t len)
{
	int used = snprintf(detail, len, "vm %s changed:", name);

	for (size_t i = 0; i < n && used > 0 && (size_t)used < len; i++) {
		used += snprintf(detail + used, len - (size_t)used, " %s", assignments[i]);
	}
}

int vmc_apply_group_set(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			char *detail, size_t len)
{
	const char *name = b->set.name;
	struct vmc_group_def *def = NULL;
	struct vmc_group *g;
	int rc;

	g = vmc_state_group_find(s, name);
	if (g == NULL) {
		snprintf(detail, len, "no vm named '%s' (see 'clusterctl vm list')", name);
		return -VMC_E_NOT_FOUND;
	}
	rc = vmc_group_def_set(g->def, b->set.assignments, b->set.n, &def, detail, len);
	if (rc != 0) {
		return rc == -EINVAL ? -VMC_E_INVALID : rc;
	}
	rc = mac_check(s, def, detail, len);
	if (rc == 0) {
		rc = disks_check(s, ctx, def, g, detail, len);
	}
	if (rc == 0) {
		rc = start_order_check(s, ctx, def, detail, len);
	}
	if (rc != 0) {
		vmc_group_def_free(def);
		return rc;
	}
	describe_set(name, b->set.assignments, b->set.n, detail, len);
	return vmc_state_group_redefine(s, def);
}

int vmc_apply_settings_set(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			   const union vmc_body *b, char *detail, size_t len)
{
	const char *const *assignments = b->set.assignments;
	struct vmc_settings next;
	size_t n = b->set.n;

	if (vmc_settings_set(&s->settings, assignments, n, &next, detail, len) != 0) {
		return -VMC_E_INVALID;
	}
	if (!VMC_PROTO_HAS_VOLUMES(ctx->version) &&
	    (next.fence_method == VMC_FENCE_LEASE || next.lease_io_timeout_s != s->settings.lease_io_timeout_s)) {
		snprintf(detail, len, "lease settings need protocol 4; a member of this view speaks %u (upgrade it)",
			 ctx->version);
		return -VMC_E_VERSION;
	}
	if (!VMC_PROTO_HAS_MIGRATION(ctx->version) && vmc_settings_migration_changed(&next, &s->settings)) {
		snprintf(detail, len, "migration settings need protocol 5; a member of this view speaks %u (upgrade it)",
			 ctx->version);
		return -VMC_E_VERSION;
	}
	if (!VMC_PROTO_HAS_DRAIN(ctx->version) && vmc_settings_nodes_changed(&next, &s->settings)) {
		snprintf(detail, len, "failback, quarantine, timezone and shutdown settings need protocol 6; a member of "
			 "this view speaks %u (upgrade it)", ctx->version);
		return -VMC_E_VERSION;
	}
	s->settings = next;
	snprintf(detail, len, "cluster settings changed:");
	for (size_t i = 0; i < n && strlen(detail) + 1 < len; i++) {
		snprintf(detail + strlen(detail), len - strlen(detail), " %s", assignments[i]);
	}
	return 0;
}

