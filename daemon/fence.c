/*
 * Fencing (fence.h): before a lost node's VMs may run elsewhere, the node
 * must be proven dead, or a VM could run twice and corrupt its disk.
 * Who fences whom, and when, is lib/fence_policy.c; this file carries it
 * out and keeps what only this node can know: its agents' processes,
 * when it saw an attempt fail, what it announced.
 *
 * An agent gets its options on stdin, fence-agents style ("action=off",
 * "plug=NODE", "nodename=NODE"), runs in a session of its own, and past
 * fence_timeout_s its whole process group gets SIGTERM, then SIGKILL
 * fence_term_grace_ms later. fence_method pacemaker runs
 * `stonith_admin --fence NODE` the same way. The agent must be a
 * root-owned file nobody else may write (privilege.h); one that is not
 * counts as a failed attempt, so the next member tries with its own.
 *
 *   node lost --> synced primary view --> attempt k: member k mod n runs
 *   the agent (<= fence_timeout_s) --> NODE_FENCED (this epoch, with every
 *   member's running VMs) --> every member applies the same recovery plan
 *                             \--> FENCE_FAILED --> attempt k+1, the next
 *                                  member, fence_retry_ms after it saw k fail
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "cpg.h"
#include "fence.h"
#include "leases.h"
#include "fence_policy.h"
#include "lifecycle.h"
#include "log.h"
#include "nodes.h"
#include "privilege.h"
#include "vmc_errors.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define STONITH_ADMIN "/usr/sbin/stonith_admin"
#define TICK_MS 1000

/* One node this node fences or watches, with its policy facts. */
struct fence_run {
	struct vmc_fence_local l;
	pid_t pid;               /* the agent's pid (and process group), 0 when none runs */
	int pidfd;
	int64_t term_sent_ms;    /* SIGTERM sent to the group: SIGKILL after the grace */
	uint64_t announce_id;    /* the request id of what we announced */
	char method[16];
	bool said_grace, said_wait_none, said_no_name, said_unset, said_lease;
};

static struct fence_run runs[VMC_NODES_MAX];
static size_t n_runs;
static struct vmc_fence_decision last[VMC_NODES_MAX];
static size_t n_last;
static const struct vmcd_fence_hooks *fence_hooks;
static qb_loop_timer_handle tick_timer;
static bool tick_armed;
static struct vmcd *fence_ctx;

static struct fence_run *run_find(uint32_t node)
{
	for (size_t i = 0; i < n_runs; i++) {
		if (runs[i].l.node == node) {
			return &runs[i];
		}
	}
	return NULL;
}

static struct fence_run *run_get(uint32_t node)
{
	struct fence_run *r = run_find(node);

	if (r != NULL || n_runs == VMC_NODES_MAX) {
		return r;
	}
	runs[n_runs] = (struct fence_run){ .l = { .node = node }, .pidfd = -1 };
	return &runs[n_runs++];
}

static void run_forget(size_t i)
{
	runs[i] = runs[--n_runs];
}

static const char *method_name(const struct vmcd *d)
{
	return vmc_fence_method_to_str(d->replica.state->settings.fence_method);
}

/* ---- announcements ---- */

static void announce_fenced(struct vmcd *d, struct fence_run *r, const char *method, const char *by)
{
	json_object *body = json_object_new_object();
	json_object *reports = vmc_replica_reports(&d->replica);
	int64_t id;

	json_object_object_add(body, "node", json_object_new_int64(r->l.node));
	json_object_object_add(body, "method", json_object_new_string(method));
	json_object_object_add(body, "epoch", json_object_new_uint64(d->replica.state->epoch));
	json_object_object_add(body, "at_s", json_object_new_int64((int64_t)time(NULL)));
	if (by != NULL) {
		json_object_object_add(body, "by", json_object_new_string(by));
	}
	/* What every member said it runs in this view's sync (the recovery barrier). */
	if (reports != NULL) {
		json_object_object_add(body, "reports", reports);
	}
	id = vmcd_cpg_send_request(d, VMC_MSG_NODE_FENCED, body);
	json_object_put(body);
	if (id < 0) {
		log_err("node %s: fenced, but the news cannot be sent: %s", vmcd_node_name(d, r->l.node),
			strerror((int)-id));
		return;
	}
	r->announce_id = (uint64_t)id;
	r->l.announced = true;
	r->l.announced_epoch = d->replica.state->epoch;
	r->l.announced_attempts = vmc_state_fencing(d->replica.state, r->l.node)
					  ? vmc_state_fencing(d->replica.state, r->l.node)->attempts
					  : 0;
}

/* FENCE_FAILED for attempt: our own agent's, or a silent fencer's (error says which). */
static void announce_failed(struct vmcd *d, struct fence_run *r, uint32_t attempt, const char *error)
{
	json_object *body;
	int64_t id;

	if (!VMC_PROTO_HAS_ATTEMPTS(d->replica.proto)) {
		/* A member speaks protocol 1: no FENCE_FAILED, so no rotation; this node tries again. */
		r->l.failure_seen_ms = vmc_now_ms();
		r->l.failure_seen_attempts = vmc_state_fencing(d->replica.state, r->l.node)
						     ? vmc_state_fencing(d->replica.state, r->l.node)->attempts
						     : 0;
		return;
	}
	body = json_object_new_object();

	json_object_object_add(body, "node", json_object_new_int64(r->l.node));
	json_object_object_add(body, "attempt", json_object_new_int64(attempt));
	json_object_object_add(body, "method", json_object_new_string(method_name(d)));
	json_object_object_add(body, "error", json_object_new_string(error));
	r->l.announced = true;
	r->l.announced_epoch = d->replica.state->epoch;
	r->l.announced_attempts = attempt;
	id = vmcd_cpg_send_request(d, VMC_MSG_FENCE_FAILED, body);
	json_object_put(body);
	if (id > 0) {
		r->announce_id = (uint64_t)id;
	} else {
		r->l.announced = false;
	}
}

void vmcd_fence_outcome(struct vmcd *d, uint64_t request_id, int rc, const char *detail)
{
	for (size_t i = 0; i < n_runs; i++) {
		struct fence_run *r = &runs[i];
		if (r->announce_id != request_id || request_id == 0) {
			continue;
		}
		r->announce_id = 0;
		if (rc != 0) {
			/* Refused (stale, the node is back) or lost: the policy decides again. */
			log_notice("node %s: the fencing news was not applied (%s)", vmcd_node_name(d, r->l.node),
				   detail);
			r->l.announced = false;
		}
	}
}

/* ---- the agent ---- */

static int agent_exited(int32_t fd, int32_t revents, void *data)
{
	struct vmcd *d = data;
	int status = 0;

	for (size_t i = 0; i < n_runs; i++) {
		struct fence_run *r = &runs[i];
		if (r->pidfd != fd || waitpid(r->pid, &status, WNOHANG) != r->pid) {
			continue;
		}
		qb_loop_poll_del(d->loop, r->pidfd);
		close(r->pidfd);
		r->pidfd = -1;
		r->pid = 0;
		r->l.running = false;
		r->l.result_ready = true;
		r->l.result_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (WIFEXITED(status)) {
			snprintf(r->l.result_error, sizeof(r->l.result_error), "agent exited %d", WEXITSTATUS(status));
		} else {
			snprintf(r->l.result_error, sizeof(r->l.result_error), "agent killed by signal %d",
				 WTERMSIG(status));
		}
		log_notice("node %s: fence agent ended (%s) after %lld ms", vmcd_node_name(d, r->l.node),
			   r->l.result_ok ? "success" : r->l.result_error,
			   (long long)(vmc_now_ms() - r->l.run_started_ms));
		fence_hooks->changed(d);
		return -1;
	}
	return 0;
}

/* In a session of its own, so a timeout can kill all it started; options on stdin. */
static pid_t agent_spawn(char *const argv[], const char *input)
{
	int in[2];
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) != 0) {
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		setsid();
		dup2(in[0], STDIN_FILENO);
		/* Nothing of the daemon's (corosync, IPC, QMP sockets) goes to the agent. */
		syscall(SYS_close_range, 3, ~0U, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	if (pid > 0 && input != NULL && write(in[1], input, strlen(input)) < 0) {
		log_warn("fence agent %s: cannot write its options: %s", argv[0], strerror(errno));
	}
	close(in[1]);
	return pid;
}

/* A failure found before any agent ran: counted like one. */
static void run_refused(struct fence_run *r, const char *why)
{
	r->l.result_ready = true;
	r->l.result_ok = false;
	snprintf(r->l.result_error, sizeof(r->l.result_error), "%.159s", why);
}

static void run_start(struct vmcd *d, struct fence_run *r, const struct vmc_fence_decision *dec)
{
	const struct vmc_settings *st = &d->replica.state->settings;
	char input[256], timeout[16], why[256];
	char *argv[6];

	r->l.run_attempt = dec->attempt;
	r->l.run_started_ms = vmc_now_ms();
	r->l.run_epoch = d->replica.state->epoch;
	snprintf(r->method, sizeof(r->method), "%s", method_name(d));
	if (st->fence_method == VMC_FENCE_AGENT) {
		argv[0] = (char *)st->fence_agent;
		argv[1] = NULL;
	} else {
		snprintf(timeout, sizeof(timeout), "%u", st->fence_timeout_s);
		argv[0] = (char *)STONITH_ADMIN;
		argv[1] = (char *)"--fence";
		argv[2] = (char *)dec->plug;
		argv[3] = (char *)"--timeout";
		argv[4] = timeout;
		argv[5] = NULL;
	}
	if (vmcd_path_root_safe("fence agent", argv[0], false, why, sizeof(why)) != 0) {
		log_err("node %s: not running %s: %s", vmcd_node_name(d, r->l.node), argv[0], why);
		run_refused(r, why);
		return;
	}
	snprintf(input, sizeof(input), "action=off\nplug=%s\nnodename=%s\n", dec->plug, dec->plug);
	log_notice("node %s was lost while owning VMs: fencing it with %s (attempt %u, plug %s)",
		   vmcd_node_name(d, r->l.node), argv[0], dec->attempt + 1, dec->plug);
	r->pid = agent_spawn(argv, input);
	r->pidfd = r->pid > 0 ? (int)syscall(SYS_pidfd_open, r->pid, 0) : -1;
	if (r->pid <= 0 || r->pidfd < 0 ||
	    qb_loop_poll_add(d->loop, QB_LOOP_HIGH, r->pidfd, POLLIN, d, agent_exited) != 0) {
		if (r->pid > 0) {
			kill(-r->pid, SIGKILL);
			waitpid(r->pid, NULL, 0);
		}
		if (r->pidfd >= 0) {
			close(r->pidfd);
		}
		r->pid = 0;
		r->pidfd = -1;
		run_refused(r, "cannot start the fence agent");
		return;
	}
	r->term_sent_ms = 0;
	r->l.running = true;
}

/* Past fence_timeout_s: SIGTERM to its group, then SIGKILL after the grace. */
static void run_kill(struct vmcd *d, struct fence_run *r)
{
	int64_t now = vmc_now_ms();

	if (r->pid <= 0) {
		return;
	}
	if (r->term_sent_ms == 0) {
		log_err("node %s: fence agent (pid %d) took longer than fence_timeout_s: SIGTERM to its "
			"process group", vmcd_node_name(d, r->l.node), (int)r->pid);
		kill(-r->pid, SIGTERM);
		r->term_sent_ms = now;
	} else if (now - r->term_sent_ms >= d->timeouts.fence_term_grace_ms) {
		log_err("node %s: fence agent (pid %d) still there after SIGTERM: SIGKILL to its process group",
			vmcd_node_name(d, r->l.node), (int)r->pid);
		kill(-r->pid, SIGKILL);
	}
}

/* ---- carrying decisions out ---- */

static void act_quiet(struct vmcd *d, struct fence_run *r, const struct vmc_fence_decision *dec)
{
	const char *name = vmcd_node_name(d, dec->node);

	switch (dec->action) {
	case VMC_FENCE_GRACE:
		if (r->l.daemon_gone_since_ms == 0) {
			r->l.daemon_gone_since_ms = vmc_now_ms();
		}
		if (!r->said_grace) {
			log_notice("node %s: its vmclusterd left but the node is still in corosync's membership: "
				   "waiting %u s for it to come back", name, d->timeouts.daemon_grace_ms / 1000);
			r->said_grace = true;
		}
		return;
	case VMC_FENCE_WAIT_NONE:
		if (!r->said_wait_none) {
			log_warn("node %s: %s", name, dec->why);
			r->said_wait_none = true;
		}
		return;
	case VMC_FENCE_WARN_UNSET:
		if (!r->said_unset) {
			log_warn("node %s was lost while owning VMs, and fencing is not configured: they are not "
				 "restarted ('clusterctl cluster set fence_method=...')", name);
			r->said_unset = true;
		}
		return;
	case VMC_FENCE_NO_NAME:
		if (!r->said_no_name) {
			log_err("node id %u: %s", dec->node, dec->why);
			r->said_no_name = true;
		}
		return;
	case VMC_FENCE_WAIT_LEASE:
	case VMC_FENCE_WARN_LEASE:
		if (!r->said_lease) {
			if (dec->action == VMC_FENCE_WARN_LEASE) {
				log_warn("node %s: %s", name, dec->why);
			} else {
				log_notice("node %s: %s", name, dec->why);
			}
			r->said_lease = true;
		}
		return;
	default:
		return;
	}
}

static void act(struct vmcd *d, const struct vmc_fence_decision *dec)
{
	struct fence_run *r = run_get(dec->node);
	const char *name = vmcd_node_name(d, dec->node);

	if (r == NULL) {
		return;
	}
	if (dec->action == VMC_FENCE_NOTHING) {
		/* Back, or nothing to fence: the next loss starts afresh. */
		r->l.daemon_gone_since_ms = 0;
		r->l.turn_seen_ms = 0;
		r->said_grace = r->said_wait_none = r->said_no_name = r->said_unset = r->said_lease = false;
		vmcd_leases_unwatch(d, dec->node);
		return;
	}
	switch (dec->action) {
	case VMC_FENCE_RUN:
		run_start(d, r, dec);
		return;
	case VMC_FENCE_KILL_RUN:
		run_kill(d, r);
		return;
	case VMC_FENCE_ANNOUNCE_FENCED:
		log_notice("node %s fenced (%s, attempt %u)", name, r->method, dec->attempt + 1);
		r->l.result_ready = false;
		announce_fenced(d, r, r->method, NULL);
		return;
	case VMC_FENCE_ANNOUNCE_NONE:
		log_warn("node %s was lost while owning VMs: fence_method is none, so they are restarted "
			 "elsewhere without proof the node is dead", name);
		announce_fenced(d, r, "none", NULL);
		return;
	case VMC_FENCE_ANNOUNCE_LEASE:
		log_notice("node %s fenced by its leases: %s", name, dec->why);
		announce_fenced(d, r, "lease", NULL);
		return;
	case VMC_FENCE_ANNOUNCE_FAILED:
		log_err("node %s: fencing attempt %u failed (%s); its VMs stay where they were; the next "
			"attempt is the next member's", name, dec->attempt + 1, r->l.result_error);
		r->l.result_ready = false;
		announce_failed(d, r, r->l.run_attempt, r->l.result_error);
		return;
	case VMC_FENCE_TURN_EXPIRED:
		log_err("node %s: %s", name, dec->why);
		announce_failed(d, r, dec->attempt, dec->why);
		return;
	case VMC_FENCE_DROP_RESULT:
		log_notice("node %s is back or owns no VM: the result of its fencing is dropped", name);
		r->l.result_ready = false;
		return;
	default:
		act_quiet(d, r, dec);
		return;
	}
}

static void tick(void *data)
{
	tick_armed = false;
	vmcd_fence_check(data);
}

static void tick_arm(struct vmcd *d)
{
	if (!tick_armed &&
	    qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)TICK_MS * QB_TIME_NS_IN_MSEC, d, tick, &tick_timer) == 0) {
		tick_armed = true;
	}
}

/* What this node saw of the state's failed attempts: when the count changed. */
static void failures_observe(const struct vmcd *d, int64_t now)
{
	for (size_t i = 0; i < d->replica.state->n_fencing; i++) {
		const struct vmc_fence_record *rec = &d->replica.state->fencing[i];
		struct fence_run *r = run_get(rec->node);
		if (r != NULL && (r->l.failure_seen_attempts != rec->attempts || r->l.failure_seen_ms == 0)) {
			r->l.failure_seen_attempts = rec->attempts;
			r->l.failure_seen_ms = now;
		}
	}
}

/* When this node saw each lost node's current attempt begin: its fencer's deadline runs from there. */
static void turns_observe(const struct vmcd *d, int64_t now)
{
	if (!vmc_replica_writable(&d->replica)) {
		return;
	}
	for (size_t i = 0; i < d->replica.state->n_groups; i++) {
		uint32_t node = d->replica.state->groups[i].owner;
		const struct vmc_fence_record *rec = vmc_state_fencing(d->replica.state, node);
		uint32_t attempts = rec != NULL ? rec->attempts : 0;
		struct fence_run *r;
		if (node == 0 || vmc_replica_is_active(&d->replica, node) ||
		    !vmc_state_node_has_groups(d->replica.state, node) || (r = run_get(node)) == NULL) {
			continue;
		}
		if (r->l.turn_seen_ms == 0 || r->l.turn_seen_attempts != attempts) {
			r->l.turn_seen_ms = now;
			r->l.turn_seen_attempts = attempts;
		}
	}
}

static bool active_member(const struct vmcd *d, uint32_t id)
{
	for (size_t i = 0; i < d->replica.n_active; i++) {
		if (d->replica.active[i] == id) {
			return true;
		}
	}
	return false;
}

/* The lease proof of every owner that is not an active member, when leases can prove anything. */
static void lease_observe(struct vmcd *d)
{
	const struct vmc_state *s = d->replica.state;
	uint32_t done[VMC_NODES_MAX];
	size_t n_done = 0;
	char why[160];

	/* Watched from the moment it leaves the view, not once the sync is over:
	 * the proof only needs reads made after the loss (leases.h). */
	if (!vmc_fence_lease_usable(s, why, sizeof(why))) {
		return;
	}

	for (size_t i = 0; i < s->n_groups; i++) {
		uint32_t owner = s->groups[i].owner;
		struct fence_run *r;
		uint64_t left = 0;
		bool seen = false;
		for (size_t k = 0; k < n_done; k++) {
			seen = seen || done[k] == owner;
		}
		if (seen || owner == 0 || active_member(d, owner) || !vmc_state_node_has_groups(s, owner) ||
		    n_done == VMC_NODES_MAX) {
			continue;
		}
		done[n_done++] = owner; /* once per lost node, not per group it owns */
		r = run_get(owner);
		if (r == NULL) {
			continue;
		}
		r->l.lease = vmcd_leases_proven(d, owner, &left, r->l.lease_why, sizeof(r->l.lease_why));
		if (r->l.lease < -1) {
			r->l.lease = -1;
		}
		r->l.lease_left_ms = (int64_t)left;
	}
}

static void decide(struct vmcd *d, int64_t now)
{
	struct vmc_fence_local locals[VMC_NODES_MAX];
	struct vmc_fence_name names[VMC_NODES_MAX];
	struct vmc_fence_input in = {
		.state = d->replica.state,
		.my_id = d->my_id,
		.writable = vmc_replica_writable(&d->replica),
		.members = d->replica.active,
		.n_members = d->replica.n_active,
		.cs_members = d->cs_members,
		.n_cs_members = d->n_cs_members,
		.nodelist = names,
		.n_nodelist = d->n_nodes,
		.locals = locals,
		.n_locals = n_runs,
		.now_ms = now,
		.t = &d->timeouts,
	};
	json_object *reports = vmc_replica_reports(&d->replica);

	in.reports_ready = reports != NULL;
	json_object_put(reports);
	for (size_t i = 0; i < d->n_nodes; i++) {
		names[i] = (struct vmc_fence_name){ d->nodes[i].id, d->nodes[i].name };
	}
	lease_observe(d);
	for (size_t i = 0; i < n_runs; i++) {
		locals[i] = runs[i].l;
	}
	in.n_locals = n_runs;
	n_last = vmc_fence_decide(&in, last, VMC_NODES_MAX);
}

void vmcd_fence_check(struct vmcd *d)
{
	int64_t now = vmc_now_ms();
	bool pending = false;

	failures_observe(d, now);
	turns_observe(d, now);
	decide(d, now);
	for (size_t i = 0; i < n_last; i++) {
		act(d, &last[i]);
		pending |= last[i].action != VMC_FENCE_NOTHING;
	}
	/* Nodes with nothing decided and nothing running here are forgotten (in a view that decides). */
	for (size_t i = n_runs; vmc_replica_writable(&d->replica) && i-- > 0;) {
		bool decided = false;
		for (size_t k = 0; k < n_last; k++) {
			decided |= last[k].node == runs[i].l.node && last[k].action != VMC_FENCE_NOTHING;
		}
		if (!decided && !runs[i].l.running && !runs[i].l.result_ready &&
		    vmc_state_fencing(d->replica.state, runs[i].l.node) == NULL) {
			run_forget(i);
		}
	}
	if (pending) {
		tick_arm(d);
	}
}

int vmcd_fence_confirm_check(struct vmcd *d, uint32_t node, char *why, size_t len)
{
	json_object *reports;

	if (vmcd_cpg_is_member(d, node) || vmcd_corosync_member(d, node)) {
		snprintf(why, len, "node %s is a member of the cluster (%s): it is alive, not fenced; power it "
			 "off first", vmcd_node_name(d, node),
			 vmcd_cpg_is_member(d, node) ? "its daemon answers" : "corosync sees it");
		return -VMC_E_BUSY;
	}
	if (!vmc_state_node_has_groups(d->replica.state, node)) {
		snprintf(why, len, "node %s owns no running VM: there is nothing to recover", vmcd_node_name(d, node));
		return -VMC_E_BUSY;
	}
	reports = vmc_replica_reports(&d->replica);
	if (reports == NULL) {
		snprintf(why, len, "the cluster is between syncs: retry in a moment");
		return -VMC_E_RETRY;
	}
	json_object_put(reports);
	return 0;
}

int64_t vmcd_fence_confirm(struct vmcd *d, uint32_t node, const char *by, uint64_t request_id,
			   char *why, size_t len)
{
	struct fence_run *r;
	json_object *body, *reports = vmc_replica_reports(&d->replica);
	int64_t id;

	if (reports == NULL) {
		snprintf(why, len, "the cluster is between syncs: retry in a moment");
		return -VMC_E_RETRY;
	}
	log_warn("node %s: confirmed fenced BY HAND (%s): its VMs restart elsewhere on the word of an "
		 "operator; if the node is not really off, they run twice", vmcd_node_name(d, node), by);
	body = json_object_new_object();
	json_object_object_add(body, "node", json_object_new_int64(node));
	json_object_object_add(body, "method", json_object_new_string(VMC_FENCED_MANUAL));
	json_object_object_add(body, "by", json_object_new_string(by));
	json_object_object_add(body, "epoch", json_object_new_uint64(d->replica.state->epoch));
	json_object_object_add(body, "at_s", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(body, "reports", reports);
	id = vmcd_cpg_send_request_as(d, VMC_MSG_NODE_FENCED, body, request_id);
	json_object_put(body);
	r = run_get(node);
	if (r != NULL && id > 0) {
		r->l.announced = true;
		r->l.announced_epoch = d->replica.state->epoch;
	}
	if (id < 0) {
		snprintf(why, len, "cannot send the confirmation: %s", strerror((int)-id));
	}
	return id;
}

static void wait_fill(const struct vmcd *d, const struct vmc_fence_decision *dec, struct vmc_wait *w)
{
	const struct fence_run *r = run_find(dec->node);
	static const struct {
		enum vmc_fence_action a;
		const char *kind;
	} kinds[] = {
		{ VMC_FENCE_GRACE, "daemon-grace" },	  { VMC_FENCE_WAIT_NONE, "fencing-no-proof" },
		{ VMC_FENCE_WARN_UNSET, "fencing-unset" },  { VMC_FENCE_WAIT_BARRIER, "barrier" },
		{ VMC_FENCE_RUN, "fencing" },		  { VMC_FENCE_WAIT_RUN, "fencing" },
		{ VMC_FENCE_KILL_RUN, "fencing" },	  { VMC_FENCE_ANNOUNCE_FENCED, "fencing" },
		{ VMC_FENCE_ANNOUNCE_FAILED, "fencing" }, { VMC_FENCE_WAIT_APPLIED, "fencing" },
		{ VMC_FENCE_RETRY_LATER, "fencing-retry" }, { VMC_FENCE_OTHERS_TURN, "fencing" },
		{ VMC_FENCE_NO_NAME, "fencing-no-name" },	  { VMC_FENCE_ANNOUNCE_NONE, "fencing" },
		{ VMC_FENCE_TURN_EXPIRED, "fencing" },	  { VMC_FENCE_WAIT_LEASE, "lease-expiry" },
		{ VMC_FENCE_ANNOUNCE_LEASE, "fencing" },	  { VMC_FENCE_WARN_LEASE, "fencing-unset" },
	};

	memset(w, 0, sizeof(*w));
	w->node = dec->node;
	w->age_ms = w->left_ms = -1;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (kinds[i].a == dec->action) {
			snprintf(w->kind, sizeof(w->kind), "%s", kinds[i].kind);
		}
	}
	snprintf(w->method, sizeof(w->method), "%s", method_name(d));
	w->attempt = dec->attempt + 1;
	w->fencer = dec->fencer;
	if (dec->action == VMC_FENCE_GRACE || dec->action == VMC_FENCE_RETRY_LATER) {
		w->left_ms = dec->wait_ms;
	} else if (r != NULL && r->l.running) {
		w->age_ms = vmc_now_ms() - r->l.run_started_ms;
	}
	snprintf(w->detail, sizeof(w->detail), "%s", dec->why);
}

size_t vmcd_fence_waits(const struct vmcd *d, struct vmc_wait *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < n_last && n < max; i++) {
		if (last[i].action != VMC_FENCE_NOTHING && last[i].action != VMC_FENCE_DROP_RESULT) {
			wait_fill(d, &last[i], &out[n++]);
		}
	}
	return n;
}

int vmcd_fence_init(struct vmcd *d, const struct vmcd_fence_hooks *hooks)
{
	fence_hooks = hooks;
	fence_ctx = d;
	return 0;
}

void vmcd_fence_fini(struct vmcd *d)
{
	for (size_t i = 0; i < n_runs; i++) {
		if (runs[i].pid > 0) {
			kill(-runs[i].pid, SIGKILL);
			waitpid(runs[i].pid, NULL, 0);
		}
		if (runs[i].pidfd >= 0) {
			qb_loop_poll_del(d->loop, runs[i].pidfd);
			close(runs[i].pidfd);
		}
	}
	n_runs = 0;
	n_last = 0;
	if (tick_armed) {
		qb_loop_timer_del(d->loop, tick_timer);
		tick_armed = false;
	}
	fence_ctx = NULL;
}
