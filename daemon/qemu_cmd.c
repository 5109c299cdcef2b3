/*
 * How a VM's QEMU is launched (qemu_cmd.h): the driver (vm_qemu.c) decides
 * when, this file knows how.
 *
 * Starting. vmcd_qemu_spawn() opens NAME.qemu.log and forks a helper. The
 * helper calls setsid(), closes what it inherited of the daemon, and only
 * then looks at the VM's own files (kernel, initrd, disks, which may sit
 * on a hung NFS mount): the daemon never stats them, so a hung file
 * system stalls the helper, which the driver kills with its session at
 * a deadline, and not the loop. When every check passes, the helper
 * builds QEMU's arguments, writes a header line per start to the log,
 * forks QEMU, writes QEMU's pid into the spawn pipe and exits at once:
 * QEMU is then nobody's child here, in a session of its own, and lives
 * on when vmclusterd exits. The pipe is close-on-exec in QEMU, so it also
 * carries an exec failure. QEMU's stdout and stderr go to the log.
 *
 * The spawn pipe: records of {kind, text length, value} (16 bytes), a
 * check failure's text after them, each written by one write() under
 * PIPE_BUF so that it arrives whole:
 *
 *   helper   CHECK_FAILED "vmclusterd: cannot start VM NAME: kernel PATH: why"
 *            | LOG_OFFSET where QEMU's lines start, then PID or FORK_FAILED
 *   QEMU     EXEC_FAILED errno (only when execv failed)
 *
 * The daemon is single-threaded, so the helper, a fork of it, may call
 * what it likes (realpath, snprintf, malloc); the would-be QEMU only
 * async-signal-safe functions, as a matter of habit.
 *
 * Recognising. A pidfile alone proves nothing once its pid may have been
 * reused: a pid is NAME's QEMU when /proc/PID/cmdline says qemu and
 * "-name NAME", as every command line built here does, and when it runs
 * in our own mount and network namespaces.
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
#include "privilege.h"
#include "qemu_cmd.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

#define LAST_LINE_SCAN 4096
#define PROC_CMDLINE_MAX (256 * 1024)
#define IFNAMSIZ_MAX 64

/* The fixed part of a spawn pipe record; text follows when len > 0. */
struct spawn_msg {
	int32_t kind;
	uint32_t len;
	int64_t value;
};

_Static_assert(sizeof(struct spawn_msg) + VMCD_QEMU_WHY_MAX == VMCD_QEMU_SPAWN_RECORD_MAX,
	       "the spawn pipe's buffer holds one record");
_Static_assert(VMCD_QEMU_SPAWN_RECORD_MAX <= PIPE_BUF, "a record is written atomically");

enum spawn_kind {
	SPAWN_PID = 1,      /* value: QEMU's pid (from the helper) */
	SPAWN_FORK_FAILED,  /* value: errno of the helper's fork */
	SPAWN_EXEC_FAILED,  /* value: errno of execv, from the would-be QEMU */
	SPAWN_LOG_OFFSET,   /* value: where QEMU's lines start in NAME.qemu.log */
	SPAWN_CHECK_FAILED, /* text: the line written to NAME.qemu.log */
};

/* ---- a VM's files ---- */

int vmcd_qemu_file_path(const struct vmcd_qemu_dirs *dirs, const char *name, enum vmcd_qemu_file f,
			char *buf, size_t len)
{
	const char *dir = (f == VMCD_QEMU_FILE_PID || f == VMCD_QEMU_FILE_QMP || f == VMCD_QEMU_FILE_MIGRATE_QMP)
				  ? dirs->run
				  : dirs->state;
	static const char *const suffix[] = {
		[VMCD_QEMU_FILE_PID] = ".pid",
		[VMCD_QEMU_FILE_QMP] = ".qmp",
		[VMCD_QEMU_FILE_MIGRATE_QMP] = ".migrate.qmp",
		[VMCD_QEMU_FILE_SERIAL] = ".serial.log",
		[VMCD_QEMU_FILE_LOG] = ".qemu.log",
	};

	return (size_t)snprintf(buf, len, "%s/%s%s", dir, name, suffix[f]) < len ? 0 : -ENAMETOOLONG;
}

/* ---- building QEMU's command line (in the spawn helper, which exits after) ---- */

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
		/* A qcow2 header may name a backing file: QEMU (root) must open only what was checked. */
		if (strcmp(def->disks[i].format, "qcow2") == 0) {
			json_object_object_add(node, "backing", NULL);
		}
		argv_add(a, "-blockdev");
		argv_add(a, "%s", json_object_to_json_string_ext(node, JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(node);
		argv_add(a, "-device");
		/* A disk on a shared volume stops the VM on an I/O error (the driver then
		 * kills it) rather than let the guest see it or go on without its lease. */
		argv_add(a, "virtio-blk-pci,drive=%s,id=vmc-virtio-disk%zu%s%s", nodename, i,
			 !def->has_boot && i == 0 ? ",bootindex=1" : "",
			 def->disks[i].local ? "" : ",werror=stop,rerror=stop");
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

/* The daemon's monitor, and the migration agent's: QMP takes one client per socket. */
static void argv_add_monitors(struct argv *a, const struct vmcd_qemu_dirs *dirs, const char *name)
{
	static const struct {
		enum vmcd_qemu_file file;
		const char *id;
	} mons[] = { { VMCD_QEMU_FILE_QMP, "vmc-qmp" }, { VMCD_QEMU_FILE_MIGRATE_QMP, "vmc-migrate-qmp" } };
	char path[PATH_MAX];
	char esc[2 * PATH_MAX];

	for (size_t i = 0; i < sizeof(mons) / sizeof(mons[0]); i++) {
		vmcd_qemu_file_path(dirs, name, mons[i].file, path, sizeof(path));
		opt_escape(path, esc, sizeof(esc));
		argv_add(a, "-chardev");
		argv_add(a, "socket,id=%s,path=%s,server=on,wait=off", mons[i].id, esc);
		argv_add(a, "-mon");
		argv_add(a, "chardev=%s,mode=control", mons[i].id);
	}
}

static void qemu_argv_build(struct argv *a, const char *qemu, const struct vmcd_qemu_dirs *dirs,
			    const struct vmc_group_def *def, enum vmc_accel accel, bool incoming)
{
	char path[PATH_MAX];
	char esc[2 * PATH_MAX];

	argv_add(a, "%s", qemu);
	argv_add(a, "-name");
	/* debug-threads: vCPU threads named "CPU n/TCG", so a watcher can tell a paused QEMU from a running one. */
	argv_add(a, "%s,process=vmc-%s,debug-threads=on", def->name, def->name);
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
	if (def->cpu != NULL) {
		argv_add(a, "-cpu");
		argv_add(a, "%s", def->cpu);
	}
	vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_PID, path, sizeof(path));
	argv_add(a, "-pidfile");
	argv_add(a, "%s", path);
	argv_add_monitors(a, dirs, def->name);
	if (incoming) {
		argv_add(a, "-incoming");
		argv_add(a, "defer");
		argv_add(a, "-S");
	}
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

/*
 * pid shares our namespace of this kind (namespaces(7): the same device
 * and inode). A kernel without it (no such file for us) does not tell.
 */
static bool namespace_ours(pid_t pid, const char *ns)
{
	char path[64];
	struct stat ours;
	struct stat theirs;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	if (stat(path, &ours) < 0) {
		return true;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	return stat(path, &theirs) == 0 && theirs.st_dev == ours.st_dev &&
	       theirs.st_ino == ours.st_ino;
}

/* /proc/PID/cmdline is a qemu's, with "-name NAME" (or NAME,... or guest=NAME). */
static bool cmdline_names_vm(pid_t pid, const char *name)
{
	char path[64];
	char *buf;
	ssize_t n;
	size_t have = 0;
	size_t nlen = strlen(name);
	const char *base;
	bool is_qemu;
	bool name_next = false;
	bool match = false;
	int fd;

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
	is_qemu = have > 0 && strncmp(base, "qemu", 4) == 0;
	for (const char *arg = buf; is_qemu && arg < buf + have; arg += strlen(arg) + 1) {
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

static bool namespaces_ours(pid_t pid)
{
	return namespace_ours(pid, "mnt") && namespace_ours(pid, "net");
}

bool vmcd_qemu_pid_is_vm(pid_t pid, const char *name)
{
	/* Namespaces first: they are cheap, and a /proc scan asks about every process. */
	return vmcd_qemu_pid_alive(pid) && namespaces_ours(pid) && cmdline_names_vm(pid, name);
}

bool vmcd_qemu_pid_is_vm_elsewhere(pid_t pid, const char *name)
{
	return vmcd_qemu_pid_alive(pid) && !namespaces_ours(pid) && cmdline_names_vm(pid, name);
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

/* ---- checks before a start, in the daemon: no file system call on the VM's paths ---- */

static int path_given(const char *what, const char *path, char *err, size_t errlen)
{
	if (path == NULL || path[0] == '\0') {
		snprintf(err, errlen, "%s: no path given", what);
		return -EINVAL;
	}
	return 0;
}

static int def_size_check(const struct vmc_group_def *def, char *err, size_t errlen)
{
	struct sysinfo si;

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
	return 0;
}

int vmcd_qemu_def_check(const struct vmc_group_def *def, char *err, size_t errlen)
{
	int rc;

	if (def->name == NULL || !vmc_valid_name(def->name)) {
		snprintf(err, errlen, "invalid VM name '%s'", def->name != NULL ? def->name : "");
		return -EINVAL;
	}
	rc = def_size_check(def, err, errlen);
	if (rc < 0) {
		return rc;
	}
	if (!def->has_boot && def->n_disks == 0) {
		snprintf(err, errlen, "nothing to boot: neither a kernel nor a disk");
		return -EINVAL;
	}
	if (def->has_boot) {
		rc = path_given("kernel", def->kernel, err, errlen);
		if (rc == 0 && def->initrd != NULL) {
			rc = path_given("initrd", def->initrd, err, errlen);
		}
	}
	for (size_t i = 0; rc == 0 && i < def->n_disks; i++) {
		const char *fmt = def->disks[i].format;

		rc = path_given("disk", def->disks[i].path, err, errlen);
		if (rc == 0 &&
		    (fmt == NULL || (strcmp(fmt, "raw") != 0 && strcmp(fmt, "qcow2") != 0))) {
			snprintf(err, errlen, "disk %s: format '%s' is not raw or qcow2",
				 def->disks[i].path, fmt != NULL ? fmt : "");
			rc = -EINVAL;
		}
	}
	return rc;
}

int vmcd_qemu_host_check(const struct vmcd_qemu_dirs *dirs, const struct vmc_group_def *def,
			 enum vmc_accel *accel, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char path[PATH_MAX];

	if (*accel == VMC_ACCEL_AUTO && !vmcd_accel_auto_cached(accel)) {
		snprintf(err, errlen, "accel auto: KVM has not been probed yet "
			 "(vmcd_accel_resolve() must run before the loop)");
		return -EINVAL;
	}
	if (vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_QMP, path, sizeof(path)) < 0 ||
	    strlen(path) >= sizeof(sun.sun_path) ||
	    vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_LOG, path, sizeof(path)) < 0 ||
	    vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_SERIAL, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "VM %s: run or state directory path too long for a QMP socket",
			 def->name);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* ---- checks in the spawn helper: the VM's own files ---- */

static char vm_paths[PATH_MAX];

void vmcd_qemu_vm_paths_set(const char *paths)
{
	snprintf(vm_paths, sizeof(vm_paths), "%s", paths != NULL ? paths : "");
}

int vmcd_qemu_path_allowed(const char *paths, const char *what, const char *path, char *why, size_t len)
{
	const char *dir = paths;

	if (paths == NULL || paths[0] == '\0') {
		return 0;
	}
	while (*dir != '\0') {
		size_t n = strcspn(dir, ":");
		while (n > 1 && dir[n - 1] == '/') {
			n--; /* "/srv/" is "/srv" */
		}
		if (n > 0 && strncmp(path, dir, n) == 0 && (path[n] == '/' || (n == 1 && dir[0] == '/'))) {
			return 0;
		}
		dir += strcspn(dir, ":");
		dir += *dir == ':';
	}
	snprintf(why, len, "%s %s: not in a directory VMs may use (vm-paths %s); add its directory to "
		 "vm-paths in vmcluster.conf on every node", what, path, paths);
	return -EPERM;
}

/*
 * One of the VM's files, by its real path (links resolved, which QEMU is
 * then given, so a link changed after the check opens nothing else).
 */
static int file_check(const char *what, const char *path, bool disk, char *real, char *why, size_t len)
{
	struct stat st;
	int rc;

	if (realpath(path, real) == NULL) {
		rc = -errno;
		snprintf(why, len, "%s %s: %s", what, path, strerror(errno));
		return rc;
	}
	if (strcmp(path, real) != 0) {
		char label[PATH_MAX + 32];
		snprintf(label, sizeof(label), "%s %s ->", what, path);
		rc = vmcd_qemu_path_allowed(vm_paths, label, real, why, len);
	} else {
		rc = vmcd_qemu_path_allowed(vm_paths, what, real, why, len);
	}
	if (rc < 0) {
		return rc;
	}
	path = real;
	if (stat(path, &st) < 0) {
		rc = -errno;
		snprintf(why, len, "%s %s: %s", what, path, strerror(errno));
		return rc;
	}
	if (!S_ISREG(st.st_mode) && !(disk && S_ISBLK(st.st_mode))) {
		snprintf(why, len, "%s %s: not a regular file%s", what, path,
			 disk ? " or block device" : "");
		return -EINVAL;
	}
	if (access(path, disk ? R_OK | W_OK : R_OK) < 0) {
		rc = -errno;
		snprintf(why, len, "%s %s: %s", what, path, strerror(errno));
		return rc;
	}
	/* QEMU runs as root: only what root alone could have put there. */
	return vmcd_path_root_safe(what, path, disk, why, len);
}

static int bridge_check(size_t i, const char *br, char *why, size_t len)
{
	char path[PATH_MAX];
	struct stat st;

	if (br == NULL || br[0] == '\0' || strchr(br, '/') != NULL ||
	    (size_t)snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", br) >= sizeof(path) ||
	    stat(path, &st) < 0) {
		snprintf(why, len, "nic %zu: bridge '%s' does not exist on this node", i,
			 br != NULL ? br : "");
		return -ENOENT;
	}
	return 0;
}

/* The real paths of a VM's files, for QEMU's command line (in the helper only). */
struct real_files {
	struct vmc_group_def def;
	struct vmc_disk disks[VMC_DISKS_MAX];
	char kernel[PATH_MAX], initrd[PATH_MAX], disk[VMC_DISKS_MAX][PATH_MAX];
};

/* Checks def's files; out becomes def with their real paths. */
static int files_check(const struct vmc_group_def *def, struct real_files *out, char *why, size_t len)
{
	int rc = 0;

	out->def = *def;
	if (def->has_boot) {
		rc = file_check("kernel", def->kernel, false, out->kernel, why, len);
		out->def.kernel = out->kernel;
		if (rc == 0 && def->initrd != NULL) {
			rc = file_check("initrd", def->initrd, false, out->initrd, why, len);
			out->def.initrd = out->initrd;
		}
	}
	for (size_t i = 0; rc == 0 && i < def->n_disks && i < VMC_DISKS_MAX; i++) {
		rc = file_check("disk", def->disks[i].path, true, out->disk[i], why, len);
		out->disks[i] = def->disks[i];
		out->disks[i].path = out->disk[i];
	}
	out->def.disks = out->disks;
	for (size_t i = 0; rc == 0 && i < def->n_nics; i++) {
		rc = bridge_check(i, def->nics[i].bridge, why, len);
	}
	return rc;
}

/* ---- spawning ---- */

struct spawn_plan {
	const struct vmcd_qemu_dirs *dirs;
	const struct vmc_group_def *def;
	enum vmc_accel accel;
	bool incoming;
	const char *qemu;
	char *const *argv; /* built by the helper */
	int devnull;
	int log_fd;
	int pipe_w;
	long max_fd;
};

/* One record in one write(): it arrives whole or not at all. */
static void spawn_write(int fd, int32_t kind, int64_t value, const char *text)
{
	unsigned char buf[VMCD_QEMU_SPAWN_RECORD_MAX];
	size_t tlen = text != NULL ? strnlen(text, VMCD_QEMU_WHY_MAX - 1) : 0;
	struct spawn_msg m = { .kind = kind, .len = (uint32_t)tlen, .value = value };
	ssize_t n;

	memcpy(buf, &m, sizeof(m));
	if (tlen > 0) {
		memcpy(buf + sizeof(m), text, tlen);
	}
	do {
		n = write(fd, buf, sizeof(m) + tlen);
	} while (n < 0 && errno == EINTR);
}

/* fds lo..hi (inclusive) closed, without close_range where it is missing. */
static void fds_close(unsigned int lo, unsigned int hi, long max_fd)
{
	if (lo > hi || syscall(SYS_close_range, lo, hi, 0) == 0) {
		return;
	}
	for (long fd = lo; fd <= (long)hi && fd < max_fd; fd++) {
		close((int)fd);
	}
}

/* In the helper: nothing of the daemon's (corosync, IPC, QMP) beyond stdio and the plan's. */
static void helper_fds_close(const struct spawn_plan *p)
{
	int keep[3] = { p->devnull, p->log_fd, p->pipe_w };
	unsigned int lo = 3;

	for (int i = 0; i < 2; i++) {
		for (int j = i + 1; j < 3; j++) {
			if (keep[j] < keep[i]) {
				int t = keep[i];

				keep[i] = keep[j];
				keep[j] = t;
			}
		}
	}
	for (int i = 0; i < 3; i++) {
		if (keep[i] >= (int)lo) {
			fds_close(lo, (unsigned int)keep[i] - 1, p->max_fd);
			lo = (unsigned int)keep[i] + 1;
		}
	}
	fds_close(lo, ~0U, p->max_fd);
}

static void signals_default(void)
{
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa = { .sa_handler = SIG_DFL };

		sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* In the would-be QEMU: async-signal-safe calls only. */
static void spawn_exec(const struct spawn_plan *p)
{
	int devnull = fcntl(p->devnull, F_DUPFD, 10);
	int log_fd = fcntl(p->log_fd, F_DUPFD, 10);
	int pipe_w = fcntl(p->pipe_w, F_DUPFD, 10);

	if (devnull < 0 || log_fd < 0 || pipe_w < 0 || dup2(devnull, 0) < 0 || dup2(log_fd, 1) < 0 ||
	    dup2(log_fd, 2) < 0 || dup3(pipe_w, 3, O_CLOEXEC) < 0) {
		if (pipe_w >= 0) {
			spawn_write(pipe_w, SPAWN_EXEC_FAILED, errno, NULL);
		}
		_exit(127);
	}
	fds_close(4, ~0U, p->max_fd);
	/* QMP is full control of the VM, the serial log the guest's console: root only. */
	umask(027);
	if (chdir("/") < 0) {
		_exit(127);
	}
	execv(p->argv[0], p->argv);
	spawn_write(3, SPAWN_EXEC_FAILED, errno, NULL);
	_exit(127);
}

/* The time stamp of our lines in NAME.qemu.log: "2024-05-01 12:00:00". */
static void log_stamp(char *out, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

/* The start header in NAME.qemu.log; QEMU's own lines follow it. */
static void log_header(int fd, const char *name, const struct argv *a)
{
	char stamp[64];
	FILE *f = fdopen(dup(fd), "a");

	if (f == NULL) {
		return;
	}
	log_stamp(stamp, sizeof(stamp));
	fprintf(f, "%s vmclusterd: starting VM %s:", stamp, name);
	for (size_t i = 0; i < a->n; i++) {
		fprintf(f, " %s", a->v[i]);
	}
	fputc('\n', f);
	fclose(f);
}

/* A check failed: one line in NAME.qemu.log, the same on the pipe, and no QEMU. */
static void __attribute__((noreturn)) helper_refuse(const struct spawn_plan *p, const char *why)
{
	char line[VMCD_QEMU_WHY_MAX];
	char stamp[64];

	snprintf(line, sizeof(line), "vmclusterd: cannot start VM %s: %s", p->def->name, why);
	log_stamp(stamp, sizeof(stamp));
	dprintf(p->log_fd, "%s %s\n", stamp, line);
	spawn_write(p->pipe_w, SPAWN_CHECK_FAILED, 0, line);
	_exit(1);
}

/* In the helper: a session of its own, the checks, then QEMU as its child, then exit. */
static void __attribute__((noreturn)) spawn_helper(struct spawn_plan *p)
{
	char why[VMCD_QEMU_WHY_MAX];
	struct argv a = { 0 };
	pid_t pid;

	static struct real_files real;

	setsid();
	signals_default();
	helper_fds_close(p);
	if (files_check(p->def, &real, why, sizeof(why)) < 0) {
		helper_refuse(p, why);
	}
	qemu_argv_build(&a, p->qemu, p->dirs, &real.def, p->accel, p->incoming);
	if (a.oom) {
		helper_refuse(p, "out of memory for QEMU's arguments");
	}
	log_header(p->log_fd, p->def->name, &a);
	spawn_write(p->pipe_w, SPAWN_LOG_OFFSET, lseek(p->log_fd, 0, SEEK_END), NULL);
	p->argv = a.v;
	pid = fork();
	if (pid == 0) {
		spawn_exec(p);
	}
	if (pid < 0) {
		spawn_write(p->pipe_w, SPAWN_FORK_FAILED, errno, NULL);
	} else {
		spawn_write(p->pipe_w, SPAWN_PID, pid, NULL);
	}
	_exit(0);
}

static void spawn_pipe_init(struct vmcd_qemu_spawn_pipe *spawn, int fd)
{
	memset(spawn, 0, sizeof(*spawn));
	spawn->fd = fd;
	spawn->log_offset = -1;
	fcntl(fd, F_SETFL, O_NONBLOCK);
}

/* Forks the helper that checks the VM's files and starts QEMU (spawn_helper). */
int vmcd_qemu_spawn(const struct vmcd_qemu_dirs *dirs, const struct vmc_group_def *def,
		    enum vmc_accel accel, bool incoming, pid_t *helper, struct vmcd_qemu_spawn_pipe *spawn,
		    char *err, size_t errlen)
{
	struct spawn_plan plan = { .dirs = dirs, .def = def, .accel = accel, .incoming = incoming };
	char qemu[PATH_MAX];
	char path[PATH_MAX];
	int pipefd[2] = { -1, -1 };
	pid_t pid;
	int rc;

	rc = vmcd_qemu_find(qemu, sizeof(qemu));
	if (rc < 0) {
		snprintf(err, errlen, "cannot find qemu-system-x86_64: %s", strerror(-rc));
		return rc;
	}
	vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_LOG, path, sizeof(path));
	plan.log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	plan.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (plan.log_fd < 0 || plan.devnull < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot start QEMU: %s%s",
			 plan.log_fd < 0 ? "opening its log: " : "", strerror(-rc));
		goto out;
	}
	/* The pidfile is QEMU's to write; a stale one must not be taken for it. */
	vmcd_qemu_file_path(dirs, def->name, VMCD_QEMU_FILE_PID, path, sizeof(path));
	unlink(path);

	plan.qemu = qemu;
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
	spawn_pipe_init(spawn, pipefd[0]);
out:
	if (pipefd[1] >= 0) {
		close(pipefd[1]);
	}
	if (plan.devnull >= 0) {
		close(plan.devnull);
	}
	if (plan.log_fd >= 0) {
		close(plan.log_fd);
	}
	return rc;
}

/* ---- what came of it: the spawn pipe, QEMU's log ---- */

/* How long the record being read is: its fixed part, then its text. */
static size_t spawn_record_len(const struct vmcd_qemu_spawn_pipe *p)
{
	struct spawn_msg m;

	if (p->have < sizeof(m)) {
		return sizeof(m);
	}
	memcpy(&m, p->buf, sizeof(m));
	return sizeof(m) + (m.len < VMCD_QEMU_WHY_MAX ? m.len : 0);
}

static void spawn_record_take(struct vmcd_qemu_spawn_pipe *p)
{
	struct spawn_msg m;

	memcpy(&m, p->buf, sizeof(m));
	if (m.kind == SPAWN_PID && m.value > 1 && m.value <= INT_MAX) {
		p->pid = (pid_t)m.value;
	} else if (m.kind == SPAWN_LOG_OFFSET && m.value >= 0) {
		p->log_offset = (off_t)m.value;
	} else if (m.kind == SPAWN_FORK_FAILED) {
		snprintf(p->why, sizeof(p->why), "cannot fork QEMU: %s", strerror((int)m.value));
		p->failed = true;
	} else if (m.kind == SPAWN_EXEC_FAILED) {
		snprintf(p->why, sizeof(p->why), "cannot execute QEMU: %s", strerror((int)m.value));
	} else if (m.kind == SPAWN_CHECK_FAILED) {
		snprintf(p->why, sizeof(p->why), "%.*s", (int)(p->have - sizeof(m)),
			 (const char *)p->buf + sizeof(m));
		p->failed = true;
	}
}

bool vmcd_qemu_spawn_read(struct vmcd_qemu_spawn_pipe *p)
{
	for (;;) {
		ssize_t n = read(p->fd, p->buf + p->have, spawn_record_len(p) - p->have);

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
		if (p->have >= sizeof(struct spawn_msg) && p->have == spawn_record_len(p)) {
			spawn_record_take(p);
			p->have = 0;
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
