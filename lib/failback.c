/*
 * Failback plans and homes (failback.h). vmc_failback_explain is pure;
 * vmc_zone_minute_of_day reads the tz database.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "failback.h"
#include "json_util.h"
#include "migration.h"
#include "node_admin.h"

#define FAILED_BACKOFF_S 60
#define DAY_MIN 1440

static const char *const kind_names[] = {
	[VMC_HOME_NONE] = "none",
	[VMC_HOME_FAILOVER] = "failover",
	[VMC_HOME_DRAIN] = "drain",
	[VMC_HOME_RESUMED] = "resumed",
	[VMC_HOME_FROZEN] = "frozen",
};

#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *vmc_home_kind_to_str(enum vmc_home_kind k)
{
	return (size_t)k < N_KINDS ? kind_names[k] : "unknown";
}

void vmc_home_failed_over(struct vmc_group *g, uint32_t node, uint64_t at_s)
{
	if (g->home.kind == VMC_HOME_NONE && node != 0) {
		g->home = (struct vmc_home){ .kind = VMC_HOME_FAILOVER, .node = node, .since_s = at_s };
	}
}

bool vmc_failback_window_open(const struct vmc_group_def *def, int minute_of_day)
{
	int from = def->failback_start_min, to = def->failback_end_min;

	if (def->failback != VMC_FAILBACK_WINDOW) {
		return true;
	}
	if (from < to) {
		return minute_of_day >= from && minute_of_day < to;
	}
	return minute_of_day >= from || minute_of_day < to; /* across midnight */
}


static void plan_set(struct vmc_failback_plan *p, enum vmc_failback_verdict v, uint64_t due, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void plan_set(struct vmc_failback_plan *p, enum vmc_failback_verdict v, uint64_t due, const char *fmt, ...)
{
	va_list ap;

	p->verdict = v;
	p->due_s = due;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
}

/* The rules that depend on the policy and the clock; true when they let it go now. */
static bool policy_allows(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
			  const char *home, uint64_t now_s, int minute, struct vmc_failback_plan *p)
{
	const struct vmc_node_admin *a = vmc_node_admin(s, g->home.node);
	uint64_t ready = g->home.since_s;
	char fb[32];

	if (g->def->failback == VMC_FAILBACK_NEVER) {
		plan_set(p, VMC_FAILBACK_STAYS, 0, "it stays: its failback policy is never (clusterctl vm set %s "
			 "failback=immediate, or move it by hand)", g->def->name);
		return false;
	}
	if (g->home.kind == VMC_HOME_FAILOVER && !vmc_strlist_contains(&g->def->preferred_owners, home)) {
		plan_set(p, VMC_FAILBACK_STAYS, 0, "it stays: %s is not one of its preferred owners", home);
		return false;
	}
	if (!vmc_apply_in_view(ctx, g->home.node)) {
		plan_set(p, VMC_FAILBACK_WAIT, 0, "back to %s when it is up again", home);
		return false;
	}
	if (g->home.kind == VMC_HOME_FAILOVER) {
		if (a != NULL && a->back_s > ready) {
			ready = a->back_s;
		}
		ready += s->settings.failback_delay_s + (uint64_t)g->home.failed * FAILED_BACKOFF_S;
		if (now_s < ready) {
			plan_set(p, VMC_FAILBACK_WAIT, ready, "back to %s in %llu s (failback_delay_s %u%s)", home,
				 (unsigned long long)(ready - now_s), s->settings.failback_delay_s,
				 g->home.failed ? ", longer after a failed failback" : "");
			return false;
		}
	}
	if (minute < 0) {
		plan_set(p, VMC_FAILBACK_WAIT, 0, "back to %s once this node knows timezone %s (its zoneinfo is missing)",
			 home, s->settings.timezone);
		return false;
	}
	if (!vmc_failback_window_open(g->def, minute)) {
		/* From the start of this minute: every zone's offset is whole minutes. */
		uint64_t secs = (uint64_t)((g->def->failback_start_min - minute + DAY_MIN) % DAY_MIN) * 60 - now_s % 60;
		char in[32];
		if (secs < 600) {
			snprintf(in, sizeof(in), "%llu s", (unsigned long long)secs);
		} else {
			snprintf(in, sizeof(in), "%llu min", (unsigned long long)(secs + 59) / 60);
		}
		plan_set(p, VMC_FAILBACK_WAIT, now_s + secs, "back to %s when its failback %s opens (%s), in %s", home,
			 vmc_failback_to_str(g->def, fb, sizeof(fb)), s->settings.timezone, in);
		return false;
	}
	return true;
}

void vmc_failback_explain(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
			  uint64_t now_s, int minute, struct vmc_failback_plan *p)
{
	char home[24], why[256];

	memset(p, 0, sizeof(*p));
	if (vmc_apply_by_pacemaker(ctx, g->def)) {
		/* A move behind pacemaker's back would be refused anyway (migration.c). */
		plan_set(p, VMC_FAILBACK_NONE, 0, "none: pacemaker decides where it runs (managed by pacemaker)");
		return;
	}
	if (g->home.kind == VMC_HOME_NONE) {
		plan_set(p, VMC_FAILBACK_NONE, 0, "none: it was not failed over or drained away (a manual move leaves "
			 "no failback)");
		return;
	}
	p->home = g->home.node;
	snprintf(home, sizeof(home), "%s", vmc_state_node_label(s, g->home.node, why, sizeof(why)));
	if (g->owner == g->home.node) {
		plan_set(p, VMC_FAILBACK_STAYS, 0, "it runs on its home %s", home);
		return;
	}
	if (g->home.failed >= VMC_FAILBACK_TRIES) {
		plan_set(p, VMC_FAILBACK_STAYS, 0, "it stays: %u failbacks to %s failed (move it by hand)", g->home.failed,
			 home);
		return;
	}
	if (g->home.kind == VMC_HOME_FROZEN) {
		plan_set(p, VMC_FAILBACK_WAIT, 0, "it starts on %s when %s is back from its shutdown (shutdown_policy freeze)",
			 home, home);
		return;
	}
	if (g->home.kind == VMC_HOME_DRAIN) {
		plan_set(p, VMC_FAILBACK_WAIT, 0, "back to %s when it is resumed (clusterctl node resume %s "
			 "--failback immediate|policy)", home, home);
		return;
	}
	if (!policy_allows(s, ctx, g, home, now_s, minute, p)) {
		return;
	}
	if (!vmc_node_takes_groups(s, g->home.node)) {
		plan_set(p, VMC_FAILBACK_WAIT, 0, "back to %s when it takes VMs again (it is %s)", home,
			 vmc_node_mode_to_str(vmc_node_mode(s, g->home.node)));
		return;
	}
	if (g->state != VMC_GROUP_ONLINE || g->mig.phase != VMC_MIG_NONE) {
		plan_set(p, VMC_FAILBACK_WAIT, 0, "back to %s once it is online and not moving (it is %s)", home,
			 g->mig.phase != VMC_MIG_NONE ? "moving" : vmc_group_state_to_str(g->state));
		return;
	}
	if (vmc_migration_check(s, ctx, g, g->home.node, why, sizeof(why)) != 0) {
		plan_set(p, VMC_FAILBACK_WAIT, 0, "back to %s once it can move there: %.180s", home, why);
		return;
	}
	plan_set(p, VMC_FAILBACK_DUE, now_s, "back to %s now (live)", home);
}

json_object *vmc_home_to_json(const struct vmc_home *h)
{
	json_object *o;

	if (h->kind == VMC_HOME_NONE) {
		return NULL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "kind", json_object_new_string(vmc_home_kind_to_str(h->kind)));
	json_object_object_add(o, "node", json_object_new_int64(h->node));
	json_object_object_add(o, "since_s", json_object_new_uint64(h->since_s));
	json_object_object_add(o, "failed", json_object_new_int64(h->failed));
	return o;
}

int vmc_home_from_json(json_object *o, struct vmc_home *h)
{
	const char *kind = vmc_json_str(o, "kind");

	*h = (struct vmc_home){ 0 };
	for (size_t i = 1; kind != NULL && i < N_KINDS; i++) {
		if (strcmp(kind, kind_names[i]) == 0) {
			h->kind = (enum vmc_home_kind)i;
		}
	}
	if (h->kind == VMC_HOME_NONE || !vmc_json_u32(o, "node", &h->node) || h->node == 0 ||
	    !vmc_json_u64(o, "since_s", &h->since_s) || !vmc_json_u32(o, "failed", &h->failed)) {
		*h = (struct vmc_home){ 0 };
		return -EINVAL;
	}
	return 0;
}

int vmc_zone_minute_of_day(const char *zone, uint64_t now_s)
{
	char path[128], *saved = NULL;
	const char *was = getenv("TZ");
	time_t t = (time_t)now_s;
	struct tm tm;
	int minute = -1;

	if (strcmp(zone, "UTC") == 0) {
		gmtime_r(&t, &tm);
		return tm.tm_hour * 60 + tm.tm_min;
	}
	/* glibc reads a zone it cannot find as UTC: that would decide unlike the other nodes. */
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", zone);
	if (access(path, R_OK) != 0) {
		return -1;
	}
	if (was != NULL && (saved = strdup(was)) == NULL) {
		return -1;
	}
	if (setenv("TZ", zone, 1) == 0) {
		tzset();
		if (localtime_r(&t, &tm) != NULL) {
			minute = tm.tm_hour * 60 + tm.tm_min;
		}
	}
	if (saved != NULL) {
		setenv("TZ", saved, 1);
	} else {
		unsetenv("TZ");
	}
	tzset();
	free(saved);
	return minute;
}
