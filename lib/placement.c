/*
 * Placement policy (rules in placement.h). Pure: no I/O, no clock.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"

/* One placement question: where groups stand now and which nodes are out. */
struct place_ctx {
	const struct vmc_place_view *view;
	uint32_t *owners;       /* per group: where it runs in this plan */
	const uint32_t *lost;   /* nodes being recovered from: never candidates */
	size_t n_lost;
	uint32_t exclude;
};

/* A candidate's rank: lower is better, compared field by field. */
struct rank {
	unsigned int conflicts; /* groups there sharing an anti-affinity class with it */
	size_t preferred;       /* index in preferred_owners, or SIZE_MAX */
	uint32_t free_mib;
	uint32_t id;
};

const char *vmc_place_verdict_to_str(enum vmc_place_verdict v)
{
	switch (v) {
	case VMC_PLACE_START:
		return "start";
	case VMC_PLACE_NO_NODE:
		return "no-node";
	case VMC_PLACE_LEAVE:
		return "leave";
	case VMC_PLACE_NO_MEMORY:
		return "no-memory";
	}
	return "unknown";
}

static bool rank_better(const struct rank *a, const struct rank *b)
{
	if (a->conflicts != b->conflicts) {
		return a->conflicts < b->conflicts;
	}
	if (a->preferred != b->preferred) {
		return a->preferred < b->preferred;
	}
	if (a->free_mib != b->free_mib) {
		return a->free_mib > b->free_mib;
	}
	return a->id < b->id;
}

static bool shares_class(const struct vmc_group_def *a, const struct vmc_group_def *b)
{
	for (size_t i = 0; i < a->anti_affinity.n; i++) {
		if (vmc_strlist_contains(&b->anti_affinity, a->anti_affinity.v[i])) {
			return true;
		}
	}
	return false;
}

/* Memory in use on node by the groups placed there (owners[]), all but skip. */
static uint64_t node_mem_used(const struct vmc_place_view *v, const uint32_t *owners, uint32_t node,
			      const struct vmc_place_group *skip, unsigned int *conflicts)
{
	uint64_t used = 0;

	*conflicts = 0;
	for (size_t j = 0; j < v->n_groups; j++) {
		const struct vmc_place_group *o = &v->groups[j];
		if (owners[j] != node || o == skip) {
			continue;
		}
		used += o->def->memory_mib;
		if (shares_class(skip->def, o->def)) {
			(*conflicts)++;
		}
	}
	return used;
}

static size_t preferred_index(const struct vmc_group_def *def, const char *name)
{
	for (size_t i = 0; i < def->preferred_owners.n; i++) {
		if (strcmp(def->preferred_owners.v[i], name) == 0) {
			return i;
		}
	}
	return SIZE_MAX;
}

static bool is_lost(uint32_t id, const uint32_t *lost, size_t n_lost)
{
	for (size_t i = 0; i < n_lost; i++) {
		if (lost[i] == id) {
			return true;
		}
	}
	return false;
}

/* Why a node can't take the group, or NULL if it can (then *r is its rank). */
static const char *node_refusal(const struct place_ctx *ctx, const struct vmc_place_node *n,
				const struct vmc_place_group *g, struct rank *r)
{
	uint64_t used;

	if (!n->up || is_lost(n->id, ctx->lost, ctx->n_lost)) {
		return "down";
	}
	if (!n->active) {
		return "paused";
	}
	if (n->mem_mib == 0) {
		return "offers no memory to VMs (or has not reported it yet)";
	}
	if (n->id == ctx->exclude) {
		return "excluded";
	}
	if (g->def->possible_owners.n > 0 && !vmc_strlist_contains(&g->def->possible_owners, n->name)) {
		return "not a possible owner";
	}
	if ((g->volumes & n->bad_volumes) != 0) {
		return "a volume it uses fails there";
	}
	used = node_mem_used(ctx->view, ctx->owners, n->id, g, &r->conflicts);
	if (used + g->def->memory_mib > n->mem_mib) {
		return "not enough free memory";
	}
	r->preferred = preferred_index(g->def, n->name);
	r->free_mib = (uint32_t)(n->mem_mib - used);
	r->id = n->id;
	return NULL;
}

static enum vmc_place_verdict place_with(const struct place_ctx *ctx, const struct vmc_place_group *g,
					 uint32_t *node, char *why, size_t len)
{
	const struct vmc_place_view *v = ctx->view;
	const struct vmc_place_node *best = NULL;
	struct rank best_rank = { 0 };

	snprintf(why, len, "no node can take it:");
	for (size_t i = 0; i < v->n_nodes; i++) {
		struct rank r = { 0 };
		const char *refusal = node_refusal(ctx, &v->nodes[i], g, &r);
		if (refusal != NULL) {
			size_t l = strlen(why);
			if (l + 1 < len) {
				snprintf(why + l, len - l, " %s %s;", v->nodes[i].name, refusal);
			}
			continue;
		}
		if (best == NULL || rank_better(&r, &best_rank)) {
			best = &v->nodes[i];
			best_rank = r;
		}
	}
	if (best == NULL) {
		size_t l = strlen(why);
		if (l > 0 && why[l - 1] == ';') {
			why[l - 1] = '\0';
		}
		return VMC_PLACE_NO_NODE;
	}
	*node = best->id;
	if (best_rank.preferred != SIZE_MAX) {
		snprintf(why, len, "%s is preferred owner %zu of %zu%s", best->name, best_rank.preferred + 1,
			 g->def->preferred_owners.n, best_rank.conflicts ? " (anti-affinity not met)" : "");
	} else {
		snprintf(why, len, "%s has the most free memory (%u MiB)%s", best->name, best_rank.free_mib,
			 best_rank.conflicts ? " (anti-affinity not met)" : "");
	}
	return VMC_PLACE_START;
}

static uint32_t *owners_copy(const struct vmc_place_view *v)
{
	uint32_t *owners = calloc(v->n_groups ? v->n_groups : 1, sizeof(*owners));

	for (size_t j = 0; owners != NULL && j < v->n_groups; j++) {
		owners[j] = v->groups[j].owner;
	}
	return owners;
}

enum vmc_place_verdict vmc_place_group(const struct vmc_place_view *view,
				       const struct vmc_place_group *g, uint32_t exclude,
				       uint32_t *node, char *why, size_t why_len)
{
	struct place_ctx ctx = { .view = view, .owners = owners_copy(view), .exclude = exclude };
	enum vmc_place_verdict verdict;

	if (ctx.owners == NULL) {
		snprintf(why, why_len, "out of memory");
		return VMC_PLACE_NO_MEMORY;
	}
	verdict = place_with(&ctx, g, node, why, why_len);
	free(ctx.owners);
	return verdict;
}

enum vmc_place_verdict vmc_place_group_on(const struct vmc_place_view *view, const struct vmc_place_group *g,
					  uint32_t node, char *why, size_t why_len)
{
	struct place_ctx ctx = { .view = view, .owners = owners_copy(view) };
	enum vmc_place_verdict verdict = VMC_PLACE_NO_NODE;
	const char *refusal = "not a member of the cluster";
	const char *name = NULL;
	struct rank r = { 0 };

	if (ctx.owners == NULL) {
		snprintf(why, why_len, "out of memory");
		return VMC_PLACE_NO_MEMORY;
	}
	for (size_t i = 0; i < view->n_nodes; i++) {
		if (view->nodes[i].id == node) {
			name = view->nodes[i].name;
			refusal = node_refusal(&ctx, &view->nodes[i], g, &r);
			break;
		}
	}
	if (refusal == NULL) {
		verdict = VMC_PLACE_START;
		snprintf(why, why_len, "asked to start on %s (%u MiB free)", name, r.free_mib);
	} else if (name != NULL) {
		snprintf(why, why_len, "%s %s", name, refusal);
	} else {
		snprintf(why, why_len, "node %u is %s", node, refusal);
	}
	free(ctx.owners);
	return verdict;
}

static int recovery_order(const void *a, const void *b, void *arg)
{
	const struct vmc_place_view *v = arg;
	const struct vmc_place_group *x = &v->groups[*(const size_t *)a];
	const struct vmc_place_group *y = &v->groups[*(const size_t *)b];

	if (x->def->priority != y->def->priority) {
		return x->def->priority < y->def->priority ? -1 : 1;
	}
	return strcmp(x->def->name, y->def->name);
}

/* Not the cluster's to start on its own: why, or NULL. */
static const char *leave_reason(const struct vmc_place_group *g)
{
	if (!g->wanted) {
		return "not wanted started";
	}
	if (g->def->priority == VMC_PRIORITY_NO_AUTO_START) {
		return "priority no-auto-start: an operator starts it";
	}
	if (g->def->manager == VMC_MANAGER_PACEMAKER) {
		return "managed by pacemaker";
	}
	return NULL;
}

size_t vmc_plan_recovery(const struct vmc_place_view *view, const uint32_t *lost, size_t n_lost,
			 struct vmc_place_decision *out)
{
	struct place_ctx ctx = { .view = view, .owners = owners_copy(view), .lost = lost,
				 .n_lost = n_lost };
	uint32_t *owners = ctx.owners;
	size_t *order = calloc(view->n_groups ? view->n_groups : 1, sizeof(*order));
	size_t n = 0;

	if (owners == NULL || order == NULL) {
		free(owners);
		free(order);
		return VMC_PLAN_NO_MEMORY;
	}
	for (size_t j = 0; j < view->n_groups; j++) {
		if (view->groups[j].shadow && is_lost(view->groups[j].owner, lost, n_lost)) {
			owners[j] = 0; /* a move to a lost node goes nowhere */
			continue;
		}
		if (view->groups[j].owner != 0 && is_lost(view->groups[j].owner, lost, n_lost)) {
			owners[j] = 0; /* its node is gone, and so is what ran there */
			order[n++] = j;
		}
	}
	qsort_r(order, n, sizeof(*order), recovery_order, (void *)view);
	for (size_t k = 0; k < n; k++) {
		size_t j = order[k];
		struct vmc_place_decision *d = &out[k];
		const char *leave = leave_reason(&view->groups[j]);

		memset(d, 0, sizeof(*d));
		d->group = &view->groups[j];
		if (leave != NULL) {
			d->verdict = VMC_PLACE_LEAVE;
			snprintf(d->why, sizeof(d->why), "%s", leave);
			continue;
		}
		d->verdict = place_with(&ctx, d->group, &d->node, d->why, sizeof(d->why));
		if (d->verdict == VMC_PLACE_START) {
			owners[j] = d->node;
		}
	}
	free(owners);
	free(order);
	return n;
}
