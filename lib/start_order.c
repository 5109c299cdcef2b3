/*
 * Start order (start_order.h). Pure.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "start_order.h"
#include "vmc_errors.h"

/* The definition named name: def when it is the one being checked, else the state's (its index in *at). */
static const struct vmc_group_def *def_named(const struct vmc_state *s, const struct vmc_group_def *def,
					     const char *name, size_t *at)
{
	const struct vmc_group *g;

	if (strcmp(name, def->name) == 0) {
		return def;
	}
	g = vmc_state_group_find(s, name);
	*at = g != NULL ? (size_t)(g - s->groups) : 0;
	return g != NULL ? g->def : NULL;
}

/*
 * Depth-first from from, each group once (seen), looking for def again.
 * On the way back the cycle's names go into chain, last first.
 */
static bool reaches(const struct vmc_state *s, const struct vmc_group_def *def, const struct vmc_group_def *from,
		    bool *seen, const char **chain, size_t *n)
{
	for (size_t i = 0; i < from->start_after.n; i++) {
		size_t at = 0;
		const struct vmc_group_def *next = def_named(s, def, from->start_after.v[i], &at);
		bool found = next == def;
		if (!found && next != NULL && !seen[at]) {
			seen[at] = true;
			found = reaches(s, def, next, seen, chain, n);
		}
		if (found) {
			chain[(*n)++] = next->name;
			return true;
		}
	}
	return false;
}

int vmc_start_order_check(const struct vmc_state *s, const struct vmc_group_def *def, char *why, size_t len)
{
	/* Each group at most once on the way, and def at the end: n_groups + 1 names. */
	bool *seen = calloc(s->n_groups + 1, sizeof(*seen));
	const char **chain = calloc(s->n_groups + 2, sizeof(*chain));
	size_t n = 0, used;
	bool cycle;

	if (seen == NULL || chain == NULL) {
		free(seen);
		free(chain);
		return -ENOMEM;
	}
	cycle = reaches(s, def, def, seen, chain, &n);
	if (cycle) {
		used = (size_t)snprintf(why, len, "field 'start_after': a cycle: %s", def->name);
		for (size_t k = n; k > 0 && used < len; k--) {
			used += (size_t)snprintf(why + used, len - used, " after %s", chain[k - 1]);
		}
	}
	free(seen);
	free(chain);
	return cycle ? -VMC_E_INVALID : 0;
}

const struct vmc_group *vmc_start_order_blocker(const struct vmc_state *s, const struct vmc_group *g)
{
	for (size_t i = 0; i < g->def->start_after.n; i++) {
		const struct vmc_group *d = vmc_state_group_find(s, g->def->start_after.v[i]);
		if (d != NULL && d->want_started && d->state != VMC_GROUP_ONLINE && d->state != VMC_GROUP_MIGRATING &&
		    d->state != VMC_GROUP_FAILED) {
			return d;
		}
	}
	return NULL;
}
