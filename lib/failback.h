/*
 * Failback: a group the cluster moved without an operator asking — it
 * failed over, or its node was drained — goes home again (state.h,
 * struct vmc_home) by live migration. A manual move leaves no home, so
 * nothing pulls that group anywhere afterwards.
 *
 * When a group is due, by its definition's failback policy:
 *   never        it stays where it is;
 *   immediate    as soon as the rules below allow;
 *   window HH-HH only while the hour of day, in the cluster's `timezone`
 *                setting, is within [HH, HH) — a window may cross
 *                midnight (22-04);
 * and in every case only when
 *   - the home node is in the view and takes groups (active, node_admin.h);
 *   - for a failover: the home is one of the group's preferred owners, and
 *     the group left it, and the node came back, at least
 *     failback_delay_s ago (so a flapping node pulls nothing back and
 *     forth), plus a minute per failback of it that failed; after 3
 *     failed failbacks it stays;
 *   - for a drain: the node was resumed with `--failback policy` (resume
 *     `immediate` moves them at once, drain.h; until a resume they wait);
 *   - the group is online and not moving, and the move passes every
 *     check of migration.h.
 *
 * The plan is pure: the cluster's coordinator (the lowest active member)
 * asks it on a timer with its clock and asks for each due move with
 * MIGRATE_REQUEST cause failback, which every replica checks again
 * against the home; `vm show` asks it to say where a group would go
 * back to and when.
 */
#ifndef VMC_FAILBACK_H
#define VMC_FAILBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "apply.h"
#include "state.h"

/* Failed failbacks of one group after which it stays where it is. */
#define VMC_FAILBACK_TRIES 3

enum vmc_failback_verdict {
	VMC_FAILBACK_NONE = 0, /* no home: nothing to go back to */
	VMC_FAILBACK_DUE,      /* move it home now */
	VMC_FAILBACK_WAIT,     /* it goes home later (at due_s when that is known) */
	VMC_FAILBACK_STAYS,    /* it has a home, but will not go there on its own */
};

struct vmc_failback_plan {
	enum vmc_failback_verdict verdict;
	uint32_t home;     /* node id, 0 for none */
	uint64_t due_s;    /* WAIT: when it may go, 0 when that depends on something else */
	char why[256];
};

/*
 * What failback will do with g, at now_s, when it is minute_of_day
 * (0..1439) in the cluster's timezone.
 */
void vmc_failback_explain(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
			  uint64_t now_s, int minute_of_day, struct vmc_failback_plan *out);

/* Is minute_of_day inside g's failback window? (true for a policy without one) */
bool vmc_failback_window_open(const struct vmc_group_def *def, int minute_of_day);

/* g failed over (or was restarted elsewhere) from node at at_s: its home, unless it has one. */
void vmc_home_failed_over(struct vmc_group *g, uint32_t node, uint64_t at_s);

/* The snapshot's "home" object of a group; NULL when it has none. */
json_object *vmc_home_to_json(const struct vmc_home *h);
int vmc_home_from_json(json_object *o, struct vmc_home *h);
const char *vmc_home_kind_to_str(enum vmc_home_kind k);

/*
 * The minute of the day at now_s in zone (an IANA name, or UTC), as
 * every node computes it from the same tz database. -1 when zone is
 * not one this host knows (its zoneinfo file is missing).
 */
int vmc_zone_minute_of_day(const char *zone, uint64_t now_s);

#endif
