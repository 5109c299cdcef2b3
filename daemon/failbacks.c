/*
 * Failbacks and quarantine ends, asked for by the coordinator (failbacks.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <qb/qbloop.h>

#include "cpg.h"
#include "failback.h"
#include "failbacks.h"
#include "log.h"
#include "node_admin.h"
#include "nodes.h"

#define TICK_MS 2000
/* One request per group (or node) this long: the replicas' answer comes well within it. */
#define ASK_AGAIN_S 20
#define ASKED_MAX 64

struct asked {
	char key[VMC_NAME_MAX + 8];
	uint64_t at_s;
};

static struct asked asked[ASKED_MAX];
static qb_loop_timer_handle tick_timer;
static bool running;

/* Was key asked for within ASK_AGAIN_S? If not, it is now (the oldest entry makes room). */
static bool asked_lately(const char *key, uint64_t now)
{
	struct asked *oldest = &asked[0];

	for (size_t i = 0; i < ASKED_MAX; i++) {
		if (strcmp(asked[i].key, key) == 0) {
			if (now < asked[i].at_s + ASK_AGAIN_S) {
				return true;
			}
			oldest = &asked[i];
			break;
		}
		if (asked[i].at_s < oldest->at_s) {
			oldest = &asked[i];
		}
	}
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	oldest->at_s = now;
	return false;
}

static bool coordinator(const struct vmcd *d)
{
	uint32_t lowest = 0;

	for (size_t i = 0; i < d->replica.n_active; i++) {
		if (lowest == 0 || d->replica.active[i] < lowest) {
			lowest = d->replica.active[i];
		}
	}
	return lowest == d->my_id;
}

static void failback_ask(struct vmcd *d, const struct vmc_group *g, const struct vmc_failback_plan *p, uint64_t now)
{
	unsigned char raw[16];
	char id[VMC_MIG_ID_MAX + 1];
	json_object *body;

	if (asked_lately(g->def->name, now)) {
		return;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		log_warn("vm %s: no random numbers for a failback's migration id", g->def->name);
		return;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		snprintf(id + 2 * i, 3, "%02x", raw[i]);
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(g->def->name));
	json_object_object_add(body, "id", json_object_new_string(id));
	json_object_object_add(body, "target", json_object_new_int64(p->home));
	json_object_object_add(body, "mode", json_object_new_string("live"));
	json_object_object_add(body, "cause", json_object_new_string("failback"));
	json_object_object_add(body, "at_s", json_object_new_int64((int64_t)now));
	log_notice("vm %s: failing back to %s (%s)", g->def->name, vmcd_node_name(d, p->home), p->why);
	if (vmcd_cpg_send_request(d, VMC_MSG_MIGRATE_REQUEST, body) < 0) {
		log_warn("vm %s: cannot ask for its failback to %s", g->def->name, vmcd_node_name(d, p->home));
	}
	json_object_put(body);
}

static void quarantine_end(struct vmcd *d, const struct vmc_node_admin *a, uint64_t now)
{
	char key[VMC_NAME_MAX + 8];
	json_object *body;

	snprintf(key, sizeof(key), "node:%u", a->node);
	if (asked_lately(key, now)) {
		return;
	}
	body = json_object_new_object();
	json_object_object_add(body, "node", json_object_new_int64(a->node));
	json_object_object_add(body, "failback", json_object_new_string("policy"));
	json_object_object_add(body, "expired", json_object_new_boolean(true));
	json_object_object_add(body, "at_s", json_object_new_int64((int64_t)now));
	log_notice("node %s: its quarantine ran out; it takes VMs again", vmcd_node_name(d, a->node));
	if (vmcd_cpg_send_request(d, VMC_MSG_NODE_RESUME, body) < 0) {
		log_warn("node %s: cannot end its quarantine", vmcd_node_name(d, a->node));
	}
	json_object_put(body);
}

static void tick(void *data)
{
	struct vmcd *d = data;
	const struct vmc_state *s = d->replica.state;
	uint64_t now = (uint64_t)time(NULL);

	if (d->quorate && VMC_PROTO_HAS_DRAIN(d->replica.proto) && vmc_replica_writable(&d->replica) &&
	    coordinator(d)) {
		struct vmc_apply_ctx ctx = { .sender = d->my_id, .version = d->replica.proto,
					     .members = d->replica.active, .n_members = d->replica.n_active };
		int minute = vmc_zone_minute_of_day(s->settings.timezone, now);
		for (size_t i = 0; i < s->n_groups; i++) {
			struct vmc_failback_plan p;
			vmc_failback_explain(s, &ctx, &s->groups[i], now, minute, &p);
			if (p.verdict == VMC_FAILBACK_DUE) {
				failback_ask(d, &s->groups[i], &p, now);
			}
		}
		for (size_t i = 0; i < s->n_admin; i++) {
			if (s->admin[i].mode == VMC_NODE_QUARANTINED && s->admin[i].until_s <= now) {
				quarantine_end(d, &s->admin[i], now);
			}
		}
	}
	if (running) {
		qb_loop_timer_add(d->loop, QB_LOOP_LOW, (uint64_t)TICK_MS * QB_TIME_NS_IN_MSEC, d, tick, &tick_timer);
	}
}

void vmcd_failbacks_init(struct vmcd *d)
{
	running = true;
	qb_loop_timer_add(d->loop, QB_LOOP_LOW, (uint64_t)TICK_MS * QB_TIME_NS_IN_MSEC, d, tick, &tick_timer);
}

void vmcd_failbacks_fini(struct vmcd *d)
{
	if (running) {
		running = false;
		qb_loop_timer_del(d->loop, tick_timer);
	}
}
