/*
 * VM group lifecycle changes (lifecycle.h). Each handler first computes
 * and allocates everything, then changes the state through
 * vmc_group_transition() (group_fsm.h): an -ENOMEM leaves the state as it
 * was (apply.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drain.h"
#include "failback.h"
#include "group_fsm.h"
#include "image_locks.h"
#include "lifecycle.h"
#include "node_admin.h"
#include "volume_apply.h"
#include "placement.h"
#include "vmc_errors.h"

static struct vmc_group *group_named(struct vmc_state *s, const char *name, char *detail, size_t len,
				     int *rc)
{
	struct vmc_group *g = vmc_state_group_find(s, name);

	if (g == NULL) {
		snprintf(detail, len, "no vm named '%s' (see 'clusterctl vm list')", name);
		*rc = -VMC_E_NOT_FOUND;
	}
	return g;
}



/*
 * The placement view of the state, one filler for starts, failures and
 * recoveries: nodes in the view that reported their facts are up, members
 * that have not are named with nothing to offer, and every group counts
 * where its owner is (offline and failed ones run nowhere).
 */
struct place_view {
	struct vmc_place_node nodes[VMC_STATE_NODES_MAX];
	char names[VMC_STATE_NODES_MAX][24];
	struct vmc_place_group *groups; /* one per state group, then the moving ones again at their targets */
	struct vmc_place_view view;
};

static int place_view_alloc(const struct vmc_state *s, struct place_view *pv)
{
	pv->groups = calloc(s->n_groups ? 2 * s->n_groups : 1, sizeof(*pv->groups));
	return pv->groups ? 0 : -ENOMEM;
}

/* Bit i: volume i is failing or hung on node. */
static uint32_t bad_volumes(const struct vmc_state *s, uint32_t node)
{
	uint32_t mask = 0;

	for (size_t i = 0; i < s->n_volumes && i < 32; i++) {
		const struct vmc_volume_seen *e = vmc_volume_seen_by(&s->volumes[i], node);
		if (e != NULL && (e->health == VMC_VOLUME_FAILING || e->health == VMC_VOLUME_HUNG)) {
			mask |= 1u << i;
		}
	}
	return mask;
}

static uint32_t used_volumes(const struct vmc_state *s, const struct vmc_group_def *def)
{
	uint32_t mask = 0;

	for (size_t i = 0; i < s->n_volumes && i < 32; i++) {
		if (vmc_group_uses_volume(def, &s->volumes[i])) {
			mask |= 1u << i;
		}
	}
	return mask;
}

static void place_view_fill(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			    struct place_view *pv)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_nodes; i++, n++) {
		pv->nodes[n] = (struct vmc_place_node){
			.id = s->nodes[i].id, .name = vmc_state_node_label(s, s->nodes[i].id, pv->names[n], sizeof(pv->names[n])),
			.up = vmc_apply_in_view(ctx, s->nodes[i].id), .active = vmc_node_takes_groups(s, s->nodes[i].id),
			.mem_mib = s->nodes[i].mem_mib,
			.bad_volumes = bad_volumes(s, s->nodes[i].id),
		};
	}
	for (size_t i = 0; ctx != NULL && i < ctx->n_members && n < VMC_STATE_NODES_MAX; i++) {
		if (vmc_state_node(s, ctx->members[i]) == NULL) {
			snprintf(pv->names[n], sizeof(pv->names[n]), "node id %u", ctx->members[i]);
			pv->nodes[n] = (struct vmc_place_node){ .id = ctx->members[i], .name = pv->names[n],
								.up = true, .active = true, .mem_mib = 0 };
			n++;
		}
	}
	size_t k = s->n_groups;
	for (size_t j = 0; j < s->n_groups; j++) {
		const struct vmc_group *g = &s->groups[j];
		bool gone = g->state == VMC_GROUP_OFFLINE || g->state == VMC_GROUP_FAILED;
		pv->groups[j] = (struct vmc_place_group){ g->def, gone ? 0 : g->owner, g->want_started,
							  used_volumes(s, g->def) };
		/* A move asked for takes its room at the target already, so a drain spreads its groups. */
		if (!gone && g->mig.phase != VMC_MIG_NONE) {
			pv->groups[k++] = (struct vmc_place_group){ g->def, g->mig.target, false, 0, .shadow = true };
		}
	}
	pv->view = (struct vmc_place_view){ pv->nodes, n, pv->groups, k };
}

/* Where placement puts g (on == 0), or whether it may start on node on. */
static int place_in_view(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
			 uint32_t exclude, uint32_t on, enum vmc_place_verdict *verdict, uint32_t *node, char *why,
			 size_t why_len)
{
	struct place_view pv;
	const struct vmc_place_group *pg;

	if (place_view_alloc(s, &pv) != 0) {
		return -ENOMEM;
	}
	place_view_fill(s, ctx, &pv);
	pg = &pv.groups[g - s->groups];
	*verdict = on != 0 ? vmc_place_group_on(&pv.view, pg, on, why, why_len)
			   : vmc_place_group(&pv.view, pg, exclude, node, why, why_len);
	free(pv.groups);
	return *verdict == VMC_PLACE_NO_MEMORY ? -ENOMEM : 0;
}

int vmc_group_place(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
		       const struct vmc_group *g, uint32_t exclude, enum vmc_place_verdict *verdict,
		       uint32_t *node, char *why, size_t why_len)
{
	return place_in_view(s, ctx, g, exclude, 0, verdict, node, why, why_len);
}

int vmc_group_place_on(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
		       uint32_t node, enum vmc_place_verdict *verdict, char *why, size_t why_len)
{
	return place_in_view(s, ctx, g, 0, node, verdict, NULL, why, why_len);
}

/* The transition, which the caller has checked is in the table. */
static void group_take(struct vmc_group *g, enum vmc_group_event ev)
{
	char ignored[160];

	vmc_group_transition(g, ev, ignored, sizeof(ignored));
}

int vmc_apply_node_facts(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			 char *detail, size_t len)
{
	const struct vmc_body_node_facts *body = &b->node_facts;
	struct vmc_node_facts f = { .id = ctx->sender, .mem_mib = body->mem_mib,
				    .watchdog = body->watchdog && VMC_PROTO_HAS_VOLUMES(ctx->version) };

	if (ctx->sender == 0 || strlen(body->name) >= sizeof(f.name) || !vmc_valid_name(body->name)) {
		snprintf(detail, len, "node-facts without a sender, a valid name and mem_mib");
		return -VMC_E_PROTOCOL;
	}
	if (body->migration_addr != NULL && VMC_PROTO_HAS_MIGRATION(ctx->version)) {
		uint32_t net;
		unsigned prefix;
		char cidr[64];
		snprintf(cidr, sizeof(cidr), "%.47s/32", body->migration_addr);
		if (strlen(body->migration_addr) >= sizeof(f.migration_addr) || vmc_cidr_parse(cidr, &net, &prefix) != 0) {
			snprintf(detail, len, "node-facts with a migration_addr that is not an IPv4 address");
			return -VMC_E_PROTOCOL;
		}
		memcpy(f.migration_addr, body->migration_addr, strlen(body->migration_addr) + 1);
	}
	if (VMC_PROTO_HAS_DRAIN(ctx->version)) {
		const struct vmc_node_facts *had = vmc_state_node(s, ctx->sender);
		f.incarnation = body->incarnation;
		f.mig_window = had != NULL && had->incarnation == f.incarnation ? had->mig_window : 0;
	}
	if (VMC_PROTO_HAS_MIGRATION(ctx->version)) {
		/* Truncated is safe: a model cut short matches none, so it only refuses. */
		snprintf(f.cpu_vendor, sizeof(f.cpu_vendor), "%s", body->cpu_vendor ? body->cpu_vendor : "");
		snprintf(f.qemu_version, sizeof(f.qemu_version), "%s", body->qemu_version ? body->qemu_version : "");
		snprintf(f.accel, sizeof(f.accel), "%s", body->accel ? body->accel : "");
		snprintf(f.cpu_models, sizeof(f.cpu_models), "%s", body->cpu_models ? body->cpu_models : "");
	}
	for (size_t i = 0; i < s->n_nodes; i++) {
		if (s->nodes[i].id != f.id && strcmp(s->nodes[i].name, body->name) == 0) {
			snprintf(detail, len, "node %u calls itself %s, the name of node %u", f.id, body->name,
				 s->nodes[i].id);
			return -VMC_E_EXISTS;
		}
	}
	memcpy(f.name, body->name, strlen(body->name) + 1);
	if (vmc_state_node_set(s, &f) != 0) {
		snprintf(detail, len, "too many nodes");
		return -VMC_E_INVALID;
	}
	/* It speaks for itself again: whatever fencing the others tried is over. */
	vmc_state_fencing_clear(s, f.id);
	if (VMC_PROTO_HAS_DRAIN(ctx->version)) {
		vmc_node_admin_back(s, f.id, body->at_s);
		if (vmc_drain_node_restarted(s, f.id, f.incarnation)) {
			snprintf(detail, len, "node %s is back from its shutdown and takes VMs again", f.name);
			return 0;
		}
	}
	snprintf(detail, len, "node %s offers %u MiB to VMs%s", f.name, f.mem_mib,
		 f.watchdog ? " and holds an armed watchdog" : "");
	return 0;
}

/* The node a start or stop names (protocol 7): 0 when none, else checked to be a member. */
static int named_node(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
		      uint32_t node, const char *verb, char *detail, size_t len)
{
	int rc;

	if (node == 0) {
		if (vmc_apply_by_pacemaker(ctx, g->def)) {
			snprintf(detail, len, "vm %s is managed by pacemaker: pacemaker %ss it (crm resource %s RESOURCE, or "
				 "pcs resource %s RESOURCE, for its ocf:vmcluster:VMGroup resource)", g->def->name, verb,
				 verb, strcmp(verb, "start") == 0 ? "enable" : "disable");
			return -VMC_E_BUSY;
		}
		return 0;
	}
	rc = vmc_apply_need_version(ctx, 7, "a start or stop on one node needs", detail, len);
	if (rc == 0 && vmc_state_node(s, node) == NULL) {
		snprintf(detail, len, "no node with id %u in the cluster (see 'clusterctl node list')", node);
		rc = -VMC_E_NOT_FOUND;
	}
	return rc;
}

int vmc_apply_group_start(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			  char *detail, size_t len)
{
	int rc = 0;
	struct vmc_group *g = group_named(s, b->name.name, detail, len, &rc);
	enum vmc_place_verdict verdict;
	const struct vmc_image_lock *lock;
	const struct vmc_volume *on = NULL;
	char why[192], nb[24];
	uint32_t node = 0;

	if (g == NULL || (rc = named_node(s, ctx, g, b->name.node, "start", detail, len)) != 0) {
		return rc;
	}
	if (!vmc_group_transition_allowed(g->state, VMC_GEV_START)) {
		snprintf(detail, len, "vm %s is %s already%s%s", g->def->name, vmc_group_state_to_str(g->state),
			 g->owner != 0 ? " on " : "", g->owner != 0 ? vmc_state_node_label(s, g->owner, nb, sizeof(nb)) : "");
		return -VMC_E_BUSY;
	}
	lock = vmc_locks_conflict(s, g->def, g->def->name, &on);
	if (lock != NULL) {
		char held[320];
		vmc_locks_describe(s, lock, on, held, sizeof(held));
		snprintf(detail, len, "vm %s cannot start: %.300s", g->def->name, held);
		return -VMC_E_BUSY;
	}
	if (b->name.node != 0) {
		node = b->name.node;
		rc = vmc_group_place_on(s, ctx, g, node, &verdict, why, sizeof(why));
	} else {
		rc = vmc_group_place(s, ctx, g, 0, &verdict, &node, why, sizeof(why));
	}
	if (rc != 0) {
		return rc;
	}
	if (verdict != VMC_PLACE_START) {
		snprintf(detail, len, "vm %s cannot start: %s", g->def->name, why);
		return -VMC_E_BUSY;
	}
	group_take(g, VMC_GEV_START);
	g->want_started = true;
	g->owner = node;
	g->n_failures = 0; /* an operator's start forgives the past */
	snprintf(g->reason, sizeof(g->reason), "started by %s: %.160s",
		 vmc_apply_by_pacemaker(ctx, g->def) ? "pacemaker" : "an operator", why);
	snprintf(detail, len, "vm %s starting: %s", g->def->name, why);
	return 0;
}

int vmc_apply_group_stop(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			 char *detail, size_t len)
{
	int rc = 0;
	struct vmc_group *g = group_named(s, b->name.name, detail, len, &rc);
	bool was_running;
	char nb[24];

	if (g == NULL || (rc = named_node(s, ctx, g, b->name.node, "stop", detail, len)) != 0) {
		return rc;
	}
	was_running = g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED;
	/* Stop there only: pacemaker's stop on a node where the VM is not is done (OCF's stop of a stopped resource). */
	if (b->name.node != 0 && (was_running ? g->owner : g->failed_on) != b->name.node) {
		snprintf(detail, len, "vm %s does not run on %s: nothing to stop there", g->def->name,
			 vmc_state_node_label(s, b->name.node, nb, sizeof(nb)));
		return 0;
	}
	rc = vmc_group_transition(g, VMC_GEV_STOP, detail, len);
	if (rc != 0) {
		return rc;
	}
	g->want_started = false;
	g->relocate = false;
	snprintf(g->reason, sizeof(g->reason), "stopped by %s",
		 vmc_apply_by_pacemaker(ctx, g->def) ? "pacemaker" : "an operator");
	if (!was_running) {
		g->owner = 0;
		snprintf(detail, len, "vm %s stopped (it was not running)", g->def->name);
	} else {
		snprintf(detail, len, "vm %s stopping", g->def->name);
	}
	return 0;
}

/* May the group restart where it is? The same hard rules as placement. */
static bool node_still_fits(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			    const struct vmc_group *g)
{
	const struct vmc_node_facts *f = vmc_state_node(s, g->owner);
	uint64_t used = 0;

	if (f == NULL || !vmc_apply_in_view(ctx, g->owner) || !vmc_node_takes_groups(s, g->owner) ||
	    (g->def->possible_owners.n > 0 && !vmc_strlist_contains(&g->def->possible_owners, f->name)) ||
	    (used_volumes(s, g->def) & bad_volumes(s, g->owner)) != 0) {
		return false;
	}
	for (size_t j = 0; j < s->n_groups; j++) {
		if (&s->groups[j] != g && s->groups[j].owner == g->owner) {
			used += s->groups[j].def->memory_mib;
		}
	}
	return used + g->def->memory_mib <= f->mem_mib;
}

/* Failed for good: nothing runs it, and (from protocol 7) it remembers where it failed. */
static void group_give_up(const struct vmc_apply_ctx *ctx, struct vmc_group *g)
{
	group_take(g, VMC_GEV_GIVE_UP);
	if (VMC_PROTO_HAS_PACEMAKER(ctx->version)) {
		g->failed_on = g->owner;
	}
	g->owner = 0;
}

/*
 * Pacemaker's group stopped where it ran: failed there, so that its
 * monitor says so and pacemaker recovers it as it decides.
 */
static int group_left_to_pacemaker(const struct vmc_apply_ctx *ctx, struct vmc_group *g, const char *what,
				   char *detail, size_t len)
{
	snprintf(g->reason, sizeof(g->reason), "%.200s: pacemaker recovers it (managed by pacemaker)", what);
	group_give_up(ctx, g);
	snprintf(detail, len, "vm %s %s", g->def->name, g->reason);
	return 0;
}

/* A crash or failed start: restart here, fail over, or give up (lib/health.h). */
static int group_failed(struct vmc_state *s, const struct vmc_apply_ctx *ctx, struct vmc_group *g,
			uint64_t at_s, const char *what, char *detail, size_t len)
{
	char why[192], where[192];
	enum vmc_place_verdict verdict = VMC_PLACE_NO_NODE;
	uint32_t node = 0;
	enum vmc_health_action a = vmc_health_on_failure(g->def, g->failures, g->n_failures,
							  ctx->sender, at_s, why, sizeof(why));
	int rc;

	if (vmc_apply_by_pacemaker(ctx, g->def)) {
		vmc_health_record(g->failures, &g->n_failures, ctx->sender, at_s);
		return group_left_to_pacemaker(ctx, g, what, detail, len);
	}

	if (a == VMC_HEALTH_RESTART_HERE && !node_still_fits(s, ctx, g)) {
		a = VMC_HEALTH_FAIL_OVER; /* the rules changed under it: restart it elsewhere */
	}
	if (a == VMC_HEALTH_FAIL_OVER) {
		rc = vmc_group_place(s, ctx, g, ctx->sender, &verdict, &node, where, sizeof(where));
		if (rc != 0) {
			return rc;
		}
		if (verdict != VMC_PLACE_START) {
			snprintf(why, sizeof(why), "failed again and no other node can take it (%.140s)", where);
			a = VMC_HEALTH_GIVE_UP;
		}
	}
	vmc_health_record(g->failures, &g->n_failures, ctx->sender, at_s);
	switch (a) {
	case VMC_HEALTH_RESTART_HERE:
		group_take(g, VMC_GEV_RESTART_HERE);
		break;
	case VMC_HEALTH_FAIL_OVER:
		group_take(g, VMC_GEV_FAIL_OVER);
		vmc_home_failed_over(g, g->owner, at_s);
		g->owner = node;
		break;
	case VMC_HEALTH_GIVE_UP:
		group_give_up(ctx, g);
		break;
	}
	snprintf(g->reason, sizeof(g->reason), "%.120s: %.190s", what, why);
	snprintf(detail, len, "vm %s %s", g->def->name, g->reason);
	return 0;
}

/*
 * Its node killed it when it lost quorum, and it still owns it: the node
 * did what it had to, so this is no failure. Restart it there, or where
 * placement says when it no longer fits there.
 */
static int group_self_fenced(struct vmc_state *s, const struct vmc_apply_ctx *ctx, struct vmc_group *g,
			     char *detail, size_t len)
{
	enum vmc_place_verdict verdict = VMC_PLACE_START;
	uint32_t node = g->owner;
	char nb[24], where[192] = "";
	int rc;

	if (g->state == VMC_GROUP_STOPPING) {
		group_take(g, VMC_GEV_SELF_FENCED);
		g->owner = 0;
		snprintf(detail, len, "vm %s offline (killed while stopping)", g->def->name);
		return 0;
	}
	if (vmc_apply_by_pacemaker(ctx, g->def)) {
		char what[64];
		snprintf(what, sizeof(what), "killed on %s on losing quorum", vmc_state_node_label(s, g->owner, nb, sizeof(nb)));
		return group_left_to_pacemaker(ctx, g, what, detail, len);
	}
	if (!node_still_fits(s, ctx, g)) {
		rc = vmc_group_place(s, ctx, g, g->owner, &verdict, &node, where, sizeof(where));
		if (rc != 0) {
			return rc;
		}
	}
	if (verdict != VMC_PLACE_START) {
		group_give_up(ctx, g);
		snprintf(g->reason, sizeof(g->reason),
			 "killed by %.40s on losing quorum, and no node can take it: %.200s",
			 vmc_state_node_label(s, ctx->sender, nb, sizeof(nb)), where);
	} else {
		group_take(g, VMC_GEV_SELF_FENCED);
		g->owner = node;
		snprintf(g->reason, sizeof(g->reason),
			 "killed by %.40s on losing quorum (not counted as a failure); restarting%s%.200s",
			 vmc_state_node_label(s, ctx->sender, nb, sizeof(nb)), where[0] ? ": " : " there", where);
	}
	snprintf(detail, len, "vm %s %s", g->def->name, g->reason);
	return 0;
}

/*
 * Its node killed it because a volume it uses failed there (the node's
 * lease on it could lapse): no fault of the VM's. Restart it where the
 * volume is healthy (placement skips nodes reporting it failing or hung),
 * not counted as a failure.
 */
static int group_volume_lost(struct vmc_state *s, const struct vmc_apply_ctx *ctx, struct vmc_group *g,
			     const char *reason, uint64_t at_s, char *detail, size_t len)
{
	enum vmc_place_verdict verdict;
	uint32_t node = 0;
	char nb[24], where[192] = "";
	int rc;

	if (g->state == VMC_GROUP_STOPPING) {
		group_take(g, VMC_GEV_SELF_FENCED);
		g->owner = 0;
		snprintf(detail, len, "vm %s offline (killed while stopping: %.100s)", g->def->name, reason);
		return 0;
	}
	if (vmc_apply_by_pacemaker(ctx, g->def)) {
		char what[160];
		snprintf(what, sizeof(what), "killed on %s (%.100s)", vmc_state_node_label(s, g->owner, nb, sizeof(nb)),
			 reason);
		return group_left_to_pacemaker(ctx, g, what, detail, len);
	}
	rc = vmc_group_place(s, ctx, g, g->owner, &verdict, &node, where, sizeof(where));
	if (rc != 0) {
		return rc;
	}
	if (verdict != VMC_PLACE_START) {
		group_give_up(ctx, g);
		snprintf(g->reason, sizeof(g->reason), "killed by %.24s (%.100s), and no node can take it: %.120s",
			 vmc_state_node_label(s, ctx->sender, nb, sizeof(nb)), reason, where);
	} else {
		group_take(g, VMC_GEV_FAIL_OVER);
		vmc_home_failed_over(g, g->owner, at_s);
		g->owner = node;
		snprintf(g->reason, sizeof(g->reason), "killed by %.24s (%.100s), not counted as a failure; "
			 "restarting: %.120s", vmc_state_node_label(s, ctx->sender, nb, sizeof(nb)), reason, where);
	}
	snprintf(detail, len, "vm %s %s", g->def->name, g->reason);
	return 0;
}

/*
 * It stopped on a node it had to leave and could not leave running
 * (drain.h): start it where placement says now, never where it was.
 */
static int group_relocated(struct vmc_state *s, const struct vmc_apply_ctx *ctx, struct vmc_group *g, uint64_t at_s,
			   char *detail, size_t len)
{
	enum vmc_place_verdict verdict;
	uint32_t from = g->owner, node = 0;
	char where[192], fb[24];
	int rc = vmc_group_place(s, ctx, g, from, &verdict, &node, where, sizeof(where));

	if (rc != 0) {
		return rc;
	}
	snprintf(fb, sizeof(fb), "%s", vmc_state_node_label(s, from, detail, len));
	group_take(g, VMC_GEV_STOPPED);
	g->relocate = false;
	g->owner = 0;
	if (vmc_node_admin(s, from) != NULL && vmc_node_admin(s, from)->freeze) {
		g->home = (struct vmc_home){ .kind = VMC_HOME_FROZEN, .node = from, .since_s = at_s };
		snprintf(g->reason, sizeof(g->reason), "stopped with %s's shutdown (shutdown_policy freeze): it starts there "
			 "when %s is back", fb, fb);
	} else if (verdict != VMC_PLACE_START) {
		snprintf(g->reason, sizeof(g->reason), "stopped on %s to start elsewhere, and %.200s (vm start it when a node "
			 "can take it)", fb, where);
	} else {
		group_take(g, VMC_GEV_START);
		g->owner = node;
		if (vmc_node_mode(s, from) != VMC_NODE_ACTIVE) {
			g->home = (struct vmc_home){ .kind = VMC_HOME_DRAIN, .node = from, .since_s = at_s };
		}
		snprintf(g->reason, sizeof(g->reason), "stopped on %s, which it had to leave; starting: %.200s", fb, where);
	}
	snprintf(detail, len, "vm %s %s", g->def->name, g->reason);
	return 0;
}

/* The report is about the start attempt the group is at, from its owner. */
static int report_current(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			  const struct vmc_group *g, const struct vmc_body_group_report *r, char *detail,
			  size_t len)
{
	char nb[24];

	if (g->owner == 0 || g->owner != ctx->sender) {
		snprintf(detail, len, "vm %s: stale report '%s' from node %u, which does not own it",
			 g->def->name, r->event, ctx->sender);
		return -VMC_E_BUSY;
	}
	if (VMC_PROTO_HAS_ATTEMPTS(ctx->version) && !r->has_attempt) {
		snprintf(detail, len, "vm %s: report '%s' from %s names no start attempt", g->def->name,
			 r->event, vmc_state_node_label(s, ctx->sender, nb, sizeof(nb)));
		return -VMC_E_PROTOCOL;
	}
	/* A view of protocol 1 has members that count no attempts: it decides as they do. */
	if (VMC_PROTO_HAS_ATTEMPTS(ctx->version) && r->attempt != g->attempt) {
		snprintf(detail, len, "vm %s: stale report '%s' about start attempt %u (now at %u)",
			 g->def->name, r->event, r->attempt, g->attempt);
		return -VMC_E_BUSY;
	}
	return 0;
}

int vmc_apply_group_report(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			   const union vmc_body *b, char *detail, size_t len)
{
	const struct vmc_body_group_report *r = &b->report;
	int rc = 0;
	struct vmc_group *g = group_named(s, r->name, detail, len, &rc);
	char nb[24];

	if (g == NULL) {
		return rc;
	}
	rc = report_current(s, ctx, g, r, detail, len);
	if (rc != 0) {
		return rc;
	}
	if (strcmp(r->event, VMC_REPORT_RUNNING) == 0) {
		if (g->state == VMC_GROUP_STARTING) {
			snprintf(g->reason, sizeof(g->reason), "running");
		}
		group_take(g, VMC_GEV_RUNNING);
		snprintf(detail, len, "vm %s %s on %s", g->def->name, vmc_group_state_to_str(g->state),
			 vmc_state_node_label(s, ctx->sender, nb, sizeof(nb)));
		return 0;
	}
	if (g->relocate && g->state == VMC_GROUP_STOPPING &&
	    (strcmp(r->event, VMC_REPORT_STOPPED) == 0 || strcmp(r->event, VMC_REPORT_CRASHED) == 0)) {
		return group_relocated(s, ctx, g, r->at_s, detail, len);
	}
	if (strcmp(r->event, VMC_REPORT_STOPPED) == 0) {
		if (g->want_started && g->state != VMC_GROUP_STOPPING) {
			snprintf(g->reason, sizeof(g->reason), "the guest shut itself down");
		}
		group_take(g, VMC_GEV_STOPPED);
		g->want_started = false;
		g->owner = 0;
		snprintf(detail, len, "vm %s offline (%s)", g->def->name, g->reason);
		return 0;
	}
	if (strcmp(r->event, VMC_REPORT_SELF_FENCED) == 0 && VMC_PROTO_HAS_ATTEMPTS(ctx->version)) {
		return group_self_fenced(s, ctx, g, detail, len);
	}
	if (strcmp(r->event, VMC_REPORT_VOLUME_LOST) == 0 && VMC_PROTO_HAS_VOLUMES(ctx->version)) {
		return group_volume_lost(s, ctx, g, r->reason, r->at_s, detail, len);
	}
	if (strcmp(r->event, VMC_REPORT_CRASHED) == 0 || strcmp(r->event, VMC_REPORT_START_FAILED) == 0) {
		char what[160];
		if (g->state == VMC_GROUP_STOPPING) {
			group_take(g, VMC_GEV_DIED_STOPPING); /* it was going away anyway */
			g->owner = 0;
			snprintf(detail, len, "vm %s offline (it died while stopping)", g->def->name);
			return 0;
		}
		snprintf(what, sizeof(what), "%s on %s: %s",
			 strcmp(r->event, VMC_REPORT_CRASHED) == 0 ? "crashed" : "could not start",
			 vmc_state_node_label(s, ctx->sender, nb, sizeof(nb)), r->reason[0] ? r->reason : "no reason given");
		return group_failed(s, ctx, g, r->at_s, what, detail, len);
	}
	snprintf(detail, len, "vm %s: unknown report '%s'", g->def->name, r->event);
	return -VMC_E_PROTOCOL;
}

bool vmc_state_node_has_groups(const struct vmc_state *s, uint32_t node)
{
	for (size_t i = 0; i < s->n_groups; i++) {
		const struct vmc_group *g = &s->groups[i];
		if (g->owner == node && g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED) {
			return true;
		}
	}
	return false;
}

/* Carry out one recovery decision on the group it is about. */
static void recovery_apply(struct vmc_group *g, const struct vmc_place_decision *d, const char *lost,
			   uint64_t at_s)
{
	switch (d->verdict) {
	case VMC_PLACE_START:
		group_take(g, VMC_GEV_RECOVER);
		vmc_home_failed_over(g, g->owner, at_s);
		if (g->home.node == d->node) {
			g->home = (struct vmc_home){ 0 }; /* it restarts at home */
		}
		g->owner = d->node;
		snprintf(g->reason, sizeof(g->reason), "%s was lost; restarting: %.140s", lost, d->why);
		break;
	case VMC_PLACE_NO_NODE:
	case VMC_PLACE_NO_MEMORY:
		group_take(g, VMC_GEV_RECOVER_NONE);
		g->owner = 0;
		snprintf(g->reason, sizeof(g->reason), "%s was lost and %.150s", lost, d->why);
		break;
	case VMC_PLACE_LEAVE:
		group_take(g, VMC_GEV_RECOVER_LEAVE);
		g->owner = 0;
		snprintf(g->reason, sizeof(g->reason), "%s was lost; not restarted: %.140s", lost, d->why);
		break;
	}
}

/* Which member of the view reported running this VM (0: none). */
static uint32_t reported_runner(const struct vmc_apply_ctx *ctx, json_object *reports, const char *vm)
{
	for (size_t i = 0; reports != NULL && i < json_object_array_length(reports); i++) {
		json_object *pair = json_object_array_get_idx(reports, i);
		json_object *node = json_object_array_get_idx(pair, 0);
		json_object *names = json_object_array_get_idx(pair, 1);
		if (!json_object_is_type(node, json_type_int) || !json_object_is_type(names, json_type_array) ||
		    !vmc_apply_in_view(ctx, (uint32_t)json_object_get_int64(node))) {
			continue;
		}
		for (size_t k = 0; k < json_object_array_length(names); k++) {
			const char *n = json_object_get_string(json_object_array_get_idx(names, k));
			if (n != NULL && strcmp(n, vm) == 0) {
				return (uint32_t)json_object_get_int64(node);
			}
		}
	}
	return 0;
}

/* Does reports hold a report of member? */
static bool reports_cover(json_object *reports, uint32_t member)
{
	for (size_t i = 0; reports != NULL && i < json_object_array_length(reports); i++) {
		json_object *pair = json_object_array_get_idx(reports, i);
		json_object *node = json_object_array_get_idx(pair, 0);
		if (json_object_is_type(node, json_type_int) && json_object_get_int64(node) == (int64_t)member &&
		    json_object_is_type(json_object_array_get_idx(pair, 1), json_type_array)) {
			return true;
		}
	}
	return false;
}

/*
 * The members reported what they really run in this view's sync: a VM of
 * the lost node that a member runs is not lost, it is where it runs.
 */
static void adopt_reported(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *reports,
			   uint32_t lost)
{
	for (size_t j = 0; reports != NULL && j < s->n_groups; j++) {
		struct vmc_group *g = &s->groups[j];
		uint32_t runner;
		char lb[24], rb[24];
		if (g->owner != lost || g->state == VMC_GROUP_OFFLINE || g->state == VMC_GROUP_FAILED) {
			continue;
		}
		runner = reported_runner(ctx, reports, g->def->name);
		if (runner != 0) {
			group_take(g, VMC_GEV_ADOPT);
			g->owner = runner;
			snprintf(g->reason, sizeof(g->reason), "%s was lost; found running on %s",
				 vmc_state_node_label(s, lost, lb, sizeof(lb)), vmc_state_node_label(s, runner, rb, sizeof(rb)));
		}
	}
}

/* Protocol 2: the proof must be of this epoch and carry every member's report. */
static int fenced_proof_current(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
				const struct vmc_body_node_fenced *f, char *detail, size_t len)
{
	char lb[24];

	if (!VMC_PROTO_HAS_ATTEMPTS(ctx->version)) {
		return 0;
	}
	if (!f->has_epoch) {
		snprintf(detail, len, "node-fenced for %s without the epoch it was decided in",
			 vmc_state_node_label(s, f->node, lb, sizeof(lb)));
		return -VMC_E_PROTOCOL;
	}
	if (f->epoch != s->epoch) {
		snprintf(detail, len,
			 "stale: %s was confirmed fenced in epoch %llu, the cluster is at epoch %llu "
			 "(the membership changed since)",
			 vmc_state_node_label(s, f->node, lb, sizeof(lb)), (unsigned long long)f->epoch,
			 (unsigned long long)s->epoch);
		return -VMC_E_BUSY;
	}
	for (size_t i = 0; i < ctx->n_members; i++) {
		if (!reports_cover(f->reports, ctx->members[i])) {
			snprintf(detail, len,
				 "node-fenced for %s lacks the running VMs of member %u: not applied",
				 vmc_state_node_label(s, f->node, lb, sizeof(lb)), ctx->members[i]);
			return -VMC_E_BUSY;
		}
	}
	return 0;
}

int vmc_apply_node_fenced(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			  const union vmc_body *b, char *detail, size_t len)
{
	const struct vmc_body_node_fenced *f = &b->fenced;
	struct vmc_place_decision *plan;
	struct place_view pv;
	size_t n, started = 0;
	uint32_t lost = f->node;
	bool quarantined;
	char lb[24];
	int rc;

	if (vmc_apply_in_view(ctx, lost)) {
		snprintf(detail, len, "node %u is a member again: nothing to recover", lost);
		return -VMC_E_BUSY;
	}
	rc = fenced_proof_current(s, ctx, f, detail, len);
	if (rc != 0) {
		return rc;
	}
	/* Everything allocated before the state changes: a failure leaves it as it was. */
	plan = calloc(s->n_groups ? s->n_groups : 1, sizeof(*plan));
	if (plan == NULL || place_view_alloc(s, &pv) != 0) {
		free(plan);
		return -ENOMEM;
	}
	/* The plan is computed on the state as it will be once the adoptions are in. */
	place_view_fill(s, ctx, &pv);
	for (size_t j = 0; j < s->n_groups; j++) {
		uint32_t runner = s->groups[j].owner == lost ? reported_runner(ctx, f->reports, s->groups[j].def->name)
							      : 0;
		if (runner != 0 && pv.groups[j].owner == lost) {
			pv.groups[j].owner = runner;
		}
	}
	n = vmc_plan_recovery(&pv.view, &lost, 1, plan);
	if (n == VMC_PLAN_NO_MEMORY) {
		free(pv.groups);
		free(plan);
		return -ENOMEM;
	}
	adopt_reported(s, ctx, f->reports, lost);
	for (size_t k = 0; k < n; k++) {
		struct vmc_group *g = &s->groups[plan[k].group - pv.groups];
		recovery_apply(g, &plan[k], vmc_state_node_label(s, lost, lb, sizeof(lb)), f->at_s);
		started += plan[k].verdict == VMC_PLACE_START;
	}
	vmc_state_fencing_clear(s, lost);
	quarantined = VMC_PROTO_HAS_DRAIN(ctx->version) && vmc_node_admin_lost(s, lost, f->at_s);
	/* What it said about volumes is no longer true; another node coordinates. */
	vmc_state_volumes_forget_node(s, lost);
	vmc_volumes_coordinators_update(s, ctx);
	if (strcmp(f->method, VMC_FENCED_MANUAL) == 0) {
		snprintf(detail, len, "%s confirmed fenced by hand (%s): %zu of its %zu VMs restarting elsewhere",
			 vmc_state_node_label(s, lost, lb, sizeof(lb)), f->by ? f->by : "an operator", started, n);
	} else {
		snprintf(detail, len, "%s fenced: %zu of its %zu VMs restarting elsewhere",
			 vmc_state_node_label(s, lost, lb, sizeof(lb)), started, n);
	}
	if (quarantined) {
		size_t l = strlen(detail);
		snprintf(detail + l, len - l, "; quarantined for %u s: it was lost %u times within an hour",
			 s->settings.quarantine_duration_s, s->settings.quarantine_threshold);
	}
	free(pv.groups);
	free(plan);
	return 0;
}

int vmc_apply_fence_failed(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			   const union vmc_body *b, char *detail, size_t len)
{
	const struct vmc_body_fence_failed *f = &b->fence_failed;
	const struct vmc_fence_record *have = vmc_state_fencing(s, f->node);
	struct vmc_fence_record rec = { .node = f->node };
	char lb[24], fb[24];

	if (vmc_apply_in_view(ctx, f->node)) {
		snprintf(detail, len, "node %u is a member again: its fencing is over", f->node);
		return -VMC_E_BUSY;
	}
	if (have != NULL) {
		rec = *have;
	}
	/* Every member sent what it saw; only the first report of an attempt counts. */
	if (f->attempt != rec.attempts) {
		snprintf(detail, len, "fencing attempt %u of %s was counted already (%u failed)", f->attempt + 1,
			 vmc_state_node_label(s, f->node, lb, sizeof(lb)), rec.attempts);
		return -VMC_E_BUSY;
	}
	rec.attempts++;
	rec.last_fencer = ctx->sender;
	snprintf(rec.last_error, sizeof(rec.last_error), "%s: %s", f->method, f->error);
	if (vmc_state_fencing_set(s, &rec) != 0) {
		snprintf(detail, len, "too many nodes being fenced");
		return -VMC_E_INVALID;
	}
	snprintf(detail, len, "fencing attempt %u of %s by %s failed (%.120s)", rec.attempts,
		 vmc_state_node_label(s, f->node, lb, sizeof(lb)), vmc_state_node_label(s, ctx->sender, fb, sizeof(fb)), f->error);
	return 0;
}
