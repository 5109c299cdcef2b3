/*
 * What `node list` says about a node's mode and a drain, and what `vm
 * show` says about a group's failback (views.h). Pure.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "drain.h"
#include "failback.h"
#include "migration.h"
#include "node_admin.h"
#include "views.h"

static bool runs(const struct vmc_group *g)
{
	return g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED;
}

/* The groups still on a draining node: which moves, and why each other one is there. */
static json_object *drain_to_json(const struct vmc_state *s, uint32_t node)
{
	json_object *o = json_object_new_object(), *vms = json_object_new_array();
	struct vmc_drain_status st;
	char tb[24];

	vmc_drain_status(s, node, &st);
	for (size_t i = 0; i < s->n_groups; i++) {
		const struct vmc_group *g = &s->groups[i];
		json_object *v;
		if (g->owner != node || !runs(g)) {
			continue;
		}
		v = json_object_new_object();
		json_object_object_add(v, "vm", json_object_new_string(g->def->name));
		json_object_object_add(v, "moving", json_object_new_boolean(g->mig.phase != VMC_MIG_NONE));
		if (g->mig.phase != VMC_MIG_NONE) {
			json_object_object_add(v, "target",
					       json_object_new_string(vmc_state_node_label(s, g->mig.target, tb, sizeof(tb))));
			json_object_object_add(v, "phase", json_object_new_string(vmc_mig_phase_to_str(g->mig.phase)));
			json_object_object_add(v, "mode", json_object_new_string(g->mig.quick ? "quick" : "live"));
		}
		json_object_object_add(v, "why", json_object_new_string(g->reason));
		json_object_array_add(vms, v);
	}
	json_object_object_add(o, "left", json_object_new_int64((int64_t)st.left));
	json_object_object_add(o, "moving", json_object_new_int64((int64_t)st.moving));
	json_object_object_add(o, "vms", vms);
	return o;
}

void vmc_view_node_mode(const struct vmc_view_input *in, uint32_t id, json_object *n)
{
	const struct vmc_node_admin *a = vmc_node_admin(in->state, id);
	enum vmc_node_mode mode = a != NULL ? a->mode : VMC_NODE_ACTIVE;

	json_object_object_add(n, "mode", json_object_new_string(vmc_node_mode_to_str(mode)));
	if (a == NULL) {
		return;
	}
	json_object_object_add(n, "mode_since_s", json_object_new_uint64(a->since_s));
	json_object_object_add(n, "recent_losses",
			       json_object_new_int64((int64_t)vmc_node_admin_recent_losses(a, in->now_s)));
	if (mode == VMC_NODE_DRAINING || mode == VMC_NODE_DRAIN_FAILED) {
		json_object_object_add(n, "drain", drain_to_json(in->state, id));
		json_object_object_add(n, "drain_force", json_object_new_boolean(a->force));
	}
	if (mode == VMC_NODE_QUARANTINED) {
		json_object_object_add(n, "quarantined_until_s", json_object_new_uint64(a->until_s));
	}
}

json_object *vmc_view_failback(const struct vmc_view_input *in, const struct vmc_group *g)
{
	static const char *const verdicts[] = { "none", "due", "wait", "stays" };
	struct vmc_apply_ctx ctx = { .version = in->protocol, .members = in->active, .n_members = in->n_active };
	struct vmc_failback_plan p;
	json_object *o = json_object_new_object();
	char hb[24];

	vmc_failback_explain(in->state, &ctx, g, in->now_s, in->minute_of_day, &p);
	json_object_object_add(o, "plan", json_object_new_string(verdicts[p.verdict]));
	json_object_object_add(o, "home", p.home ? json_object_new_string(vmc_state_node_label(in->state, p.home, hb,
											  sizeof(hb)))
						  : NULL);
	json_object_object_add(o, "kind", json_object_new_string(vmc_home_kind_to_str(g->home.kind)));
	if (p.due_s != 0) {
		json_object_object_add(o, "due_s", json_object_new_uint64(p.due_s));
	}
	json_object_object_add(o, "text", json_object_new_string(p.why));
	return o;
}
