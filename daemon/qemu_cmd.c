/*
 * How a VM's QEMU is launched (qemu_cmd.h): the driver (vm_qemu.c) decides
 * when, this file knows how.
 *
 * Starting. vmcd_qemu_spawn() builds QEMU's arguments and forks a helper
 * that calls setsid() and forks QEMU, writes QEMU's pid into a pipe and
 * exits at once: QEMU is then nobody's child here, in a session of its
 * own, and lives on when vmclusterd exits. The pipe is close-on-exec in
 * QEMU, so it also carries an exec failure. QEMU's stdout and stderr go to
 * NAME.qemu.log, after a header line per start.
 *
 * Recognising. A pidfile alone proves nothing once its pid may have been
 * reused: a pid is NAME's QEMU when /proc/PID/cmdline says qemu and
 * "-name NAME", as every command line built here does.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"
#include "log.h"
#include "qemu_cmd.h"
#include "qmp.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define LAST_LINE_SCAN 4096
#define PROC_CMDLINE_MAX (256 * 1024)
#define IFNAMSIZ_MAX 64

/* One record on the spawn pipe: written whole (< PIPE_BUF), read whole. */
struct spawn_msg {
	int32_t kind;
	int32_t value;
};

_Static_assert(sizeof(struct spawn_msg) == sizeof(((struct vmcd_qemu_spawn_pipe *)0)->buf),
	       "the spawn pipe's buffer holds one record");

enum spawn_kind {
	SPAWN_PID = 1,          /* value: QEMU's pid (from the helper) */
	SPAWN_FORK_FAILED,      /* value: errno of the helper's fork */
	SPAWN_EXEC_FAILED,      /* value: errno of execv, from the would-be QEMU */
};

/* ---- a VM's files ---- */

int vmcd_qemu_file_path(const struct vmcd_qemu_dirs *dirs, const char *name, enum vmcd_qemu_file f,
			char *buf, size_t len)
{
	const char *dir = (f == VMCD_QEMU_FILE_PID || f == VMCD_QEMU_FILE_QMP) ? dirs->run : dirs->state;
	static const char *const suffix[] = {
		[VMCD_QEMU_FILE_PID] = ".pid",
		[VMCD_QEMU_FILE_QMP] = ".qmp",
		[VMCD_QEMU_FILE_SERIAL] = ".serial.log",
		[VMCD_QEMU_FILE_LOG] = ".qemu.log",
	};

	return (size_t)snprintf(buf, len, "%s/%s%s", dir, name, suffix[f]) < len ? 0 : -ENAMETOOLONG;
}

/* ---- building QEMU's command line ---- */

struct argv {
	char **v;
	size_t n;
	size_t cap;
	bool oom;
};

static void argv_add(struct argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argv_add(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (a->oom) {
		return;
	}
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap == 0 ? 64 : a->cap * 2;
		char **v = realloc(a->v, cap * sizeof(*v));

		if (v == NULL) {
			a->oom = true;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		a->oom = true;
		va_end(ap);
		return;
	}
	va_end(ap);
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void argv_free(struct argv *a)
{
	for (size_t i = 0; i < a->n; i++) {
		free(a->v[i]);
	}
	free(a->v);
}

/* QEMU's option syntax: a comma inside a value is written twice. */
static void opt_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in != '\0' && o + 2 < len; in++) {
		out[o++] = *in;
		if (*in == ',') {
			out[o++] = ',';
		}
	}
	out[o] = '\0';
}

/* A stable locally administered MAC for NIC idx of name (52:54:00 is QEMU's prefix). */
static void mac_derive(const char *name, size_t idx, char *out, size_t len)
{
	uint32_t h = 2166136261u;

	for (const char *p = name; *p != '\0'; p++) {
		h = (h ^ (unsigned char)*p) * 16777619u;
	}
	h = (h ^ (uint32_t)idx) * 16777619u;
	snprintf(out, len, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

/* -blockdev in JSON (a path with commas needs no escaping) + virtio-blk. */
static void argv_add_disks(struct argv *a, const struct vmc_group_def *def)
{
	for (size_t i = 0; i < def->n_disks; i++) {
		struct stat st;
		json_object *file = json_object_new_object();
		json_object *node = json_object_new_object();
		bool blockdev = stat(def->disks[i].path, &st) == 0 && S_ISBLK(st.st_mode);
		char nodename[32];

		snprintf(nodename, sizeof(nodename), "vmc-disk%zu", i);
		json_object_object_add(file, "driver",
				       json_object_new_string(blockdev ? "host_device" : "file"));
		json_object_object_add(file, "filename", json_object_new_string(def->disks[i].path));
		json_object_object_add(node, "driver", json_object_new_string(def->disks[i].format));
		json_object_object_add(node, "node-name", json_object_new_string(nodename));
		json_object_object_add(node, "file", file);
		argv_add(a, "-blockdev");
		argv_add(a, "%s", json_object_to_json_string_ext(node, JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(node);
		argv_add(a, "-device");
		argv_add(a, "virtio-blk-pci,drive=%s,id=vmc-virtio-disk%zu%s", nodename, i,
			 !def->has_boot && i == 0 ? ",bootindex=1" : "");
	}
}

/* A tap on the bridge through qemu-bridge-helper, virtio-net, a stable MAC. */
static void argv_add_nics(struct argv *a, const struct vmc_group_def *def)
{
	char esc[2 * IFNAMSIZ_MAX];

	if (def->n_nics == 0) {
		argv_add(a, "-nic");
		argv_add(a, "none");
	}
	for (size_t i = 0; i < def->n_nics; i++) {
		char mac[32];

		if (def->nics[i].mac != NULL) {
			snprintf(mac, sizeof(mac), "%s", def->nics[i].mac);
		} else {
			mac_derive(def->name, i, mac, sizeof(mac));
		}
		opt_escape(def->nics[i].bridge, esc, sizeof(esc));
		argv_add(a, "-netdev");
		argv_add(a, "bridge,id=vmc-net%zu,br=%s", i, esc);
		argv_add(a, "-device");
		argv_add(a, "virtio-net-pci,netdev=vmc-net%zu,mac=%s,id=vmc-nic%zu", i, mac, i);
	}
}

static void qemu_argv_build(struct argv *a, const char *qemu, const struct vmcd_qemu_dirs *dirs,
			    const struct vmc_group_def *def, enum vmc_accel accel)
{
	char path[PATH_MAX];
	char esc[2 * PATH_MAX];

	argv_add(a, "%s", qemu);
	argv_add(a, "-name");
	argv_add(a, "%s,process=vmc-%s", def->name, def->name);
	argv_add(a, "-nodefaults");
	argv_add(a, "-no-user-config");
	argv_add(a, "-nographic");
	argv_add(a, "-machine");
	argv_add(a, "pc");
	argv_add(a, "-accel");
	argv_add(a, "%s", accel == VMC_ACCEL_KVM ? "kvm" : "tcg");
	argv_add(a, "-m");
	argv_add(a, "%u", def->memory_mib);
	argv_add(a, "-smp");
	argv_add(a, "%u", def->vcpus);
	vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_PID, path, sizeof(path));
	argv_add(a, "-pidfile");
	argv_add(a, "%s", path);
	vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_QMP, path, sizeof(path));
	opt_escape(path, esc, sizeof(esc));
	argv_add(a, "-chardev");
	argv_add(a, "socket,id=vmc-qmp,path=%s,server=on,wait=off", esc);
	argv_add(a, "-mon");
	argv_add(a, "chardev=vmc-qmp,mode=control");
	vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_SERIAL, path, sizeof(path));
	opt_escape(path, esc, sizeof(esc));
	argv_add(a, "-chardev");
	argv_add(a, "file,id=vmc-serial0,path=%s,append=on", esc);
	argv_add(a, "-serial");
	argv_add(a, "chardev:vmc-serial0");
	/* A guest panic (with Linux's pvpanic driver) is GUEST_PANICKED, then QEMU exits. */
	argv_add(a, "-device");
	argv_add(a, "pvpanic");
	argv_add(a, "-action");
	argv_add(a, "panic=shutdown");
	if (def->has_boot) {
		argv_add(a, "-kernel");
		argv_add(a, "%s", def->kernel);
		if (def->initrd != NULL) {
			argv_add(a, "-initrd");
			argv_add(a, "%s", def->initrd);
		}
		if (def->cmdline != NULL) {
			argv_add(a, "-append");
			argv_add(a, "%s", def->cmdline);
		}
	}
	argv_add_disks(a, def);
	argv_add_nics(a, def);
}

/* ---- is this pid a VM's QEMU? ---- */

pid_t vmcd_qemu_pidfile_read(const char *path)
{
	char buf[32];
	ssize_t n;
	long v;
	char *end;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		return errno == ENOENT ? 0 : -errno;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return -EINVAL;
	}
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || v <= 1 || v > INT_MAX) {
		return -EINVAL;
	}
	return (pid_t)v;
}

bool vmcd_qemu_pid_alive(pid_t pid)
{
	char path[64];
	char buf[256];
	ssize_t n;
	char *p;
	int fd;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM)) {
		return false;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return errno != ENOENT;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return true;
	}
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p == NULL || p[1] == '\0' || p[2] != 'Z';
}

bool vmcd_qemu_pid_is_vm(pid_t pid, const char *name)
{
	char path[64];
	char *buf;
	ssize_t n;
	size_t have = 0;
	size_t nlen = strlen(name);
	const char *arg;
	const char *base;
	bool name_next = false;
	bool match = false;
	int fd;

	if (!vmcd_qemu_pid_alive(pid)) {
		return false;
	}
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return false;
	}
	buf = malloc(PROC_CMDLINE_MAX + 1);
	if (buf == NULL) {
		close(fd);
		return false;
	}
	while (have < PROC_CMDLINE_MAX && (n = read(fd, buf + have, PROC_CMDLINE_MAX - have)) > 0) {
		have += (size_t)n;
	}
	close(fd);
	buf[have] = '\0';
	base = strrchr(buf, '/');
	base = base != NULL ? base + 1 : buf;
	if (have == 0 || strncmp(base, "qemu", 4) != 0) {
		free(buf);
		return false;
	}
	for (arg = buf; arg < buf + have; arg += strlen(arg) + 1) {
		if (name_next) {
			const char *v = strncmp(arg, "guest=", 6) == 0 ? arg + 6 : arg;

			if (strncmp(v, name, nlen) == 0 && (v[nlen] == '\0' || v[nlen] == ',')) {
				match = true;
				break;
			}
			name_next = false;
		} else if (strcmp(arg, "-name") == 0 || strcmp(arg, "--name") == 0) {
			name_next = true;
		}
	}
	free(buf);
	return match;
}

pid_t vmcd_qemu_pid_from_pidfile(const struct vmcd_qemu_dirs *dirs, const char *name)
{
	char path[PATH_MAX];
	pid_t pid;

	if (vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_PID, path, sizeof(path)) < 0) {
		return 0;
	}
	pid = vmcd_qemu_pidfile_read(path);
	return pid > 0 && vmcd_qemu_pid_is_vm(pid, name) ? pid : 0;
}

/* ---- checks before a start ---- */

static int file_check(const char *what, const char *path, bool block_ok, bool write, char *err,
		      size_t errlen)
{
	struct stat st;

	if (path == NULL || path[0] == '\0') {
		snprintf(err, errlen, "%s: no path given", what);
		return -EINVAL;
	}
	if (stat(path, &st) < 0) {
		int rc = -errno;

		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return rc;
	}
	if (!S_ISREG(st.st_mode) && !(block_ok && S_ISBLK(st.st_mode))) {
		snprintf(err, errlen, "%s %s: not a regular file%s", what, path,
			 block_ok ? " or block device" : "");
		return -EINVAL;
	}
	if (access(path, write ? R_OK | W_OK : R_OK) < 0) {
		int rc = -errno;

		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return rc;
	}
	return 0;
}

int vmcd_qemu_def_check(const struct vmc_group_def *def, char *err, size_t errlen)
{
	struct sysinfo si;
	int rc;

	if (def->name == NULL || !vmc_valid_name(def->name)) {
		snprintf(err, errlen, "invalid VM name '%s'", def->name != NULL ? def->name : "");
		return -EINVAL;
	}
	if (def->memory_mib < VMC_MEMORY_MIB_MIN || def->memory_mib > VMC_MEMORY_MIB_MAX) {
		snprintf(err, errlen, "memory %u MiB: not between %d and %d", def->memory_mib,
			 VMC_MEMORY_MIB_MIN, VMC_MEMORY_MIB_MAX);
		return -EINVAL;
	}
	if (sysinfo(&si) == 0) {
		uint64_t host_mib = (uint64_t)si.totalram * si.mem_unit / (1024 * 1024);

		if (def->memory_mib > host_mib) {
			snprintf(err, errlen, "memory %u MiB: more than this node has (%llu MiB)",
				 def->memory_mib, (unsigned long long)host_mib);
			return -EINVAL;
		}
	}
	if (def->vcpus < 1 || def->vcpus > VMC_VCPUS_MAX) {
		snprintf(err, errlen, "vcpus %u: not between 1 and %d", def->vcpus, VMC_VCPUS_MAX);
		return -EINVAL;
	}
	if (!def->has_boot && def->n_disks == 0) {
		snprintf(err, errlen, "nothing to boot: neither a kernel nor a disk");
		return -EINVAL;
	}
	if (def->has_boot) {
		rc = file_check("kernel", def->kernel, false, false, err, errlen);
		if (rc < 0) {
			return rc;
		}
		if (def->initrd != NULL) {
			rc = file_check("initrd", def->initrd, false, false, err, errlen);
			if (rc < 0) {
				return rc;
			}
		}
	}
	for (size_t i = 0; i < def->n_disks; i++) {
		const char *fmt = def->disks[i].format;

		if (fmt == NULL || (strcmp(fmt, "raw") != 0 && strcmp(fmt, "qcow2") != 0)) {
			snprintf(err, errlen, "disk %s: format '%s' is not raw or qcow2", def->disks[i].path,
				 fmt != NULL ? fmt : "");
			return -EINVAL;
		}
		rc = file_check("disk", def->disks[i].path, true, true, err, errlen);
		if (rc < 0) {
			return rc;
		}
	}
	for (size_t i = 0; i < def->n_nics; i++) {
		char path[PATH_MAX];
		struct stat st;
		const char *br = def->nics[i].bridge;

		if (br == NULL || br[0] == '\0' || strchr(br, '/') != NULL ||
		    (size_t)snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", br) >= sizeof(path) ||
		    stat(path, &st) < 0) {
			snprintf(err, errlen, "nic %zu: bridge '%s' does not exist on this node", i,
				 br != NULL ? br : "");
			return -ENOENT;
		}
	}
	return 0;
}

/*
 * Does NAME run here outside the driver's table? 1 (pid in *pid, or 0 when
 * only its QMP socket answers), 0 (stale files removed), -errno.
 */
static int vm_running_elsewhere(const struct vmcd_qemu_dirs *dirs, const char *name, pid_t *pid)
{
	char path[PATH_MAX];
	pid_t p;
	int rc;
	int fd;

	*pid = 0;
	if (vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_PID, path, sizeof(path)) < 0) {
		return -ENAMETOOLONG;
	}
	p = vmcd_qemu_pidfile_read(path);
	if (p > 0 && vmcd_qemu_pid_is_vm(p, name)) {
		*pid = p;
		return 1;
	}
	if (p != 0) {
		qb_log(LOG_INFO, "VM %s: removing stale pidfile %s (pid %d is no QEMU for it)", name, path,
		       (int)p);
		unlink(path);
	}
	if (vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_QMP, path, sizeof(path)) < 0) {
		return -ENAMETOOLONG;
	}
	rc = vmc_qmp_fd_connect(path, &fd);
	if (rc == 0 || rc == -EAGAIN) {
		if (rc == 0) {
			close(fd);
		}
		return 1;
	}
	if (rc == -ECONNREFUSED) {
		qb_log(LOG_INFO, "VM %s: removing stale QMP socket %s", name, path);
		unlink(path);
	}
	return 0;
}

int vmcd_qemu_host_check(const struct vmcd_qemu_dirs *dirs, const struct vmc_group_def *def,
			 enum vmc_accel *accel, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char path[PATH_MAX];
	pid_t pid;
	int rc;

	if (*accel == VMC_ACCEL_AUTO && !vmcd_accel_auto_cached(accel)) {
		snprintf(err, errlen, "accel auto: KVM has not been probed yet "
			 "(vmcd_accel_resolve() must run before the loop)");
		return -EINVAL;
	}
	if (vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_QMP, path, sizeof(path)) < 0 ||
	    strlen(path) >= sizeof(sun.sun_path) ||
	    vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_LOG, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "VM %s: run or state directory path too long for a QMP socket",
			 def->name);
		return -ENAMETOOLONG;
	}
	rc = vm_running_elsewhere(dirs, def->name, &pid);
	if (rc > 0 && pid > 0) {
		snprintf(err, errlen, "VM %s already runs on this node (QEMU pid %d from its pidfile, "
			 "not followed: vmcd_vm_attach_all)", def->name, (int)pid);
	} else if (rc > 0) {
		snprintf(err, errlen, "VM %s: a QEMU answers on its QMP socket though its pidfile "
			 "names none", def->name);
	} else if (rc < 0) {
		snprintf(err, errlen, "VM %s: %s", def->name, strerror(-rc));
	}
	return rc > 0 ? -EEXIST : rc;
}

/* ---- spawning ---- */

struct spawn_plan {
	char *const *argv;
	int devnull;
	int log_fd;
	int pipe_w;
	long max_fd;
};

static void spawn_write(int fd, int32_t kind, int32_t value)
{
	struct spawn_msg m = { .kind = kind, .value = value };
	ssize_t n;

	do {
		n = write(fd, &m, sizeof(m));
	} while (n < 0 && errno == EINTR);
}

/* In the would-be QEMU: async-signal-safe calls only (we forked a daemon). */
static void spawn_exec(const struct spawn_plan *p)
{
	int devnull = fcntl(p->devnull, F_DUPFD, 10);
	int log_fd = fcntl(p->log_fd, F_DUPFD, 10);
	int pipe_w = fcntl(p->pipe_w, F_DUPFD, 10);
	sigset_t none;

	if (devnull < 0 || log_fd < 0 || pipe_w < 0 || dup2(devnull, 0) < 0 || dup2(log_fd, 1) < 0 ||
	    dup2(log_fd, 2) < 0 || dup3(pipe_w, 3, O_CLOEXEC) < 0) {
		if (pipe_w >= 0) {
			spawn_write(pipe_w, SPAWN_EXEC_FAILED, errno);
		}
		_exit(127);
	}
	/* Nothing of the daemon's (corosync, IPC, other VMs' QMP) may leak into QEMU. */
	if (syscall(SYS_close_range, 4, ~0U, 0) < 0) {
		for (long fd = 4; fd < p->max_fd; fd++) {
			close((int)fd);
		}
	}
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa = { .sa_handler = SIG_DFL };

		sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* QMP is full control of the VM, the serial log the guest's console: root only. */
	umask(027);
	if (chdir("/") < 0) {
		_exit(127);
	}
	execv(p->argv[0], p->argv);
	spawn_write(3, SPAWN_EXEC_FAILED, errno);
	_exit(127);
}

/* In the helper: a session of its own, then QEMU as its child, then exit. */
static void spawn_helper(const struct spawn_plan *p)
{
	pid_t pid;

	setsid();
	pid = fork();
	if (pid == 0) {
		spawn_exec(p);
	}
	if (pid < 0) {
		spawn_write(p->pipe_w, SPAWN_FORK_FAILED, errno);
	} else {
		spawn_write(p->pipe_w, SPAWN_PID, pid);
	}
	_exit(0);
}

/* Opens NAME.qemu.log for appending and writes the start header. */
static int qemu_log_open(const struct vmcd_qemu_dirs *dirs, const char *name, const struct argv *a,
			 off_t *offset)
{
	char path[PATH_MAX];
	char stamp[64];
	time_t t = time(NULL);
	struct tm tm;
	FILE *f;
	int fd;

	vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_LOG, path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		return -errno;
	}
	localtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	f = fdopen(dup(fd), "a");
	if (f != NULL) {
		fprintf(f, "%s vmclusterd: starting VM %s:", stamp, name);
		for (size_t i = 0; i < a->n; i++) {
			fprintf(f, " %s", a->v[i]);
		}
		fputc('\n', f);
		fclose(f);
	}
	*offset = lseek(fd, 0, SEEK_END);
	return fd;
}

/* Forks the helper that starts QEMU (spawn_helper). */
int vmcd_qemu_spawn(const struct vmcd_qemu_dirs *dirs, const struct vmc_group_def *def,
		    enum vmc_accel accel, pid_t *helper, struct vmcd_qemu_spawn_pipe *spawn,
		    off_t *log_offset, char *err, size_t errlen)
{
	struct spawn_plan plan;
	struct argv a = { 0 };
	char qemu[PATH_MAX];
	char path[PATH_MAX];
	int pipefd[2] = { -1, -1 };
	int log_fd = -1;
	int devnull = -1;
	pid_t pid;
	int rc;

	rc = vmcd_qemu_find(qemu, sizeof(qemu));
	if (rc < 0) {
		snprintf(err, errlen, "cannot find qemu-system-x86_64: %s", strerror(-rc));
		return rc;
	}
	qemu_argv_build(&a, qemu, dirs, def, accel);
	if (a.oom) {
		argv_free(&a);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	log_fd = qemu_log_open(dirs, def->name, &a, log_offset);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (log_fd < 0 || devnull < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		rc = log_fd < 0 ? log_fd : -errno;
		snprintf(err, errlen, "cannot start QEMU: %s%s", log_fd < 0 ? "opening its log: " : "",
			 strerror(-rc));
		goto out;
	}
	/* The pidfile is QEMU's to write; a stale one must not be taken for it. */
	vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_PID, path, sizeof(path));
	unlink(path);

	plan.argv = a.v;
	plan.devnull = devnull;
	plan.log_fd = log_fd;
	plan.pipe_w = pipefd[1];
	plan.max_fd = sysconf(_SC_OPEN_MAX) > 0 ? sysconf(_SC_OPEN_MAX) : 1024;
	pid = fork();
	if (pid == 0) {
		spawn_helper(&plan);
	}
	if (pid < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot fork: %s", strerror(-rc));
		close(pipefd[0]);
		goto out;
	}
	*helper = pid;
	spawn->fd = pipefd[0];
	spawn->have = 0;
	fcntl(spawn->fd, F_SETFL, O_NONBLOCK);
out:
	if (pipefd[1] >= 0) {
		close(pipefd[1]);
	}
	if (devnull >= 0) {
		close(devnull);
	}
	if (log_fd >= 0) {
		close(log_fd);
	}
	argv_free(&a);
	return rc;
}

/* ---- what came of it: the spawn pipe, QEMU's log ---- */

bool vmcd_qemu_spawn_read(struct vmcd_qemu_spawn_pipe *p, pid_t *pid, bool *got_pid, bool *failed,
			  char *why, size_t whylen)
{
	for (;;) {
		ssize_t n = read(p->fd, p->buf + p->have, sizeof(p->buf) - p->have);
		struct spawn_msg m;

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0 && errno == EAGAIN) {
			return true;
		}
		if (n <= 0) {
			return false;
		}
		p->have += (size_t)n;
		if (p->have < sizeof(m)) {
			continue;
		}
		memcpy(&m, p->buf, sizeof(m));
		p->have = 0;
		if (m.kind == SPAWN_PID && m.value > 1) {
			*pid = (pid_t)m.value;
			*got_pid = true;
		} else if (m.kind == SPAWN_FORK_FAILED) {
			snprintf(why, whylen, "cannot fork QEMU: %s", strerror(m.value));
			*failed = true;
		} else if (m.kind == SPAWN_EXEC_FAILED) {
			snprintf(why, whylen, "cannot execute QEMU: %s", strerror(m.value));
		}
	}
}

void vmcd_qemu_log_last_line(const struct vmcd_qemu_dirs *dirs, const char *name, off_t from,
			     char *out, size_t len)
{
	char path[PATH_MAX];
	char buf[LAST_LINE_SCAN + 1];
	struct stat st;
	ssize_t n;
	char *end;
	char *start;
	int fd;

	out[0] = '\0';
	if (vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_LOG, path, sizeof(path)) < 0) {
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= from) {
		close(fd);
		return;
	}
	if (st.st_size - from > LAST_LINE_SCAN) {
		from = st.st_size - LAST_LINE_SCAN;
	}
	n = pread(fd, buf, LAST_LINE_SCAN, from);
	close(fd);
	if (n <= 0) {
		return;
	}
	buf[n] = '\0';
	end = buf + n;
	while (end > buf && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ')) {
		end--;
	}
	*end = '\0';
	start = end;
	while (start > buf && start[-1] != '\n') {
		start--;
	}
	snprintf(out, len, "%.*s", (int)(len - 1), start);
}
