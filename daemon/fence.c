/*
 * Fencing: before a lost node's VMs may run elsewhere, the node must be
 * proven dead, or a VM could run twice and corrupt its disk.
 *
 * After every sync of a primary view and every batch of deliveries, the
 * member with the lowest node id (every member computes the same one)
 * looks for nodes that are not in the view but still own VMs. A node still
 * in corosync's membership has only lost its vmclusterd (a restart, an
 * upgrade): its VMs run on, so it gets DAEMON_GRACE_S to come back before
 * it is treated as lost. A lost node is proven dead with the cluster's
 * fence_method:
 *   agent      runs fence_agent with "action=off", "plug=NODE" on stdin
 *              (fence-agents style), killed after fence_timeout_s;
 *   pacemaker  runs `stonith_admin --fence NODE` (pacemaker's fencer);
 *   none       chosen explicitly: no proof, recovery at once;
 *   unset      nothing happens; status warns until someone chooses.
 * Success is multicast as NODE_FENCED, ordered after the membership change
 * that lost the node, and every member then applies the same recovery plan
 * (lib/lifecycle.c). A failure is retried every RETRY_S seconds; if the
 * fencer itself dies, the next view has a new fencer that starts over.
 *
 *   node lost ----> sync done (primary) ----> fence (<= fence_timeout_s)
 *       ----> NODE_FENCED applied ----> groups starting on survivors
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lifecycle.h"
#include "log.h"
#include "vmclusterd.h"

#define RETRY_S 5
#define DAEMON_GRACE_S 30

struct fence_run {
	uint32_t node;
	pid_t pid;            /* the agent; 0 when none runs */
	int pidfd;
	time_t deadline;
	time_t retry_at;      /* after a failure: not before this */
	time_t daemon_gone_at; /* node still in corosync, its daemon missing since */
	bool warned_unset;
};

static struct fence_run runs[VMC_NODES_MAX];
static size_t n_runs;
static qb_loop_timer_handle fence_timer;
static bool timer_armed;

static struct fence_run *run_get(uint32_t node)
{
	for (size_t i = 0; i < n_runs; i++) {
		if (runs[i].node == node) {
			return &runs[i];
		}
	}
	if (n_runs == VMC_NODES_MAX) {
		return NULL;
	}
	runs[n_runs] = (struct fence_run){ .node = node, .pidfd = -1 };
	return &runs[n_runs++];
}

static bool am_fencer(const struct vmcd *d)
{
	uint32_t lowest = UINT32_MAX;

	for (size_t i = 0; i < d->replica.n_members; i++) {
		if (d->replica.members[i] < lowest) {
			lowest = d->replica.members[i];
		}
	}
	return lowest == d->my_id;
}

static void fenced_announce(struct vmcd *d, uint32_t node, const char *method)
{
	json_object *body = json_object_new_object();
	json_object *reports = vmc_replica_reports(&d->replica);

	json_object_object_add(body, "node", json_object_new_int64(node));
	json_object_object_add(body, "method", json_object_new_string(method));
	json_object_object_add(body, "epoch", json_object_new_uint64(d->replica.state->epoch));
	/* What every member said it runs in this view's sync (the recovery barrier). */
	if (reports != NULL) {
		json_object_object_add(body, "reports", reports);
	}
	if (vmcd_cpg_send_request(d, VMC_MSG_NODE_FENCED, body) < 0) {
		log_err("node %s: fenced, but the news cannot be sent", vmcd_node_name(d, node));
	}
	json_object_put(body);
}

static void run_finished(struct vmcd *d, struct fence_run *r, bool ok, const char *why)
{
	if (r->pidfd >= 0) {
		qb_loop_poll_del(d->loop, r->pidfd);
		close(r->pidfd);
		r->pidfd = -1;
	}
	r->pid = 0;
	if (ok) {
		log_notice("node %s fenced (%s)", vmcd_node_name(d, r->node), why);
		fenced_announce(d, r->node, vmc_fence_method_to_str(d->replica.state->settings.fence_method));
		r->retry_at = time(NULL) + RETRY_S; /* not again while the news is on its way */
	} else {
		log_err("node %s: fencing failed (%s); its VMs stay where they were; retrying in %d s",
			vmcd_node_name(d, r->node), why, RETRY_S);
		r->retry_at = time(NULL) + RETRY_S;
	}
}

static int agent_exited(int32_t fd, int32_t revents, void *data)
{
	struct vmcd *d = data;
	int status = 0;
	char why[64];

	for (size_t i = 0; i < n_runs; i++) {
		struct fence_run *r = &runs[i];
		if (r->pidfd != fd || waitpid(r->pid, &status, WNOHANG) != r->pid) {
			continue;
		}
		if (WIFEXITED(status)) {
			snprintf(why, sizeof(why), "agent exited %d", WEXITSTATUS(status));
		} else {
			snprintf(why, sizeof(why), "agent killed by signal %d", WTERMSIG(status));
		}
		run_finished(d, r, WIFEXITED(status) && WEXITSTATUS(status) == 0, why);
	}
	return 0;
}

/* The agent gets its options on stdin; its output goes to our log (stderr or /dev/null). */
static pid_t agent_spawn(char *const argv[], const char *input)
{
	int in[2];
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) != 0) {
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
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

static void fence_start(struct vmcd *d, struct fence_run *r)
{
	const struct vmc_settings *st = &d->replica.state->settings;
	const char *name = vmcd_node_name(d, r->node);
	char input[256], timeout[16];
	char *argv[6];

	if (st->fence_method == VMC_FENCE_AGENT) {
		argv[0] = (char *)st->fence_agent;
		argv[1] = NULL;
	} else {
		snprintf(timeout, sizeof(timeout), "%u", st->fence_timeout_s);
		argv[0] = (char *)"/usr/sbin/stonith_admin";
		argv[1] = (char *)"--fence";
		argv[2] = (char *)name;
		argv[3] = (char *)"--timeout";
		argv[4] = timeout;
		argv[5] = NULL;
	}
	snprintf(input, sizeof(input), "action=off\nplug=%s\nnodename=%s\n", name, name);
	log_notice("node %s was lost while owning VMs: fencing it with %s", name, argv[0]);
	r->pid = agent_spawn(argv, input);
	r->pidfd = r->pid > 0 ? (int)syscall(SYS_pidfd_open, r->pid, 0) : -1;
	if (r->pid <= 0 || r->pidfd < 0) {
		if (r->pid > 0) {
			kill(r->pid, SIGKILL);
			waitpid(r->pid, NULL, 0);
		}
		r->pid = 0;
		run_finished(d, r, false, "cannot start the fence agent");
		return;
	}
	r->deadline = time(NULL) + st->fence_timeout_s;
	qb_loop_poll_add(d->loop, QB_LOOP_HIGH, r->pidfd, POLLIN, d, agent_exited);
}

static void timer_arm(struct vmcd *d);

static void fence_tick(void *data)
{
	struct vmcd *d = data;

	timer_armed = false;
	for (size_t i = 0; i < n_runs; i++) {
		if (runs[i].pid > 0 && time(NULL) > runs[i].deadline) {
			kill(runs[i].pid, SIGKILL); /* its exit is reported through the pidfd */
			log_err("node %s: fence agent took longer than fence_timeout_s: killed it",
				vmcd_node_name(d, runs[i].node));
		}
	}
	vmcd_fence_check(d);
}

static void timer_arm(struct vmcd *d)
{
	if (!timer_armed) {
		timer_armed = true;
		qb_loop_timer_add(d->loop, QB_LOOP_MED, 1000 * QB_TIME_NS_IN_MSEC, d, fence_tick, &fence_timer);
	}
}

static void node_needs_fencing(struct vmcd *d, uint32_t node)
{
	struct fence_run *r = run_get(node);
	const struct vmc_settings *st = &d->replica.state->settings;

	if (r == NULL || r->pid > 0 || time(NULL) < r->retry_at) {
		return;
	}
	if (vmcd_corosync_member(d, node)) {
		if (r->daemon_gone_at == 0) {
			r->daemon_gone_at = time(NULL);
			log_notice("node %s: its vmclusterd left but the node is still in corosync's "
				   "membership: waiting %d s for it to come back", vmcd_node_name(d, node),
				   DAEMON_GRACE_S);
		}
		if (time(NULL) - r->daemon_gone_at < DAEMON_GRACE_S) {
			return;
		}
		log_warn("node %s: its vmclusterd has not come back for %d s: treating the node as lost",
			 vmcd_node_name(d, node), DAEMON_GRACE_S);
	}
	switch (st->fence_method) {
	case VMC_FENCE_UNSET:
		if (!r->warned_unset) {
			log_warn("node %s was lost while owning VMs, and fencing is not configured: they are "
				 "not restarted ('clusterctl cluster set fence_method=...')",
				 vmcd_node_name(d, node));
			r->warned_unset = true;
		}
		return;
	case VMC_FENCE_NONE:
		if (vmcd_corosync_member(d, node)) {
			/* Without a fence there is no proof: a node corosync still sees
			 * may run its VMs, whatever its daemon does. Wait for it to go. */
			return;
		}
		log_warn("node %s was lost while owning VMs: fence_method is none, so they are restarted "
			 "elsewhere without proof the node is dead", vmcd_node_name(d, node));
		fenced_announce(d, node, "none");
		r->retry_at = time(NULL) + RETRY_S; /* until the news is applied */
		return;
	case VMC_FENCE_AGENT:
	case VMC_FENCE_PACEMAKER:
		fence_start(d, r);
		return;
	}
}

void vmcd_fence_check(struct vmcd *d)
{
	bool pending = false;

	if (!vmc_replica_writable(&d->replica) || !am_fencer(d)) {
		return;
	}
	for (size_t i = 0; i < d->replica.state->n_nodes; i++) {
		uint32_t node = d->replica.state->nodes[i].id;
		if (vmcd_cpg_is_member(d, node) || !vmc_state_node_has_groups(d->replica.state, node)) {
			struct fence_run *r = run_get(node);
			if (r != NULL) {
				r->daemon_gone_at = 0; /* back, or nothing to fence */
			}
			continue;
		}
		node_needs_fencing(d, node);
		pending = true;
	}
	if (pending) {
		timer_arm(d);
	}
}

void vmcd_fence_fini(struct vmcd *d)
{
	for (size_t i = 0; i < n_runs; i++) {
		if (runs[i].pid > 0) {
			kill(runs[i].pid, SIGKILL);
			waitpid(runs[i].pid, NULL, 0);
		}
		if (runs[i].pidfd >= 0) {
			qb_loop_poll_del(d->loop, runs[i].pidfd);
			close(runs[i].pidfd);
		}
	}
	n_runs = 0;
	if (timer_armed) {
		qb_loop_timer_del(d->loop, fence_timer);
		timer_armed = false;
	}
}
