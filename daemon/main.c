/*
 * vmclusterd: start-up and shut-down order.
 *
 *   options -> logging (and the log ring) -> directories + pid lock ->
 *   persisted state -> KVM probe -> corosync nodelist (waits for
 *   corosync) -> timeline -> detach -> votequorum -> CPG -> IPC ->
 *   fencing, file checks -> local VMs (the QEMU driver re-attaches) -> loop
 *
 * and the reverse on the way out. Whatever can fail for a reason the
 * operator must fix happens before detaching, so the exit code reaches
 * whoever started us. Everything runs on one libqb main loop; signals
 * arrive as loop events. This file also wires the modules together: each
 * lower module publishes what happened through hooks, and the hooks here
 * pass it on (mostly: ask for a settle step, settle.h). No module calls
 * up.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "host_caps.h"
#include "clock.h"
#include "context.h"
#include "cpg.h"
#include "facts.h"
#include "failbacks.h"
#include "host_shutdown.h"
#include "fence.h"
#include "fs_check.h"
#include "ipc.h"
#include "ipc_cmds.h"
#include "leases.h"
#include "local_vms.h"
#include "migrations.h"
#include "log.h"
#include "logring.h"
#include "nodes.h"
#include "persist.h"
#include "quorum.h"
#include "settle.h"
#include "watchdog.h"

static int pid_fd = -1;

static int on_signal(int32_t sig, void *data)
{
	struct vmcd *d = data;
	char path[PATH_MAX + 32];

	switch (sig) {
	case SIGHUP:
		log_notice("SIGHUP: nothing to reload; restart vmclusterd to apply vmcluster.conf changes");
		return 0;
	case SIGUSR1:
		/* The blackbox holds the recent debug-level events for a post-mortem. */
		snprintf(path, sizeof(path), "%s/vmclusterd.blackbox", d->opt.run_dir);
		if (qb_log_blackbox_write_to_file(path) < 0) {
			log_warn("SIGUSR1: cannot write the blackbox to %s", path);
		} else {
			log_notice("SIGUSR1: blackbox written to %s (read it with qb-blackbox)", path);
		}
		return 0;
	default:
		log_notice("signal %d: shutting down", sig);
		vmcd_shutdown(d, VMCD_EXIT_OK);
		return 0;
	}
}

static void pid_write(void)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	if (ftruncate(pid_fd, 0) != 0 || pwrite(pid_fd, buf, (size_t)n, 0) != n) {
		log_warn("cannot write the pid file: %s", strerror(errno));
	}
}

static void logging_init(const struct vmcd_options *opt)
{
	int32_t target = strcmp(opt->log_target, "stderr") == 0 ? QB_LOG_STDERR : QB_LOG_SYSLOG;
	uint8_t level = opt->debug ? LOG_DEBUG : LOG_INFO;

	qb_log_init("vmclusterd", LOG_DAEMON, LOG_INFO);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, target == QB_LOG_SYSLOG);
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, target == QB_LOG_STDERR);
	qb_log_filter_ctl(target, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", level);
	qb_log_format_set(QB_LOG_STDERR, "%T %N[%P] %p: %b");
	/* The blackbox keeps recent events in memory for post-mortems. */
	qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_SIZE, 1024 * 1024);
	qb_log_filter_ctl(QB_LOG_BLACKBOX, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_DEBUG);
	qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_TRUE);
	/* The ring `clusterctl dump` reads. */
	if (vmcd_logring_init(VMCD_LOGRING_LINES) != 0) {
		log_warn("no memory for the log ring: clusterctl dump will be empty");
	}
}

static int dir_ensure(const char *dir)
{
	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		log_err("cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	return 0;
}

/* One daemon per node: a second one would join CPG as a second member. */
static int pid_lock(const char *run_dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/vmclusterd.pid", run_dir);
	pid_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (pid_fd < 0) {
		log_err("cannot open %s: %s", path, strerror(errno));
		return VMCD_EXIT_DIRS;
	}
	if (flock(pid_fd, LOCK_EX | LOCK_NB) != 0) {
		log_err("another vmclusterd holds %s: refusing to start a second one", path);
		return VMCD_EXIT_ALREADY_RUNNING;
	}
	pid_write();
	return 0;
}

/* Corosync may still be starting (boot order, tests): wait up to the limit. */
static int corosync_wait(struct vmcd *d)
{
	int64_t deadline = vmc_now_ms() + (int64_t)d->opt.corosync_wait_s * 1000;
	bool said = false;

	for (;;) {
		if (vmcd_nodes_load(d) == 0) {
			return 0;
		}
		if (vmc_now_ms() >= deadline) {
			log_err("corosync is not running (or has no nodelist) after %u s: start corosync first",
				d->opt.corosync_wait_s);
			return VMCD_EXIT_COROSYNC_UNAVAILABLE;
		}
		if (!said) {
			log_notice("waiting up to %u s for corosync", d->opt.corosync_wait_s);
			said = true;
		}
		usleep(200 * 1000);
	}
}

/* Everything that needs the operator: checked while our exit code still reaches them. */
static int daemon_prepare(struct vmcd *d)
{
	int rc;

	if (dir_ensure(d->opt.state_dir) != 0 || dir_ensure(d->opt.run_dir) != 0) {
		return VMCD_EXIT_DIRS;
	}
	rc = pid_lock(d->opt.run_dir);
	if (rc != 0) {
		return rc;
	}
	if (vmcd_persist_load(d->opt.state_dir, &d->replica.state) != 0) {
		return VMCD_EXIT_STATE_UNREADABLE;
	}
	/* The KVM probe may take seconds: run it now, never inside the loop
	 * (the setting may become auto at any time). */
	vmcd_accel_resolve(VMC_ACCEL_AUTO, NULL, NULL);
	vmcd_host_caps_probe();
	return corosync_wait(d);
}

/* The timeline from corosync's token and the settings (which may change at any time). */
static void timeline_derive(struct vmcd *d)
{
	char why[256];

	vmc_timeouts_derive(&d->timeouts, vmcd_nodes_token_ms(),
			    d->replica.state ? d->replica.state->settings.fence_timeout_s : VMC_FENCE_TIMEOUT_S_DEFAULT,
			    d->opt.stop_timeout_s,
			    d->replica.state ? d->replica.state->settings.lease_io_timeout_s : 0);
	if (vmc_timeouts_check(&d->timeouts, why, sizeof(why)) != 0) {
		log_warn("%s", why);
	}
}

/* ---- the hooks: what lower modules publish ---- */

static void settle_hook(struct vmcd *d)
{
	timeline_derive(d);
	vmcd_settle_request(d);
}

static void outcome_hook(struct vmcd *d, uint64_t request_id, int rc, const char *detail)
{
	vmcd_fence_outcome(d, request_id, rc, detail);
	vmcd_local_outcome(d, request_id, rc);
}

static void answer_hook(struct vmcd *d, uint64_t request_id, int rc, const char *detail)
{
	vmcd_ipc_request_done(d, request_id, rc, detail);
	vmcd_settle_request(d);
}

static void quorum_hook(struct vmcd *d)
{
	vmcd_cpg_quorum_changed(d);
	settle_hook(d);
}

static void synced_hook(struct vmcd *d)
{
	vmcd_facts_announce(d);
	vmcd_local_resync(d);
	vmcd_settle_request(d);
}

static void corosync_lost_hook(struct vmcd *d)
{
	vmcd_local_corosync_lost(d);
	vmcd_shutdown(d, VMCD_EXIT_COROSYNC_LOST);
}

static json_object *running_hook(struct vmcd *d)
{
	return vmcd_local_running();
}

static const struct vmcd_quorum_hooks quorum_hooks = { .changed = quorum_hook, .lost = corosync_lost_hook };
static const struct vmcd_cpg_hooks cpg_hooks = {
	.delivered = settle_hook,
	.outcome = outcome_hook,
	.answer = answer_hook,
	.synced = synced_hook,
	.lost = corosync_lost_hook,
	.running = running_hook,
};
static const struct vmcd_fence_hooks fence_hooks = { .changed = settle_hook };
static const struct vmcd_fs_check_hooks fs_check_hooks = { .changed = settle_hook };
static const struct vmcd_local_hooks local_hooks = { .changed = settle_hook };
static const struct vmcd_leases_hooks leases_hooks = { .changed = settle_hook };

static void addr_hook(struct vmcd *d)
{
	vmcd_facts_announce(d);
}

static const struct vmcd_migrations_hooks migrations_hooks = { .changed = settle_hook, .addr_changed = addr_hook };

static void watchdog_hook(struct vmcd *d)
{
	vmcd_facts_announce(d);
	settle_hook(d);
}

static const struct vmcd_watchdog_hooks watchdog_hooks = { .changed = watchdog_hook };

static int daemon_connect(struct vmcd *d)
{
	const struct vmcd_ipc_command *commands;
	size_t n_commands;

	timeline_derive(d);
	if (vmcd_quorum_init(d, &quorum_hooks) != 0 || vmcd_cpg_init(d, &cpg_hooks) != 0) {
		return VMCD_EXIT_COROSYNC_UNAVAILABLE;
	}
	commands = vmcd_ipc_commands(&n_commands);
	if (vmcd_ipc_init(d, commands, n_commands) != 0) {
		return VMCD_EXIT_IPC;
	}
	vmcd_fence_init(d, &fence_hooks);
	vmcd_fs_check_init(d, &fs_check_hooks);
	if (vmcd_leases_init(d, &leases_hooks) != 0) {
		return VMCD_EXIT_DIRS;
	}
	if (vmcd_local_init(d, &local_hooks) != 0) {
		return VMCD_EXIT_DIRS;
	}
	vmcd_migrations_init(d, &migrations_hooks);
	vmcd_failbacks_init(d);
	/* Last: it asks the leases and the VMs before its first pet. */
	vmcd_watchdog_init(d, &watchdog_hooks);
	return 0;
}

static void daemon_stop(struct vmcd *d)
{
	vmcd_watchdog_fini(d);
	vmcd_fs_check_fini(d);
	vmcd_fence_fini(d);
	vmcd_failbacks_fini(d);
	vmcd_host_shutdown_fini(d);
	vmcd_migrations_fini(d);
	vmcd_local_fini(d);
	vmcd_leases_fini(d);
	vmcd_ipc_fini(d);
	vmcd_cpg_fini(d);
	vmcd_quorum_fini(d);
	vmcd_settle_fini(d);
	vmcd_persist_fini(d);
	vmc_replica_fini(&d->replica);
}

int main(int argc, char **argv)
{
	static struct vmcd d;
	int rc = vmcd_options_parse(&d.opt, argc, argv);

	if (rc != 0) {
		return rc > 0 ? VMCD_EXIT_OK : VMCD_EXIT_USAGE;
	}
	logging_init(&d.opt);
	/* A fence agent or client that goes away mid-write is an error to handle, not a death. */
	signal(SIGPIPE, SIG_IGN);
	rc = daemon_prepare(&d);
	if (rc != 0) {
		log_err("vmclusterd not started (exit %d)", rc);
		return rc;
	}
	if (!d.opt.foreground) {
		if (daemon(0, 0) != 0) {
			log_err("cannot detach: %s", strerror(errno));
			return VMCD_EXIT_DETACH;
		}
		pid_write();
	}
	d.loop = qb_loop_create();
	d.next_request_id = (uint64_t)time(NULL) << 20;
	if (getrandom(&d.incarnation, sizeof(d.incarnation), 0) != (ssize_t)sizeof(d.incarnation) || d.incarnation == 0) {
		d.incarnation = ((uint64_t)getpid() << 32 | (uint64_t)time(NULL)) | 1;
	}
	rc = daemon_connect(&d);
	if (rc == 0) {
		static const int signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
		for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
			qb_loop_signal_add(d.loop, QB_LOOP_HIGH, signals[i], &d, on_signal, NULL);
		}
		log_notice("vmclusterd %s started on node id %u", PACKAGE_VERSION, d.my_id);
		qb_loop_run(d.loop);
		rc = d.exit_code;
	}
	daemon_stop(&d);
	qb_loop_destroy(d.loop);
	log_notice("vmclusterd stopped (exit %d)", rc);
	vmcd_logring_fini();
	qb_log_fini();
	return rc;
}
