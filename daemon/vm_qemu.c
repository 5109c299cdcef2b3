/*
 * The QEMU driver (vm_qemu.h): one detached qemu-system-x86_64 per VM,
 * followed over QMP and through a pidfd, from the daemon's libqb loop.
 * This file is the life of a VM; qemu_cmd.c knows how QEMU is launched,
 * vm_qmp.c holds one QMP connection, vm_attach.c finds QEMUs that run
 * without us.
 *
 * Starting. vmcd_vm_start() checks what needs no file system call on the
 * VM's own paths, and forks the spawn helper (qemu_cmd.c). The helper
 * checks the VM's files (which may sit on a hung NFS mount: never in this
 * process), detaches QEMU and exits; QEMU's pid comes back over a pipe,
 * or the line that says which file failed the checks. A helper that has
 * said nothing within VMC_FS_CHECK_DEADLINE_MS is killed with its session
 * (and any QEMU it forked), and the start fails at once. The helper is
 * reaped from a timer (waitpid WNOHANG), never waited for.
 * Once the pid is known, a pidfd follows the process, and QMP is tried
 * from a timer until QEMU has created its socket; after negotiation,
 * query-status must say "running" and VMCD_VM_RUNNING is reported. If
 * QEMU exits first, or is not running within VMC_VM_START_DEADLINE_MS
 * of vmcd_vm_start() (then QEMU is killed), VMCD_VM_START_FAILED carries
 * QEMU's own last line from NAME.qemu.log, where its stdout and stderr go.
 *
 * Following. The VM is gone when its process is gone (pidfd readable, or
 * kill(pid, 0) failing from a timer where pidfd_open is missing), never
 * merely when QMP closes: QEMU closes QMP while it exits, and the disk is
 * only safe once the process is gone. QMP closing with the process still
 * there for VMC_VM_EXIT_GRACE_MS means a QEMU stuck on its way out; it is
 * killed. QMP events (SHUTDOWN, GUEST_PANICKED, STOP, RESUME, ...) are
 * logged and explain the exit in the event's reason.
 *
 * The life of one VM (an input a state has no row for is logged and
 * changes nothing; the table is vm_fsm[] below):
 *
 *                     attach_all, adopt enter here
 *                                 |
 *   SPAWNING --pid--> CONNECTING <+ --QMP ready--> QUERYING --"running"--> RUNNING
 *      |                   |                          |                       |
 *      |                   +---------- stop ----------+-----------------------+
 *      |                                              v
 *      |                 STOPPING: system_powerdown once QMP is up, SIGKILL timer
 *      |                                              |
 *      |  kill, start deadline, stop timeout, QMP lost, status not "running"
 *      +------------------------------+---------------+  (from the states above;
 *                                     v                   SPAWNING: the helper killed)
 *                 EXITING: SIGKILL sent, or QEMU on its way out
 *
 *   any state with a pid --process gone--> GONE (event queued, record freed)
 *   SPAWNING or EXITING --spawn failed--> GONE (a file check, or the helper's fork)
 *   SPAWNING or EXITING, no pid yet --spawn deadline--> GONE (helper killed)
 *
 * Events are queued and delivered from a zero-length loop timer, so the
 * event callback may call back into this module.
 */
#include "config.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "json_util.h"
#include "log.h"
#include "qemu_cmd.h"
#include "timeouts.h"
#include "vm_attach.h"
#include "vm_qemu.h"
#include "vm_qmp.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define log_vm(level, vm, fmt, ...) qb_log(level, "VM %s: " fmt, (vm)->name, ##__VA_ARGS__)

#define VMS_SUBDIR "vms"
#define ALIVE_POLL_MS 1000 /* without a pidfd */
#define ALIVE_POLL_EXITING_MS 100
#define HELPER_REAP_MS 10
#define HELPERS_MAX 64
#define WHY_LEN VMCD_QEMU_WHY_MAX
#define LAST_LINE_LEN 256
#define REASON_LEN 768
#define VM_STOP_TIMEOUT_S_MAX (24 * 3600)

enum vm_state {
	VM_SPAWNING = 0,
	VM_CONNECTING,
	VM_QUERYING,
	VM_RUNNING,
	VM_STOPPING,
	VM_EXITING,
	VM_GONE,
	VM_STATE_COUNT,
};

enum vm_input {
	IN_PID = 0,
	IN_SPAWN_FAILED,
	IN_QMP_READY,
	IN_STATUS_RUNNING,
	IN_STATUS_OTHER,
	IN_START_DEADLINE, /* in SPAWNING (and EXITING without a pid): the spawn deadline */
	IN_STOP,
	IN_KILL,
	IN_STOP_TIMEOUT,
	IN_QMP_LOST,
	IN_EXIT_GRACE,
	IN_GONE,
	IN_COUNT,
};

static const char *const vm_state_names[VM_STATE_COUNT] = {
	[VM_SPAWNING] = "spawning",   [VM_CONNECTING] = "connecting", [VM_QUERYING] = "querying",
	[VM_RUNNING] = "running",     [VM_STOPPING] = "stopping",     [VM_EXITING] = "exiting",
	[VM_GONE] = "gone",
};

static const char *const vm_input_names[IN_COUNT] = {
	[IN_PID] = "pid",
	[IN_SPAWN_FAILED] = "spawn-failed",
	[IN_QMP_READY] = "qmp-ready",
	[IN_STATUS_RUNNING] = "status-running",
	[IN_STATUS_OTHER] = "status-other",
	[IN_START_DEADLINE] = "start-deadline",
	[IN_STOP] = "stop",
	[IN_KILL] = "kill",
	[IN_STOP_TIMEOUT] = "stop-timeout",
	[IN_QMP_LOST] = "qmp-lost",
	[IN_EXIT_GRACE] = "exit-grace",
	[IN_GONE] = "gone",
};

struct vm_timer {
	qb_loop_timer_handle handle;
	bool armed;
};

struct vm {
	struct vm *next;
	char name[VMC_NAME_MAX + 1];
	enum vm_state state;
	bool attached;          /* found running (attach_all, adopt): no RUNNING event */
	bool reached_running;   /* query-status said "running" once */
	bool stop_requested;
	bool kill_requested;
	bool killed_on_timeout; /* the stop's SIGKILL */
	bool powerdown_sent;
	bool attach_warned;
	bool incoming;          /* started for an incoming migration: "inmigrate" counts as running */
	enum vmc_accel accel;
	unsigned int stop_timeout_s;
	int64_t stop_deadline_ms;
	int64_t started_ms;
	pid_t pid;                         /* 0 until known */
	pid_t helper;                      /* the spawn helper until reaped, else 0 */
	int pidfd;                         /* -1: followed by t_alive */
	struct vmcd_qemu_spawn_pipe spawn; /* until EOF */
	struct vmcd_qmp_link *qmp;         /* NULL once lost */
	off_t log_offset;                  /* where this QEMU's lines start; -1: it never ran */
	char run_status[32];
	char exit_event[160];              /* the QMP event that explains an exit */
	char why[WHY_LEN];                 /* what we know better than QEMU's stderr */
	struct vm_timer t_deadline, t_stop, t_grace, t_alive;
};

struct vm_event_msg {
	struct vm_event_msg *next;
	char name[VMC_NAME_MAX + 1];
	enum vmcd_vm_event ev;
	char reason[REASON_LEN];
};

static struct vm_driver {
	qb_loop_t *loop;
	struct vmcd_qemu_dirs dirs;
	struct vmcd_vm_ops ops;
	void *ctx;
	struct vm *vms;
	struct vm_event_msg *ev_head;
	struct vm_event_msg *ev_tail;
	struct vm_timer t_events;   /* delivers the queued events */
	pid_t helpers[HELPERS_MAX]; /* spawn helpers not reaped yet */
	size_t n_helpers;
	struct vm_timer t_reap;
} *drv;

static void vm_input(struct vm *vm, enum vm_input in);

/* ---- small helpers ---- */

static const char *vm_state_to_str(enum vm_state s)
{
	return (size_t)s < VM_STATE_COUNT ? vm_state_names[s] : "unknown";
}

static const char *vm_input_to_str(enum vm_input in)
{
	return (size_t)in < IN_COUNT ? vm_input_names[in] : "unknown";
}

const char *vmcd_vm_event_to_str(enum vmcd_vm_event ev)
{
	switch (ev) {
	case VMCD_VM_RUNNING:
		return "running";
	case VMCD_VM_STOPPED:
		return "stopped";
	case VMCD_VM_CRASHED:
		return "crashed";
	case VMCD_VM_START_FAILED:
		return "start-failed";
	case VMCD_VM_STATUS:
		return "status";
	}
	return "unknown";
}

/* 0 or -ENAMETOOLONG. */
static int vm_path(const char *name, enum vmcd_qemu_file f, char *buf, size_t len)
{
	return vmcd_qemu_file_path(&drv->dirs, name, f, buf, len);
}

static struct vm *vm_find(const char *name)
{
	for (struct vm *vm = drv->vms; vm != NULL; vm = vm->next) {
		if (strcmp(vm->name, name) == 0) {
			return vm;
		}
	}
	return NULL;
}

/* A string field of a QMP object, or dflt when it has none. */
static const char *json_str_or(json_object *o, const char *key, const char *dflt)
{
	const char *s = vmc_json_str(o, key);

	return s != NULL ? s : dflt;
}

/* ---- timers ---- */

static void timer_disarm(struct vm_timer *t)
{
	if (t->armed) {
		qb_loop_timer_del(drv->loop, t->handle);
		t->armed = false;
	}
}

static void timer_arm(struct vm_timer *t, unsigned int ms, void *data, qb_loop_timer_dispatch_fn fn)
{
	int rc;

	timer_disarm(t);
	rc = qb_loop_timer_add(drv->loop, QB_LOOP_MED, (uint64_t)ms * QB_TIME_NS_IN_MSEC, data, fn,
			       &t->handle);
	if (rc != 0) {
		/* Only out of memory: nothing here would work any more. */
		qb_log(LOG_ERR, "VM driver: cannot add a loop timer: %s", strerror(-rc));
		return;
	}
	t->armed = true;
}

/* ---- events: queued, delivered from the loop ---- */

/*
 * A zero-length timer, not a qb_loop_job: libqb does not count a job added
 * from a dispatch as work to do, so it would wait for the next wake-up of
 * the loop (seconds, in a quiet daemon) before running it.
 */
static void event_deliver(void *data)
{
	drv->t_events.armed = false;
	while (drv != NULL && drv->ev_head != NULL) {
		struct vm_event_msg *m = drv->ev_head;
		void (*fn)(void *, const char *, enum vmcd_vm_event, const char *) = drv->ops.event;
		void *ctx = drv->ctx;

		drv->ev_head = m->next;
		if (drv->ev_head == NULL) {
			drv->ev_tail = NULL;
		}
		if (fn != NULL) {
			fn(ctx, m->name, m->ev, m->reason);
		}
		free(m);
	}
}

static void event_queue(const struct vm *vm, enum vmcd_vm_event ev, const char *reason)
{
	struct vm_event_msg *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		log_vm(LOG_ERR, vm, "out of memory: event %s (%s) lost", vmcd_vm_event_to_str(ev), reason);
		return;
	}
	snprintf(m->name, sizeof(m->name), "%s", vm->name);
	m->ev = ev;
	snprintf(m->reason, sizeof(m->reason), "%s", reason);
	if (drv->ev_tail != NULL) {
		drv->ev_tail->next = m;
	} else {
		drv->ev_head = m;
	}
	drv->ev_tail = m;
	if (!drv->t_events.armed) {
		timer_arm(&drv->t_events, 0, NULL, event_deliver);
	}
}

/* ---- processes ---- */

static int pidfd_open_pid(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void vm_signal(struct vm *vm, int sig)
{
	int rc = -1;

	if (vm->pid <= 0) {
		return;
	}
	if (vm->pidfd >= 0) {
		rc = (int)syscall(SYS_pidfd_send_signal, vm->pidfd, sig, NULL, 0);
	}
	if (rc < 0 && (vm->pidfd < 0 || errno == ENOSYS)) {
		rc = kill(vm->pid, sig);
	}
	if (rc < 0 && errno != ESRCH) {
		log_vm(LOG_ERR, vm, "cannot send signal %d to QEMU pid %d: %s", sig, (int)vm->pid,
		       strerror(errno));
	}
}

/*
 * SIGKILL to the spawn helper and its session (it called setsid(), so a
 * QEMU it forked is in it too). Only while it is unreaped: until then its
 * pid, and so its process group's id, cannot be anyone else's. The helper
 * first, so that it cannot fork after the group was signalled.
 */
static void helper_kill(struct vm *vm)
{
	if (vm->helper <= 0) {
		return;
	}
	kill(vm->helper, SIGKILL);
	kill(-vm->helper, SIGKILL);
}

/* ---- spawn helpers: reaped from a timer, never waited for ---- */

static void helper_forget(pid_t pid)
{
	for (struct vm *vm = drv->vms; vm != NULL; vm = vm->next) {
		if (vm->helper == pid) {
			vm->helper = 0;
		}
	}
}

static void helpers_reap(void *data)
{
	size_t kept = 0;

	drv->t_reap.armed = false;
	for (size_t i = 0; i < drv->n_helpers; i++) {
		pid_t rc = waitpid(drv->helpers[i], NULL, WNOHANG);

		/* ECHILD: someone else (a daemon-wide SIGCHLD reaper) had it. */
		if (rc == 0 || (rc < 0 && errno == EINTR)) {
			drv->helpers[kept++] = drv->helpers[i];
		} else {
			helper_forget(drv->helpers[i]);
		}
	}
	drv->n_helpers = kept;
	if (kept > 0) {
		timer_arm(&drv->t_reap, HELPER_REAP_MS, NULL, helpers_reap);
	}
}

static void helper_add(pid_t pid)
{
	if (drv->n_helpers < HELPERS_MAX) {
		drv->helpers[drv->n_helpers++] = pid;
	} else {
		qb_log(LOG_WARNING, "VM driver: %d spawn helpers unreaped; helper %d left a zombie",
		       HELPERS_MAX, (int)pid);
	}
	if (!drv->t_reap.armed) {
		timer_arm(&drv->t_reap, HELPER_REAP_MS, NULL, helpers_reap);
	}
}

/* ---- QMP: what the link tells the state machine ---- */

static void qmp_on_ready(void *ctx)
{
	vm_input(ctx, IN_QMP_READY);
}

/* A STOP event says paused, not why: QEMU's status tells a migration's pause from others. */
static void status_refresh_done(void *opaque, const struct vmc_qmp_reply *reply)
{
	struct vm *vm = opaque;

	const char *status = json_str_or(reply->ret, "status", "unknown");

	if (reply->status == VMC_QMP_OK && strcmp(status, vm->run_status) != 0) {
		snprintf(vm->run_status, sizeof(vm->run_status), "%s", status);
		if (vm->state == VM_RUNNING) {
			event_queue(vm, VMCD_VM_STATUS, vm->run_status);
		}
	}
}

static void qmp_on_event(void *ctx, const struct vmc_qmp_event *ev)
{
	struct vm *vm = ctx;

	if (strcmp(ev->name, "SHUTDOWN") == 0) {
		const char *reason = json_str_or(ev->data, "reason", "unknown");

		log_vm(LOG_NOTICE, vm, "QEMU reports SHUTDOWN (%s)", reason);
		if (vm->exit_event[0] == '\0') {
			snprintf(vm->exit_event, sizeof(vm->exit_event), "SHUTDOWN: %s", reason);
		}
	} else if (strcmp(ev->name, "GUEST_PANICKED") == 0) {
		log_vm(LOG_ERR, vm, "the guest panicked (QEMU action: %s)",
		       json_str_or(ev->data, "action", "unknown"));
		snprintf(vm->exit_event, sizeof(vm->exit_event), "GUEST_PANICKED");
	} else if (strcmp(ev->name, "STOP") == 0) {
		log_vm(LOG_NOTICE, vm, "paused (QMP STOP event)");
		snprintf(vm->run_status, sizeof(vm->run_status), "paused");
		(void)vmcd_qmp_link_send(vm->qmp, "query-status", status_refresh_done, vm);
	} else if (strcmp(ev->name, "RESUME") == 0) {
		log_vm(LOG_NOTICE, vm, "resumed (QMP RESUME event)");
		snprintf(vm->run_status, sizeof(vm->run_status), "running");
		if (vm->state == VM_RUNNING) {
			event_queue(vm, VMCD_VM_STATUS, vm->run_status);
		}
	} else if (strcmp(ev->name, "MIGRATION") == 0) {
		log_vm(LOG_INFO, vm, "migration %s", json_str_or(ev->data, "status", "?"));
		(void)vmcd_qmp_link_send(vm->qmp, "query-status", status_refresh_done, vm);
	} else if (strcmp(ev->name, "RESET") == 0) {
		log_vm(LOG_NOTICE, vm, "the guest was reset (%s)",
		       json_str_or(ev->data, "reason", "unknown"));
	} else if (strcmp(ev->name, "POWERDOWN") == 0) {
		log_vm(LOG_INFO, vm, "the guest got the ACPI power button");
	} else if (strcmp(ev->name, "BLOCK_IO_ERROR") == 0) {
		log_vm(LOG_ERR, vm, "disk I/O error on %s (%s, action %s): %s",
		       json_str_or(ev->data, "node-name", json_str_or(ev->data, "device", "?")),
		       json_str_or(ev->data, "operation", "?"),
		       json_str_or(ev->data, "action", "?"), json_str_or(ev->data, "reason", "?"));
		/* Paused on a disk of a shared volume (werror=stop): this node's lease
		 * on it may lapse, and another node may start the VM; resuming it
		 * later could write over that one's disk. Killed, never resumed. */
		if (strcmp(json_str_or(ev->data, "action", ""), "stop") == 0 && vm->why[0] == '\0') {
			snprintf(vm->why, sizeof(vm->why), "paused on a disk I/O error (%.100s): killed, never resumed",
				 json_str_or(ev->data, "reason", "?"));
			log_vm(LOG_ERR, vm, "%s", vm->why);
			vm_signal(vm, SIGKILL);
		}
	} else {
		log_vm(LOG_DEBUG, vm, "QMP event %s", ev->name);
	}
}

/* The link has closed and touches nothing after this call: let go of it. */
static void qmp_on_lost(void *ctx, const char *reason)
{
	struct vm *vm = ctx;

	vmcd_qmp_link_free(vm->qmp);
	vm->qmp = NULL;
	vm_input(vm, IN_QMP_LOST);
}

static const struct vmcd_qmp_link_ops vm_link_ops = {
	.ready = qmp_on_ready,
	.event = qmp_on_event,
	.lost = qmp_on_lost,
};

static void status_done(void *opaque, const struct vmc_qmp_reply *reply)
{
	struct vm *vm = opaque;
	const char *status = "unknown";

	if (reply->status == VMC_QMP_OK) {
		status = json_str_or(reply->ret, "status", "unknown");
	} else {
		log_vm(LOG_WARNING, vm, "query-status failed: %s", reply->error_desc);
	}
	snprintf(vm->run_status, sizeof(vm->run_status), "%s", status);
	vm_input(vm, strcmp(status, "running") == 0 || (vm->incoming && strcmp(status, "inmigrate") == 0)
			     ? IN_STATUS_RUNNING
			     : IN_STATUS_OTHER);
}


static void powerdown_done(void *opaque, const struct vmc_qmp_reply *reply)
{
	struct vm *vm = opaque;

	if (reply->status == VMC_QMP_ERROR) {
		log_vm(LOG_WARNING, vm, "system_powerdown refused: %s; SIGKILL when the stop times out",
		       reply->error_desc);
	}
}

/* ---- following the process ---- */

static void alive_check(void *data);

static int32_t pidfd_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct vm *vm = data;

	qb_loop_poll_del(drv->loop, fd);
	close(fd);
	vm->pidfd = -1;
	vm_input(vm, IN_GONE); /* frees vm */
	return -1;
}

static void alive_check(void *data)
{
	struct vm *vm = data;

	vm->t_alive.armed = false;
	if (!vmcd_qemu_pid_alive(vm->pid)) {
		vm_input(vm, IN_GONE); /* frees vm */
		return;
	}
	if (vm->pidfd < 0) {
		timer_arm(&vm->t_alive, vm->state == VM_EXITING ? ALIVE_POLL_EXITING_MS : ALIVE_POLL_MS, vm,
			  alive_check);
	}
}

/* pid is known: follow it by pidfd, else by a timer. */
static void vm_follow(struct vm *vm)
{
	vm->pidfd = pidfd_open_pid(vm->pid);
	if (vm->pidfd >= 0) {
		if (qb_loop_poll_add(drv->loop, QB_LOOP_HIGH, vm->pidfd, POLLIN, vm, pidfd_dispatch) == 0) {
			return;
		}
		close(vm->pidfd);
		vm->pidfd = -1;
	} else if (errno == ESRCH) {
		/* Already gone: let the loop say so, not this call chain. */
		timer_arm(&vm->t_alive, 0, vm, alive_check);
		return;
	}
	log_vm(LOG_INFO, vm, "no pidfd for QEMU pid %d (%s): checking it every %d ms", (int)vm->pid,
	       strerror(errno), ALIVE_POLL_MS);
	timer_arm(&vm->t_alive, ALIVE_POLL_MS, vm, alive_check);
}

static void start_deadline(void *data)
{
	struct vm *vm = data;

	vm->t_deadline.armed = false;
	vm_input(vm, IN_START_DEADLINE);
}

static void stop_timeout(void *data)
{
	struct vm *vm = data;

	vm->t_stop.armed = false;
	vm_input(vm, IN_STOP_TIMEOUT);
}

static void exit_grace(void *data)
{
	struct vm *vm = data;

	vm->t_grace.armed = false;
	vm_input(vm, IN_EXIT_GRACE);
}

/* ---- the spawn pipe ---- */

static void spawn_close(struct vm *vm)
{
	if (vm->spawn.fd >= 0) {
		qb_loop_poll_del(drv->loop, vm->spawn.fd);
		close(vm->spawn.fd);
		vm->spawn.fd = -1;
	}
}

/* Reads the pipe; what it said goes into vm (but the pid: that is the caller's input). */
static bool spawn_take(struct vm *vm)
{
	bool open = vmcd_qemu_spawn_read(&vm->spawn);

	if (vm->spawn.log_offset >= 0) {
		vm->log_offset = vm->spawn.log_offset;
	}
	if (vm->spawn.why[0] != '\0') {
		snprintf(vm->why, sizeof(vm->why), "%s", vm->spawn.why);
		vm->spawn.why[0] = '\0';
	}
	if (!open || vm->spawn.failed) {
		spawn_close(vm);
	}
	return open && !vm->spawn.failed;
}

static int32_t spawn_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct vm *vm = data;
	bool open = spawn_take(vm);

	if (vm->pid == 0 && vm->spawn.pid > 0) {
		vm->pid = vm->spawn.pid;
		vm_input(vm, IN_PID);
	} else if (!open && vm->pid == 0) {
		if (vm->why[0] == '\0') {
			snprintf(vm->why, sizeof(vm->why), "the spawn helper exited without QEMU's pid");
		}
		vm_input(vm, IN_SPAWN_FAILED); /* frees vm */
	}
	/* -1: our entry was deleted, libqb must not mark it active again. */
	return open ? 0 : -1;
}

/* ---- the state machine ---- */

static void vm_destroy(struct vm *vm)
{
	struct vm **pp;

	for (pp = &drv->vms; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == vm) {
			*pp = vm->next;
			break;
		}
	}
	timer_disarm(&vm->t_deadline);
	timer_disarm(&vm->t_stop);
	timer_disarm(&vm->t_grace);
	timer_disarm(&vm->t_alive);
	vmcd_qmp_link_free(vm->qmp);
	spawn_close(vm);
	if (vm->pidfd >= 0) {
		qb_loop_poll_del(drv->loop, vm->pidfd);
		close(vm->pidfd);
	}
	free(vm);
}

/* Gone after a stop or a kill: how. */
static void stopped_reason(const struct vm *vm, char *reason, size_t len)
{
	if (vm->killed_on_timeout && vm->powerdown_sent) {
		snprintf(reason, len, "killed (SIGKILL): still running %u s after system_powerdown",
			 vm->stop_timeout_s);
	} else if (vm->killed_on_timeout) {
		snprintf(reason, len, "killed (SIGKILL) after %u s: QMP never came up to send "
			 "system_powerdown", vm->stop_timeout_s);
	} else if (vm->kill_requested) {
		snprintf(reason, len, "killed (SIGKILL) on request");
	} else {
		snprintf(reason, len, "powered off%s%s%s", vm->exit_event[0] != '\0' ? " (" : "",
			 vm->exit_event, vm->exit_event[0] != '\0' ? ")" : "");
	}
}

/* Gone without being asked, after it ran. */
static void crashed_reason(const struct vm *vm, const char *last, char *reason, size_t len)
{
	size_t used;

	if (vm->why[0] != '\0') {
		snprintf(reason, len, "%s", vm->why);
	} else if (vm->exit_event[0] != '\0') {
		snprintf(reason, len, "QEMU exited (%s)", vm->exit_event);
	} else {
		snprintf(reason, len, "QEMU process %d disappeared (no SHUTDOWN event: killed?)",
			 (int)vm->pid);
	}
	used = strlen(reason);
	if (last[0] != '\0' && used < len) {
		snprintf(reason + used, len - used, "; QEMU: %s", last);
	}
}

/* What the exit was, and why; last is QEMU's last line ("" when none). */
static enum vmcd_vm_event exit_classify(const struct vm *vm, const char *last, char *reason,
					size_t len, int *level)
{
	*level = LOG_ERR;
	if (vm->stop_requested || vm->kill_requested) {
		*level = vm->killed_on_timeout ? LOG_WARNING : LOG_NOTICE;
		stopped_reason(vm, reason, len);
		return VMCD_VM_STOPPED;
	}
	if (!vm->reached_running && !vm->attached) {
		if (vm->why[0] != '\0') {
			snprintf(reason, len, "%s%s%s", vm->why, last[0] != '\0' ? "; QEMU: " : "",
				 last);
		} else if (last[0] != '\0') {
			snprintf(reason, len, "%s", last);
		} else {
			snprintf(reason, len, "QEMU exited during start-up without a message");
		}
		return VMCD_VM_START_FAILED;
	}
	if (vm->why[0] == '\0' && strcmp(vm->exit_event, "SHUTDOWN: guest-shutdown") == 0) {
		/* The guest powered itself off: an orderly stop, not a failure. */
		*level = LOG_NOTICE;
		snprintf(reason, len, "the guest shut itself down");
		return VMCD_VM_STOPPED;
	}
	crashed_reason(vm, last, reason, len);
	return VMCD_VM_CRASHED;
}

/* QEMU's own pidfile (unless it names another live QEMU of the VM) and QMP socket. */
static void vm_files_remove(const struct vm *vm)
{
	char path[PATH_MAX];

	if (vm_path(vm->name, VMCD_QEMU_FILE_PID, path, sizeof(path)) == 0) {
		pid_t p = vmcd_qemu_pidfile_read(path);

		if (p == vm->pid || p < 0 || (p > 0 && !vmcd_qemu_pid_is_vm(p, vm->name))) {
			unlink(path);
		}
	}
	if (vm_path(vm->name, VMCD_QEMU_FILE_QMP, path, sizeof(path)) == 0) {
		unlink(path);
	}
	if (vm_path(vm->name, VMCD_QEMU_FILE_MIGRATE_QMP, path, sizeof(path)) == 0) {
		unlink(path);
	}
}

/* QEMU is gone (or never came): remove its files and say what happened. */
static void vm_report_exit(struct vm *vm)
{
	char last[LAST_LINE_LEN] = "";
	char reason[REASON_LEN];
	enum vmcd_vm_event ev;
	int level;

	/* An exec failure, or the helper's last word, may still sit in the pipe. */
	if (vm->spawn.fd >= 0) {
		spawn_take(vm);
		spawn_close(vm);
		if (vm->pid == 0 && vm->spawn.pid > 0) {
			vm->pid = vm->spawn.pid;
		}
	}
	/* Without a log offset QEMU never ran: the log's last line is not its. */
	if (vm->log_offset >= 0) {
		vmcd_qemu_log_last_line(&drv->dirs, vm->name, vm->log_offset, last, sizeof(last));
	}
	ev = exit_classify(vm, last, reason, sizeof(reason), &level);
	log_vm(level, vm, "%s: %s", vmcd_vm_event_to_str(ev), reason);
	vm_files_remove(vm);
	event_queue(vm, ev, reason);
}

static enum vm_state on_pid(struct vm *vm)
{
	int64_t left_ms = VMC_VM_START_DEADLINE_MS - (vmc_now_ms() - vm->started_ms);

	log_vm(LOG_INFO, vm, "QEMU pid %d", (int)vm->pid);
	vm_follow(vm);
	/* The files answered: from here, the start's own deadline (since vmcd_vm_start). */
	timer_arm(&vm->t_deadline, left_ms > 0 ? (unsigned int)left_ms : 0, vm, start_deadline);
	vmcd_qmp_link_connect(vm->qmp, VMCD_QMP_RETRY_START);
	return VM_CONNECTING;
}

/* Killed (or stopped) before its pid was known: now it is. */
static enum vm_state on_pid_exiting(struct vm *vm)
{
	vm_follow(vm);
	log_vm(LOG_NOTICE, vm, "killing QEMU pid %d (SIGKILL): %s", (int)vm->pid,
	       vm->why[0] != '\0' ? vm->why : "stopped while starting");
	vm_signal(vm, SIGKILL);
	return VM_EXITING;
}

static enum vm_state on_spawn_failed(struct vm *vm)
{
	vm_report_exit(vm);
	return VM_GONE;
}

/*
 * The helper said nothing within VMC_FS_CHECK_DEADLINE_MS: it hangs on the
 * VM's files (a hard NFS mount whose server is gone, say). Kill it and
 * its session, and say so at once; its SIGKILL is pending, so it can
 * fork nothing any more, whenever the kernel lets it die.
 */
static enum vm_state on_spawn_deadline(struct vm *vm)
{
	if (!vm->stop_requested && !vm->kill_requested) {
		snprintf(vm->why, sizeof(vm->why),
			 "the VM's files did not answer within %d s (kernel, initrd or disks on "
			 "a hung file system?): spawn helper killed, QEMU not started",
			 VMC_FS_CHECK_DEADLINE_MS / 1000);
	}
	log_vm(LOG_ERR, vm, "spawn helper %d still checking the VM's files after %d s: killing it "
	       "and its session", (int)vm->helper, VMC_FS_CHECK_DEADLINE_MS / 1000);
	helper_kill(vm);
	vm_report_exit(vm);
	return VM_GONE;
}

/*
 * The process is gone, but its last QMP events (SHUTDOWN, GUEST_PANICKED)
 * may still sit unread in the socket when the pidfd was seen first: they
 * explain the exit, so read them now. Nothing more can come.
 */
static enum vm_state on_gone(struct vm *vm)
{
	vmcd_qmp_link_drain(vm->qmp);
	vm_report_exit(vm);
	return VM_GONE;
}

/* A failed send is logged by the link; the start deadline or the stop timeout follows. */
static void vm_qmp_send(struct vm *vm, const char *command, vmcd_qmp_link_done_fn done)
{
	(void)vmcd_qmp_link_send(vm->qmp, command, done, vm);
}

static enum vm_state on_qmp_ready(struct vm *vm)
{
	vm_qmp_send(vm, "query-status", status_done);
	return VM_QUERYING;
}

static void vm_powerdown(struct vm *vm)
{
	if (vm->powerdown_sent || !vmcd_qmp_link_ready(vm->qmp)) {
		return;
	}
	vm->powerdown_sent = true;
	log_vm(LOG_NOTICE, vm, "stopping: ACPI power button (system_powerdown), SIGKILL in %u s",
	       vm->stop_timeout_s);
	vm_qmp_send(vm, "system_powerdown", powerdown_done);
}

static enum vm_state on_qmp_ready_stopping(struct vm *vm)
{
	vm_powerdown(vm);
	return VM_STOPPING;
}

static enum vm_state on_status_running(struct vm *vm)
{
	vm->reached_running = true;
	if (vm->attached) {
		log_vm(LOG_NOTICE, vm, "re-attached to QEMU pid %d (running)", (int)vm->pid);
	} else {
		char reason[96];

		log_vm(LOG_NOTICE, vm, "running (QEMU pid %d, %s, QMP up %lld ms after start)", (int)vm->pid,
		       vmc_accel_to_str(vm->accel), (long long)(vmc_now_ms() - vm->started_ms));
		snprintf(reason, sizeof(reason), "QEMU pid %d", (int)vm->pid);
		event_queue(vm, VMCD_VM_RUNNING, reason);
	}
	return VM_RUNNING;
}

static enum vm_state on_status_other(struct vm *vm)
{
	if (vm->attached) {
		/* It was running when the previous daemon last saw it: report, keep following. */
		vm->reached_running = true;
		log_vm(LOG_WARNING, vm, "re-attached to QEMU pid %d, which reports status '%s'", (int)vm->pid,
		       vm->run_status);
		return VM_RUNNING;
	}
	snprintf(vm->why, sizeof(vm->why), "QEMU reports status '%s' after start, not 'running'",
		 vm->run_status);
	log_vm(LOG_ERR, vm, "%s; killing QEMU pid %d", vm->why, (int)vm->pid);
	vm_signal(vm, SIGKILL);
	return VM_EXITING;
}

static enum vm_state on_start_deadline(struct vm *vm)
{
	if (vm->attached) {
		if (!vm->attach_warned) {
			log_vm(LOG_WARNING, vm,
			       "QEMU pid %d has not answered on QMP for %d s (another client on its "
			       "socket?); following the process, still trying", (int)vm->pid,
			       VMC_VM_START_DEADLINE_MS / 1000);
			vm->attach_warned = true;
		}
		return vm->state;
	}
	snprintf(vm->why, sizeof(vm->why), "QMP did not answer within %d s",
		 VMC_VM_START_DEADLINE_MS / 1000);
	log_vm(LOG_ERR, vm, "%s; killing QEMU pid %d", vm->why, (int)vm->pid);
	vm_signal(vm, SIGKILL);
	return VM_EXITING;
}

static enum vm_state on_stop(struct vm *vm)
{
	vm->stop_requested = true;
	vm->stop_deadline_ms = vmc_now_ms() + (int64_t)vm->stop_timeout_s * 1000;
	timer_arm(&vm->t_stop, vm->stop_timeout_s * 1000, vm, stop_timeout);
	if (vmcd_qmp_link_ready(vm->qmp)) {
		vm_powerdown(vm);
	} else {
		log_vm(LOG_NOTICE, vm, "stopping: QMP not up yet; system_powerdown once it is, "
		       "SIGKILL in %u s", vm->stop_timeout_s);
	}
	return VM_STOPPING;
}

/* A second stop: keep whichever deadline comes first. */
static enum vm_state on_stop_again(struct vm *vm)
{
	int64_t deadline = vmc_now_ms() + (int64_t)vm->stop_timeout_s * 1000;

	if (deadline < vm->stop_deadline_ms) {
		vm->stop_deadline_ms = deadline;
		timer_arm(&vm->t_stop, vm->stop_timeout_s * 1000, vm, stop_timeout);
		log_vm(LOG_NOTICE, vm, "stop again: SIGKILL now in %u s", vm->stop_timeout_s);
	}
	return VM_STOPPING;
}

/* Nothing runs yet: the start is abandoned, with whatever the helper started. */
static enum vm_state on_stop_spawning(struct vm *vm)
{
	vm->stop_requested = true;
	vm->kill_requested = true;
	log_vm(LOG_NOTICE, vm,
	       "stop while QEMU is being spawned: killing the spawn helper, and QEMU as soon as "
	       "its pid is known");
	helper_kill(vm);
	return VM_EXITING;
}

static enum vm_state on_kill(struct vm *vm)
{
	vm->kill_requested = true;
	if (vm->pid > 0) {
		log_vm(LOG_NOTICE, vm, "killing QEMU pid %d (SIGKILL) on request", (int)vm->pid);
		vm_signal(vm, SIGKILL);
	} else {
		log_vm(LOG_NOTICE, vm,
		       "kill while QEMU is being spawned: killing the spawn helper, and QEMU as "
		       "soon as its pid is known");
		helper_kill(vm);
	}
	return VM_EXITING;
}

static enum vm_state on_stop_timeout(struct vm *vm)
{
	vm->killed_on_timeout = true;
	log_vm(LOG_WARNING, vm, "still running %u s after %s; killing QEMU pid %d (SIGKILL)",
	       vm->stop_timeout_s, vm->powerdown_sent ? "system_powerdown" : "the stop request",
	       (int)vm->pid);
	vm_signal(vm, SIGKILL);
	return VM_EXITING;
}

static enum vm_state on_qmp_lost(struct vm *vm)
{
	/* QEMU closes QMP as it exits; the pidfd says when it is really gone. */
	timer_arm(&vm->t_grace, VMC_VM_EXIT_GRACE_MS, vm, exit_grace);
	if (vm->pidfd < 0) {
		timer_arm(&vm->t_alive, ALIVE_POLL_EXITING_MS, vm, alive_check);
	}
	return VM_EXITING;
}

static enum vm_state on_exit_grace(struct vm *vm)
{
	if (vm->why[0] == '\0' && !vm->stop_requested && !vm->kill_requested) {
		snprintf(vm->why, sizeof(vm->why),
			 "QEMU closed QMP but did not exit within %d s; killed (SIGKILL)",
			 VMC_VM_EXIT_GRACE_MS / 1000);
	}
	log_vm(LOG_ERR, vm, "QEMU pid %d still there %d s after closing QMP; killing it (SIGKILL)",
	       (int)vm->pid, VMC_VM_EXIT_GRACE_MS / 1000);
	vm_signal(vm, SIGKILL);
	/* Again later, in case it sits in an uninterruptible sleep. */
	timer_arm(&vm->t_grace, VMC_VM_EXIT_GRACE_MS, vm, exit_grace);
	return VM_EXITING;
}

static enum vm_state on_nothing(struct vm *vm)
{
	return vm->state;
}

typedef enum vm_state (*vm_handler_fn)(struct vm *vm);

#define S(x) (1u << (x))

static const struct vm_transition {
	enum vm_state state;
	enum vm_input input;
	vm_handler_fn handler;
	unsigned int next; /* the states handler may return */
} vm_fsm[] = {
	{ VM_SPAWNING, IN_PID, on_pid, S(VM_CONNECTING) },
	{ VM_SPAWNING, IN_SPAWN_FAILED, on_spawn_failed, S(VM_GONE) },
	{ VM_SPAWNING, IN_STOP, on_stop_spawning, S(VM_EXITING) },
	{ VM_SPAWNING, IN_KILL, on_kill, S(VM_EXITING) },
	{ VM_SPAWNING, IN_START_DEADLINE, on_spawn_deadline, S(VM_GONE) },

	{ VM_CONNECTING, IN_QMP_READY, on_qmp_ready, S(VM_QUERYING) },
	{ VM_CONNECTING, IN_START_DEADLINE, on_start_deadline, S(VM_CONNECTING) | S(VM_EXITING) },
	{ VM_CONNECTING, IN_STOP, on_stop, S(VM_STOPPING) },
	{ VM_CONNECTING, IN_KILL, on_kill, S(VM_EXITING) },
	{ VM_CONNECTING, IN_QMP_LOST, on_qmp_lost, S(VM_EXITING) },
	{ VM_CONNECTING, IN_GONE, on_gone, S(VM_GONE) },

	{ VM_QUERYING, IN_STATUS_RUNNING, on_status_running, S(VM_RUNNING) },
	{ VM_QUERYING, IN_STATUS_OTHER, on_status_other, S(VM_RUNNING) | S(VM_EXITING) },
	{ VM_QUERYING, IN_START_DEADLINE, on_start_deadline, S(VM_QUERYING) | S(VM_EXITING) },
	{ VM_QUERYING, IN_STOP, on_stop, S(VM_STOPPING) },
	{ VM_QUERYING, IN_KILL, on_kill, S(VM_EXITING) },
	{ VM_QUERYING, IN_QMP_LOST, on_qmp_lost, S(VM_EXITING) },
	{ VM_QUERYING, IN_GONE, on_gone, S(VM_GONE) },

	{ VM_RUNNING, IN_STOP, on_stop, S(VM_STOPPING) },
	{ VM_RUNNING, IN_KILL, on_kill, S(VM_EXITING) },
	{ VM_RUNNING, IN_QMP_LOST, on_qmp_lost, S(VM_EXITING) },
	{ VM_RUNNING, IN_GONE, on_gone, S(VM_GONE) },

	{ VM_STOPPING, IN_QMP_READY, on_qmp_ready_stopping, S(VM_STOPPING) },
	{ VM_STOPPING, IN_STATUS_RUNNING, on_nothing, S(VM_STOPPING) },
	{ VM_STOPPING, IN_STATUS_OTHER, on_nothing, S(VM_STOPPING) },
	{ VM_STOPPING, IN_STOP, on_stop_again, S(VM_STOPPING) },
	{ VM_STOPPING, IN_KILL, on_kill, S(VM_EXITING) },
	{ VM_STOPPING, IN_STOP_TIMEOUT, on_stop_timeout, S(VM_EXITING) },
	{ VM_STOPPING, IN_QMP_LOST, on_qmp_lost, S(VM_EXITING) },
	{ VM_STOPPING, IN_GONE, on_gone, S(VM_GONE) },

	{ VM_EXITING, IN_PID, on_pid_exiting, S(VM_EXITING) },
	{ VM_EXITING, IN_SPAWN_FAILED, on_spawn_failed, S(VM_GONE) },
	{ VM_EXITING, IN_START_DEADLINE, on_spawn_deadline, S(VM_GONE) },
	{ VM_EXITING, IN_QMP_READY, on_nothing, S(VM_EXITING) },
	{ VM_EXITING, IN_STATUS_RUNNING, on_nothing, S(VM_EXITING) },
	{ VM_EXITING, IN_STATUS_OTHER, on_nothing, S(VM_EXITING) },
	{ VM_EXITING, IN_STOP, on_nothing, S(VM_EXITING) },
	{ VM_EXITING, IN_KILL, on_kill, S(VM_EXITING) },
	{ VM_EXITING, IN_QMP_LOST, on_nothing, S(VM_EXITING) },
	{ VM_EXITING, IN_EXIT_GRACE, on_exit_grace, S(VM_EXITING) },
	{ VM_EXITING, IN_GONE, on_gone, S(VM_GONE) },
};

#undef S

/* What entering a state ends: the timers and retries that belong to the states before. */
static void vm_enter(struct vm *vm, enum vm_state next)
{
	switch (next) {
	case VM_RUNNING:
	case VM_STOPPING:
		timer_disarm(&vm->t_deadline);
		break;
	case VM_EXITING:
		/* Without a pid the helper still runs: its deadline stays. */
		if (vm->pid > 0) {
			timer_disarm(&vm->t_deadline);
		}
		vmcd_qmp_link_connect_cancel(vm->qmp);
		timer_disarm(&vm->t_stop);
		break;
	case VM_GONE:
		vm_destroy(vm);
		break;
	default:
		break;
	}
}

/* Feeds one input; when the VM reaches GONE it is freed: do not touch it after. */
static void vm_input(struct vm *vm, enum vm_input in)
{
	const struct vm_transition *t = NULL;
	enum vm_state next;

	for (size_t i = 0; i < sizeof(vm_fsm) / sizeof(vm_fsm[0]); i++) {
		if (vm_fsm[i].state == vm->state && vm_fsm[i].input == in) {
			t = &vm_fsm[i];
			break;
		}
	}
	if (t == NULL) {
		log_vm(LOG_WARNING, vm, "input %s is not valid in state %s: ignored", vm_input_to_str(in),
		       vm_state_to_str(vm->state));
		return;
	}
	next = t->handler(vm);
	if ((t->next & (1u << next)) == 0) {
		log_vm(LOG_ERR, vm, "illegal transition %s -> %s on %s: staying %s",
		       vm_state_to_str(vm->state), vm_state_to_str(next), vm_input_to_str(in),
		       vm_state_to_str(vm->state));
		return;
	}
	if (next != vm->state) {
		log_vm(LOG_DEBUG, vm, "%s -> %s (%s)", vm_state_to_str(vm->state), vm_state_to_str(next),
		       vm_input_to_str(in));
	}
	vm->state = next;
	vm_enter(vm, next);
}

/* ---- starting, stopping ---- */

static struct vm *vm_new(const char *name)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	char path[PATH_MAX];

	if (vm == NULL) {
		return NULL;
	}
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->pidfd = -1;
	vm->spawn.fd = -1;
	vm->log_offset = -1;
	vm->started_ms = vmc_now_ms();
	if (vm_path(name, VMCD_QEMU_FILE_QMP, path, sizeof(path)) == 0) {
		vm->qmp = vmcd_qmp_link_new(drv->loop, name, path, &vm_link_ops, vm);
	}
	if (vm->qmp == NULL) {
		free(vm);
		return NULL;
	}
	return vm; /* the caller links it into drv->vms */
}

/* Everything that refuses a start, before anything is started. */
static int start_check(const struct vmc_group_def *def, enum vmc_accel *accel, char *err,
		       size_t errlen)
{
	struct vm *vm;
	int rc;

	rc = vmcd_qemu_def_check(def, err, errlen);
	if (rc < 0) {
		return rc;
	}
	vm = vm_find(def->name);
	if (vm != NULL) {
		snprintf(err, errlen, "VM %s already runs on this node (QEMU pid %d, %s)", def->name,
			 (int)vm->pid, vm_state_to_str(vm->state));
		return -EEXIST;
	}
	rc = vmcd_qemu_host_check(&drv->dirs, def, accel, err, errlen);
	if (rc < 0) {
		return rc;
	}
	return vmcd_attach_check_absent(&drv->dirs, def->name, err, errlen);
}

static int vm_start(const struct vmc_group_def *def, enum vmc_accel accel, bool incoming, char *err,
		    size_t errlen)
{
	struct vm *vm;
	int rc;

	if (drv == NULL || def == NULL) {
		snprintf(err, errlen, "the VM driver is not initialised");
		return -EINVAL;
	}
	rc = start_check(def, &accel, err, errlen);
	if (rc < 0) {
		return rc;
	}
	vm = vm_new(def->name);
	if (vm == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = vmcd_qemu_spawn(&drv->dirs, def, accel, incoming, &vm->helper, &vm->spawn, err, errlen);
	if (rc < 0) {
		vm_destroy(vm);
		return rc;
	}
	helper_add(vm->helper);
	vm->state = VM_SPAWNING;
	vm->accel = accel;
	vm->incoming = incoming;
	vm->next = drv->vms;
	drv->vms = vm;
	rc = qb_loop_poll_add(drv->loop, QB_LOOP_MED, vm->spawn.fd, POLLIN, vm, spawn_dispatch);
	if (rc != 0) {
		log_vm(LOG_ERR, vm, "cannot follow the spawn pipe: %s", strerror(-rc));
	}
	timer_arm(&vm->t_deadline, VMC_FS_CHECK_DEADLINE_MS, vm, start_deadline);
	log_vm(LOG_NOTICE, vm, "starting QEMU%s (%s, %u MiB, %u vCPU%s, %zu disk%s, %zu NIC%s)",
	       incoming ? " for an incoming migration" : "", vmc_accel_to_str(accel), def->memory_mib, def->vcpus, def->vcpus == 1 ? "" : "s",
	       def->n_disks, def->n_disks == 1 ? "" : "s", def->n_nics, def->n_nics == 1 ? "" : "s");
	return 0;
}

int vmcd_vm_start(const struct vmc_group_def *def, enum vmc_accel accel, char *err, size_t errlen)
{
	return vm_start(def, accel, false, err, errlen);
}

int vmcd_vm_start_incoming(const struct vmc_group_def *def, enum vmc_accel accel, char *err, size_t errlen)
{
	return vm_start(def, accel, true, err, errlen);
}

const char *vmcd_vm_run_status(const char *name)
{
	struct vm *vm = vm_find(name);

	return vm != NULL && vm->state == VM_RUNNING ? vm->run_status : "";
}

static void resume_done(void *opaque, const struct vmc_qmp_reply *reply)
{
	struct vm *vm = opaque;

	if (reply->status == VMC_QMP_ERROR) {
		log_vm(LOG_ERR, vm, "%s refused: %s", reply->command, reply->error_desc);
	} else if (reply->status == VMC_QMP_OK && strcmp(reply->command, "cont") == 0) {
		log_vm(LOG_NOTICE, vm, "resumed");
	}
}

int vmcd_vm_resume(const char *name, bool announce)
{
	struct vm *vm = vm_find(name);
	int rc;

	if (vm == NULL || vm->state != VM_RUNNING) {
		return -ENOENT;
	}
	rc = vmcd_qmp_link_send(vm->qmp, "cont", resume_done, vm);
	if (rc == 0 && announce) {
		/* Gratuitous ARP/RARP from its NICs, so the switches learn where it is now. */
		json_object *args = json_object_new_object();
		json_object_object_add(args, "initial", json_object_new_int(50));
		json_object_object_add(args, "max", json_object_new_int(550));
		json_object_object_add(args, "rounds", json_object_new_int(5));
		json_object_object_add(args, "step", json_object_new_int(100));
		rc = vmcd_qmp_link_send_args(vm->qmp, "announce-self", args, resume_done, vm);
	}
	if (rc == 0) {
		vm->incoming = false;
	}
	return rc;
}

int vmcd_vm_migrate_qmp_path(const char *name, char *buf, size_t len)
{
	return drv != NULL ? vm_path(name, VMCD_QEMU_FILE_MIGRATE_QMP, buf, len) : -ENOENT;
}

int vmcd_vm_migrate_cancel(const char *name)
{
	struct vm *vm = vm_find(name);
	int rc;

	if (vm == NULL || vm->state != VM_RUNNING) {
		return -ENOENT;
	}
	rc = vmcd_qmp_link_send(vm->qmp, "migrate_cancel", resume_done, vm);
	/* QEMU sets postmigrate after its "completed" event: ask again now that it is over. */
	if (rc == 0) {
		rc = vmcd_qmp_link_send(vm->qmp, "query-status", status_refresh_done, vm);
	}
	return rc;
}

int vmcd_vm_stop(const char *name, unsigned int timeout_s)
{
	struct vm *vm = drv != NULL ? vm_find(name) : NULL;

	if (vm == NULL) {
		return -ENOENT;
	}
	vm->stop_timeout_s = timeout_s < VM_STOP_TIMEOUT_S_MAX ? timeout_s : VM_STOP_TIMEOUT_S_MAX;
	vm_input(vm, IN_STOP);
	return 0;
}

int vmcd_vm_kill(const char *name)
{
	struct vm *vm;
	pid_t pid;

	if (drv == NULL) {
		return -ENOENT;
	}
	vm = vm_find(name);
	if (vm != NULL) {
		vm_input(vm, IN_KILL);
		return 0;
	}
	pid = vmcd_qemu_pid_from_pidfile(&drv->dirs, name);
	if (pid <= 0) {
		return -ENOENT;
	}
	if (kill(pid, SIGKILL) < 0) {
		int rc = -errno;

		qb_log(LOG_ERR, "VM %s: cannot kill QEMU pid %d (from its pidfile): %s", name, (int)pid,
		       strerror(errno));
		return rc;
	}
	qb_log(LOG_NOTICE, "VM %s: killed QEMU pid %d (SIGKILL), found by its pidfile, not followed",
	       name, (int)pid);
	return 0;
}

bool vmcd_vm_is_running(const char *name, pid_t *pid)
{
	struct vm *vm = drv != NULL ? vm_find(name) : NULL;

	if (vm == NULL) {
		return false;
	}
	if (pid != NULL) {
		*pid = vm->pid;
	}
	return true;
}

size_t vmcd_vm_count(void)
{
	size_t n = 0;

	for (struct vm *vm = drv != NULL ? drv->vms : NULL; vm != NULL; vm = vm->next) {
		n++;
	}
	return n;
}

size_t vmcd_vm_list(const char **names, size_t max)
{
	size_t n = 0;

	for (struct vm *vm = drv != NULL ? drv->vms : NULL; vm != NULL && n < max; vm = vm->next) {
		names[n++] = vm->name;
	}
	return n;
}

/* ---- following QEMUs that run without us: attach, adopt ---- */

/* A QEMU found running: followed from CONNECTING, like a start that reached its pid. */
static bool vm_follow_found(const char *name, pid_t pid)
{
	char path[PATH_MAX];
	struct stat st;
	struct vm *vm = vm_new(name);

	if (vm == NULL) {
		qb_log(LOG_ERR, "VM %s: out of memory: QEMU pid %d not followed", name, (int)pid);
		return false;
	}
	vm->next = drv->vms;
	drv->vms = vm;
	vm->state = VM_CONNECTING;
	vm->attached = true;
	vm->pid = pid;
	if (vm_path(name, VMCD_QEMU_FILE_LOG, path, sizeof(path)) == 0 && stat(path, &st) == 0) {
		vm->log_offset = st.st_size;
	}
	vm_follow(vm);
	vmcd_qmp_link_connect(vm->qmp, VMCD_QMP_RETRY_ATTACH);
	timer_arm(&vm->t_deadline, VMC_VM_START_DEADLINE_MS, vm, start_deadline);
	return true;
}

static void attach_found(void *ctx, const char *name)
{
	size_t *count = ctx;
	pid_t pid;

	if (vm_find(name) != NULL) {
		return;
	}
	pid = vmcd_attach_pidfile(&drv->dirs, name);
	if (pid <= 0) {
		return;
	}
	qb_log(LOG_NOTICE, "VM %s: found QEMU pid %d left by a previous vmclusterd: re-attaching",
	       name, (int)pid);
	if (vm_follow_found(name, pid)) {
		(*count)++;
	}
}

size_t vmcd_vm_attach_all(void)
{
	size_t count = 0;

	if (drv != NULL) {
		vmcd_attach_scan(&drv->dirs, attach_found, &count);
	}
	return count;
}

int vmcd_vm_adopt(const char *name)
{
	const char *how;
	pid_t pid;

	if (drv == NULL || name == NULL || !vmc_valid_name(name)) {
		return -ENOENT;
	}
	if (vm_find(name) != NULL) {
		return -EEXIST;
	}
	pid = vmcd_attach_find(&drv->dirs, name, &how);
	if (pid <= 0) {
		qb_log(LOG_INFO, "VM %s: nothing to adopt: no QEMU runs it on this node", name);
		return -ENOENT;
	}
	qb_log(LOG_NOTICE,
	       "VM %s: adopting QEMU pid %d, found by its %s, which no vmclusterd follows", name,
	       (int)pid, how);
	return vm_follow_found(name, pid) ? 0 : -ENOMEM;
}

/* ---- init / fini ---- */

static int dir_make(const char *parent, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "%s/%s", parent, VMS_SUBDIR) >= len) {
		return -ENAMETOOLONG;
	}
	if (mkdir(out, 0750) < 0 && errno != EEXIST) {
		return -errno;
	}
	return 0;
}

void vmcd_vm_driver_vm_paths(const char *paths)
{
	vmcd_qemu_vm_paths_set(paths);
}

int vmcd_vm_driver_init(qb_loop_t *loop, const char *run_dir, const char *state_dir,
			const struct vmcd_vm_ops *ops, void *ctx)
{
	int rc;

	if (drv != NULL || loop == NULL || run_dir == NULL || state_dir == NULL) {
		return -EINVAL;
	}
	drv = calloc(1, sizeof(*drv));
	if (drv == NULL) {
		return -ENOMEM;
	}
	drv->loop = loop;
	if (ops != NULL) {
		drv->ops = *ops;
	}
	drv->ctx = ctx;
	rc = dir_make(run_dir, drv->dirs.run, sizeof(drv->dirs.run));
	if (rc == 0) {
		rc = dir_make(state_dir, drv->dirs.state, sizeof(drv->dirs.state));
	}
	if (rc < 0) {
		qb_log(LOG_ERR, "VM driver: cannot create %s/%s or %s/%s: %s", run_dir, VMS_SUBDIR, state_dir,
		       VMS_SUBDIR, strerror(-rc));
		free(drv);
		drv = NULL;
	}
	return rc;
}

void vmcd_vm_driver_fini(void)
{
	if (drv == NULL) {
		return;
	}
	while (drv->vms != NULL) {
		struct vm *vm = drv->vms;

		if (vm->state == VM_STOPPING || vm->state == VM_EXITING) {
			log_vm(LOG_WARNING, vm, "detaching while %s: QEMU pid %d is left as it is",
			       vm_state_to_str(vm->state), (int)vm->pid);
		} else {
			log_vm(LOG_INFO, vm, "detaching from QEMU pid %d (it keeps running)", (int)vm->pid);
		}
		vm_destroy(vm);
	}
	timer_disarm(&drv->t_events);
	while (drv->ev_head != NULL) {
		struct vm_event_msg *m = drv->ev_head;

		drv->ev_head = m->next;
		qb_log(LOG_WARNING, "VM %s: event %s (%s) not delivered: driver finished", m->name,
		       vmcd_vm_event_to_str(m->ev), m->reason);
		free(m);
	}
	timer_disarm(&drv->t_reap);
	for (size_t i = 0; i < drv->n_helpers; i++) {
		waitpid(drv->helpers[i], NULL, WNOHANG);
	}
	free(drv);
	drv = NULL;
}
