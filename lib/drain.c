/*
 * Drain and resume (drain.h). Never allocates except through placement,
 * which says so (a group then waits for the next change).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "drain.h"
#include "failback.h"
#include "group_fsm.h"
#include "json_util.h"
#include "lifecycle.h"
#include "migration.h"
#include "node_admin.h"
#include "vmc_errors.h"


static bool runs(const struct vmc_group *g)
{
	return g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED;
}

static int need_version(const struct vmc_apply_ctx *ctx, char *detail, size_t len)
{
	return vmc_apply_need_version(ctx, 6, "drain and resume need", detail, len);
}

static const struct vmc_node_facts *node_of(const struct vmc_state *s, uint32_t id, char *detail, size_t len)
{
	const struct vmc_node_facts *f = vmc_state_node(s, id);

	if (f == NULL) {
		snprintf(detail, len, "no node with id %u in the cluster (see 'clusterctl node list')", id);
	}
	return f;
}

void vmc_drain_status(const struct vmc_state *s, uint32_t node, struct vmc_drain_status *out)
{
	*out = (struct vmc_drain_status){ 0 };
	for (size_t i = 0; i < s->n_groups; i++) {
		const struct vmc_group *g = &s->groups[i];
		if (g->owner == node && runs(g)) {
			out->left++;
			out->moving += g->mig.phase != VMC_MIG_NONE;
		}
	}
}

int vmc_apply_node_drain(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			 char *detail, size_t len)
{
	const struct vmc_body_node_admin *m = &b->node_admin;
	const struct vmc_node_facts *f, *t = NULL;
	enum vmc_node_mode mode;
	struct vmc_node_admin *a;
	struct vmc_drain_status st;
	int rc = need_version(ctx, detail, len);

	if (rc != 0) {
		return rc;
	}
	if ((f = node_of(s, m->node, detail, len)) == NULL ||
	    (m->target != 0 && (t = node_of(s, m->target, detail, len)) == NULL)) {
		return -VMC_E_NOT_FOUND;
	}
	if (!vmc_apply_in_view(ctx, m->node)) {
		snprintf(detail, len, "node %s is down: only a node in the cluster drains", f->name);
		return -VMC_E_BUSY;
	}
	mode = vmc_node_mode(s, m->node);
	if (mode == VMC_NODE_PAUSED && m->shutdown) {
		if ((a = vmc_node_admin_edit(s, m->node)) == NULL) {
			snprintf(detail, len, "too many nodes");
			return -VMC_E_INVALID;
		}
		a->shutdown = true;
		a->incarnation = f->incarnation;
		a->resume_on_return = false; /* an operator paused it: it stays paused when it is back */
		snprintf(detail, len, "node %s shuts down: it is paused, nothing to move (it stays paused when it is back)",
			 f->name);
		return 0;
	}
	if (mode == VMC_NODE_PAUSED) {
		snprintf(detail, len, "node %s is paused already: nothing runs there (clusterctl node resume %s)", f->name,
			 f->name);
		return -VMC_E_BUSY;
	}
	if (mode == VMC_NODE_DRAINING && !m->force && !m->shutdown) {
		snprintf(detail, len, "node %s is draining already (add --force to move what cannot go live)", f->name);
		return -VMC_E_BUSY;
	}
	if (t != NULL && (m->target == m->node || !vmc_apply_in_view(ctx, m->target) || !vmc_node_takes_groups(s, m->target))) {
		snprintf(detail, len, "node %s cannot be the drain's target: %s", t->name,
			 m->target == m->node ? "it is the node drained" : !vmc_apply_in_view(ctx, m->target) ? "it is down"
											: "it takes no VMs");
		return -VMC_E_BUSY;
	}
	if ((a = vmc_node_admin_edit(s, m->node)) == NULL) {
		snprintf(detail, len, "too many nodes");
		return -VMC_E_INVALID;
	}
	/* Asked again with force, the failed live tries still count: it goes on with quick migration. */
	for (size_t i = 0; i < s->n_groups; i++) {
		if (s->groups[i].owner == m->node && !m->force) {
			s->groups[i].drain = (struct vmc_drain_tries){ 0 };
		}
	}
	a->mode = VMC_NODE_DRAINING;
	a->force = m->force;
	a->stop = false;
	a->freeze = false;
	a->drain_target = m->target;
	a->since_s = m->at_s;
	a->until_s = 0;
	if (m->shutdown) {
		/* A host going down: what cannot move live still has to go, one way or another. */
		a->resume_on_return = !a->shutdown ? mode == VMC_NODE_ACTIVE : a->resume_on_return;
		a->shutdown = true;
		a->incarnation = f->incarnation;
		a->force = true;
		a->stop = s->settings.shutdown_policy == VMC_SHUTDOWN_STOP;
		a->freeze = s->settings.shutdown_policy == VMC_SHUTDOWN_FREEZE;
	}
	vmc_drain_status(s, m->node, &st);
	snprintf(detail, len, "node %s %s%s: %zu VM%s to move%s%s", f->name, m->shutdown ? "shuts down, draining" : "draining",
		 m->shutdown ? (a->stop     ? " (shutdown_policy stop: each VM stops and starts elsewhere)"
				: a->freeze ? " (shutdown_policy freeze: each VM stops until it is back)"
					    : " (shutdown_policy migrate)")
			     : m->force ? " (forced)" : "",
		 st.left, st.left == 1 ? "" : "s", t ? " to " : "", t ? t->name : "");
	return 0;
}

/* Where g goes off its draining node: the drain's target, else placement's choice, else any that passes. */
static uint32_t drain_target(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			     const struct vmc_node_admin *a, const struct vmc_group *g, char *why, size_t len)
{
	enum vmc_place_verdict verdict;
	uint32_t node = 0;

	if (a->drain_target != 0) {
		return vmc_migration_check(s, ctx, g, a->drain_target, why, len) == 0 ? a->drain_target : 0;
	}
	if (vmc_group_place(s, ctx, g, a->node, &verdict, &node, why, len) == 0 && verdict == VMC_PLACE_START &&
	    vmc_migration_check(s, ctx, g, node, why, len) == 0) {
		return node;
	}
	return vmc_migration_pick_target(s, ctx, g, why, len);
}

/* Stop g to start it on another node: when placement has one. */
static bool relocate_step(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_node_admin *a,
			  struct vmc_group *g, const char *nb, const char *why_not_moving)
{
	enum vmc_place_verdict verdict;
	uint32_t node = 0;
	char where[256];

	if (vmc_group_place(s, ctx, g, a->node, &verdict, &node, where, sizeof(where)) != 0 || verdict != VMC_PLACE_START) {
		snprintf(g->reason, sizeof(g->reason), "cannot leave draining %s: %.100s; nor can it start elsewhere: %.140s",
			 nb, why_not_moving, where);
		return false;
	}
	vmc_group_transition(g, VMC_GEV_RELOCATE, where, sizeof(where));
	g->relocate = true;
	snprintf(g->reason, sizeof(g->reason), "stopping to start on another node: %s drains (%.200s)", nb,
		 why_not_moving);
	return true;
}

/* The next move of g off its draining node; false when it can go nowhere (its reason says why). */
static bool drain_step(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_node_admin *a,
		       struct vmc_group *g)
{
	char why[512], file[512], id[VMC_MIG_ID_MAX + 1], nb[24], tb[24];
	bool quick = false;
	uint32_t target = 0;

	char lb[24];

	snprintf(nb, sizeof(nb), "%s", vmc_state_node_label(s, a->node, lb, sizeof(lb)));
	if (vmc_apply_by_pacemaker(ctx, g->def)) {
		/* Pacemaker's to move: the drain waits until it has (a node in standby there empties). */
		snprintf(g->reason, sizeof(g->reason), "managed by pacemaker: %s drains once pacemaker moves it "
			 "(crm node standby %s, or pcs node standby %s)", nb, nb, nb);
		return true;
	}
	if (a->stop) {
		return relocate_step(s, ctx, a, g, nb, "shutdown_policy is stop");
	}
	if (a->freeze) {
		vmc_group_transition(g, VMC_GEV_RELOCATE, why, sizeof(why));
		g->relocate = true;
		snprintf(g->reason, sizeof(g->reason), "stopping with %s's shutdown (shutdown_policy freeze): it starts there "
			 "again when %s is back", nb, nb);
		return true;
	}
	if (g->drain.live_failed < VMC_DRAIN_LIVE_TRIES) {
		target = drain_target(s, ctx, a, g, why, sizeof(why));
	} else if (!a->force) {
		snprintf(g->reason, sizeof(g->reason), "cannot leave draining %s: its live migration failed %u times "
			 "(clusterctl node drain %s --force moves it with downtime)", nb, g->drain.live_failed, nb);
		return false;
	} else if (g->drain.quick_failed > 0) {
		return relocate_step(s, ctx, a, g, nb, "--force: live and quick migration failed");
	} else if (vmc_migration_state_file(s, g, "0", file, sizeof(file)) != 0) {
		return relocate_step(s, ctx, a, g, nb, "--force: live migration failed, and it has no volume for a quick one");
	} else {
		quick = true;
		target = drain_target(s, ctx, a, g, why, sizeof(why));
	}
	if (target == 0 && quick) {
		return relocate_step(s, ctx, a, g, nb, why);
	}
	if (target == 0) {
		snprintf(g->reason, sizeof(g->reason), "cannot leave draining %s: %.260s", nb, why);
		return false;
	}
	vmc_migration_derive_id(s, g, quick ? "drain-quick" : "drain", id);
	vmc_migration_queue(s, g, target, quick, VMC_MIG_BY_DRAIN, a->since_s, id);
	snprintf(g->reason, sizeof(g->reason), "%s %s to %s: %s drains%s", g->mig.phase == VMC_MIG_QUEUED ? "queued to move"
		 : "moving", quick ? "by quick migration" : "live", vmc_state_node_label(s, target, tb, sizeof(tb)), nb,
		 quick ? " (--force: its live migration failed)" : "");
	return true;
}

/* One pass over a draining node's groups, high priority first (they get the first pick of the targets). */
static void drain_node(struct vmc_state *s, const struct vmc_apply_ctx *ctx, struct vmc_node_admin *a)
{
	size_t left = 0, busy = 0;

	for (int p = VMC_PRIORITY_HIGH; p <= VMC_PRIORITY_NO_AUTO_START; p++) {
		for (size_t i = 0; i < s->n_groups; i++) {
			struct vmc_group *g = &s->groups[i];
			if (g->owner != a->node || !runs(g) || (int)g->def->priority != p) {
				continue;
			}
			left++;
			/* Moving, starting or stopping: wait for where that ends. */
			if (g->mig.phase != VMC_MIG_NONE || g->state != VMC_GROUP_ONLINE || drain_step(s, ctx, a, g)) {
				busy++;
			}
		}
	}
	if (left == 0) {
		a->mode = VMC_NODE_PAUSED;
	} else if (busy == 0) {
		a->mode = VMC_NODE_DRAIN_FAILED;
	}
}

void vmc_drains_progress(struct vmc_state *s, const struct vmc_apply_ctx *ctx)
{
	if (!VMC_PROTO_HAS_DRAIN(ctx->version)) {
		return;
	}
	for (size_t i = 0; i < s->n_admin; i++) {
		if (s->admin[i].mode == VMC_NODE_DRAINING && vmc_apply_in_view(ctx, s->admin[i].node)) {
			drain_node(s, ctx, &s->admin[i]);
		}
	}
}

void vmc_drain_move_ended(struct vmc_state *s, struct vmc_group *g, bool done)
{
	const struct vmc_migration *m = &g->mig;

	switch (m->cause) {
	case VMC_MIG_BY_DRAIN:
		if (!done) {
			g->drain.live_failed += !m->quick;
			g->drain.quick_failed += m->quick;
		} else if (vmc_node_mode(s, g->owner) != VMC_NODE_ACTIVE) {
			g->home = (struct vmc_home){ .kind = VMC_HOME_DRAIN, .node = g->owner, .since_s = m->since_s };
			g->drain = (struct vmc_drain_tries){ 0 };
		}
		break;
	case VMC_MIG_BY_FAILBACK:
		if (done) {
			g->home = (struct vmc_home){ 0 };
		} else {
			g->home.failed++;
			g->home.since_s = m->since_s;
		}
		break;
	case VMC_MIG_BY_OPERATOR:
	case VMC_MIG_BY_PACEMAKER:
		/* An operator (or pacemaker) put it where it is going: nothing pulls it back. */
		if (done) {
			g->home = (struct vmc_home){ 0 };
		}
		break;
	case VMC_MIG_BY_EVACUATION:
		break;
	}
}

int vmc_apply_node_resume(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			  char *detail, size_t len)
{
	const struct vmc_body_node_admin *m = &b->node_admin;
	const struct vmc_node_facts *f;
	struct vmc_node_admin *a;
	size_t back = 0, later = 0;
	bool immediate = strcmp(m->failback, "immediate") == 0, none = strcmp(m->failback, "none") == 0;
	int rc = need_version(ctx, detail, len);

	if (rc != 0) {
		return rc;
	}
	if ((f = node_of(s, m->node, detail, len)) == NULL) {
		return -VMC_E_NOT_FOUND;
	}
	a = (struct vmc_node_admin *)vmc_node_admin(s, m->node);
	if (m->expired && (a == NULL || a->mode != VMC_NODE_QUARANTINED || m->at_s < a->until_s)) {
		snprintf(detail, len, "node %s: its quarantine %s", f->name,
			 a == NULL || a->mode != VMC_NODE_QUARANTINED ? "is over already" : "has not run out yet");
		return -VMC_E_BUSY;
	}
	if (a != NULL) {
		if (a->mode == VMC_NODE_QUARANTINED) {
			a->n_failures = 0; /* forgiven: its next loss starts a new count */
		}
		a->mode = VMC_NODE_ACTIVE;
		a->force = false;
		a->stop = false;
		a->freeze = false;
		a->shutdown = false;
		a->resume_on_return = false;
		a->drain_target = 0;
		a->until_s = 0;
		a->since_s = m->at_s;
	}
	for (size_t i = 0; i < s->n_groups; i++) {
		struct vmc_group *g = &s->groups[i];
		char why[256], id[VMC_MIG_ID_MAX + 1];
		if (g->owner == m->node && g->mig.phase == VMC_MIG_QUEUED && g->mig.cause == VMC_MIG_BY_DRAIN) {
			g->mig = (struct vmc_migration){ 0 };
			snprintf(g->reason, sizeof(g->reason), "drain of %s cancelled: it runs there", f->name);
		}
		if (g->owner == m->node) {
			g->drain = (struct vmc_drain_tries){ 0 };
		}
		if (g->home.node != m->node || g->home.kind != VMC_HOME_DRAIN) {
			continue;
		}
		if (none) {
			g->home = (struct vmc_home){ 0 };
			continue;
		}
		g->home.kind = VMC_HOME_RESUMED;
		if (immediate && vmc_migration_check(s, ctx, g, m->node, why, sizeof(why)) == 0) {
			vmc_migration_derive_id(s, g, "resume", id);
			vmc_migration_queue(s, g, m->node, false, VMC_MIG_BY_FAILBACK, m->at_s, id);
			snprintf(g->reason, sizeof(g->reason), "%s back to %s: it was resumed", g->mig.phase == VMC_MIG_QUEUED
				 ? "queued to move" : "moving", f->name);
			back++;
		} else {
			later++;
		}
	}
	vmc_node_admin_tidy(s);
	snprintf(detail, len, "node %s takes VMs again%s: %zu drained VM%s moving back, %zu left to their failback policy",
		 f->name, m->expired ? " (its quarantine ran out)" : "", back, back == 1 ? "" : "s", later);
	return 0;
}

bool vmc_drain_node_restarted(struct vmc_state *s, uint32_t node, uint64_t incarnation)
{
	struct vmc_node_admin *a = (struct vmc_node_admin *)vmc_node_admin(s, node);

	if (a == NULL || !a->shutdown || incarnation == 0 || incarnation == a->incarnation) {
		return false;
	}
	a->shutdown = false;
	a->stop = false;
	a->freeze = false;
	a->force = false;
	a->drain_target = 0;
	if (!a->resume_on_return) {
		/* An operator had drained it before the shutdown: it stays paused until node resume. */
		if (a->mode == VMC_NODE_DRAINING || a->mode == VMC_NODE_DRAIN_FAILED) {
			a->mode = VMC_NODE_PAUSED;
		}
		return true;
	}
	a->resume_on_return = false;
	if (a->mode == VMC_NODE_DRAINING || a->mode == VMC_NODE_PAUSED || a->mode == VMC_NODE_DRAIN_FAILED) {
		a->mode = VMC_NODE_ACTIVE;
	}
	/* What the shutdown moved away goes back as each VM's failback policy says; what it froze starts here. */
	for (size_t i = 0; i < s->n_groups; i++) {
		struct vmc_group *g = &s->groups[i];
		if (g->home.kind == VMC_HOME_DRAIN && g->home.node == node) {
			g->home.kind = VMC_HOME_RESUMED;
		} else if (g->home.kind == VMC_HOME_FROZEN && g->home.node == node && g->state == VMC_GROUP_OFFLINE &&
			   g->want_started) {
			vmc_group_transition(g, VMC_GEV_START, g->reason, sizeof(g->reason));
			g->owner = node;
			g->home = (struct vmc_home){ 0 };
			snprintf(g->reason, sizeof(g->reason), "starting again on its node, back from its shutdown");
		}
	}
	vmc_node_admin_tidy(s);
	return true;
}

json_object *vmc_drain_tries_to_json(const struct vmc_drain_tries *t)
{
	json_object *o;

	if (t->live_failed == 0 && t->quick_failed == 0) {
		return NULL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "live_failed", json_object_new_int(t->live_failed));
	json_object_object_add(o, "quick_failed", json_object_new_int(t->quick_failed));
	return o;
}

int vmc_drain_tries_from_json(json_object *o, struct vmc_drain_tries *t)
{
	uint32_t live, quick;

	if (!vmc_json_u32(o, "live_failed", &live) || !vmc_json_u32(o, "quick_failed", &quick) || live > 255 ||
	    quick > 255) {
		return -EINVAL;
	}
	t->live_failed = (uint8_t)live;
	t->quick_failed = (uint8_t)quick;
	return 0;
}
