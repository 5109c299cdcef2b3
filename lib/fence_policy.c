/*
 * The fencing policy (rules in fence_policy.h). Pure: no I/O; time comes
 * in as now_ms.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "fence_policy.h"
#include "lifecycle.h"

const char *vmc_fence_action_to_str(enum vmc_fence_action a)
{
	static const char *const names[] = {
		[VMC_FENCE_NOTHING] = "nothing",
		[VMC_FENCE_GRACE] = "grace",
		[VMC_FENCE_WAIT_NONE] = "wait-none",
		[VMC_FENCE_WARN_UNSET] = "warn-unset",
		[VMC_FENCE_WAIT_BARRIER] = "wait-barrier",
		[VMC_FENCE_ANNOUNCE_NONE] = "announce-none",
		[VMC_FENCE_RUN] = "run",
		[VMC_FENCE_WAIT_RUN] = "wait-run",
		[VMC_FENCE_KILL_RUN] = "kill-run",
		[VMC_FENCE_ANNOUNCE_FENCED] = "announce-fenced",
		[VMC_FENCE_ANNOUNCE_FAILED] = "announce-failed",
		[VMC_FENCE_WAIT_APPLIED] = "wait-applied",
		[VMC_FENCE_RETRY_LATER] = "retry-later",
		[VMC_FENCE_OTHERS_TURN] = "others-turn",
		[VMC_FENCE_NO_NAME] = "no-name",
		[VMC_FENCE_DROP_RESULT] = "drop-result",
		[VMC_FENCE_TURN_EXPIRED] = "turn-expired",
		[VMC_FENCE_WAIT_LEASE] = "wait-lease",
		[VMC_FENCE_ANNOUNCE_LEASE] = "announce-lease",
		[VMC_FENCE_WARN_LEASE] = "warn-lease",
	};

	return (size_t)a < sizeof(names) / sizeof(names[0]) ? names[a] : "unknown";
}

static bool in_list(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == id) {
			return true;
		}
	}
	return false;
}

static const struct vmc_fence_local *local_of(const struct vmc_fence_input *in, uint32_t node)
{
	for (size_t i = 0; i < in->n_locals; i++) {
		if (in->locals[i].node == node) {
			return &in->locals[i];
		}
	}
	return NULL;
}

/* The name the fence agent knows the node by: its own (facts), else corosync's nodelist. */
static const char *node_name(const struct vmc_fence_input *in, uint32_t node)
{
	const struct vmc_node_facts *f = vmc_state_node(in->state, node);

	if (f != NULL && f->name[0] != '\0') {
		return f->name;
	}
	for (size_t i = 0; i < in->n_nodelist; i++) {
		if (in->nodelist[i].id == node && in->nodelist[i].name != NULL && in->nodelist[i].name[0] != '\0') {
			return in->nodelist[i].name;
		}
	}
	return NULL;
}

static bool node_lost(const struct vmc_fence_input *in, uint32_t node)
{
	return node != 0 && !in_list(in->members, in->n_members, node) &&
	       vmc_state_node_has_groups(in->state, node);
}

struct out {
	struct vmc_fence_decision *d;
	size_t n, max;
};

static struct vmc_fence_decision *emit(struct out *o, uint32_t node, enum vmc_fence_action a)
{
	struct vmc_fence_decision *d;

	if (o->n == o->max) {
		return NULL;
	}
	d = &o->d[o->n++];
	memset(d, 0, sizeof(*d));
	d->node = node;
	d->action = a;
	return d;
}

#define DECIDE(d, ...)                                                   \
	do {                                                             \
		if ((d) != NULL) {                                       \
			snprintf((d)->why, sizeof((d)->why), __VA_ARGS__); \
		}                                                        \
	} while (0)

/* The node is not lost (back, or owns nothing): only our run's loose ends. */
static void not_lost(const struct vmc_fence_input *in, struct out *o, const struct vmc_fence_local *l)
{
	struct vmc_fence_decision *d;

	if (l->result_ready) {
		d = emit(o, l->node, VMC_FENCE_DROP_RESULT);
		DECIDE(d, "its fencing no longer matters (it is back, or owns no VM)");
	} else if (l->running) {
		d = emit(o, l->node, VMC_FENCE_WAIT_RUN);
		if (d != NULL) {
			d->attempt = l->run_attempt;
			d->wait_ms = in->now_ms - l->run_started_ms;
		}
		DECIDE(d, "its fencing no longer matters; the agent is left to finish");
	} else {
		d = emit(o, l->node, VMC_FENCE_NOTHING);
		DECIDE(d, "not lost");
	}
}

/* Corosync still has it: only its daemon is missing. true when the caller must stop here. */
static bool grace(const struct vmc_fence_input *in, struct out *o, uint32_t node,
		  const struct vmc_fence_local *l)
{
	struct vmc_fence_decision *d;
	int64_t since = l != NULL ? l->daemon_gone_since_ms : 0;
	int64_t left = since == 0 ? in->t->daemon_grace_ms : since + in->t->daemon_grace_ms - in->now_ms;

	if (!in_list(in->cs_members, in->n_cs_members, node)) {
		return false;
	}
	if (in->state->settings.fence_method == VMC_FENCE_NONE) {
		d = emit(o, node, VMC_FENCE_WAIT_NONE);
		DECIDE(d, "its daemon is gone but corosync still has it, and fence_method none gives no proof: "
			  "waiting until corosync loses it");
		return true;
	}
	if (left > 0) {
		d = emit(o, node, VMC_FENCE_GRACE);
		if (d != NULL) {
			d->wait_ms = left;
		}
		DECIDE(d, "its daemon is gone but corosync still has it: waiting for the daemon to come back");
		return true;
	}
	return false;
}

/* Our agent's run, when there is one: true when it decided. */
static bool own_run(const struct vmc_fence_input *in, struct out *o, uint32_t node,
		    const struct vmc_fence_local *l)
{
	struct vmc_fence_decision *d;

	if (l == NULL) {
		return false;
	}
	if (l->result_ready && l->result_ok && l->run_epoch != in->state->epoch) {
		d = emit(o, node, VMC_FENCE_DROP_RESULT);
		DECIDE(d, "the membership changed while the agent ran: its success proves nothing now");
		return true;
	}
	if (l->result_ready && l->result_ok) {
		if (!in->reports_ready) {
			d = emit(o, node, VMC_FENCE_WAIT_BARRIER);
			DECIDE(d, "fenced; waiting for every member's report of what it runs");
			return true;
		}
		d = emit(o, node, VMC_FENCE_ANNOUNCE_FENCED);
		if (d != NULL) {
			d->attempt = l->run_attempt;
			d->fencer = in->my_id;
		}
		DECIDE(d, "the fence agent succeeded");
		return true;
	}
	if (l->result_ready) {
		d = emit(o, node, VMC_FENCE_ANNOUNCE_FAILED);
		if (d != NULL) {
			d->attempt = l->run_attempt;
			d->fencer = in->my_id;
		}
		DECIDE(d, "fencing attempt %u failed: %s", l->run_attempt + 1, l->result_error);
		return true;
	}
	if (l->running) {
		int64_t age = in->now_ms - l->run_started_ms;
		d = emit(o, node, age >= in->t->fence_run_ms ? VMC_FENCE_KILL_RUN : VMC_FENCE_WAIT_RUN);
		if (d != NULL) {
			d->attempt = l->run_attempt;
			d->fencer = in->my_id;
			d->wait_ms = age;
		}
		DECIDE(d, age >= in->t->fence_run_ms ? "the fence agent is past fence_timeout_s" : "fencing");
		return true;
	}
	return false;
}

/* Another member's turn; past fence_turn_ms without a word from it, it is lost. */
static void others_turn(const struct vmc_fence_input *in, struct out *o, uint32_t node,
			const struct vmc_fence_local *l, uint32_t fencer, uint32_t attempts)
{
	bool expired = l != NULL && l->turn_seen_ms != 0 && l->turn_seen_attempts == attempts &&
		       in->now_ms - l->turn_seen_ms >= in->t->fence_turn_ms;
	struct vmc_fence_decision *d = emit(o, node, expired ? VMC_FENCE_TURN_EXPIRED : VMC_FENCE_OTHERS_TURN);

	if (d != NULL) {
		d->fencer = fencer;
		d->attempt = attempts;
	}
	if (expired) {
		DECIDE(d, "node id %u said nothing of attempt %u for %lld s: counted as failed", fencer, attempts + 1,
		       (long long)((in->now_ms - l->turn_seen_ms) / 1000));
	} else {
		DECIDE(d, "attempt %u is node id %u's", attempts + 1, fencer);
	}
}

static void lost_by_agent(const struct vmc_fence_input *in, struct out *o, uint32_t node,
			  const struct vmc_fence_local *l)
{
	const struct vmc_fence_record *rec = vmc_state_fencing(in->state, node);
	uint32_t attempts = rec != NULL ? rec->attempts : 0;
	uint32_t fencer = in->members[attempts % in->n_members];
	const char *plug = node_name(in, node);
	struct vmc_fence_decision *d;

	if (own_run(in, o, node, l)) {
		return;
	}
	if (l != NULL && l->announced && l->announced_attempts == attempts &&
	    l->announced_epoch == in->state->epoch) {
		d = emit(o, node, VMC_FENCE_WAIT_APPLIED);
		DECIDE(d, "the outcome of attempt %u is on its way", attempts + 1);
		return;
	}
	if (fencer != in->my_id) {
		others_turn(in, o, node, l, fencer, attempts);
		return;
	}
	if (l != NULL && l->failure_seen_ms != 0 && l->failure_seen_attempts == attempts &&
	    in->now_ms - l->failure_seen_ms < in->t->fence_retry_ms) {
		d = emit(o, node, VMC_FENCE_RETRY_LATER);
		if (d != NULL) {
			d->fencer = fencer;
			d->attempt = attempts;
			d->wait_ms = l->failure_seen_ms + in->t->fence_retry_ms - in->now_ms;
		}
		DECIDE(d, "attempt %u is ours, after a pause (the last failed: %s)", attempts + 1,
		       rec != NULL ? rec->last_error : "here");
		return;
	}
	if (plug == NULL) {
		d = emit(o, node, VMC_FENCE_NO_NAME);
		if (d != NULL) {
			d->fencer = fencer;
			d->attempt = attempts;
		}
		DECIDE(d, "no name is known for node id %u to give the fence agent", node);
		return;
	}
	d = emit(o, node, VMC_FENCE_RUN);
	if (d != NULL) {
		d->fencer = fencer;
		d->attempt = attempts;
		snprintf(d->plug, sizeof(d->plug), "%s", plug);
	}
	DECIDE(d, "attempt %u is ours", attempts + 1);
}

bool vmc_fence_lease_usable(const struct vmc_state *s, char *why, size_t len)
{
	if (s->n_volumes == 0) {
		snprintf(why, len, "the cluster has no volume to hold leases ('clusterctl volume add')");
		return false;
	}
	for (size_t i = 0; i < s->n_nodes; i++) {
		if (!s->nodes[i].watchdog) {
			snprintf(why, len, "node %s holds no armed watchdog (watchdog-device, vmcluster.conf(5))",
				 s->nodes[i].name);
			return false;
		}
	}
	return true;
}

const char *vmc_fence_summary(const struct vmc_state *s, char *buf, size_t len)
{
	char why[160];
	bool lease = vmc_fence_lease_usable(s, why, sizeof(why));
	enum vmc_fence_method m = s->settings.fence_method;

	switch (m) {
	case VMC_FENCE_UNSET:
		snprintf(buf, len, "%s", lease ? "lease (fence_method unset; every node holds a watchdog)" : "unset");
		break;
	case VMC_FENCE_LEASE:
		if (lease) {
			snprintf(buf, len, "lease");
		} else {
			snprintf(buf, len, "lease, not usable: %.120s", why);
		}
		break;
	case VMC_FENCE_AGENT:
	case VMC_FENCE_PACEMAKER:
		snprintf(buf, len, "%s%s", vmc_fence_method_to_str(m), lease ? " or lease, whichever proves it first" : "");
		break;
	case VMC_FENCE_NONE:
		snprintf(buf, len, "none");
		break;
	}
	return buf;
}

const char *vmc_fence_warning(const struct vmc_state *s)
{
	char why[160];

	if (s->settings.fence_method == VMC_FENCE_UNSET && vmc_fence_lease_usable(s, why, sizeof(why))) {
		return NULL;
	}
	if (s->settings.fence_method == VMC_FENCE_LEASE && !vmc_fence_lease_usable(s, why, sizeof(why))) {
		return "fence_method is lease but leases cannot prove a node dead now (see 'clusterctl status "
		       "--json', fencing_by): a lost node's VMs are not failed over";
	}
	return vmc_settings_warning(&s->settings);
}

/*
 * The lease proof: announce once it is in (and the barrier too), else
 * wait. only_when_proven: the agent's path is the other proof, so
 * decide only when this one is in. true when it decided.
 */
static bool lost_by_lease(const struct vmc_fence_input *in, struct out *o, uint32_t node,
			  const struct vmc_fence_local *l, bool only_when_proven)
{
	struct vmc_fence_decision *d;
	int lease = l != NULL ? l->lease : 0;

	if (only_when_proven && lease != 1) {
		return false;
	}
	if (lease == 1 && l->announced && l->announced_epoch == in->state->epoch) {
		d = emit(o, node, VMC_FENCE_WAIT_APPLIED);
		DECIDE(d, "its lease expired; the recovery is on its way");
	} else if (lease == 1 && !in->reports_ready) {
		d = emit(o, node, VMC_FENCE_WAIT_BARRIER);
		DECIDE(d, "its lease expired; waiting for every member's report of what it runs");
	} else if (lease == 1) {
		d = emit(o, node, VMC_FENCE_ANNOUNCE_LEASE);
		if (d != NULL) {
			d->fencer = in->my_id;
		}
		DECIDE(d, "its lease on every volume stayed unrenewed for %u ms on this node's clock",
		       in->t->lease_timeout_ms);
	} else {
		d = emit(o, node, VMC_FENCE_WAIT_LEASE);
		if (d != NULL) {
			d->wait_ms = lease == 0 && l != NULL ? l->lease_left_ms : -1;
		}
		if (lease < 0) {
			DECIDE(d, "waiting for its lease to expire; this node cannot tell: %s", l->lease_why);
		} else {
			DECIDE(d, "waiting for its lease to expire (a survivor watches its slot for %u ms)",
			       in->t->lease_timeout_ms);
		}
	}
	return true;
}

static void lost_decide(const struct vmc_fence_input *in, struct out *o, uint32_t node)
{
	const struct vmc_fence_local *l = local_of(in, node);
	struct vmc_fence_decision *d;
	char lease_why[160];
	bool lease_ok;

	if (grace(in, o, node, l)) {
		return;
	}
	lease_ok = vmc_fence_lease_usable(in->state, lease_why, sizeof(lease_why));
	switch (in->state->settings.fence_method) {
	case VMC_FENCE_LEASE:
	case VMC_FENCE_UNSET:
		if (lease_ok) {
			lost_by_lease(in, o, node, l, false);
		} else if (in->state->settings.fence_method == VMC_FENCE_LEASE) {
			d = emit(o, node, VMC_FENCE_WARN_LEASE);
			DECIDE(d, "it was lost while owning VMs, and fence_method lease cannot prove it dead: %s",
			       lease_why);
		} else {
			d = emit(o, node, VMC_FENCE_WARN_UNSET);
			DECIDE(d, "it was lost while owning VMs, and fencing is not configured: they are not "
				  "restarted ('clusterctl cluster set fence_method=...')");
		}
		return;
	case VMC_FENCE_NONE:
		if (!in->reports_ready) {
			d = emit(o, node, VMC_FENCE_WAIT_BARRIER);
			DECIDE(d, "waiting for every member's report of what it runs");
		} else if (l != NULL && l->announced && l->announced_epoch == in->state->epoch) {
			d = emit(o, node, VMC_FENCE_WAIT_APPLIED);
			DECIDE(d, "its recovery is on its way");
		} else if (in->members[0] != in->my_id &&
			   !(l != NULL && l->turn_seen_ms != 0 && in->now_ms - l->turn_seen_ms >= in->t->fence_turn_ms)) {
			d = emit(o, node, VMC_FENCE_OTHERS_TURN);
			if (d != NULL) {
				d->fencer = in->members[0];
			}
			DECIDE(d, "node id %u announces it (fence_method none)", in->members[0]);
		} else {
			d = emit(o, node, VMC_FENCE_ANNOUNCE_NONE);
			if (d != NULL) {
				d->fencer = in->my_id;
			}
			DECIDE(d, "fence_method is none: its VMs restart elsewhere without proof it is dead");
		}
		return;
	case VMC_FENCE_AGENT:
	case VMC_FENCE_PACEMAKER:
		/* Whichever proof comes first: a lease expiry seen here is one too. */
		if (lease_ok && lost_by_lease(in, o, node, l, true)) {
			return;
		}
		lost_by_agent(in, o, node, l);
		return;
	}
}

size_t vmc_fence_decide(const struct vmc_fence_input *in, struct vmc_fence_decision *out, size_t max)
{
	struct out o = { out, 0, max };
	uint32_t nodes[2 * VMC_STATE_NODES_MAX];
	size_t n = 0;

	/* Every owner of a group and every node we have a record for, each once, in id order. */
	for (size_t i = 0; i < in->state->n_groups; i++) {
		uint32_t owner = in->state->groups[i].owner;
		if (owner != 0 && !in_list(nodes, n, owner) && n < sizeof(nodes) / sizeof(nodes[0])) {
			nodes[n++] = owner;
		}
	}
	for (size_t i = 0; i < in->n_locals; i++) {
		if (!in_list(nodes, n, in->locals[i].node) && n < sizeof(nodes) / sizeof(nodes[0])) {
			nodes[n++] = in->locals[i].node;
		}
	}
	for (size_t i = 1; i < n; i++) {
		for (size_t k = i; k > 0 && nodes[k - 1] > nodes[k]; k--) {
			uint32_t t = nodes[k];
			nodes[k] = nodes[k - 1];
			nodes[k - 1] = t;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct vmc_fence_local *l = local_of(in, nodes[i]);
		if (!in->writable || in->n_members == 0) {
			if (l != NULL && (l->running || l->result_ready)) {
				struct vmc_fence_decision *d = emit(&o, nodes[i], VMC_FENCE_WAIT_RUN);
				DECIDE(d, "waiting for a synced primary view");
			}
			continue;
		}
		if (!node_lost(in, nodes[i])) {
			if (l != NULL) {
				not_lost(in, &o, l);
			}
			continue;
		}
		lost_decide(in, &o, nodes[i]);
	}
	return o.n;
}
