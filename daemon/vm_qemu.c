/*
 * The QEMU driver (vm_qemu.h): one detached qemu-system-x86_64 per VM,
 * followed over QMP and through a pidfd, from the daemon's libqb loop.
 *
 * Starting. vmcd_vm_start() checks the definition's files and starts a
 * detached QEMU (qemu_cmd.c: a helper in a session of its own forks it and
 * exits, QEMU's pid comes back over a pipe). The helper is reaped from a
 * timer (waitpid WNOHANG), never waited for.
 * Once the pid is known, a pidfd follows the process, and QMP is tried
 * from a timer until QEMU has created its socket; after negotiation,
 * query-status must say "running" and VMCD_VM_RUNNING is reported. If
 * QEMU exits first, or QMP is not there within VMCD_VM_START_DEADLINE_MS
 * (then QEMU is killed), VMCD_VM_START_FAILED carries QEMU's own last
 * line from NAME.qemu.log, where its stdout and stderr go.
 *
 * Following. The VM is gone when its process is gone (pidfd readable, or
 * kill(pid, 0) failing from a timer where pidfd_open is missing), never
 * merely when QMP closes: QEMU closes QMP while it exits, and the disk is
 * only safe once the process is gone. QMP closing with the process still
 * there for VMCD_VM_EXIT_GRACE_MS means a QEMU stuck on its way out; it is
 * killed. QMP events (SHUTDOWN, GUEST_PANICKED, STOP, RESUME, ...) are
 * logged and explain the exit in the event's reason.
 *
 * The life of one VM (an input a state has no row for is logged and
 * changes nothing; the table is vm_fsm[] below):
 *
 *                       attach_all enters here
 *                                 |
 *   SPAWNING --pid--> CONNECTING <+ --QMP ready--> QUERYING --"running"--> RUNNING
 *      |                   |                          |                       |
 *      |                   +---------- stop ----------+-----------------------+
 *      |                                              v
 *      |                 STOPPING: system_powerdown once QMP is up, SIGKILL timer
 *      |                                              |
 *      |  kill, start deadline, stop timeout, QMP lost, status not "running"
 *      +------------------------------+---------------+  (from the states above)
 *                                     v
 *                 EXITING: SIGKILL sent, or QEMU on its way out
 *
 *   any state with a pid --process gone--> GONE (event queued, record freed)
 *   SPAWNING or EXITING --spawn failed--> GONE
 *
 * Events are queued and delivered from a zero-length loop timer, so the
 * event callback may call back into this module.
 */
#include "config.h"

#include <dirent.h>
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
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qemu_cmd.h"
#include "qmp.h"
#include "vm_qemu.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define log_vm(level, vm, fmt, ...) qb_log(level, "VM %s: " fmt, (vm)->name, ##__VA_ARGS__)

#define VMS_SUBDIR "vms"
/* A starting QEMU opens its QMP socket within ~100-300 ms: poll it briskly for
 * the first CONNECT_BRISK_TRIES, since every millisecond here is failover time. */
#define CONNECT_RETRY_FIRST_MS 5
#define CONNECT_BRISK_TRIES 200
#define CONNECT_RETRY_MAX_MS 500
#define ATTACH_RETRY_MAX_MS 1000
#define ALIVE_POLL_MS 1000          /* without a pidfd */
#define ALIVE_POLL_EXITING_MS 100
#define HELPER_REAP_MS 10
#define HELPERS_MAX 64
#define WHY_LEN 384
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
	IN_START_DEADLINE,
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
	bool attached;           /* found by attach_all: no RUNNING event */
	bool reached_running;    /* query-status said "running" once */
	bool stop_requested;
	bool kill_requested;
	bool killed_on_timeout;  /* the stop's SIGKILL */
	bool powerdown_sent;
	bool qmp_dispatching;    /* inside our QMP poll handler: it flushes */
	bool attach_warned;
	bool draining;           /* reading QMP's last words after the process is gone */
	enum vmc_accel accel;
	unsigned int stop_timeout_s;
	int64_t stop_deadline_ms;
	int64_t started_ms;
	pid_t pid;               /* 0 until known */
	int pidfd;               /* -1: followed by t_alive */
	struct vmcd_qemu_spawn_pipe spawn; /* until EOF */
	int qmp_fd;
	struct vmc_qmp *qmp;
	bool qmp_pollout;
	unsigned int connect_retry_ms;
	unsigned int connect_tries;
	off_t log_offset;        /* NAME.qemu.log's size when this QEMU started */
	char run_status[32];
	char exit_event[160];    /* the QMP event that explains an exit */
	char why[WHY_LEN];       /* what we know better than QEMU's stderr */
	struct vm_timer t_connect, t_deadline, t_stop, t_grace, t_alive, t_qmp_check;
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

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* ---- spawn helpers: reaped from a timer, never waited for ---- */

static void helpers_reap(void *data)
{
	size_t kept = 0;

	drv->t_reap.armed = false;
	for (size_t i = 0; i < drv->n_helpers; i++) {
		pid_t rc = waitpid(drv->helpers[i], NULL, WNOHANG);

		/* ECHILD: someone else (a daemon-wide SIGCHLD reaper) had it. */
		if (rc == 0 || (rc < 0 && errno == EINTR)) {
			drv->helpers[kept++] = drv->helpers[i];
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

/* ---- QMP ---- */

static void qmp_check_failed(void *data);
static int32_t qmp_dispatch(int32_t fd, int32_t revents, void *data);

static void vm_qmp_close(struct vm *vm)
{
	struct vmc_qmp *q = vm->qmp;

	timer_disarm(&vm->t_qmp_check);
	if (q == NULL) {
		return;
	}
	qb_loop_poll_del(drv->loop, vm->qmp_fd);
	close(vm->qmp_fd);
	vm->qmp_fd = -1;
	vm->qmp = NULL;
	vm->qmp_pollout = false;
	/* Pending commands complete with DISCONNECTED; their callbacks ignore that. */
	vmc_qmp_free(q);
}

static void vm_qmp_flush(struct vm *vm)
{
	int rc;
	bool want_out;

	if (vm->qmp == NULL || vmc_qmp_state_get(vm->qmp) == VMC_QMP_FAILED) {
		return;
	}
	rc = vmc_qmp_fd_flush(vm->qmp, vm->qmp_fd);
	want_out = rc == -EAGAIN;
	if (want_out != vm->qmp_pollout) {
		/* poll_mod replaces the dispatch function too: pass ours again. */
		qb_loop_poll_mod(drv->loop, QB_LOOP_MED, vm->qmp_fd, POLLIN | (want_out ? POLLOUT : 0), vm,
				 qmp_dispatch);
		vm->qmp_pollout = want_out;
	}
	if (rc < 0 && rc != -EAGAIN && !vm->qmp_dispatching) {
		/* The engine failed outside our poll handler: handle it from the loop. */
		timer_arm(&vm->t_qmp_check, 0, vm, qmp_check_failed);
	}
}

static void vm_qmp_send(struct vm *vm, const char *command, vmc_qmp_done_fn done)
{
	int rc;

	if (vm->qmp == NULL || vmc_qmp_state_get(vm->qmp) != VMC_QMP_READY) {
		return;
	}
	rc = vmc_qmp_command(vm->qmp, command, NULL, done, vm, NULL);
	if (rc < 0) {
		log_vm(LOG_ERR, vm, "cannot send %s over QMP: %s", command, strerror(-rc));
		return;
	}
	if (!vm->qmp_dispatching) {
		vm_qmp_flush(vm);
	}
}

static void qmp_on_greeting(void *ctx, const struct vmc_qmp_greeting *g)
{
	struct vm *vm = ctx;

	log_vm(LOG_DEBUG, vm, "QMP greeting from QEMU %d.%d.%d%s%s", g->major, g->minor, g->micro,
	       g->package[0] != '\0' ? " " : "", g->package);
}

static void qmp_on_ready(void *ctx)
{
	struct vm *vm = ctx;

	if (!vm->draining) {
		vm_input(vm, IN_QMP_READY);
	}
}

static void qmp_on_failed(void *ctx, const char *reason)
{
	struct vm *vm = ctx;

	log_vm(LOG_DEBUG, vm, "QMP connection ended: %s", reason);
}

static void qmp_on_warn(void *ctx, const char *what)
{
	struct vm *vm = ctx;

	log_vm(LOG_WARNING, vm, "QMP: %s", what);
}

static const char *json_str(json_object *o, const char *key, const char *dflt)
{
	json_object *v;

	if (o != NULL && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)) {
		return json_object_get_string(v);
	}
	return dflt;
}

static void qmp_on_event(void *ctx, const struct vmc_qmp_event *ev)
{
	struct vm *vm = ctx;

	if (strcmp(ev->name, "SHUTDOWN") == 0) {
		const char *reason = json_str(ev->data, "reason", "unknown");

		log_vm(LOG_NOTICE, vm, "QEMU reports SHUTDOWN (%s)", reason);
		if (vm->exit_event[0] == '\0') {
			snprintf(vm->exit_event, sizeof(vm->exit_event), "SHUTDOWN: %s", reason);
		}
	} else if (strcmp(ev->name, "GUEST_PANICKED") == 0) {
		const char *action = json_str(ev->data, "action", "unknown");

		log_vm(LOG_ERR, vm, "the guest panicked (QEMU action: %s)", action);
		snprintf(vm->exit_event, sizeof(vm->exit_event), "GUEST_PANICKED");
	} else if (strcmp(ev->name, "STOP") == 0) {
		log_vm(LOG_NOTICE, vm, "paused (QMP STOP event)");
		snprintf(vm->run_status, sizeof(vm->run_status), "paused");
	} else if (strcmp(ev->name, "RESUME") == 0) {
		log_vm(LOG_NOTICE, vm, "resumed (QMP RESUME event)");
		snprintf(vm->run_status, sizeof(vm->run_status), "running");
	} else if (strcmp(ev->name, "RESET") == 0) {
		log_vm(LOG_NOTICE, vm, "the guest was reset (%s)", json_str(ev->data, "reason", "unknown"));
	} else if (strcmp(ev->name, "POWERDOWN") == 0) {
		log_vm(LOG_INFO, vm, "the guest got the ACPI power button");
	} else if (strcmp(ev->name, "BLOCK_IO_ERROR") == 0) {
		log_vm(LOG_ERR, vm, "disk I/O error on %s (%s, action %s): %s",
		       json_str(ev->data, "node-name", json_str(ev->data, "device", "?")),
		       json_str(ev->data, "operation", "?"), json_str(ev->data, "action", "?"),
		       json_str(ev->data, "reason", "?"));
	} else {
		log_vm(LOG_DEBUG, vm, "QMP event %s", ev->name);
	}
}

static const struct vmc_qmp_ops vm_qmp_ops = {
	.greeting = qmp_on_greeting,
	.ready = qmp_on_ready,
	.event = qmp_on_event,
	.failed = qmp_on_failed,
	.warn = qmp_on_warn,
};

/* The engine failed: close the socket and tell the state machine. */
static void vm_qmp_lost(struct vm *vm)
{
	char reason[256];

	snprintf(reason, sizeof(reason), "%s", vmc_qmp_failure_reason(vm->qmp));
	vm_qmp_close(vm);
	log_vm(LOG_INFO, vm, "QMP connection closed: %s", reason);
	vm_input(vm, IN_QMP_LOST);
}

static void qmp_check_failed(void *data)
{
	struct vm *vm = data;

	vm->t_qmp_check.armed = false;
	if (vm->qmp != NULL && vmc_qmp_state_get(vm->qmp) == VMC_QMP_FAILED) {
		vm_qmp_lost(vm);
	}
}

static int32_t qmp_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct vm *vm = data;

	vm->qmp_dispatching = true;
	if ((revents & POLLOUT) != 0) {
		vmc_qmp_fd_flush(vm->qmp, vm->qmp_fd);
	}
	if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 &&
	    vmc_qmp_state_get(vm->qmp) != VMC_QMP_FAILED) {
		vmc_qmp_fd_receive(vm->qmp, vm->qmp_fd);
	}
	vm->qmp_dispatching = false;
	vm_qmp_flush(vm);
	if (vmc_qmp_state_get(vm->qmp) == VMC_QMP_FAILED) {
		vm_qmp_lost(vm);
		/* Our entry is gone: -1 tells libqb not to mark it active again. */
		return -1;
	}
	return 0;
}

static void connect_retry(void *data);

static void vm_qmp_connect(struct vm *vm)
{
	char path[PATH_MAX];
	unsigned int max_ms = vm->attached ? ATTACH_RETRY_MAX_MS : CONNECT_RETRY_MAX_MS;
	int rc;
	int fd;

	if (vm->qmp != NULL) {
		return;
	}
	vm_path(vm->name, VMCD_QEMU_FILE_QMP, path, sizeof(path));
	rc = vmc_qmp_fd_connect(path, &fd);
	if (rc < 0) {
		/* ENOENT/ECONNREFUSED: QEMU has not created it yet; EAGAIN: backlog full. */
		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -EAGAIN) {
			log_vm(LOG_WARNING, vm, "cannot connect to %s: %s", path, strerror(-rc));
		}
		timer_arm(&vm->t_connect, vm->connect_retry_ms, vm, connect_retry);
		if (vm->attached || ++vm->connect_tries > CONNECT_BRISK_TRIES) {
			vm->connect_retry_ms = vm->connect_retry_ms * 2 > max_ms ? max_ms : vm->connect_retry_ms * 2;
		}
		return;
	}
	vm->qmp = vmc_qmp_new(&vm_qmp_ops, vm);
	if (vm->qmp == NULL) {
		close(fd);
		log_vm(LOG_ERR, vm, "out of memory for a QMP connection");
		timer_arm(&vm->t_connect, max_ms, vm, connect_retry);
		return;
	}
	vm->qmp_fd = fd;
	rc = qb_loop_poll_add(drv->loop, QB_LOOP_MED, fd, POLLIN, vm, qmp_dispatch);
	if (rc != 0) {
		log_vm(LOG_ERR, vm, "cannot watch the QMP socket: %s", strerror(-rc));
		vmc_qmp_free(vm->qmp);
		vm->qmp = NULL;
		close(fd);
		vm->qmp_fd = -1;
		timer_arm(&vm->t_connect, max_ms, vm, connect_retry);
		return;
	}
	log_vm(LOG_DEBUG, vm, "connected to %s", path);
}

static void connect_retry(void *data)
{
	struct vm *vm = data;

	vm->t_connect.armed = false;
	if (vm->state == VM_CONNECTING || vm->state == VM_STOPPING) {
		vm_qmp_connect(vm);
	}
}

static void status_done(struct vmc_qmp *q, void *opaque, const struct vmc_qmp_reply *reply)
{
	struct vm *vm = opaque;
	const char *status = "unknown";

	if (reply->status == VMC_QMP_DISCONNECTED || vm->draining) {
		return; /* the QMP-lost or gone path says what happened */
	}
	if (reply->status == VMC_QMP_OK) {
		status = json_str(reply->ret, "status", "unknown");
	} else {
		log_vm(LOG_WARNING, vm, "query-status failed: %s", reply->error_desc);
	}
	snprintf(vm->run_status, sizeof(vm->run_status), "%s", status);
	vm_input(vm, strcmp(status, "running") == 0 ? IN_STATUS_RUNNING : IN_STATUS_OTHER);
}

static void powerdown_done(struct vmc_qmp *q, void *opaque, const struct vmc_qmp_reply *reply)
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

static int32_t spawn_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct vm *vm = data;
	bool got_pid = false;
	bool failed = false;
	bool open = vmcd_qemu_spawn_read(&vm->spawn, &vm->pid, &got_pid, &failed, vm->why,
					 sizeof(vm->why));

	if (!open || failed) {
		spawn_close(vm);
	}
	if (got_pid) {
		vm_input(vm, IN_PID);
	} else if (failed || (!open && vm->pid == 0)) {
		if (vm->why[0] == '\0') {
			snprintf(vm->why, sizeof(vm->why), "the spawn helper exited without QEMU's pid");
		}
		vm_input(vm, IN_SPAWN_FAILED); /* frees vm */
		return -1;
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
	timer_disarm(&vm->t_connect);
	timer_disarm(&vm->t_deadline);
	timer_disarm(&vm->t_stop);
	timer_disarm(&vm->t_grace);
	timer_disarm(&vm->t_alive);
	vm_qmp_close(vm);
	spawn_close(vm);
	if (vm->pidfd >= 0) {
		qb_loop_poll_del(drv->loop, vm->pidfd);
		close(vm->pidfd);
	}
	free(vm);
}

/* QEMU is gone: remove its files and say what happened. */
static void vm_report_exit(struct vm *vm)
{
	char last[LAST_LINE_LEN];
	char reason[REASON_LEN];
	char path[PATH_MAX];
	enum vmcd_vm_event ev;
	int level;

	/* An exec failure may still sit in the pipe. */
	if (vm->spawn.fd >= 0) {
		bool got_pid = false;
		bool failed = false;

		vmcd_qemu_spawn_read(&vm->spawn, &vm->pid, &got_pid, &failed, vm->why, sizeof(vm->why));
		spawn_close(vm);
	}
	vmcd_qemu_log_last_line(&drv->dirs, vm->name, vm->log_offset, last, sizeof(last));
	if (vm->stop_requested || vm->kill_requested) {
		ev = VMCD_VM_STOPPED;
		level = vm->killed_on_timeout ? LOG_WARNING : LOG_NOTICE;
		if (vm->killed_on_timeout && vm->powerdown_sent) {
			snprintf(reason, sizeof(reason),
				 "killed (SIGKILL): still running %u s after system_powerdown",
				 vm->stop_timeout_s);
		} else if (vm->killed_on_timeout) {
			snprintf(reason, sizeof(reason),
				 "killed (SIGKILL) after %u s: QMP never came up to send system_powerdown",
				 vm->stop_timeout_s);
		} else if (vm->kill_requested) {
			snprintf(reason, sizeof(reason), "killed (SIGKILL) on request");
		} else {
			snprintf(reason, sizeof(reason), "powered off%s%s%s",
				 vm->exit_event[0] != '\0' ? " (" : "", vm->exit_event,
				 vm->exit_event[0] != '\0' ? ")" : "");
		}
	} else if (!vm->reached_running && !vm->attached) {
		ev = VMCD_VM_START_FAILED;
		level = LOG_ERR;
		if (vm->why[0] != '\0') {
			snprintf(reason, sizeof(reason), "%s%s%s", vm->why, last[0] != '\0' ? "; QEMU: " : "",
				 last);
		} else if (last[0] != '\0') {
			snprintf(reason, sizeof(reason), "%s", last);
		} else {
			snprintf(reason, sizeof(reason), "QEMU exited during start-up without a message");
		}
	} else if (vm->why[0] == '\0' && strcmp(vm->exit_event, "SHUTDOWN: guest-shutdown") == 0) {
		/* The guest powered itself off: an orderly stop, not a failure. */
		ev = VMCD_VM_STOPPED;
		level = LOG_NOTICE;
		snprintf(reason, sizeof(reason), "the guest shut itself down");
	} else {
		ev = VMCD_VM_CRASHED;
		level = LOG_ERR;
		if (vm->why[0] != '\0') {
			snprintf(reason, sizeof(reason), "%s", vm->why);
		} else if (vm->exit_event[0] != '\0') {
			snprintf(reason, sizeof(reason), "QEMU exited (%s)", vm->exit_event);
		} else {
			snprintf(reason, sizeof(reason),
				 "QEMU process %d disappeared (no SHUTDOWN event: killed?)", (int)vm->pid);
		}
		if (last[0] != '\0') {
			size_t used = strlen(reason);

			snprintf(reason + used, sizeof(reason) - used, "; QEMU: %s", last);
		}
	}
	log_vm(level, vm, "%s: %s", vmcd_vm_event_to_str(ev), reason);

	/* QEMU's own pidfile: remove it unless it names another live QEMU. */
	if (vm_path(vm->name, VMCD_QEMU_FILE_PID, path, sizeof(path)) == 0) {
		pid_t p = vmcd_qemu_pidfile_read(path);

		if (p == vm->pid || p < 0 || (p > 0 && !vmcd_qemu_pid_is_vm(p, vm->name))) {
			unlink(path);
		}
	}
	if (vm_path(vm->name, VMCD_QEMU_FILE_QMP, path, sizeof(path)) == 0) {
		unlink(path);
	}
	event_queue(vm, ev, reason);
}

static enum vm_state on_pid(struct vm *vm)
{
	log_vm(LOG_INFO, vm, "QEMU pid %d", (int)vm->pid);
	vm_follow(vm);
	vm->connect_retry_ms = CONNECT_RETRY_FIRST_MS;
	vm->connect_tries = 0;
	timer_arm(&vm->t_connect, CONNECT_RETRY_FIRST_MS, vm, connect_retry);
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
 * The process is gone, but its last QMP events (SHUTDOWN, GUEST_PANICKED)
 * may still sit unread in the socket when the pidfd was seen first: they
 * explain the exit, so read them now. Nothing more can come.
 */
static void vm_qmp_drain(struct vm *vm)
{
	vm->draining = true;
	for (int i = 0; i < 64 && vm->qmp != NULL && vmc_qmp_state_get(vm->qmp) != VMC_QMP_FAILED; i++) {
		if (vmc_qmp_fd_receive(vm->qmp, vm->qmp_fd) <= 0) {
			break;
		}
	}
}

static enum vm_state on_gone(struct vm *vm)
{
	vm_qmp_drain(vm);
	vm_report_exit(vm);
	return VM_GONE;
}

static enum vm_state on_qmp_ready(struct vm *vm)
{
	vm_qmp_send(vm, "query-status", status_done);
	return VM_QUERYING;
}

static void vm_powerdown(struct vm *vm)
{
	if (vm->powerdown_sent || vm->qmp == NULL || vmc_qmp_state_get(vm->qmp) != VMC_QMP_READY) {
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
		       vmc_accel_to_str(vm->accel), (long long)(now_ms() - vm->started_ms));
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
			       VMCD_VM_START_DEADLINE_MS / 1000);
			vm->attach_warned = true;
		}
		return vm->state;
	}
	snprintf(vm->why, sizeof(vm->why), "QMP did not answer within %d s",
		 VMCD_VM_START_DEADLINE_MS / 1000);
	if (vm->pid > 0) {
		log_vm(LOG_ERR, vm, "%s; killing QEMU pid %d", vm->why, (int)vm->pid);
		vm_signal(vm, SIGKILL);
	} else {
		log_vm(LOG_ERR, vm, "%s; QEMU's pid is not even known: killing it once it is", vm->why);
	}
	return VM_EXITING;
}

static enum vm_state on_stop(struct vm *vm)
{
	vm->stop_requested = true;
	vm->stop_deadline_ms = now_ms() + (int64_t)vm->stop_timeout_s * 1000;
	timer_arm(&vm->t_stop, vm->stop_timeout_s * 1000, vm, stop_timeout);
	if (vm->qmp != NULL && vmc_qmp_state_get(vm->qmp) == VMC_QMP_READY) {
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
	int64_t deadline = now_ms() + (int64_t)vm->stop_timeout_s * 1000;

	if (deadline < vm->stop_deadline_ms) {
		vm->stop_deadline_ms = deadline;
		timer_arm(&vm->t_stop, vm->stop_timeout_s * 1000, vm, stop_timeout);
		log_vm(LOG_NOTICE, vm, "stop again: SIGKILL now in %u s", vm->stop_timeout_s);
	}
	return VM_STOPPING;
}

static enum vm_state on_stop_spawning(struct vm *vm)
{
	vm->stop_requested = true;
	vm->kill_requested = true;
	log_vm(LOG_NOTICE, vm, "stop while QEMU is being spawned: killing it as soon as its pid is known");
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
		       "kill while QEMU is being spawned: killing it as soon as its pid is known");
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
	timer_arm(&vm->t_grace, VMCD_VM_EXIT_GRACE_MS, vm, exit_grace);
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
			 VMCD_VM_EXIT_GRACE_MS / 1000);
	}
	log_vm(LOG_ERR, vm, "QEMU pid %d still there %d s after closing QMP; killing it (SIGKILL)",
	       (int)vm->pid, VMCD_VM_EXIT_GRACE_MS / 1000);
	vm_signal(vm, SIGKILL);
	/* Again later, in case it sits in an uninterruptible sleep. */
	timer_arm(&vm->t_grace, VMCD_VM_EXIT_GRACE_MS, vm, exit_grace);
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
	{ VM_SPAWNING, IN_START_DEADLINE, on_start_deadline, S(VM_EXITING) },

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
	switch (next) {
	case VM_RUNNING:
	case VM_STOPPING:
		timer_disarm(&vm->t_deadline);
		break;
	case VM_EXITING:
		timer_disarm(&vm->t_deadline);
		timer_disarm(&vm->t_connect);
		timer_disarm(&vm->t_stop);
		break;
	case VM_GONE:
		vm_destroy(vm);
		break;
	default:
		break;
	}
}

/* ---- starting, stopping ---- */

static struct vm *vm_new(const char *name)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (vm == NULL) {
		return NULL;
	}
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->pidfd = -1;
	vm->spawn.fd = -1;
	vm->qmp_fd = -1;
	vm->connect_retry_ms = CONNECT_RETRY_FIRST_MS;
	vm->connect_tries = 0;
	vm->started_ms = now_ms();
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
	return vmcd_qemu_host_check(&drv->dirs, def, accel, err, errlen);
}

int vmcd_vm_start(const struct vmc_group_def *def, enum vmc_accel accel, char *err, size_t errlen)
{
	struct vm *vm;
	pid_t helper;
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
	rc = vmcd_qemu_spawn(&drv->dirs, def, accel, &helper, &vm->spawn, &vm->log_offset, err,
			     errlen);
	if (rc < 0) {
		free(vm);
		return rc;
	}
	helper_add(helper);
	vm->state = VM_SPAWNING;
	vm->accel = accel;
	vm->next = drv->vms;
	drv->vms = vm;
	qb_loop_poll_add(drv->loop, QB_LOOP_MED, vm->spawn.fd, POLLIN, vm, spawn_dispatch);
	timer_arm(&vm->t_deadline, VMCD_VM_START_DEADLINE_MS, vm, start_deadline);
	log_vm(LOG_NOTICE, vm, "starting QEMU (%s, %u MiB, %u vCPU%s, %zu disk%s, %zu NIC%s)",
	       vmc_accel_to_str(accel), def->memory_mib, def->vcpus, def->vcpus == 1 ? "" : "s",
	       def->n_disks, def->n_disks == 1 ? "" : "s", def->n_nics, def->n_nics == 1 ? "" : "s");
	return 0;
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

size_t vmcd_vm_list(const char **names, size_t max)
{
	size_t n = 0;

	if (drv == NULL) {
		return 0;
	}
	for (struct vm *vm = drv->vms; vm != NULL; vm = vm->next) {
		if (n < max) {
			names[n] = vm->name;
		}
		n++;
	}
	return n < max ? n : max;
}

/* ---- re-attaching ---- */

static bool vm_attach_one(const char *name)
{
	char path[PATH_MAX];
	struct stat st;
	struct vm *vm;
	pid_t pid;

	vm_path(name, VMCD_QEMU_FILE_PID, path, sizeof(path));
	pid = vmcd_qemu_pidfile_read(path);
	if (pid <= 0 || !vmcd_qemu_pid_is_vm(pid, name)) {
		qb_log(LOG_NOTICE, "VM %s: removing stale pidfile %s (pid %d is no QEMU for it)", name, path,
		       (int)pid);
		unlink(path);
		if (vm_path(name, VMCD_QEMU_FILE_QMP, path, sizeof(path)) == 0) {
			unlink(path);
		}
		return false;
	}
	vm = vm_new(name);
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
	log_vm(LOG_NOTICE, vm, "found QEMU pid %d left by a previous vmclusterd: re-attaching", (int)pid);
	vm_follow(vm);
	timer_arm(&vm->t_connect, 0, vm, connect_retry);
	timer_arm(&vm->t_deadline, VMCD_VM_START_DEADLINE_MS, vm, start_deadline);
	return true;
}

size_t vmcd_vm_attach_all(void)
{
	struct dirent *de;
	size_t count = 0;
	DIR *dir;

	if (drv == NULL) {
		return 0;
	}
	dir = opendir(drv->dirs.run);
	if (dir == NULL) {
		qb_log(LOG_ERR, "VM driver: cannot read %s: %s", drv->dirs.run, strerror(errno));
		return 0;
	}
	while ((de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);
		char name[VMC_NAME_MAX + 1];

		if (len <= 4 || strcmp(de->d_name + len - 4, ".pid") != 0 || len - 4 > VMC_NAME_MAX) {
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(len - 4), de->d_name);
		if (!vmc_valid_name(name) || vm_find(name) != NULL) {
			continue;
		}
		if (vm_attach_one(name)) {
			count++;
		}
	}
	closedir(dir);
	return count;
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
