/*
 * The QEMU driver (daemon/vm_qemu.c and the files it is split into,
 * daemon/accel.c) against real QEMUs booting the test guest (tests/guest)
 * under TCG, on a real libqb loop:
 *
 *   accel     auto probes once (prints the verdict and how long it took);
 *             kvm and tcg are taken as asked
 *   refuse    an impossible memory size: refused at once, nothing started;
 *             a missing kernel (checked in the spawn helper, not in the
 *             daemon): START_FAILED naming the kernel and its path, the
 *             same line in NAME.qemu.log, nothing left running
 *   privilege a group-writable copy of the kernel: START_FAILED naming
 *             "writable by", no QEMU
 *   hang      a spawn helper that never answers (stopped as if its stat
 *             hung on NFS): killed at VMC_FS_CHECK_DEADLINE_MS, and
 *             START_FAILED says the VM's files did not answer in time;
 *             a kill while it hangs: STOPPED at once, the helper killed
 *   start     (with a raw virtio disk) RUNNING, then the guest's counter
 *             lines in NAME.serial.log;
 *             ps shows -name; QEMU holds no TCP socket
 *   twice     a second start of the same VM is refused
 *   detach    driver fini (as when vmclusterd exits): QEMU runs on, same pid
 *   attach    a new driver + attach_all follows the same pid again, no
 *             event; the counter keeps increasing, the guest never rebooted
 *   crash     kill -9 of QEMU -> CRASHED; pidfile and socket removed
 *   stop      start again, stop with a 3 s timeout -> STOPPED (the guest
 *             ignores the ACPI button, so this is the SIGKILL path)
 *   kill      vmcd_vm_kill -> STOPPED
 *   sigterm   QEMU exits on SIGTERM -> CRASHED, naming QMP's SHUTDOWN
 *             reason and QEMU's last stderr line
 *   badimage  QEMU refuses the disk -> START_FAILED with QEMU's own line
 *   noexec    QEMU cannot be executed -> START_FAILED saying so
 *   adopt     a QEMU no driver follows (fini, a new driver without
 *             attach_all): start is refused (-EEXIST), adopt follows the
 *             same pid with no RUNNING event, by its pidfile and then with
 *             the pidfile deleted (by /proc); a kill -> STOPPED
 *   netns     a qemu-looking process "-name VM" in another network
 *             namespace (another node's, in a shared PID namespace) and a
 *             pidfile naming it: not adopted, not killed, not attached, a
 *             start refused; once it is gone, the pidfile is stale
 *
 * Every wait is for a condition, with a deadline, while the loop runs.
 * Every QEMU is killed by pid at the end, whatever happened: the pids the
 * driver reported, and any process whose command line names this test's
 * temporary directory; a watchdog (SIGALRM) and SIGINT/SIGTERM do the same.
 *
 * Exits 77 (automake's SKIP) without qemu-system-x86_64 (VMC_QEMU chooses
 * one) or when tests/guest/build-guest is missing or fails. VMC_SRCDIR
 * (set by `make check`) finds the source tree; VMC_GUEST_DIR reuses an
 * already built guest; VMC_TEST_SKIP_PROBE=1 skips the 5 s KVM probe;
 * VMC_TEST_DEBUG=1 shows the driver's debug lines.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <qb/qbdefs.h>
#include <qb/qblog.h>
#include <qb/qbloop.h>

#include "accel.h"
#include "clock.h"
#include "timeouts.h"
#include "vm_qemu.h"

#define EXIT_SKIP 77
#define WATCHDOG_S 400
#define RUNNING_DEADLINE_MS 40000
#define COUNTER_DEADLINE_MS 60000
#define EVENT_DEADLINE_MS 15000
#define ATTACH_DEADLINE_MS 15000
#define STOP_TIMEOUT_S 3
#define MEMORY_MIB 128
#define TICK_MS 10
#define PIDS_MAX 64
#define EVENTS_MAX 64
#define LOG_LINES_MAX 4096

#ifndef VMC_TEST_SRCDIR
#define VMC_TEST_SRCDIR "."
#endif

struct event_rec {
	char vm[VMC_NAME_MAX + 1];
	enum vmcd_vm_event ev;
	char reason[1024];
	int64_t at_ms;
};

static struct test {
	qb_loop_t *loop;
	char tmp[64];
	char run_dir[128];
	char state_dir[128];
	char guest_dir[PATH_MAX];
	char kernel[PATH_MAX + 16];
	char initrd[PATH_MAX + 16];
	char cmdline[512];
	char vm_a[32];
	char vm_b[32];
	struct event_rec events[EVENTS_MAX];
	size_t n_events;
	char *log_lines[LOG_LINES_MAX];
	size_t n_log_lines;
	int failures;
} T;

/* Read by signal handlers: plain array, async-signal-safe kill() only. */
static volatile pid_t qemu_pids[PIDS_MAX];
static volatile sig_atomic_t n_qemu_pids;

static bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok) {
		T.failures++;
	}
	return ok;
}

static void pid_remember(pid_t pid)
{
	for (sig_atomic_t i = 0; i < n_qemu_pids; i++) {
		if (qemu_pids[i] == pid) {
			return;
		}
	}
	if (pid > 1 && n_qemu_pids < PIDS_MAX) {
		qemu_pids[n_qemu_pids] = pid;
		n_qemu_pids = n_qemu_pids + 1;
	}
}

static void on_fatal_signal(int sig)
{
	static const char msg[] = "check_vm_driver: watchdog or signal: killing every QEMU started\n";

	for (sig_atomic_t i = 0; i < n_qemu_pids; i++) {
		kill(qemu_pids[i], SIGKILL);
	}
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		_exit(1);
	}
	_exit(1);
}

/* Set just around a vmcd_vm_start: its spawn helper stops itself, as if its stat() hung. */
static bool hang_next_fork;

static void on_fork_child(void)
{
	if (hang_next_fork) {
		raise(SIGSTOP);
	}
}

/* ---- the driver's logs, kept for checks, shown on stderr ---- */

static void log_capture(int32_t t, struct qb_log_callsite *cs, struct timespec *ts, const char *msg)
{
	if (T.n_log_lines < LOG_LINES_MAX) {
		T.log_lines[T.n_log_lines++] = strdup(msg);
	}
}

static size_t log_mark(void)
{
	return T.n_log_lines;
}

/* The first captured line since mark holding every one of the strings. */
static const char *log_find(size_t mark, const char *a, const char *b)
{
	for (size_t i = mark; i < T.n_log_lines; i++) {
		const char *l = T.log_lines[i];

		if (l != NULL && strstr(l, a) != NULL && (b == NULL || strstr(l, b) != NULL)) {
			return l;
		}
	}
	return NULL;
}

static void logging_init(void)
{
	int32_t t;
	int level = getenv("VMC_TEST_DEBUG") != NULL ? LOG_DEBUG : LOG_INFO;

	qb_log_init("check_vm_driver", LOG_DAEMON, LOG_DEBUG);
	qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
	qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", level);
	qb_log_format_set(QB_LOG_STDERR, "%T %p: %b");
	qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
	t = qb_log_custom_open(log_capture, NULL, NULL, NULL);
	if (t >= 0) {
		qb_log_filter_ctl(t, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_DEBUG);
		qb_log_ctl(t, QB_LOG_CONF_ENABLED, QB_TRUE);
	}
}

/* ---- events ---- */

static void on_event(void *ctx, const char *vm, enum vmcd_vm_event ev, const char *reason)
{
	struct event_rec *e;

	printf("# event: VM %s %s (%s)\n", vm, vmcd_vm_event_to_str(ev), reason);
	fflush(stdout);
	if (T.n_events >= EVENTS_MAX) {
		return;
	}
	e = &T.events[T.n_events++];
	snprintf(e->vm, sizeof(e->vm), "%s", vm);
	e->ev = ev;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	e->at_ms = vmc_now_ms();
}

static const struct vmcd_vm_ops test_ops = { .event = on_event };

/* ---- waiting: the loop runs until a condition holds or a deadline ---- */

typedef bool (*cond_fn)(const void *arg);

struct waiter {
	cond_fn cond;
	const void *arg;
	int64_t deadline_ms;
	bool met;
};

static void wait_tick(void *data)
{
	struct waiter *w = data;
	qb_loop_timer_handle h;

	if (w->cond(w->arg)) {
		w->met = true;
		qb_loop_stop(T.loop);
		return;
	}
	if (vmc_now_ms() >= w->deadline_ms) {
		qb_loop_stop(T.loop);
		return;
	}
	qb_loop_timer_add(T.loop, QB_LOOP_LOW, TICK_MS * QB_TIME_NS_IN_MSEC, w, wait_tick, &h);
}

static bool wait_for(cond_fn cond, const void *arg, int timeout_ms)
{
	struct waiter w = { .cond = cond, .arg = arg, .deadline_ms = vmc_now_ms() + timeout_ms };
	qb_loop_timer_handle h;

	qb_loop_timer_add(T.loop, QB_LOOP_LOW, 0, &w, wait_tick, &h);
	qb_loop_run(T.loop);
	return w.met;
}

struct event_want {
	const char *vm;
	enum vmcd_vm_event ev;
	size_t from;   /* events[] index to look from */
};

static const struct event_rec *event_find(const struct event_want *w)
{
	for (size_t i = w->from; i < T.n_events; i++) {
		if (strcmp(T.events[i].vm, w->vm) == 0 && T.events[i].ev == w->ev) {
			return &T.events[i];
		}
	}
	return NULL;
}

static bool cond_event(const void *arg)
{
	return event_find(arg) != NULL;
}

static bool cond_any_event(const void *arg)
{
	const size_t *from = arg;

	return T.n_events > *from;
}

struct log_want {
	size_t mark;
	const char *a;
	const char *b;
};

static bool cond_log(const void *arg)
{
	const struct log_want *w = arg;

	return log_find(w->mark, w->a, w->b) != NULL;
}

/* ---- the guest's serial log ---- */

struct serial_scan {
	unsigned int boots;      /* "vmc-guest ready" lines */
	long long last_counter;  /* -1: none yet */
	size_t counters;
	bool counter_gap;        /* a counter that is not previous + 1 within a boot */
	char gap[128];
};

static void serial_scan(const char *vm, struct serial_scan *s)
{
	char path[PATH_MAX];
	char line[512];
	long long prev = -1;
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->last_counter = -1;
	snprintf(path, sizeof(path), "%s/vms/%s.serial.log", T.state_dir, vm);
	f = fopen(path, "r");
	if (f == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *c = strstr(line, "vmc-counter ");
		long long v;

		if (strstr(line, "vmc-guest ready") != NULL) {
			s->boots++;
			prev = -1;
			continue;
		}
		/* Only whole lines: the last one may still be being written. */
		if (c == NULL || strchr(line, '\n') == NULL || sscanf(c, "vmc-counter %lld", &v) != 1) {
			continue;
		}
		if (prev >= 0 && v != prev + 1 && !s->counter_gap) {
			s->counter_gap = true;
			snprintf(s->gap, sizeof(s->gap), "%lld after %lld", v, prev);
		}
		prev = v;
		s->last_counter = v;
		s->counters++;
	}
	fclose(f);
}

struct counter_want {
	const char *vm;
	unsigned int boots;      /* at least this many boots */
	long long above;         /* a counter above this in the latest boot */
};

static bool cond_counter(const void *arg)
{
	const struct counter_want *w = arg;
	struct serial_scan s;

	serial_scan(w->vm, &s);
	return s.boots >= w->boots && s.last_counter > w->above;
}

/* ---- processes ---- */

static bool pid_alive(pid_t pid)
{
	char path[64];
	char buf[256];
	FILE *f;
	char *p;
	bool alive = true;

	if (kill(pid, 0) < 0 && errno == ESRCH) {
		return false;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL) {
		return false;
	}
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL && p[1] != '\0' &&
	    p[2] == 'Z') {
		alive = false;
	}
	fclose(f);
	return alive;
}

static bool cond_pid_gone(const void *arg)
{
	return !pid_alive(*(const pid_t *)arg);
}

static pid_t pidfile_pid(const char *vm)
{
	char path[PATH_MAX];
	FILE *f;
	int pid = 0;

	snprintf(path, sizeof(path), "%s/vms/%s.pid", T.run_dir, vm);
	f = fopen(path, "r");
	if (f == NULL) {
		return 0;
	}
	if (fscanf(f, "%d", &pid) != 1) {
		pid = 0;
	}
	fclose(f);
	return pid;
}

static bool run_file_exists(const char *vm, const char *suffix)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/vms/%s%s", T.run_dir, vm, suffix);
	return access(path, F_OK) == 0;
}

/* What `ps` shows as the process's arguments. */
static bool ps_args(pid_t pid, char *out, size_t len)
{
	char cmd[64];
	FILE *p;
	bool ok;

	snprintf(cmd, sizeof(cmd), "ps -ww -o args= -p %d", (int)pid);
	p = popen(cmd, "r");
	if (p == NULL) {
		return false;
	}
	ok = fgets(out, (int)len, p) != NULL;
	pclose(p);
	return ok;
}

/* Does pid hold a TCP socket (listening or not)? Compares socket inodes. */
static bool pid_has_tcp_socket(pid_t pid)
{
	static const char *const tables[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	unsigned long inodes[256];
	size_t n = 0;
	char path[PATH_MAX];
	char link[128];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (d == NULL) {
		return false;
	}
	while ((de = readdir(d)) != NULL && n < 256) {
		char fdpath[PATH_MAX + 300];
		ssize_t l;

		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		l = readlink(fdpath, link, sizeof(link) - 1);
		if (l > 0) {
			link[l] = '\0';
			if (sscanf(link, "socket:[%lu]", &inodes[n]) == 1) {
				n++;
			}
		}
	}
	closedir(d);
	for (size_t t = 0; t < 2; t++) {
		char line[512];
		FILE *f = fopen(tables[t], "r");

		if (f == NULL) {
			continue;
		}
		while (fgets(line, sizeof(line), f) != NULL) {
			unsigned long ino;

			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
			if (sscanf(line, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %lu", &ino) != 1) {
				continue;
			}
			for (size_t i = 0; i < n; i++) {
				if (inodes[i] == ino) {
					fclose(f);
					return true;
				}
			}
		}
		fclose(f);
	}
	return false;
}

/* Every process whose command line names our temporary directory. */
static size_t qemu_sweep(bool do_kill)
{
	struct dirent *de;
	size_t found = 0;
	DIR *d = opendir("/proc");

	if (d == NULL) {
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		char path[300];
		char buf[8192];
		size_t n;
		FILE *f;
		int pid = atoi(de->d_name);

		if (pid <= 1 || pid == getpid()) {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		f = fopen(path, "r");
		if (f == NULL) {
			continue;
		}
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t i = 0; i < n; i++) {
			if (buf[i] == '\0') {
				buf[i] = ' ';
			}
		}
		buf[n] = '\0';
		if (n > 0 && strstr(buf, "qemu") != NULL && strstr(buf, T.tmp) != NULL) {
			found++;
			if (do_kill) {
				printf("# cleanup: killing QEMU pid %d\n", pid);
				kill(pid, SIGKILL);
			}
		}
	}
	closedir(d);
	return found;
}

static void cleanup(void)
{
	int64_t until = vmc_now_ms() + 5000;

	vmcd_vm_driver_fini();
	for (sig_atomic_t i = 0; i < n_qemu_pids; i++) {
		if (pid_alive(qemu_pids[i])) {
			printf("# cleanup: killing QEMU pid %d\n", (int)qemu_pids[i]);
			kill(qemu_pids[i], SIGKILL);
		}
	}
	qemu_sweep(true);
	/* Not in the loop any more: a short poll until they are gone. */
	while (qemu_sweep(false) > 0 && vmc_now_ms() < until) {
		usleep(20 * 1000);
	}
	if (qemu_sweep(false) > 0) {
		check(false, "cleanup: QEMU processes still alive after SIGKILL");
	}
	if (T.tmp[0] != '\0' && getenv("VMC_TEST_KEEP") == NULL) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.tmp);
		if (system(cmd) != 0) {
			printf("# cleanup: could not remove %s\n", T.tmp);
		}
	}
}

/* ---- set-up ---- */

static void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void skip(const char *fmt, ...)
{
	va_list ap;

	printf("SKIP - ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (T.tmp[0] != '\0') {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.tmp);
		if (system(cmd) != 0) {
			printf("# could not remove %s\n", T.tmp);
		}
	}
	exit(EXIT_SKIP);
}

static void guest_build(void)
{
	const char *src = getenv("VMC_SRCDIR") != NULL ? getenv("VMC_SRCDIR") : VMC_TEST_SRCDIR;
	char script[PATH_MAX];
	char cmd[3 * PATH_MAX];
	char path[PATH_MAX + 16];
	FILE *f;
	int rc;

	if (getenv("VMC_GUEST_DIR") != NULL) {
		snprintf(T.guest_dir, sizeof(T.guest_dir), "%s", getenv("VMC_GUEST_DIR"));
	} else {
		snprintf(T.guest_dir, sizeof(T.guest_dir), "%s/guest", T.tmp);
	}
	snprintf(script, sizeof(script), "%s/tests/guest/build-guest", src);
	if (access(script, X_OK) != 0) {
		skip("no test guest: %s: %s (set VMC_SRCDIR to the source tree)", script, strerror(errno));
	}
	snprintf(cmd, sizeof(cmd), "'%s' '%s' >&2", script, T.guest_dir);
	rc = system(cmd);
	if (rc != 0) {
		skip("no test guest: %s failed (exit status %d)", script,
		     WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
	}
	/* vmlinux boots about 3 s faster under TCG than the bzImage (build-guest). */
	snprintf(T.kernel, sizeof(T.kernel), "%s/vmlinux", T.guest_dir);
	if (access(T.kernel, R_OK) != 0) {
		snprintf(T.kernel, sizeof(T.kernel), "%s/vmlinuz", T.guest_dir);
	}
	snprintf(T.initrd, sizeof(T.initrd), "%s/initrd.img", T.guest_dir);
	snprintf(path, sizeof(path), "%s/cmdline", T.guest_dir);
	f = fopen(path, "r");
	if (f == NULL || fgets(T.cmdline, sizeof(T.cmdline), f) == NULL ||
	    access(T.kernel, R_OK) != 0 || access(T.initrd, R_OK) != 0) {
		skip("no test guest: %s did not produce vmlinuz, initrd.img and cmdline", script);
	}
	fclose(f);
	T.cmdline[strcspn(T.cmdline, "\n")] = '\0';
}

static void setup(void)
{
	char qemu[PATH_MAX];
	struct sigaction sa = { .sa_handler = on_fatal_signal };

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (vmcd_qemu_find(qemu, sizeof(qemu)) < 0) {
		skip("qemu-system-x86_64 not found (set VMC_QEMU to choose one)");
	}
	snprintf(T.tmp, sizeof(T.tmp), "/tmp/vmcd-test.XXXXXX");
	if (mkdtemp(T.tmp) == NULL) {
		T.tmp[0] = '\0';
		skip("mkdtemp: %s", strerror(errno));
	}
	snprintf(T.run_dir, sizeof(T.run_dir), "%s/run", T.tmp);
	snprintf(T.state_dir, sizeof(T.state_dir), "%s/state", T.tmp);
	if (mkdir(T.run_dir, 0750) < 0 || mkdir(T.state_dir, 0750) < 0) {
		skip("mkdir in %s: %s", T.tmp, strerror(errno));
	}
	snprintf(T.vm_a, sizeof(T.vm_a), "t%da", (int)getpid());
	snprintf(T.vm_b, sizeof(T.vm_b), "t%db", (int)getpid());
	guest_build();

	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGABRT, &sa, NULL);
	pthread_atfork(NULL, NULL, on_fork_child);
	alarm(WATCHDOG_S);
	logging_init();
	T.loop = qb_loop_create();
	printf("# qemu %s, guest %s, kernel %s, temp %s\n", qemu, T.guest_dir, T.kernel, T.tmp);
}

static void def_fill(struct vmc_group_def *def, const char *name)
{
	memset(def, 0, sizeof(*def));
	def->name = (char *)name;
	def->memory_mib = MEMORY_MIB;
	def->vcpus = 1;
	def->has_boot = true;
	def->kernel = T.kernel;
	def->initrd = T.initrd;
	def->cmdline = T.cmdline;
}

/* ---- the steps ---- */

static bool step_accel(void)
{
	enum vmc_accel a;
	int64_t t0;

	check(vmcd_accel_resolve(VMC_ACCEL_TCG, NULL, NULL) == VMC_ACCEL_TCG, "accel tcg stays tcg");
	check(vmcd_accel_resolve(VMC_ACCEL_KVM, NULL, NULL) == VMC_ACCEL_KVM, "accel kvm stays kvm");
	check(!vmcd_accel_auto_cached(&a), "accel auto: nothing cached before the probe");
	if (getenv("VMC_TEST_SKIP_PROBE") != NULL) {
		printf("# accel auto probe skipped (VMC_TEST_SKIP_PROBE)\n");
		return true;
	}
	t0 = vmc_now_ms();
	a = vmcd_accel_resolve(VMC_ACCEL_AUTO, T.kernel, T.initrd);
	printf("# accel auto: verdict %s after %lld ms (probe %u ms; /dev/kvm %s)\n", vmc_accel_to_str(a),
	       (long long)(vmc_now_ms() - t0), vmcd_accel_probe_ms(),
	       access("/dev/kvm", R_OK | W_OK) == 0 ? "present" : "absent");
	check(a == VMC_ACCEL_KVM || a == VMC_ACCEL_TCG, "accel auto resolves to kvm or tcg");
	t0 = vmc_now_ms();
	check(vmcd_accel_resolve(VMC_ACCEL_AUTO, T.kernel, T.initrd) == a && vmc_now_ms() - t0 < 100,
	      "accel auto: the second call returns the cached verdict at once");
	return true;
}

/* Does NAME.qemu.log hold a line with both strings? */
static bool qemu_log_has(const char *vm, const char *a, const char *b)
{
	char path[PATH_MAX];
	char line[4096];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/vms/%s.qemu.log", T.state_dir, vm);
	f = fopen(path, "r");
	if (f == NULL) {
		return false;
	}
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		found = strstr(line, a) != NULL && strstr(line, b) != NULL;
	}
	fclose(f);
	return found;
}

/* Nothing of VM vm is left: not followed, no pidfile, no QEMU of this test at all. */
static bool nothing_left(const char *vm)
{
	const char *names[4];

	return vmcd_vm_list(names, 4) == 0 && !vmcd_vm_is_running(vm, NULL) &&
	       !run_file_exists(vm, ".pid") && qemu_sweep(false) == 0;
}

/*
 * Starts def (expected to be accepted) and waits for its START_FAILED,
 * which must come before any other event of the VM. The event or NULL.
 */
static const struct event_rec *start_expect_failure(const struct vmc_group_def *def, int timeout_ms)
{
	struct event_want w = { .vm = def->name, .ev = VMCD_VM_START_FAILED, .from = T.n_events };
	size_t from = T.n_events;
	char err[512] = "";
	int rc;

	rc = vmcd_vm_start(def, VMC_ACCEL_TCG, err, sizeof(err));
	if (!check(rc == 0, "start %s accepted (the spawn helper checks its files): rc %d %s",
		   def->name, rc, err)) {
		return NULL;
	}
	wait_for(cond_any_event, &from, timeout_ms);
	return event_find(&w);
}

static bool step_refuse(void)
{
	struct vmc_group_def def;
	const struct event_rec *e;
	char err[512] = "";
	char missing[PATH_MAX + 32];
	int64_t t0;
	int rc;

	def_fill(&def, T.vm_a);
	def.memory_mib = VMC_MEMORY_MIB_MAX;
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	check(rc == -EINVAL && strstr(err, "memory") != NULL, "memory beyond the host refused: rc %d, '%s'",
	      rc, err);
	check(nothing_left(T.vm_a), "impossible memory: nothing started");

	def_fill(&def, T.vm_a);
	snprintf(missing, sizeof(missing), "%s/no-such-kernel", T.tmp);
	def.kernel = missing;
	t0 = vmc_now_ms();
	e = start_expect_failure(&def, EVENT_DEADLINE_MS);
	check(e != NULL && strstr(e->reason, "kernel") != NULL &&
	      strstr(e->reason, missing) != NULL && strstr(e->reason, strerror(ENOENT)) != NULL,
	      "missing kernel: START_FAILED after %lld ms naming the kernel and its path: '%s'",
	      (long long)(vmc_now_ms() - t0), e != NULL ? e->reason : "no such event");
	check(qemu_log_has(T.vm_a, "vmclusterd: cannot start VM", missing),
	      "missing kernel: the reason is a line in %s.qemu.log", T.vm_a);
	check(nothing_left(T.vm_a), "missing kernel: nothing left running (no pidfile, no QEMU)");
	return T.failures == 0;
}

/* A copy of the kernel that its group may write: root must not boot it. */
static bool step_privilege(void)
{
	struct vmc_group_def def;
	const struct event_rec *e;
	char path[PATH_MAX];
	char cmd[4 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/kernel-group-writable", T.tmp);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod g+w '%s'", T.kernel, path, path);
	if (!check(system(cmd) == 0, "copy the kernel to %s, chmod g+w", path)) {
		return false;
	}
	def_fill(&def, T.vm_a);
	def.kernel = path;
	e = start_expect_failure(&def, EVENT_DEADLINE_MS);
	check(e != NULL && strstr(e->reason, "writable by") != NULL &&
	      strstr(e->reason, path) != NULL,
	      "group-writable kernel: START_FAILED: '%s'", e != NULL ? e->reason : "no such event");
	check(nothing_left(T.vm_a), "group-writable kernel: no QEMU");
	unlink(path);

	/* A kernel outside the directories VMs may use, and a link out of them. */
	vmcd_vm_driver_vm_paths("/var/lib/vmcluster/images:/nonexistent");
	def_fill(&def, T.vm_a);
	e = start_expect_failure(&def, EVENT_DEADLINE_MS);
	check(e != NULL && strstr(e->reason, "not in a directory VMs may use") != NULL,
	      "kernel outside vm-paths: START_FAILED: '%s'", e != NULL ? e->reason : "no such event");
	check(nothing_left(T.vm_a), "kernel outside vm-paths: no QEMU");
	snprintf(path, sizeof(path), "%s/link-out", T.tmp);
	snprintf(cmd, sizeof(cmd), "%s/allowed", T.tmp);
	mkdir(cmd, 0755);
	snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "/kernel");
	if (check(symlink("/etc/shadow", cmd) == 0, "a link to /etc/shadow in an allowed directory")) {
		char allowed[PATH_MAX + 16];
		snprintf(allowed, sizeof(allowed), "%s/allowed", T.tmp);
		vmcd_vm_driver_vm_paths(allowed);
		def_fill(&def, T.vm_a);
		def.kernel = cmd;
		e = start_expect_failure(&def, EVENT_DEADLINE_MS);
		check(e != NULL && strstr(e->reason, "/etc/shadow") != NULL &&
		      strstr(e->reason, "not in a directory VMs may use") != NULL,
		      "a link out of vm-paths is judged by where it leads: '%s'", e != NULL ? e->reason : "no such event");
		unlink(cmd);
	}
	vmcd_vm_driver_vm_paths(NULL);
	return T.failures == 0;
}

/* A stopped child of ours: the hung spawn helper. */
static bool cond_stopped_child(const void *arg)
{
	pid_t *found = (pid_t *)arg;
	struct dirent *de;
	DIR *d = opendir("/proc");

	while (d != NULL && *found == 0 && (de = readdir(d)) != NULL) {
		char path[300];
		char state = 0;
		int ppid = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = atoi(de->d_name) > 1 ? fopen(path, "r") : NULL;
		if (f == NULL) {
			continue;
		}
		if (fscanf(f, "%*d (%*[^)]) %c %d", &state, &ppid) == 2 && ppid == getpid() &&
		    state == 'T') {
			*found = atoi(de->d_name);
		}
		fclose(f);
	}
	if (d != NULL) {
		closedir(d);
	}
	return *found != 0;
}

/* Starts VM a with a spawn helper that hangs; its pid in *helper. */
static bool start_hanging(pid_t *helper)
{
	struct vmc_group_def def;
	char err[512] = "";
	int rc;

	def_fill(&def, T.vm_a);
	*helper = 0;
	hang_next_fork = true;
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	hang_next_fork = false;
	if (!check(rc == 0, "start %s with a spawn helper that hangs: rc %d %s", T.vm_a, rc, err)) {
		return false;
	}
	wait_for(cond_stopped_child, helper, EVENT_DEADLINE_MS);
	return check(*helper > 0, "the spawn helper %d hangs", (int)*helper);
}

static bool step_hang(void)
{
	struct event_want w = { .vm = T.vm_a, .ev = VMCD_VM_START_FAILED, .from = T.n_events };
	const struct event_rec *e;
	pid_t helper;
	int64_t t0 = vmc_now_ms();

	if (!start_hanging(&helper)) {
		return false;
	}
	wait_for(cond_event, &w, VMC_FS_CHECK_DEADLINE_MS + EVENT_DEADLINE_MS);
	e = event_find(&w);
	if (!check(e != NULL, "START_FAILED reported")) {
		return false;
	}
	printf("# measured: start -> START_FAILED %lld ms (deadline %d ms)\n",
	       (long long)(e->at_ms - t0), VMC_FS_CHECK_DEADLINE_MS);
	check(e->at_ms - t0 >= VMC_FS_CHECK_DEADLINE_MS - 100 &&
	      e->at_ms - t0 <= VMC_FS_CHECK_DEADLINE_MS + 2000,
	      "at the deadline, promptly: %lld ms", (long long)(e->at_ms - t0));
	check(strstr(e->reason, "did not answer") != NULL,
	      "the reason says the files did not answer: '%s'", e->reason);
	check(wait_for(cond_pid_gone, &helper, EVENT_DEADLINE_MS), "the helper %d was killed",
	      (int)helper);
	check(nothing_left(T.vm_a), "nothing left running");

	/* A kill while the helper hangs does not wait for its deadline. */
	w.ev = VMCD_VM_STOPPED;
	w.from = T.n_events;
	if (!start_hanging(&helper)) {
		return false;
	}
	t0 = vmc_now_ms();
	check(vmcd_vm_kill(T.vm_a) == 0, "vmcd_vm_kill while the helper hangs");
	wait_for(cond_event, &w, EVENT_DEADLINE_MS);
	e = event_find(&w);
	check(e != NULL && vmc_now_ms() - t0 < VMC_FS_CHECK_DEADLINE_MS,
	      "STOPPED after %lld ms: '%s'", (long long)(vmc_now_ms() - t0),
	      e != NULL ? e->reason : "no such event");
	check(wait_for(cond_pid_gone, &helper, EVENT_DEADLINE_MS), "the helper %d was killed",
	      (int)helper);
	check(nothing_left(T.vm_a), "nothing left running");
	return T.failures == 0;
}

static int64_t start_ms;
static pid_t pid_a;

/* A sparse raw disk: the -blockdev/virtio-blk path, on a disk the guest ignores. */
static bool disk_make(struct vmc_disk *disk, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/disk.raw", T.tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, 16 * 1024 * 1024) < 0) {
		check(false, "cannot create %s: %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		return false;
	}
	close(fd);
	disk->path = path;
	disk->format = (char *)"raw";
	return true;
}

static bool step_start(void)
{
	struct vmc_group_def def;
	struct vmc_disk disk;
	char disk_path[PATH_MAX];
	struct event_want w = { .vm = T.vm_a, .ev = VMCD_VM_RUNNING, .from = T.n_events };
	struct event_want wf = { .vm = T.vm_a, .ev = VMCD_VM_START_FAILED, .from = T.n_events };
	struct counter_want c = { .vm = T.vm_a, .boots = 1, .above = -1 };
	const struct event_rec *e;
	struct serial_scan s;
	char err[512] = "";
	char args[4096] = "";
	char needle[64];
	int64_t counter_ms;
	bool running;
	int rc;

	def_fill(&def, T.vm_a);
	if (!disk_make(&disk, disk_path, sizeof(disk_path))) {
		return false;
	}
	def.disks = &disk;
	def.n_disks = 1;
	start_ms = vmc_now_ms();
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	if (!check(rc == 0, "start %s under TCG: rc %d %s", T.vm_a, rc, err)) {
		return false;
	}
	if (vmcd_vm_is_running(T.vm_a, &pid_a) && pid_a > 0) {
		pid_remember(pid_a);
	}
	wait_for(cond_event, &w, RUNNING_DEADLINE_MS);
	e = event_find(&w);
	if (!check(e != NULL, "RUNNING within %d ms%s%s", RUNNING_DEADLINE_MS,
		   event_find(&wf) != NULL ? ": START_FAILED: " : "",
		   event_find(&wf) != NULL ? event_find(&wf)->reason : "")) {
		return false;
	}
	printf("# measured: vmcd_vm_start -> RUNNING %lld ms\n", (long long)(e->at_ms - start_ms));
	running = vmcd_vm_is_running(T.vm_a, &pid_a);
	check(running && pid_a > 0, "is_running with pid %d", (int)pid_a);
	pid_remember(pid_a);
	check(pidfile_pid(T.vm_a) == pid_a, "pidfile names pid %d", (int)pid_a);
	check(getppid() != pid_a && pid_alive(pid_a), "QEMU is alive");
	{
		char stat_path[64];
		FILE *f;
		int ppid = -1;
		int sid = -1;

		snprintf(stat_path, sizeof(stat_path), "/proc/%d/stat", (int)pid_a);
		f = fopen(stat_path, "r");
		if (f != NULL) {
			if (fscanf(f, "%*d (%*[^)]) %*c %d %*d %d", &ppid, &sid) != 2) {
				ppid = -1;
			}
			fclose(f);
		}
		check(ppid != getpid() && sid > 0 && sid != getsid(0),
		      "QEMU is not our child (parent %d) and has a session of its own (%d, ours %d)", ppid,
		      sid, (int)getsid(0));
	}
	if (!wait_for(cond_counter, &c, COUNTER_DEADLINE_MS)) {
		check(false, "counter lines in the serial log within %d ms", COUNTER_DEADLINE_MS);
		return false;
	}
	counter_ms = vmc_now_ms();
	serial_scan(T.vm_a, &s);
	check(s.boots == 1 && s.counters > 0, "serial log: guest ready, counter %lld", s.last_counter);
	printf("# measured: vmcd_vm_start -> first counter line %lld ms (TCG, %d MiB)\n",
	       (long long)(counter_ms - start_ms), MEMORY_MIB);
	snprintf(needle, sizeof(needle), "-name %s", T.vm_a);
	check(ps_args(pid_a, args, sizeof(args)) && strstr(args, needle) != NULL, "ps shows '%s'", needle);
	check(!pid_has_tcp_socket(pid_a), "QEMU holds no TCP socket");
	return T.failures == 0;
}

static bool step_twice(void)
{
	struct vmc_group_def def;
	char err[512] = "";
	int rc;

	def_fill(&def, T.vm_a);
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	check(rc == -EEXIST && strstr(err, "already runs") != NULL, "second start refused: rc %d, '%s'", rc,
	      err);
	check(pidfile_pid(T.vm_a) == pid_a && pid_alive(pid_a), "the first QEMU is untouched");
	return T.failures == 0;
}

static long long counter_at_detach;

static bool step_detach(void)
{
	struct counter_want c = { .vm = T.vm_a, .boots = 1, .above = 20 };
	struct serial_scan s;
	size_t events;

	/* A guest well into its run, so that a restart could not go unseen. */
	check(wait_for(cond_counter, &c, COUNTER_DEADLINE_MS), "counter past 20 before detaching");
	events = T.n_events;
	vmcd_vm_driver_fini();
	check(pid_alive(pid_a) && pidfile_pid(T.vm_a) == pid_a,
	      "after driver fini QEMU pid %d still runs, pidfile unchanged", (int)pid_a);
	check(T.n_events == events, "no event from fini");
	serial_scan(T.vm_a, &s);
	counter_at_detach = s.last_counter;
	printf("# counter at detach: %lld\n", counter_at_detach);
	return T.failures == 0;
}

static bool step_attach(void)
{
	struct log_want lw = { .mark = log_mark(), .a = "re-attached to QEMU pid", .b = T.vm_a };
	struct counter_want c = { .vm = T.vm_a, .boots = 1, .above = 0 };
	size_t events = T.n_events;
	struct serial_scan s;
	bool followed;
	bool met;
	pid_t pid = 0;
	size_t n;
	int rc;

	rc = vmcd_vm_driver_init(T.loop, T.run_dir, T.state_dir, &test_ops, NULL);
	if (!check(rc == 0, "driver init again: %d", rc)) {
		return false;
	}
	n = vmcd_vm_attach_all();
	check(n == 1, "attach_all follows %zu VM (1 expected)", n);
	followed = vmcd_vm_is_running(T.vm_a, &pid);
	check(followed && pid == pid_a, "followed again with the same pid %d", (int)pid);
	met = wait_for(cond_log, &lw, ATTACH_DEADLINE_MS);
	check(met, "QMP re-attached (log: '%s')", met ? log_find(lw.mark, lw.a, lw.b) : "none");
	c.above = counter_at_detach + 10;
	met = wait_for(cond_counter, &c, COUNTER_DEADLINE_MS);
	check(met, "counter keeps increasing past %lld", c.above);
	serial_scan(T.vm_a, &s);
	check(s.boots == 1 && !s.counter_gap,
	      "the guest never restarted: %u boot, counter %lld, no gap%s%s", s.boots, s.last_counter,
	      s.counter_gap ? ": " : "", s.gap);
	check(T.n_events == events, "no event on re-attach");
	return T.failures == 0;
}

static bool step_crash(void)
{
	struct event_want w = { .vm = T.vm_a, .ev = VMCD_VM_CRASHED, .from = T.n_events };
	const struct event_rec *e;
	int64_t t0 = vmc_now_ms();

	check(kill(pid_a, SIGKILL) == 0, "kill -9 QEMU pid %d", (int)pid_a);
	wait_for(cond_event, &w, EVENT_DEADLINE_MS);
	e = event_find(&w);
	if (!check(e != NULL, "CRASHED reported")) {
		return false;
	}
	printf("# measured: kill -9 -> CRASHED %lld ms\n", (long long)(e->at_ms - t0));
	check(strstr(e->reason, "disappeared") != NULL, "crash reason: '%s'", e->reason);
	check(!vmcd_vm_is_running(T.vm_a, NULL), "no longer followed");
	check(!run_file_exists(T.vm_a, ".pid") && !run_file_exists(T.vm_a, ".qmp"),
	      "pidfile and QMP socket removed");
	return T.failures == 0;
}

static bool step_stop(void)
{
	struct vmc_group_def def;
	struct event_want w = { .vm = T.vm_a, .ev = VMCD_VM_RUNNING, .from = T.n_events };
	struct event_want ws = { .vm = T.vm_a, .ev = VMCD_VM_STOPPED, .from = T.n_events };
	struct counter_want c = { .vm = T.vm_a, .boots = 2, .above = 5 };
	const struct event_rec *e;
	char err[512] = "";
	size_t mark;
	pid_t pid = 0;
	int64_t t0;
	int rc;

	def_fill(&def, T.vm_a);
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	if (!check(rc == 0, "start %s again after the crash: rc %d %s", T.vm_a, rc, err)) {
		return false;
	}
	if (!check(wait_for(cond_event, &w, RUNNING_DEADLINE_MS), "RUNNING again")) {
		return false;
	}
	vmcd_vm_is_running(T.vm_a, &pid);
	pid_remember(pid);
	check(pid != pid_a && pid > 0, "a new QEMU pid %d", (int)pid);
	/* Let the guest boot, so the power button reaches a running kernel. */
	check(wait_for(cond_counter, &c, COUNTER_DEADLINE_MS), "the guest booted again (counter > 5)");
	mark = log_mark();
	t0 = vmc_now_ms();
	rc = vmcd_vm_stop(T.vm_a, STOP_TIMEOUT_S);
	check(rc == 0, "stop with a %d s timeout", STOP_TIMEOUT_S);
	wait_for(cond_event, &ws, STOP_TIMEOUT_S * 1000 + EVENT_DEADLINE_MS);
	e = event_find(&ws);
	if (!check(e != NULL, "STOPPED reported")) {
		return false;
	}
	printf("# measured: stop -> STOPPED %lld ms (%s)\n", (long long)(e->at_ms - t0), e->reason);
	check(log_find(mark, "system_powerdown", T.vm_a) != NULL, "logged: '%s'",
	      log_find(mark, "system_powerdown", T.vm_a) != NULL ? log_find(mark, "system_powerdown", T.vm_a)
								   : "no system_powerdown line");
	if (strstr(e->reason, "killed") != NULL) {
		const char *l = log_find(mark, "still running", "SIGKILL");

		check(l != NULL && e->at_ms - t0 >= STOP_TIMEOUT_S * 1000 - 100,
		      "guest ignored ACPI: SIGKILL after %d s, logged: '%s'", STOP_TIMEOUT_S,
		      l != NULL ? l : "none");
	} else {
		check(strstr(e->reason, "powered off") != NULL, "guest powered off: '%s'", e->reason);
	}
	check(wait_for(cond_pid_gone, &pid, EVENT_DEADLINE_MS) && !vmcd_vm_is_running(T.vm_a, NULL),
	      "QEMU pid %d is gone", (int)pid);
	check(!run_file_exists(T.vm_a, ".pid") && !run_file_exists(T.vm_a, ".qmp"),
	      "pidfile and QMP socket removed");
	return T.failures == 0;
}

static bool step_kill(void)
{
	struct vmc_group_def def;
	struct event_want w = { .vm = T.vm_b, .ev = VMCD_VM_RUNNING, .from = T.n_events };
	struct event_want ws = { .vm = T.vm_b, .ev = VMCD_VM_STOPPED, .from = T.n_events };
	const struct event_rec *e;
	char err[512] = "";
	pid_t pid = 0;
	int rc;

	def_fill(&def, T.vm_b);
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	if (!check(rc == 0, "start %s: rc %d %s", T.vm_b, rc, err)) {
		return false;
	}
	if (!check(wait_for(cond_event, &w, RUNNING_DEADLINE_MS), "RUNNING")) {
		return false;
	}
	vmcd_vm_is_running(T.vm_b, &pid);
	pid_remember(pid);
	check(vmcd_vm_kill(T.vm_b) == 0, "vmcd_vm_kill");
	wait_for(cond_event, &ws, EVENT_DEADLINE_MS);
	e = event_find(&ws);
	check(e != NULL && strstr(e->reason, "killed") != NULL, "STOPPED after kill: '%s'",
	      e != NULL ? e->reason : "none");
	check(!pid_alive(pid), "QEMU pid %d is gone", (int)pid);
	return T.failures == 0;
}

static bool step_sigterm(void)
{
	struct vmc_group_def def;
	struct event_want w = { .vm = T.vm_b, .ev = VMCD_VM_RUNNING, .from = T.n_events };
	struct event_want wc = { .vm = T.vm_b, .ev = VMCD_VM_CRASHED, .from = T.n_events };
	const struct event_rec *e;
	char err[512] = "";
	pid_t pid = 0;
	int rc;

	/* QEMU's own exit: SHUTDOWN (host-signal) on QMP, a line on stderr. */
	def_fill(&def, T.vm_b);
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	if (!check(rc == 0, "start %s: rc %d %s", T.vm_b, rc, err)) {
		return false;
	}
	if (!check(wait_for(cond_event, &w, RUNNING_DEADLINE_MS), "RUNNING")) {
		return false;
	}
	vmcd_vm_is_running(T.vm_b, &pid);
	pid_remember(pid);
	check(kill(pid, SIGTERM) == 0, "kill -TERM QEMU pid %d", (int)pid);
	wait_for(cond_event, &wc, EVENT_DEADLINE_MS);
	e = event_find(&wc);
	check(e != NULL && strstr(e->reason, "SHUTDOWN: host-signal") != NULL &&
	      strstr(e->reason, "terminating on signal 15") != NULL,
	      "CRASHED with QMP's and QEMU's reasons: '%s'", e != NULL ? e->reason : "no such event");
	return T.failures == 0;
}

static bool step_badimage(void)
{
	struct vmc_group_def def;
	struct vmc_disk disk;
	struct event_want w = { .vm = T.vm_b, .ev = VMCD_VM_START_FAILED, .from = T.n_events };
	const struct event_rec *e;
	size_t from = T.n_events;
	char path[PATH_MAX];
	char err[512] = "";
	int64_t t0 = vmc_now_ms();
	int fd;
	int rc;

	/* Not a qcow2 image: QEMU refuses it once it runs, not our checks. */
	snprintf(path, sizeof(path), "%s/bad.qcow2", T.tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "not a qcow2 image\n", 18) != 18) {
		check(false, "cannot write %s", path);
		return false;
	}
	close(fd);
	def_fill(&def, T.vm_b);
	disk.path = path;
	disk.format = (char *)"qcow2";
	def.disks = &disk;
	def.n_disks = 1;
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	if (!check(rc == 0, "start %s with a broken qcow2: rc %d %s", T.vm_b, rc, err)) {
		return false;
	}
	wait_for(cond_any_event, &from, RUNNING_DEADLINE_MS);
	e = event_find(&w);
	check(e != NULL && strstr(e->reason, "qemu-system-x86_64") != NULL && strstr(e->reason, "qcow2"),
	      "START_FAILED with QEMU's own line after %lld ms: '%s'", (long long)(vmc_now_ms() - t0),
	      e != NULL ? e->reason : "no such event");
	check(!vmcd_vm_is_running(T.vm_b, NULL) && !run_file_exists(T.vm_b, ".pid"),
	      "nothing left of the failed start");
	return T.failures == 0;
}

static bool step_noexec(void)
{
	struct vmc_group_def def;
	struct event_want w = { .vm = T.vm_b, .ev = VMCD_VM_START_FAILED, .from = T.n_events };
	const struct event_rec *e;
	size_t from = T.n_events;
	char path[PATH_MAX];
	char err[512] = "";
	char *saved = getenv("VMC_QEMU") != NULL ? strdup(getenv("VMC_QEMU")) : NULL;
	int fd;
	int rc;

	/* An executable that is not one: execv fails in the would-be QEMU. */
	snprintf(path, sizeof(path), "%s/not-a-qemu", T.tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (fd < 0 || write(fd, "\x01\x02garbage\n", 10) != 10) {
		check(false, "cannot write %s", path);
		return false;
	}
	close(fd);
	setenv("VMC_QEMU", path, 1);
	def_fill(&def, T.vm_b);
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	if (saved != NULL) {
		setenv("VMC_QEMU", saved, 1);
		free(saved);
	} else {
		unsetenv("VMC_QEMU");
	}
	if (!check(rc == 0, "start %s with a QEMU that cannot execute: rc %d %s", T.vm_b, rc, err)) {
		return false;
	}
	wait_for(cond_any_event, &from, EVENT_DEADLINE_MS);
	e = event_find(&w);
	check(e != NULL && strstr(e->reason, "cannot execute QEMU") != NULL,
	      "START_FAILED says why: '%s'", e != NULL ? e->reason : "no such event");
	check(!vmcd_vm_is_running(T.vm_b, NULL), "nothing left of the failed start");
	return T.failures == 0;
}

/*
 * One adoption of QEMU pid (VM a, running): the driver is finished and a
 * new one started without attach_all, as after a daemon that died before
 * it followed the QEMU it had started.
 */
static bool adopt_once(pid_t pid, bool without_pidfile)
{
	struct log_want lw = { .mark = log_mark(), .a = "re-attached to QEMU pid", .b = T.vm_a };
	const char *how = without_pidfile ? "found by its process" : "found by its pidfile";
	const char *line;
	struct vmc_group_def def;
	char err[512] = "";
	pid_t followed = 0;
	bool met;
	int rc;

	vmcd_vm_driver_fini();
	check(pid_alive(pid), "after driver fini QEMU pid %d still runs", (int)pid);
	if (without_pidfile) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/vms/%s.pid", T.run_dir, T.vm_a);
		check(unlink(path) == 0 && !run_file_exists(T.vm_a, ".pid"), "pidfile %s deleted",
		      path);
	}
	rc = vmcd_vm_driver_init(T.loop, T.run_dir, T.state_dir, &test_ops, NULL);
	if (!check(rc == 0, "driver init without attach_all: %d", rc)) {
		return false;
	}
	check(vmcd_vm_count() == 0, "the new driver follows nothing");
	def_fill(&def, T.vm_a);
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	check(rc == -EEXIST, "start refused, the QEMU runs here: rc %d, '%s'", rc, err);
	check(vmcd_vm_count() == 0 && pid_alive(pid), "the refused start touched nothing");
	rc = vmcd_vm_adopt(T.vm_a);
	check(rc == 0, "vmcd_vm_adopt: %d", rc);
	line = log_find(lw.mark, "adopting QEMU", how);
	check(line != NULL, "logged: '%s'", line != NULL ? line : "no line 'adopting QEMU ... found by'");
	met = vmcd_vm_is_running(T.vm_a, &followed);
	check(met && followed == pid && vmcd_vm_count() == 1, "followed with the same pid %d (%d)",
	      (int)pid, (int)followed);
	check(vmcd_vm_adopt(T.vm_a) == -EEXIST, "adopting it again: -EEXIST");
	met = wait_for(cond_log, &lw, ATTACH_DEADLINE_MS);
	check(met, "QMP re-attached (log: '%s')", met ? log_find(lw.mark, lw.a, lw.b) : "none");
	return T.failures == 0;
}

static bool step_adopt(void)
{
	struct vmc_group_def def;
	struct event_want w = { .vm = T.vm_a, .ev = VMCD_VM_RUNNING, .from = T.n_events };
	struct event_want ws = { .vm = T.vm_a, .ev = VMCD_VM_STOPPED, .from = T.n_events };
	struct event_want wr = { .vm = T.vm_a, .ev = VMCD_VM_RUNNING };
	const struct event_rec *e;
	char err[512] = "";
	pid_t pid = 0;
	int rc;

	check(vmcd_vm_adopt(T.vm_b) == -ENOENT, "adopting a VM that runs nowhere: -ENOENT");
	def_fill(&def, T.vm_a);
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	if (!check(rc == 0, "start %s: rc %d %s", T.vm_a, rc, err) ||
	    !check(wait_for(cond_event, &w, RUNNING_DEADLINE_MS), "RUNNING")) {
		return false;
	}
	vmcd_vm_is_running(T.vm_a, &pid);
	pid_remember(pid);
	wr.from = T.n_events;
	if (!adopt_once(pid, false) || !adopt_once(pid, true)) {
		return false;
	}
	check(vmcd_vm_kill(T.vm_a) == 0, "vmcd_vm_kill");
	wait_for(cond_event, &ws, EVENT_DEADLINE_MS);
	e = event_find(&ws);
	check(e != NULL && strstr(e->reason, "killed") != NULL, "STOPPED after kill: '%s'",
	      e != NULL ? e->reason : "none");
	check(event_find(&wr) == NULL, "no RUNNING event for either adoption");
	check(wait_for(cond_pid_gone, &pid, EVENT_DEADLINE_MS) && !vmcd_vm_is_running(T.vm_a, NULL),
	      "QEMU pid %d is gone", (int)pid);
	check(!run_file_exists(T.vm_a, ".pid") && !run_file_exists(T.vm_a, ".qmp"),
	      "pidfile and QMP socket removed");
	return T.failures == 0;
}

/* The decoy runs "-name VM" in a network namespace of its own. */
static bool cond_decoy_ready(const void *arg)
{
	pid_t pid = *(const pid_t *)arg;
	char path[64];
	char buf[64] = "";
	struct stat ours;
	struct stat theirs;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	f = fopen(path, "r");
	if (f == NULL) {
		return false;
	}
	if (fread(buf, 1, sizeof(buf) - 1, f) == 0) {
		buf[0] = '\0';
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	return strcmp(buf, "qemu-system-x86_64") == 0 && stat("/proc/self/ns/net", &ours) == 0 &&
	       stat(path, &theirs) == 0 && theirs.st_ino != ours.st_ino;
}

/* A decoy: a qemu-looking shell "-name VM" waiting on fd in in a new network namespace. */
static pid_t decoy_start(const char *vm, int in)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (dup2(in, 0) < 0 || unshare(CLONE_NEWNET) < 0) {
			_exit(3);
		}
		execl("/bin/sh", "qemu-system-x86_64", "-c", "read x", "-name", vm, (char *)NULL);
		_exit(4);
	}
	return pid;
}

static bool step_netns(void)
{
	struct vmc_group_def def;
	char err[512] = "";
	char path[PATH_MAX];
	int rc;
	int in[2];
	pid_t decoy;
	size_t n;
	FILE *f;

	if (pipe(in) < 0) {
		check(false, "pipe: %s", strerror(errno));
		return false;
	}
	decoy = decoy_start(T.vm_b, in[0]);
	close(in[0]);
	pid_remember(decoy);
	if (!check(decoy > 0 && wait_for(cond_decoy_ready, &decoy, EVENT_DEADLINE_MS),
		   "a decoy 'qemu-system-x86_64 ... -name %s', pid %d, in a network namespace "
		   "of its own", T.vm_b, (int)decoy)) {
		close(in[1]);
		return false;
	}
	snprintf(path, sizeof(path), "%s/vms/%s.pid", T.run_dir, T.vm_b);
	f = fopen(path, "w");
	check(f != NULL && fprintf(f, "%d\n", (int)decoy) > 0 && fclose(f) == 0,
	      "a pidfile naming the decoy");
	check(vmcd_vm_adopt(T.vm_b) == -ENOENT, "not adopted: another node's QEMU");
	check(vmcd_vm_kill(T.vm_b) == -ENOENT && pid_alive(decoy), "not killed by vmcd_vm_kill");
	def_fill(&def, T.vm_b);
	rc = vmcd_vm_start(&def, VMC_ACCEL_TCG, err, sizeof(err));
	check(rc == -EEXIST && run_file_exists(T.vm_b, ".pid") && pid_alive(decoy),
	      "start refused while its pidfile names it, the pidfile left: rc %d, '%s'", rc, err);
	n = vmcd_vm_attach_all();
	check(n == 0 && !vmcd_vm_is_running(T.vm_b, NULL), "attach_all follows %zu VM", n);
	check(pid_alive(decoy), "the decoy lives on");
	close(in[1]);
	kill(decoy, SIGKILL);
	waitpid(decoy, NULL, 0);
	/* Once the pid is no QEMU at all, the pidfile is stale. */
	n = vmcd_vm_attach_all();
	check(n == 0 && !run_file_exists(T.vm_b, ".pid"),
	      "with the decoy gone, attach_all removes the stale pidfile");
	return T.failures == 0;
}

static const struct {
	const char *name;
	bool (*run)(void);
} steps[] = {
	{ "accel", step_accel },       { "refuse", step_refuse }, { "privilege", step_privilege },
	{ "hang", step_hang },         { "start", step_start },   { "twice", step_twice },
	{ "detach", step_detach },     { "attach", step_attach }, { "crash", step_crash },
	{ "stop", step_stop },         { "kill", step_kill },     { "sigterm", step_sigterm },
	{ "badimage", step_badimage }, { "noexec", step_noexec }, { "adopt", step_adopt },
	{ "netns", step_netns },
};

int main(void)
{
	int rc;

	setup();
	rc = vmcd_vm_driver_init(T.loop, T.run_dir, T.state_dir, &test_ops, NULL);
	if (!check(rc == 0, "driver init: %d", rc)) {
		cleanup();
		return 1;
	}
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int64_t t0 = vmc_now_ms();
		bool ok;

		printf("# step %s\n", steps[i].name);
		ok = steps[i].run();
		printf("# step %s: %s in %lld ms\n", steps[i].name, ok ? "done" : "FAILED",
		       (long long)(vmc_now_ms() - t0));
		if (!ok) {
			break;
		}
	}
	cleanup();
	qb_loop_destroy(T.loop);
	for (size_t i = 0; i < T.n_log_lines; i++) {
		free(T.log_lines[i]);
	}
	printf("%s: %d failure%s\n", T.failures == 0 ? "PASS" : "FAIL", T.failures,
	       T.failures == 1 ? "" : "s");
	return T.failures == 0 ? 0 : 1;
}
