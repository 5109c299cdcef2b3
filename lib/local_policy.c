/*
 * The local VM policy (rules in local_policy.h). Pure: no I/O, no clock.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "image_locks.h"
#include "lifecycle.h"
#include "volume_apply.h"
#include "local_policy.h"
#include "start_order.h"

const char *vmc_local_action_to_str(enum vmc_local_action a)
{
	static const char *const names[] = {
		[VMC_LOCAL_NONE] = "none",	   [VMC_LOCAL_START] = "start", [VMC_LOCAL_ADOPT] = "adopt",
		[VMC_LOCAL_REPORT] = "report",	   [VMC_LOCAL_STOP] = "stop",	[VMC_LOCAL_KILL] = "kill",
		[VMC_LOCAL_SELF_FENCE] = "self-fence", [VMC_LOCAL_KEEP] = "keep", [VMC_LOCAL_WAIT] = "wait",
		[VMC_LOCAL_VOLUME_KILL] = "volume-kill", [VMC_LOCAL_START_INCOMING] = "start-incoming",
		[VMC_LOCAL_RESUME] = "resume", [VMC_LOCAL_END_SOURCE] = "end-source",
	};

	return (size_t)a < sizeof(names) / sizeof(names[0]) ? names[a] : "unknown";
}

const char *vmc_local_exit_to_str(enum vmc_local_exit e)
{
	switch (e) {
	case VMC_EXIT_NONE:
		return "none";
	case VMC_EXIT_START_FAILED:
		return "start_failed";
	case VMC_EXIT_CRASHED:
		return "crashed";
	case VMC_EXIT_STOPPED:
		return "stopped";
	}
	return "unknown";
}

static const struct vmc_local_vm *local_find(const struct vmc_local_input *in, const char *name)
{
	for (size_t i = 0; i < in->n_vms; i++) {
		if (strcmp(in->vms[i].name, name) == 0) {
			return &in->vms[i];
		}
	}
	return NULL;
}

static bool is_member(const struct vmc_local_input *in, uint32_t id)
{
	for (size_t i = 0; i < in->n_members; i++) {
		if (in->members[i] == id) {
			return true;
		}
	}
	return false;
}

struct out {
	struct vmc_local_decision *d;
	size_t n, max;
};

static struct vmc_local_decision *emit(struct out *o, const char *vm, enum vmc_local_action a)
{
	struct vmc_local_decision *d;

	if (o->n == o->max) {
		return NULL;
	}
	d = &o->d[o->n++];
	memset(d, 0, sizeof(*d));
	snprintf(d->vm, sizeof(d->vm), "%s", vm);
	d->action = a;
	return d;
}

#define DECIDE(o, vm, a, ...)                                                          \
	do {                                                                           \
		struct vmc_local_decision *d_ = emit((o), (vm), (a));                  \
		if (d_ != NULL) {                                                      \
			snprintf(d_->why, sizeof(d_->why), __VA_ARGS__);               \
		}                                                                      \
	} while (0)

/* A report for attempt, or wait when this very report was sent already. */
static void report(struct out *o, const char *vm, const struct vmc_local_vm *l, const char *event,
		   uint32_t attempt, const char *why)
{
	struct vmc_local_decision *d;

	if (l != NULL && l->reported && l->reported_attempt == attempt &&
	    strcmp(l->reported_event, event) == 0) {
		if (strcmp(event, VMC_REPORT_RUNNING) == 0) {
			DECIDE(o, vm, VMC_LOCAL_NONE, "runs here (reported)");
		} else {
			DECIDE(o, vm, VMC_LOCAL_WAIT, "reported %s for start attempt %u; the cluster decides next",
			       event, attempt);
		}
		return;
	}
	d = emit(o, vm, VMC_LOCAL_REPORT);
	if (d != NULL) {
		d->event = event;
		d->attempt = attempt;
		snprintf(d->why, sizeof(d->why), "%s", why);
	}
}

static enum vmc_local_exit exit_of(const struct vmc_local_vm *l, uint32_t attempt)
{
	return l != NULL && l->exit != VMC_EXIT_NONE && l->exit_attempt == attempt ? l->exit : VMC_EXIT_NONE;
}

/* The first volume of def lost here (its index in the state), or -1. */
static int lost_volume(const struct vmc_local_input *in, const struct vmc_group_def *def)
{
	for (size_t i = 0; i < in->state->n_volumes && i < 32; i++) {
		if ((in->volumes_lost & (1u << i)) != 0 && vmc_group_uses_volume(def, &in->state->volumes[i])) {
			return (int)i;
		}
	}
	return -1;
}

/* Killed for a lost volume: say which, while it still is. */
static void volume_lost_report(const struct vmc_local_input *in, struct out *o, const struct vmc_group *g,
			       const struct vmc_local_vm *l)
{
	int lost = lost_volume(in, g->def);
	char why[160];

	if (lost >= 0) {
		snprintf(why, sizeof(why), "killed: volume %s is lost on this node", in->state->volumes[lost].name);
	} else {
		snprintf(why, sizeof(why), "killed: a volume it uses was lost on this node");
	}
	report(o, g->def->name, l, VMC_REPORT_VOLUME_LOST, g->attempt, why);
}

/* It starts after groups not online yet, and has not waited its start_after_timeout_s for them. */
static bool order_wait(const struct vmc_local_input *in, struct out *o, const struct vmc_group *g,
		       const struct vmc_local_vm *l)
{
	const struct vmc_group *blk = vmc_start_order_blocker(in->state, g);
	int64_t since, left;
	struct vmc_local_decision *d;

	if (blk == NULL || g->def->start_after_timeout_s == 0) {
		return false;
	}
	since = l != NULL && l->order_attempt == g->attempt && l->order_since_ms != 0 ? l->order_since_ms : in->now_ms;
	left = since + (int64_t)g->def->start_after_timeout_s * 1000 - in->now_ms;
	if (left <= 0) {
		return false;
	}
	d = emit(o, g->def->name, VMC_LOCAL_WAIT);
	if (d != NULL) {
		d->attempt = g->attempt;
		d->order_wait_ms = left;
		snprintf(d->why, sizeof(d->why), "it starts after %s, which is %s: waiting for it (start_after, at most "
			 "%lld s more)", blk->def->name, vmc_group_state_to_str(blk->state), (long long)((left + 999) / 1000));
	}
	return true;
}

static void owned_starting(const struct vmc_local_input *in, struct out *o, const struct vmc_group *g,
			   const struct vmc_local_vm *l)
{
	const char *vm = g->def->name;
	uint32_t a = g->attempt;
	enum vmc_local_exit e = exit_of(l, a);
	struct vmc_local_decision *d;
	int lost;

	if (l != NULL && l->running) {
		if (l->start_pending) {
			DECIDE(o, vm, VMC_LOCAL_NONE, "starting: waiting for QMP to say running");
		} else {
			report(o, vm, l, VMC_REPORT_RUNNING, a, "QMP says it runs");
		}
		return;
	}
	if (l != NULL && l->exists_unfollowed) {
		DECIDE(o, vm, VMC_LOCAL_ADOPT, "a QEMU for it already runs here: following it");
		return;
	}
	if (l != NULL && l->self_fenced && e != VMC_EXIT_NONE) {
		report(o, vm, l, VMC_REPORT_SELF_FENCED, a, "killed here when quorum was lost");
		return;
	}
	if (l != NULL && l->volume_lost && e != VMC_EXIT_NONE) {
		volume_lost_report(in, o, g, l);
		return;
	}
	if (e == VMC_EXIT_START_FAILED || e == VMC_EXIT_CRASHED) {
		report(o, vm, l, e == VMC_EXIT_CRASHED ? VMC_REPORT_CRASHED : VMC_REPORT_START_FAILED, a,
		       l->exit_reason[0] ? l->exit_reason : "no reason given");
		return;
	}
	if (e == VMC_EXIT_STOPPED) {
		report(o, vm, l, VMC_REPORT_STOPPED, a, l->exit_reason[0] ? l->exit_reason : "it stopped");
		return;
	}
	if (l != NULL && l->started && l->started_attempt == a) {
		/* Started for this attempt and gone without an exit we saw (a lost event). */
		report(o, vm, l, VMC_REPORT_START_FAILED, a, "its QEMU is gone before it ran");
		return;
	}
	lost = lost_volume(in, g->def);
	if (lost >= 0) {
		char why[160];
		snprintf(why, sizeof(why), "volume %s is lost on this node: its lease does not renew here",
			 in->state->volumes[lost].name);
		report(o, vm, l, VMC_REPORT_VOLUME_LOST, a, why);
		return;
	}
	for (size_t i = 0; i < in->state->n_volumes && i < 32; i++) {
		if ((in->volumes_overdue & (1u << i)) != 0 && vmc_group_uses_volume(g->def, &in->state->volumes[i])) {
			DECIDE(o, vm, VMC_LOCAL_WAIT, "waiting for a lease renewal on volume %s here before it starts",
			       in->state->volumes[i].name);
			return;
		}
	}
	if (order_wait(in, o, g, l)) {
		return;
	}
	if (!vmc_locks_held_by(in->state, g, in->my_id)) {
		DECIDE(o, vm, VMC_LOCAL_WAIT, "waiting for its image locks (another VM holds one)");
		return;
	}
	d = emit(o, vm, VMC_LOCAL_START);
	if (d != NULL) {
		d->attempt = a;
		snprintf(d->why, sizeof(d->why), "the cluster starts it here (attempt %u)", a);
	}
}

static void owned_online(const struct vmc_local_input *in, struct out *o, const struct vmc_group *g,
			 const struct vmc_local_vm *l)
{
	const char *vm = g->def->name;
	uint32_t a = g->attempt;
	enum vmc_local_exit e = exit_of(l, a);

	if (l != NULL && l->running && l->paused && g->state == VMC_GROUP_ONLINE) {
		struct vmc_local_decision *d = emit(o, vm, VMC_LOCAL_RESUME);
		if (d != NULL) {
			d->announce = l->incoming_id[0] != '\0';
			snprintf(d->why, sizeof(d->why), "%s", d->announce ? "it moved here: it runs here now"
									 : "its move failed once QEMU had completed it: it runs here again");
		}
		return;
	}
	if (l != NULL && (l->running || l->start_pending)) {
		DECIDE(o, vm, VMC_LOCAL_NONE, "runs here");
		return;
	}
	if (l != NULL && l->exists_unfollowed) {
		DECIDE(o, vm, VMC_LOCAL_ADOPT, "a QEMU for it runs here unfollowed: following it");
		return;
	}
	if (l != NULL && l->self_fenced && e != VMC_EXIT_NONE) {
		report(o, vm, l, VMC_REPORT_SELF_FENCED, a, "killed here when quorum was lost");
	} else if (l != NULL && l->volume_lost && e != VMC_EXIT_NONE) {
		volume_lost_report(in, o, g, l);
	} else if (e == VMC_EXIT_STOPPED) {
		report(o, vm, l, VMC_REPORT_STOPPED, a, l->exit_reason[0] ? l->exit_reason : "the guest shut itself down");
	} else if (e != VMC_EXIT_NONE) {
		report(o, vm, l, VMC_REPORT_CRASHED, a, l->exit_reason[0] ? l->exit_reason : "no reason given");
	} else {
		report(o, vm, l, VMC_REPORT_CRASHED, a, "its QEMU is not running on this node");
	}
}

static void owned_stopping(struct out *o, const struct vmc_group *g, const struct vmc_local_vm *l)
{
	const char *vm = g->def->name;

	if (l == NULL || !l->running) {
		report(o, vm, l, VMC_REPORT_STOPPED, g->attempt, "not running here");
	} else if (!l->stop_pending) {
		DECIDE(o, vm, VMC_LOCAL_STOP, "the cluster stops it");
	} else {
		DECIDE(o, vm, VMC_LOCAL_NONE, "stopping");
	}
}

/* A migration to this node: its QEMU waits for the agent's stream. */
static void incoming_decide(const struct vmc_local_input *in, struct out *o, const struct vmc_group *g,
			    const struct vmc_local_vm *l)
{
	const char *vm = g->def->name;
	bool for_this = l != NULL && strcmp(l->incoming_id, g->mig.id) == 0;
	struct vmc_local_decision *d;
	char node[24];

	(void)in;
	if (l != NULL && (l->running || l->start_pending)) {
		if (for_this) {
			/* Even with its source lost: the move may still complete, or the recovery kills it. */
			DECIDE(o, vm, VMC_LOCAL_NONE, "receiving it from node id %u", g->owner);
		} else {
			DECIDE(o, vm, VMC_LOCAL_KILL, "a QEMU of it runs here that is not the one receiving migration %s",
			       g->mig.id);
		}
		return;
	}
	if (for_this) {
		DECIDE(o, vm, VMC_LOCAL_WAIT, "its incoming QEMU is gone: the move is rolled back");
		return;
	}
	d = emit(o, vm, VMC_LOCAL_START_INCOMING);
	if (d != NULL) {
		memcpy(d->mig_id, g->mig.id, sizeof(d->mig_id));
		snprintf(d->why, sizeof(d->why), "it moves here from %s",
			 vmc_state_node_label(in->state, g->owner, node, sizeof(node)));
	}
}

static void group_decide(const struct vmc_local_input *in, struct out *o, const struct vmc_group *g)
{
	const struct vmc_local_vm *l = local_find(in, g->def->name);
	bool running = l != NULL && l->running;
	bool active = g->state != VMC_GROUP_OFFLINE && g->state != VMC_GROUP_FAILED;
	const char *vm = g->def->name;

	bool migrating_here = g->owner != in->my_id && g->state == VMC_GROUP_MIGRATING &&
			      g->mig.target == in->my_id &&
			      (g->mig.phase == VMC_MIG_TRANSFER || g->mig.phase == VMC_MIG_SWITCHOVER);

	if (migrating_here) {
		incoming_decide(in, o, g, l);
		return;
	}
	/* An incoming QEMU is the VM only once its move is done here; else it must go first. */
	if (running && l->incoming_id[0] != '\0' && !(g->owner == in->my_id && g->state == VMC_GROUP_ONLINE)) {
		DECIDE(o, vm, VMC_LOCAL_KILL, "its QEMU here waited for migration %s, which ended elsewhere", l->incoming_id);
		return;
	}
	if (g->owner != in->my_id) {
		if (running && active && g->owner != 0 && !is_member(in, g->owner)) {
			DECIDE(o, vm, VMC_LOCAL_KEEP, "its owner (node id %u) is lost: kept for the recovery to adopt",
			       g->owner);
		} else if (running && l->paused && g->state == VMC_GROUP_ONLINE && l->incoming_id[0] == '\0') {
			char nb[24];
			DECIDE(o, vm, VMC_LOCAL_END_SOURCE, "it moved to %s: its source QEMU here ends",
			       vmc_state_node_label(in->state, g->owner, nb, sizeof(nb)));
		} else if (running) {
			DECIDE(o, vm, VMC_LOCAL_KILL, "runs here but the cluster says %s%s", vmc_group_state_to_str(g->state),
			       g->owner ? " elsewhere" : "");
		} else if (l != NULL) {
			DECIDE(o, vm, VMC_LOCAL_NONE, "not ours");
		}
		return;
	}
	switch (g->state) {
	case VMC_GROUP_STARTING:
		owned_starting(in, o, g, l);
		return;
	case VMC_GROUP_ONLINE:
	case VMC_GROUP_MIGRATING:
		owned_online(in, o, g, l);
		return;
	case VMC_GROUP_STOPPING:
		owned_stopping(o, g, l);
		return;
	case VMC_GROUP_OFFLINE:
	case VMC_GROUP_FAILED:
		if (running) {
			DECIDE(o, vm, VMC_LOCAL_KILL, "runs here but the cluster says %s", vmc_group_state_to_str(g->state));
		}
		return;
	}
}

static void self_fence(const struct vmc_local_input *in, struct out *o)
{
	for (size_t i = 0; i < in->n_vms; i++) {
		if (in->vms[i].running) {
			DECIDE(o, in->vms[i].name, VMC_LOCAL_SELF_FENCE,
			       "this node lost quorum: it stops its VMs so the quorate side may restart them");
		}
	}
}

/* VMs running here on a volume lost here die now, synced or not: the others may restart them soon. */
static bool volume_kills(const struct vmc_local_input *in, struct out *o)
{
	bool any = false;

	for (size_t i = 0; in->volumes_lost != 0 && i < in->n_vms; i++) {
		const struct vmc_group *g = vmc_state_group_find(in->state, in->vms[i].name);
		int lost = g != NULL && in->vms[i].running ? lost_volume(in, g->def) : -1;
		if (lost >= 0) {
			DECIDE(o, in->vms[i].name, VMC_LOCAL_VOLUME_KILL,
			       "volume %s is lost on this node (no lease renewal within the kill deadline)",
			       in->state->volumes[lost].name);
			any = true;
		}
	}
	return any;
}

size_t vmc_local_decide(const struct vmc_local_input *in, struct vmc_local_decision *out, size_t max)
{
	struct out o = { out, 0, max };

	if (in->quorum_known && !in->quorate) {
		self_fence(in, &o);
		return o.n;
	}
	if (volume_kills(in, &o)) {
		return o.n; /* the rest is decided at the next pass, once they are gone */
	}
	if (!in->synced || !in->writable) {
		return 0;
	}
	for (int p = VMC_PRIORITY_HIGH; p <= VMC_PRIORITY_NO_AUTO_START; p++) {
		for (size_t i = 0; i < in->state->n_groups; i++) {
			if ((int)in->state->groups[i].def->priority == p) {
				group_decide(in, &o, &in->state->groups[i]);
			}
		}
	}
	for (size_t i = 0; i < in->n_vms; i++) {
		if (in->vms[i].running && vmc_state_group_find(in->state, in->vms[i].name) == NULL) {
			DECIDE(&o, in->vms[i].name, VMC_LOCAL_KILL, "runs here but the cluster has no such VM");
		}
	}
	return o.n;
}

enum vmc_local_action vmc_local_on_corosync_lost(const struct vmc_settings *st, char *why, size_t len)
{
	switch (st->fence_method) {
	case VMC_FENCE_AGENT:
	case VMC_FENCE_PACEMAKER:
		snprintf(why, len, "the others fence this node (fence_method %s), which stops its VMs; "
			 "they keep running until then", vmc_fence_method_to_str(st->fence_method));
		return VMC_LOCAL_KEEP;
	case VMC_FENCE_NONE:
		snprintf(why, len, "fence_method is none: the others restart its VMs without reaching this "
			 "node, so they are killed now");
		return VMC_LOCAL_KILL;
	case VMC_FENCE_LEASE:
		snprintf(why, len, "fence_method is lease: the others restart its VMs once its leases "
			 "expire, so they are killed now, before that");
		return VMC_LOCAL_KILL;
	case VMC_FENCE_UNSET:
		break;
	}
	snprintf(why, len, "fencing is not configured: nothing could stop these VMs if the others "
		 "restarted them, so they are killed now");
	return VMC_LOCAL_KILL;
}
