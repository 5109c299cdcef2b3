/*
 * VM group lifecycle changes (diagram in lifecycle.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifecycle.h"
#include "placement.h"
#include "vmc_errors.h"

static const char *body_str(json_object *body, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(body, key, &v) || !json_object_is_type(v, json_type_string)) {
		return NULL;
	}
	return json_object_get_string(v);
}

static struct vmc_group *group_of(struct vmc_state *s, json_object *body, char *detail, size_t len,
				  int *rc)
{
	const char *name = body_str(body, "name");
	struct vmc_group *g;

	if (name == NULL) {
		snprintf(detail, len, "a group change without a name");
		*rc = -VMC_E_PROTOCOL;
		return NULL;
	}
	g = vmc_state_group_find(s, name);
	if (g == NULL) {
		snprintf(detail, len, "no vm named '%s' (see 'clusterctl vm list')", name);
		*rc = -VMC_E_NOT_FOUND;
	}
	return g;
}

/* A node's name as it reported it, for reasons an operator reads. */
static const char *node_label(const struct vmc_state *s, uint32_t id, char *buf, size_t len)
{
	const struct vmc_node_facts *f = vmc_state_node(s, id);

	if (f != NULL && f->name[0] != '\0') {
		return f->name;
	}
	snprintf(buf, len, "node id %u", id);
	return buf;
}

static bool in_view(const struct vmc_apply_ctx *ctx, uint32_t id)
{
	for (size_t i = 0; ctx != NULL && i < ctx->n_members; i++) {
		if (ctx->members[i] == id) {
			return true;
		}
	}
	return false;
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
	struct vmc_place_group *groups;
	struct vmc_place_view view;
};

static int place_view_alloc(const struct vmc_state *s, struct place_view *pv)
{
	pv->groups = calloc(s->n_groups ? s->n_groups : 1, sizeof(*pv->groups));
	return pv->groups ? 0 : -ENOMEM;
}

static void place_view_fill(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			    struct place_view *pv)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_nodes; i++, n++) {
		pv->nodes[n] = (struct vmc_place_node){
			.id = s->nodes[i].id, .name = node_label(s, s->nodes[i].id, pv->names[n], sizeof(pv->names[n])),
			.up = in_view(ctx, s->nodes[i].id), .active = true, .mem_mib = s->nodes[i].mem_mib,
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
	for (size_t j = 0; j < s->n_groups; j++) {
		const struct vmc_group *g = &s->groups[j];
		bool gone = g->state == VMC_GROUP_OFFLINE || g->state == VMC_GROUP_FAILED;
		pv->groups[j] = (struct vmc_place_group){ g->def, gone ? 0 : g->owner, g->want_started };
	}
	pv->view = (struct vmc_place_view){ pv->nodes, n, pv->groups, s->n_groups };
}

static enum vmc_place_verdict group_place(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
					  const struct vmc_group *g, uint32_t exclude, uint32_t *node,
					  char *why, size_t why_len)
{
	struct place_view pv;
	enum vmc_place_verdict v;

	if (place_view_alloc(s, &pv) != 0) {
		snprintf(why, why_len, "out of memory");
		return VMC_PLACE_NO_NODE;
	}
	place_view_fill(s, ctx, &pv);
	v = vmc_place_group(&pv.view, &pv.groups[g - s->groups], exclude, node, why, why_len);
	free(pv.groups);
	return v;
}

int vmc_apply_node_facts(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			 char *detail, size_t len)
{
	json_object *mem;
	const char *name = body_str(body, "name");
	struct vmc_node_facts f = { .id = ctx->sender };

	if (ctx->sender == 0 || !json_object_object_get_ex(body, "mem_mib", &mem) ||
	    !json_object_is_type(mem, json_type_int) || json_object_get_int64(mem) < 0 ||
	    json_object_get_int64(mem) > UINT32_MAX || name == NULL || strlen(name) >= sizeof(f.name) ||
	    !vmc_valid_name(name)) {
		snprintf(detail, len, "node-facts without a sender, a valid name and mem_mib");
		return -VMC_E_PROTOCOL;
	}
	for (size_t i = 0; i < s->n_nodes; i++) {
		if (s->nodes[i].id != f.id && strcmp(s->nodes[i].name, name) == 0) {
			snprintf(detail, len, "node %u calls itself %s, the name of node %u", f.id, name,
				 s->nodes[i].id);
			return -VMC_E_EXISTS;
		}
	}
	f.mem_mib = (uint32_t)json_object_get_int64(mem);
	memcpy(f.name, name, strlen(name) + 1);
	if (vmc_state_node_set(s, &f) != 0) {
		snprintf(detail, len, "too many nodes");
		return -VMC_E_INVALID;
	}
	snprintf(detail, len, "node %s offers %u MiB to VMs", f.name, f.mem_mib);
	return 0;
}

int vmc_apply_group_start(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			  char *detail, size_t len)
{
	int rc = 0;
	struct vmc_group *g = group_of(s, body, detail, len, &rc);
	char why[192];
	uint32_t node = 0;

	if (g == NULL) {
		return rc;
	}
	if (g->state == VMC_GROUP_STARTING || g->state == VMC_GROUP_ONLINE ||
	    g->state == VMC_GROUP_MIGRATING || g->state == VMC_GROUP_STOPPING) {
		snprintf(detail, len, "vm %s is %s already", g->def->name, vmc_group_state_to_str(g->state));
		return -VMC_E_BUSY;
	}
	if (group_place(s, ctx, g, 0, &node, why, sizeof(why)) != VMC_PLACE_START) {
		snprintf(detail, len, "vm %s cannot start: %s", g->def->name, why);
		return -VMC_E_BUSY;
	}
	g->want_started = true;
	g->owner = node;
	g->state = VMC_GROUP_STARTING;
	g->n_failures = 0; /* an operator's start forgives the past */
	snprintf(g->reason, sizeof(g->reason), "started by an operator: %.160s", why);
	snprintf(detail, len, "vm %s starting: %s", g->def->name, why);
	return 0;
}

int vmc_apply_group_stop(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			 char *detail, size_t len)
{
	int rc = 0;
	struct vmc_group *g = group_of(s, body, detail, len, &rc);

	if (g == NULL) {
		return rc;
	}
	g->want_started = false;
	if (g->state == VMC_GROUP_OFFLINE || g->state == VMC_GROUP_FAILED) {
		g->state = VMC_GROUP_OFFLINE;
		g->owner = 0;
		snprintf(g->reason, sizeof(g->reason), "stopped by an operator");
		snprintf(detail, len, "vm %s stopped (it was not running)", g->def->name);
		return 0;
	}
	g->state = VMC_GROUP_STOPPING;
	snprintf(g->reason, sizeof(g->reason), "stopped by an operator");
	snprintf(detail, len, "vm %s stopping", g->def->name);
	return 0;
}

/* May the group restart where it is? The same hard rules as placement. */
static bool node_still_fits(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
			    const struct vmc_group *g)
{
	const struct vmc_node_facts *f = vmc_state_node(s, g->owner);
	uint64_t used = 0;

	if (f == NULL || !in_view(ctx, g->owner) ||
	    (g->def->possible_owners.n > 0 && !vmc_strlist_contains(&g->def->possible_owners, f->name))) {
		return false;
	}
	for (size_t j = 0; j < s->n_groups; j++) {
		if (&s->groups[j] != g && s->groups[j].owner == g->owner) {
			used += s->groups[j].def->memory_mib;
		}
	}
	return used + g->def->memory_mib <= f->mem_mib;
}

/* A crash or failed start: restart here, fail over, or give up (lib/health.h). */
static void group_failed(struct vmc_state *s, const struct vmc_apply_ctx *ctx, struct vmc_group *g,
			 uint64_t at_s, const char *what, char *detail, size_t len)
{
	char why[192], where[192];
	uint32_t node = 0;
	enum vmc_health_action a = vmc_health_on_failure(g->def, g->failures, g->n_failures,
							  ctx->sender, at_s, why, sizeof(why));

	vmc_health_record(g->failures, &g->n_failures, ctx->sender, at_s);
	if (a == VMC_HEALTH_RESTART_HERE && !node_still_fits(s, ctx, g)) {
		a = VMC_HEALTH_FAIL_OVER; /* the rules changed under it: restart it elsewhere */
	}
	if (a == VMC_HEALTH_FAIL_OVER &&
	    group_place(s, ctx, g, ctx->sender, &node, where, sizeof(where)) != VMC_PLACE_START) {
		snprintf(why, sizeof(why), "failed again and no other node can take it (%.140s)", where);
		a = VMC_HEALTH_GIVE_UP;
	}
	switch (a) {
	case VMC_HEALTH_RESTART_HERE:
		g->state = VMC_GROUP_STARTING;
		break;
	case VMC_HEALTH_FAIL_OVER:
		g->owner = node;
		g->state = VMC_GROUP_STARTING;
		break;
	case VMC_HEALTH_GIVE_UP:
		g->owner = 0;
		g->state = VMC_GROUP_FAILED;
		break;
	}
	snprintf(g->reason, sizeof(g->reason), "%.120s: %.190s", what, why);
	snprintf(detail, len, "vm %s %s", g->def->name, g->reason);
}

int vmc_apply_group_report(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			   char *detail, size_t len)
{
	int rc = 0;
	struct vmc_group *g = group_of(s, body, detail, len, &rc);
	const char *event = body_str(body, "event");
	const char *reason = body_str(body, "reason");
	char nb[24];
	json_object *at;

	if (g == NULL) {
		return rc;
	}
	if (event == NULL || !json_object_object_get_ex(body, "at_s", &at) ||
	    !json_object_is_type(at, json_type_int)) {
		snprintf(detail, len, "group-report without event or at_s");
		return -VMC_E_PROTOCOL;
	}
	if (json_object_get_int64(at) < 0) {
		snprintf(detail, len, "group-report with a negative at_s");
		return -VMC_E_PROTOCOL;
	}
	if (g->owner == 0 || g->owner != ctx->sender) {
		snprintf(detail, len, "vm %s: stale report '%s' from node %u, which does not own it",
			 g->def->name, event, ctx->sender);
		return -VMC_E_BUSY;
	}
	if (strcmp(event, VMC_REPORT_RUNNING) == 0) {
		if (g->state == VMC_GROUP_STARTING) {
			g->state = VMC_GROUP_ONLINE;
			snprintf(g->reason, sizeof(g->reason), "running");
		}
		snprintf(detail, len, "vm %s %s on %s", g->def->name, vmc_group_state_to_str(g->state),
			 node_label(s, ctx->sender, nb, sizeof(nb)));
		return 0;
	}
	if (strcmp(event, VMC_REPORT_STOPPED) == 0) {
		if (g->want_started && g->state != VMC_GROUP_STOPPING) {
			snprintf(g->reason, sizeof(g->reason), "the guest shut itself down");
		}
		g->want_started = false;
		g->state = VMC_GROUP_OFFLINE;
		g->owner = 0;
		snprintf(detail, len, "vm %s offline (%s)", g->def->name, g->reason);
		return 0;
	}
	if (strcmp(event, VMC_REPORT_CRASHED) == 0 || strcmp(event, VMC_REPORT_START_FAILED) == 0) {
		char what[160];
		if (g->state == VMC_GROUP_STOPPING) {
			g->state = VMC_GROUP_OFFLINE; /* it was going away anyway */
			g->owner = 0;
			snprintf(detail, len, "vm %s offline (it died while stopping)", g->def->name);
			return 0;
		}
		snprintf(what, sizeof(what), "%s on %s: %s",
			 strcmp(event, VMC_REPORT_CRASHED) == 0 ? "crashed" : "could not start",
			 node_label(s, ctx->sender, nb, sizeof(nb)),
			 reason ? reason : "no reason given");
		group_failed(s, ctx, g, json_object_get_uint64(at), what, detail, len);
		return 0;
	}
	snprintf(detail, len, "vm %s: unknown report '%s'", g->def->name, event);
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
static void recovery_apply(struct vmc_group *g, const struct vmc_place_decision *d, const char *lost)
{
	switch (d->verdict) {
	case VMC_PLACE_START:
		g->owner = d->node;
		g->state = VMC_GROUP_STARTING;
		snprintf(g->reason, sizeof(g->reason), "%s was lost; restarting: %.140s", lost, d->why);
		break;
	case VMC_PLACE_NO_NODE:
		g->owner = 0;
		g->state = VMC_GROUP_FAILED;
		snprintf(g->reason, sizeof(g->reason), "%s was lost and %.150s", lost, d->why);
		break;
	case VMC_PLACE_LEAVE:
		g->owner = 0;
		g->state = VMC_GROUP_OFFLINE;
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
		    !in_view(ctx, (uint32_t)json_object_get_int64(node))) {
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

/*
 * The members reported what they really run in this view's sync: a VM of
 * the lost node that a member runs is not lost, it is where it runs.
 */
static void adopt_reported(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			   uint32_t lost)
{
	json_object *reports = NULL;

	if (!json_object_object_get_ex(body, "reports", &reports) ||
	    !json_object_is_type(reports, json_type_array)) {
		return;
	}
	for (size_t j = 0; j < s->n_groups; j++) {
		struct vmc_group *g = &s->groups[j];
		uint32_t runner;
		if (g->owner != lost || g->state == VMC_GROUP_OFFLINE || g->state == VMC_GROUP_FAILED) {
			continue;
		}
		runner = reported_runner(ctx, reports, g->def->name);
		if (runner != 0) {
			g->owner = runner;
			g->state = VMC_GROUP_ONLINE;
			char lb[24], rb[24];
			snprintf(g->reason, sizeof(g->reason), "%s was lost; found running on %s",
				 node_label(s, lost, lb, sizeof(lb)), node_label(s, runner, rb, sizeof(rb)));
		}
	}
}

int vmc_apply_node_fenced(struct vmc_state *s, const struct vmc_apply_ctx *ctx, json_object *body,
			  char *detail, size_t len)
{
	struct vmc_place_decision *plan;
	struct place_view pv;
	size_t n, started = 0;
	json_object *node;
	uint32_t lost;
	char lb[24];

	if (!json_object_object_get_ex(body, "node", &node) || !json_object_is_type(node, json_type_int) ||
	    json_object_get_int64(node) <= 0 || json_object_get_int64(node) > UINT32_MAX) {
		snprintf(detail, len, "node-fenced without a node");
		return -VMC_E_PROTOCOL;
	}
	lost = (uint32_t)json_object_get_int64(node);
	if (in_view(ctx, lost)) {
		snprintf(detail, len, "node %u is a member again: nothing to recover", lost);
		return -VMC_E_BUSY;
	}
	/* Everything allocated before the state changes: a failure leaves it as it was. */
	plan = calloc(s->n_groups ? s->n_groups : 1, sizeof(*plan));
	if (plan == NULL || place_view_alloc(s, &pv) != 0) {
		free(plan);
		return -ENOMEM;
	}
	adopt_reported(s, ctx, body, lost);
	place_view_fill(s, ctx, &pv);
	n = vmc_plan_recovery(&pv.view, &lost, 1, plan);
	for (size_t k = 0; k < n; k++) {
		struct vmc_group *g = &s->groups[plan[k].group - pv.groups];
		recovery_apply(g, &plan[k], node_label(s, lost, lb, sizeof(lb)));
		started += plan[k].verdict == VMC_PLACE_START;
	}
	snprintf(detail, len, "%s fenced: %zu of its %zu VMs restarting elsewhere",
		 node_label(s, lost, lb, sizeof(lb)), started, n);
	free(pv.groups);
	free(plan);
	return 0;
}
