/*
 * The read views (views.h). Pure: everything comes in through the input.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fence_policy.h"
#include "migration.h"
#include "views.h"
#include "volume_apply.h"

static bool in_list(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == id) {
			return true;
		}
	}
	return false;
}

const char *vmc_view_node_state(const struct vmc_view_input *in, uint32_t id)
{
	if (in_list(in->active, in->n_active, id)) {
		return "up";
	}
	if (in_list(in->view, in->n_view, id)) {
		return "excluded";
	}
	return in_list(in->corosync, in->n_corosync, id) ? "daemon-down" : "down";
}

/* The name clusterctl shows for a node: its own (facts), else the nodelist's. */
static const char *node_name(const struct vmc_view_input *in, uint32_t id, char *buf, size_t len)
{
	const struct vmc_node_facts *f = vmc_state_node(in->state, id);

	if (f != NULL && f->name[0] != '\0') {
		return f->name;
	}
	for (size_t i = 0; i < in->n_nodes; i++) {
		if (in->nodes[i].id == id) {
			return in->nodes[i].name;
		}
	}
	snprintf(buf, len, "node id %u", id);
	return buf;
}

static json_object *name_or_null(const struct vmc_view_input *in, uint32_t id)
{
	char buf[24];

	return id ? json_object_new_string(node_name(in, id, buf, sizeof(buf))) : NULL;
}

/* What a node offers VMs and what it carries now (from the replicated state). */
static void node_load_to_json(const struct vmc_view_input *in, uint32_t id, json_object *n)
{
	const struct vmc_node_facts *f = vmc_state_node(in->state, id);
	uint64_t used = 0;
	int64_t vms = 0;

	for (size_t i = 0; i < in->state->n_groups; i++) {
		const struct vmc_group *g = &in->state->groups[i];
		if (g->owner == id) {
			used += g->def->memory_mib;
			vms++;
		}
	}
	json_object_object_add(n, "vm_memory_mib", json_object_new_int64(f ? f->mem_mib : 0));
	json_object_object_add(n, "used_memory_mib", json_object_new_int64((int64_t)used));
	json_object_object_add(n, "vms", json_object_new_int64(vms));
}

static json_object *nodes_to_json(const struct vmc_view_input *in)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < in->n_nodes; i++) {
		const struct vmc_view_node *vn = &in->nodes[i];
		json_object *n = json_object_new_object();
		json_object_object_add(n, "name", json_object_new_string(vn->name));
		json_object_object_add(n, "id", json_object_new_int64(vn->id));
		json_object_object_add(n, "address", json_object_new_string(vn->addr ? vn->addr : ""));
		json_object_object_add(n, "state", json_object_new_string(vmc_view_node_state(in, vn->id)));
		json_object_object_add(n, "votes", json_object_new_int64(vn->votes));
		node_load_to_json(in, vn->id, n);
		vmc_view_node_mode(in, vn->id, n);
		json_object_array_add(a, n);
	}
	return a;
}

static void seconds(char *buf, size_t len, int64_t ms)
{
	snprintf(buf, len, "%lld s", (long long)((ms + 500) / 1000));
}

void vmc_wait_describe(const struct vmc_view_input *in, const struct vmc_wait *w, char *buf, size_t len)
{
	char nb[24], fb[24], age[24] = "", left[24] = "";
	const char *node = w->node ? node_name(in, w->node, nb, sizeof(nb)) : "";

	if (w->age_ms >= 0) {
		seconds(age, sizeof(age), w->age_ms);
	}
	if (w->left_ms >= 0) {
		seconds(left, sizeof(left), w->left_ms);
	}
	if (strcmp(w->kind, "fencing") == 0 && w->fencer != 0 && w->fencer != in->my_id) {
		snprintf(buf, len, "fencing %s (%s, attempt %lld, by %s)", node, w->method, (long long)w->attempt,
			 node_name(in, w->fencer, fb, sizeof(fb)));
	} else if (strcmp(w->kind, "fencing") == 0) {
		snprintf(buf, len, "fencing %s (%s, attempt %lld%s%s)", node, w->method, (long long)w->attempt,
			 age[0] ? ", " : "", age);
	} else if (strcmp(w->kind, "fencing-retry") == 0) {
		snprintf(buf, len, "fencing %s again (%s, attempt %lld, in %s)", node, w->method,
			 (long long)w->attempt, left);
	} else if (strcmp(w->kind, "daemon-grace") == 0) {
		snprintf(buf, len, "%s daemon grace, %s left", node, left);
	} else if (strcmp(w->kind, "sync") == 0) {
		snprintf(buf, len, "sync: %s%s%s", w->detail, age[0] ? ", for " : "", age);
	} else if (strcmp(w->kind, "vm-start") == 0 || strcmp(w->kind, "vm-stop") == 0) {
		snprintf(buf, len, "vm %s %s on %s%s%s", w->vm, strcmp(w->kind, "vm-start") == 0 ? "starting" : "stopping",
			 node, age[0] ? ", for " : "", age);
	} else if (strcmp(w->kind, "vm-start-order") == 0) {
		snprintf(buf, len, "%s on %s, for %s, at most %s more", w->detail, node, age, left);
	} else if (strcmp(w->kind, "recovery") == 0) {
		snprintf(buf, len, "recovery of %s's VMs held until it is fenced: %s", node, w->detail);
	} else {
		snprintf(buf, len, "%s%s%s: %s", w->kind, node[0] ? " " : "", node, w->detail);
	}
}

static json_object *waits_to_json(const struct vmc_view_input *in)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < in->n_waits; i++) {
		const struct vmc_wait *w = &in->waits[i];
		json_object *o = json_object_new_object();
		char text[384];

		vmc_wait_describe(in, w, text, sizeof(text));
		json_object_object_add(o, "kind", json_object_new_string(w->kind));
		json_object_object_add(o, "node", name_or_null(in, w->node));
		if (w->vm[0] != '\0') {
			json_object_object_add(o, "vm", json_object_new_string(w->vm));
		}
		if (w->method[0] != '\0') {
			json_object_object_add(o, "method", json_object_new_string(w->method));
		}
		if (w->attempt > 0) {
			json_object_object_add(o, "attempt", json_object_new_int64(w->attempt));
		}
		if (w->fencer != 0) {
			json_object_object_add(o, "fencer", name_or_null(in, w->fencer));
		}
		if (w->age_ms >= 0) {
			json_object_object_add(o, "age_s", json_object_new_int64((w->age_ms + 500) / 1000));
		}
		if (w->left_ms >= 0) {
			json_object_object_add(o, "left_s", json_object_new_int64((w->left_ms + 500) / 1000));
		}
		json_object_object_add(o, "detail", json_object_new_string(w->detail));
		json_object_object_add(o, "text", json_object_new_string(text));
		json_object_array_add(a, o);
	}
	return a;
}

/* Whether what the view shows may lag the cluster, and since when (UTC). */
static void stale_add(const struct vmc_view_input *in, json_object *o)
{
	char when[32];
	time_t t = (time_t)in->stale_since_s;
	struct tm tm;

	json_object_object_add(o, "stale", json_object_new_boolean(in->stale_since_s != 0));
	if (in->stale_since_s != 0 && gmtime_r(&t, &tm) != NULL &&
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0) {
		json_object_object_add(o, "stale_since", json_object_new_string(when));
	}
}

json_object *vmc_view_status(const struct vmc_view_input *in)
{
	json_object *o = json_object_new_object();
	json_object *warnings = json_object_new_array();
	char nb[24];

	if (in->warning != NULL) {
		json_object_array_add(warnings, json_object_new_string(in->warning));
	}
	json_object_object_add(o, "cluster_name", json_object_new_string(in->cluster_name));
	json_object_object_add(o, "node_id", json_object_new_int64(in->my_id));
	json_object_object_add(o, "node_name", json_object_new_string(node_name(in, in->my_id, nb, sizeof(nb))));
	stale_add(in, o);
	json_object_object_add(o, "quorate", json_object_new_boolean(in->quorate));
	json_object_object_add(o, "accepting_changes", json_object_new_boolean(in->accepting_changes));
	json_object_object_add(o, "sync", json_object_new_string(in->sync_phase));
	json_object_object_add(o, "expected_votes", json_object_new_int64(in->expected_votes));
	json_object_object_add(o, "total_votes", json_object_new_int64(in->total_votes));
	json_object_object_add(o, "protocol", json_object_new_int(in->protocol));
	json_object_object_add(o, "epoch", json_object_new_uint64(in->state->epoch));
	json_object_object_add(o, "config_version", json_object_new_uint64(in->state->config_version));
	json_object_object_add(o, "state_digest", json_object_new_string(in->digest));
	json_object_object_add(o, "vms", json_object_new_int64((int64_t)in->state->n_groups));
	json_object_object_add(o, "nodes", nodes_to_json(in));
	json_object_object_add(o, "fence_method",
			       json_object_new_string(vmc_fence_method_to_str(in->state->settings.fence_method)));
	/* Absent without volumes, so the views of clusters without them stay as they were. */
	if (in->state->n_volumes > 0) {
		char by[224];
		json_object_object_add(o, "fencing_by",
				       json_object_new_string(vmc_fence_summary(in->state, by, sizeof(by))));
	}
	json_object_object_add(o, "waits", waits_to_json(in));
	json_object_object_add(o, "warnings", warnings);
	return o;
}

json_object *vmc_view_node_list(const struct vmc_view_input *in)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "nodes", nodes_to_json(in));
	return o;
}

static bool owner_lost(const struct vmc_view_input *in, const struct vmc_group *g)
{
	return g->owner != 0 && g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED &&
	       !in_list(in->active, in->n_active, g->owner);
}

static json_object *group_summary(const struct vmc_view_input *in, const struct vmc_group *g)
{
	json_object *o = json_object_new_object();
	json_object *pref = json_object_new_array();
	bool lost = owner_lost(in, g);

	for (size_t i = 0; i < g->def->preferred_owners.n; i++) {
		json_object_array_add(pref, json_object_new_string(g->def->preferred_owners.v[i]));
	}
	json_object_object_add(o, "name", json_object_new_string(g->def->name));
	json_object_object_add(o, "owner", name_or_null(in, g->owner));
	json_object_object_add(o, "state", json_object_new_string(lost ? "unknown" : vmc_group_state_to_str(g->state)));
	json_object_object_add(o, "cluster_state", json_object_new_string(vmc_group_state_to_str(g->state)));
	json_object_object_add(o, "owner_state", g->owner ? json_object_new_string(vmc_view_node_state(in, g->owner))
							  : NULL);
	json_object_object_add(o, "priority", json_object_new_string(vmc_priority_to_str(g->def->priority)));
	json_object_object_add(o, "memory_mib", json_object_new_int64(g->def->memory_mib));
	json_object_object_add(o, "vcpus", json_object_new_int64(g->def->vcpus));
	json_object_object_add(o, "preferred_owners", pref);
	/* Absent for vmcluster's own groups, so their views stay as they were. */
	if (vmc_group_def_by_pacemaker(g->def)) {
		json_object_object_add(o, "manager", json_object_new_string("pacemaker"));
	}
	return o;
}

json_object *vmc_view_vm_list(const struct vmc_view_input *in)
{
	json_object *o = json_object_new_object();
	json_object *a = json_object_new_array_ext((int)in->state->n_groups);

	stale_add(in, o);
	for (size_t i = 0; i < in->state->n_groups; i++) {
		json_object_array_add(a, group_summary(in, &in->state->groups[i]));
	}
	json_object_object_add(o, "vms", a);
	return o;
}

/* Failures inside failover.period_s, the ones that count against the threshold. */
static int64_t recent_failures(const struct vmc_view_input *in, const struct vmc_group *g)
{
	int64_t n = 0;

	for (size_t i = 0; i < g->n_failures; i++) {
		if (in->now_s >= g->failures[i].at_s && in->now_s - g->failures[i].at_s < g->def->failover_period_s) {
			n++;
		}
	}
	return n;
}

/* Why a group whose owner is lost waits: the fencing of its owner, as status says it. */
static void lost_reason(const struct vmc_view_input *in, const struct vmc_group *g, char *buf, size_t len)
{
	char nb[24], text[384];

	snprintf(buf, len, "%s is %s: nobody can tell what runs there until it answers or is fenced",
		 node_name(in, g->owner, nb, sizeof(nb)), vmc_view_node_state(in, g->owner));
	for (size_t i = 0; i < in->n_waits; i++) {
		if (in->waits[i].node == g->owner && strncmp(in->waits[i].kind, "vm-", 3) != 0) {
			vmc_wait_describe(in, &in->waits[i], text, sizeof(text));
			snprintf(buf, len, "%s is %s; waiting: %s", node_name(in, g->owner, nb, sizeof(nb)),
				 vmc_view_node_state(in, g->owner), text);
			return;
		}
	}
}

static json_object *group_locks(const struct vmc_view_input *in, const struct vmc_group *g);

json_object *vmc_view_vm_show(const struct vmc_view_input *in, const struct vmc_group *g)
{
	json_object *o = group_summary(in, g);
	char lost[512];

	stale_add(in, o);
	json_object_object_add(o, "want_started", json_object_new_boolean(g->want_started));
	json_object_object_add(o, "attempt", json_object_new_int64(g->attempt));
	json_object_object_add(o, "reason", json_object_new_string(g->reason));
	if (owner_lost(in, g)) {
		lost_reason(in, g, lost, sizeof(lost));
		json_object_object_add(o, "owner_lost", json_object_new_string(lost));
	}
	json_object_object_add(o, "recent_failures", json_object_new_int64(recent_failures(in, g)));
	/* Absent unless failed where it is known, so other views stay as they were. */
	if (g->state == VMC_GROUP_FAILED && g->failed_on != 0) {
		char nb[24];
		json_object_object_add(o, "failed_on", json_object_new_string(node_name(in, g->failed_on, nb, sizeof(nb))));
	}
	/* Absent unless it moves, so the views of groups at rest stay as they were. */
	if (g->mig.phase != VMC_MIG_NONE) {
		json_object *m = json_object_new_object();
		char nb[24];
		json_object_object_add(m, "id", json_object_new_string(g->mig.id));
		json_object_object_add(m, "phase", json_object_new_string(vmc_mig_phase_to_str(g->mig.phase)));
		json_object_object_add(m, "mode", json_object_new_string(g->mig.quick ? "quick" : "live"));
		json_object_object_add(m, "target", json_object_new_string(node_name(in, g->mig.target, nb, sizeof(nb))));
		json_object_object_add(o, "migration", m);
	}
	json_object_object_add(o, "failback", vmc_view_failback(in, g));
	/* Absent without volumes, so the views of clusters without them stay as they were. */
	if (in->state->n_volumes > 0) {
		json_object_object_add(o, "locks", group_locks(in, g));
	}
	json_object_object_add(o, "definition", vmc_group_def_to_json(g->def));
	return o;
}

static json_object *lock_to_json(const struct vmc_view_input *in, const struct vmc_volume *v,
				 const struct vmc_image_lock *l)
{
	json_object *o = json_object_new_object();
	char nb[24];

	json_object_object_add(o, "image", json_object_new_string(l->image));
	json_object_object_add(o, "volume", json_object_new_string(v->name));
	json_object_object_add(o, "vm", json_object_new_string(l->group));
	json_object_object_add(o, "node", json_object_new_string(node_name(in, l->node, nb, sizeof(nb))));
	json_object_object_add(o, "epoch", json_object_new_uint64(l->epoch));
	return o;
}

static json_object *group_locks(const struct vmc_view_input *in, const struct vmc_group *g)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < in->state->n_volumes; i++) {
		const struct vmc_volume *v = &in->state->volumes[i];
		for (size_t k = 0; k < v->n_locks; k++) {
			if (strcmp(v->locks[k].group, g->def->name) == 0) {
				json_object_array_add(a, lock_to_json(in, v, &v->locks[k]));
			}
		}
	}
	return a;
}

/* One line per node about the volume: what it reported last. */
static json_object *volume_seen_to_json(const struct vmc_view_input *in, const struct vmc_volume *v)
{
	json_object *a = json_object_new_array();
	char nb[24];

	for (size_t i = 0; i < v->n_seen; i++) {
		const struct vmc_volume_seen *e = &v->seen[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "node", json_object_new_string(node_name(in, e->node, nb, sizeof(nb))));
		json_object_object_add(o, "health", json_object_new_string(vmc_volume_health_to_str(e->health)));
		json_object_object_add(o, "errno", json_object_new_int(e->err));
		json_object_object_add(o, "detail", json_object_new_string(e->detail));
		json_object_object_add(o, "since_s", json_object_new_uint64(e->since_s));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *volume_summary(const struct vmc_view_input *in, const struct vmc_volume *v)
{
	json_object *o = json_object_new_object();
	size_t users = 0, ok = 0;

	for (size_t j = 0; j < in->state->n_groups; j++) {
		users += vmc_group_uses_volume(in->state->groups[j].def, v);
	}
	for (size_t i = 0; i < v->n_seen; i++) {
		ok += v->seen[i].health == VMC_VOLUME_OK;
	}
	json_object_object_add(o, "name", json_object_new_string(v->name));
	json_object_object_add(o, "path", json_object_new_string(v->path));
	json_object_object_add(o, "coordinator", name_or_null(in, v->coordinator));
	json_object_object_add(o, "vms", json_object_new_int64((int64_t)users));
	json_object_object_add(o, "locks", json_object_new_int64((int64_t)v->n_locks));
	json_object_object_add(o, "healthy_on", json_object_new_int64((int64_t)ok));
	json_object_object_add(o, "reported_by", json_object_new_int64((int64_t)v->n_seen));
	return o;
}

json_object *vmc_view_volume_list(const struct vmc_view_input *in)
{
	json_object *o = json_object_new_object();
	json_object *a = json_object_new_array();

	stale_add(in, o);
	for (size_t i = 0; i < in->state->n_volumes; i++) {
		json_object_array_add(a, volume_summary(in, &in->state->volumes[i]));
	}
	json_object_object_add(o, "volumes", a);
	return o;
}

json_object *vmc_view_volume_show(const struct vmc_view_input *in, const struct vmc_volume *v)
{
	json_object *o = volume_summary(in, v);
	json_object *locks = json_object_new_array();

	stale_add(in, o);
	json_object_object_add(o, "preferred_coordinator", name_or_null(in, v->preferred));
	json_object_object_add(o, "seen", volume_seen_to_json(in, v));
	for (size_t k = 0; k < v->n_locks; k++) {
		json_object_array_add(locks, lock_to_json(in, v, &v->locks[k]));
	}
	json_object_object_add(o, "image_locks", locks);
	return o;
}
