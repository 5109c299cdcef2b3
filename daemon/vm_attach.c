/*
 * Finding QEMUs the driver does not follow (vm_attach.h).
 *
 * A pidfile is the fast way, and the one vmcd_vm_attach_all() takes:
 * QEMU writes RUN_DIR/vms/NAME.pid itself, early in its start, and
 * vmcd_qemu_pid_is_vm() makes sure its pid is still that VM's QEMU. A
 * daemon that died in the milliseconds between spawning QEMU and QEMU
 * writing the pidfile, or an operator's rm, leaves a QEMU without one:
 * then only /proc knows, and only the namespace check in
 * vmcd_qemu_pid_is_vm() keeps another node's QEMU of the same VM (in a
 * shared PID namespace) from being taken for ours.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "qmp.h"
#include "vm_attach.h"

#define PID_SUFFIX ".pid"

int vmcd_attach_scan(const struct vmcd_qemu_dirs *dirs, void (*found)(void *ctx, const char *name),
		     void *ctx)
{
	const size_t slen = strlen(PID_SUFFIX);
	struct dirent *de;
	DIR *dir = opendir(dirs->run);
	int rc;

	if (dir == NULL) {
		rc = -errno;
		qb_log(LOG_ERR, "VM driver: cannot read %s: %s", dirs->run, strerror(errno));
		return rc;
	}
	while ((de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);
		char name[VMC_NAME_MAX + 1];

		if (len <= slen || strcmp(de->d_name + len - slen, PID_SUFFIX) != 0 ||
		    len - slen > VMC_NAME_MAX) {
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(len - slen), de->d_name);
		if (vmc_valid_name(name)) {
			found(ctx, name);
		}
	}
	closedir(dir);
	return 0;
}

static void stale_files_remove(const struct vmcd_qemu_dirs *dirs, const char *name)
{
	char path[PATH_MAX];

	if (vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_PID, path, sizeof(path)) == 0) {
		unlink(path);
	}
	if (vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_QMP, path, sizeof(path)) == 0) {
		unlink(path);
	}
}

/*
 * A pidfile that names a QEMU of the VM in other namespaces: not ours, but
 * not stale either when this daemon runs in a namespace its QEMUs do not
 * (restarted under systemd sandboxing): its files stay, or a second QEMU
 * could start on the same disks. true when so (and said).
 */
static bool pidfile_names_elsewhere(const char *name, const char *path, pid_t pid)
{
	if (pid <= 0 || !vmcd_qemu_pid_is_vm_elsewhere(pid, name)) {
		return false;
	}
	qb_log(LOG_WARNING, "VM %s: %s names QEMU pid %d, which runs it in another mount or network "
	       "namespace: not followed, left alone", name, path, (int)pid);
	return true;
}

pid_t vmcd_attach_pidfile(const struct vmcd_qemu_dirs *dirs, const char *name)
{
	char path[PATH_MAX];
	pid_t pid;

	if (vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_PID, path, sizeof(path)) < 0) {
		return 0;
	}
	pid = vmcd_qemu_pidfile_read(path);
	if (pid > 0 && vmcd_qemu_pid_is_vm(pid, name)) {
		return pid;
	}
	if (!pidfile_names_elsewhere(name, path, pid)) {
		qb_log(LOG_NOTICE, "VM %s: removing stale pidfile %s (pid %d is no QEMU for it)",
		       name, path, (int)pid);
		stale_files_remove(dirs, name);
	}
	return 0;
}

/* Every process, for NAME's QEMU: the first found (two would share its disks: said loudly). */
static pid_t proc_scan(const char *name)
{
	struct dirent *de;
	pid_t found = 0;
	DIR *dir = opendir("/proc");

	if (dir == NULL) {
		qb_log(LOG_ERR, "VM %s: cannot read /proc: %s", name, strerror(errno));
		return 0;
	}
	while ((de = readdir(dir)) != NULL) {
		char *end;
		long v = strtol(de->d_name, &end, 10);

		if (*end != '\0' || v <= 1 || v > INT_MAX || (pid_t)v == getpid() ||
		    !vmcd_qemu_pid_is_vm((pid_t)v, name)) {
			continue;
		}
		if (found == 0) {
			found = (pid_t)v;
		} else {
			qb_log(LOG_ERR, "VM %s: QEMU pids %d and %d both run it on this node", name,
			       (int)found, (int)v);
		}
	}
	closedir(dir);
	return found;
}

pid_t vmcd_attach_find(const struct vmcd_qemu_dirs *dirs, const char *name, const char **how)
{
	pid_t pid = vmcd_qemu_pid_from_pidfile(dirs, name);

	*how = "pidfile";
	if (pid > 0) {
		return pid;
	}
	*how = "process";
	return proc_scan(name);
}

/* A QMP socket that accepts a connection has a QEMU behind it. 1, 0 (stale ones removed). */
static int qmp_socket_answers(const struct vmcd_qemu_dirs *dirs, const char *name)
{
	char path[PATH_MAX];
	int rc;
	int fd;

	if (vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_QMP, path, sizeof(path)) < 0) {
		return -ENAMETOOLONG;
	}
	rc = vmc_qmp_fd_connect(path, &fd);
	if (rc == 0) {
		close(fd);
	}
	if (rc == 0 || rc == -EAGAIN) {
		return 1;
	}
	if (rc == -ECONNREFUSED) {
		qb_log(LOG_INFO, "VM %s: removing stale QMP socket %s", name, path);
		unlink(path);
	}
	return 0;
}

int vmcd_attach_check_absent(const struct vmcd_qemu_dirs *dirs, const char *name, char *err,
			     size_t errlen)
{
	char path[PATH_MAX];
	pid_t pid;
	int rc;

	if (vmcd_qemu_file_path(dirs, name, VMCD_QEMU_FILE_PID, path, sizeof(path)) < 0) {
		snprintf(err, errlen, "VM %s: %s", name, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	pid = vmcd_qemu_pidfile_read(path);
	if (pid > 0 && vmcd_qemu_pid_is_vm(pid, name)) {
		snprintf(err, errlen, "VM %s already runs on this node (QEMU pid %d from its pidfile, "
			 "not followed: vmcd_vm_adopt)", name, (int)pid);
		return -EEXIST;
	}
	if (pidfile_names_elsewhere(name, path, pid)) {
		snprintf(err, errlen, "VM %s: its pidfile names QEMU pid %d, which runs it in another "
			 "mount or network namespace", name, (int)pid);
		return -EEXIST;
	}
	if (pid != 0) {
		qb_log(LOG_INFO, "VM %s: removing stale pidfile %s (pid %d is no QEMU for it)", name,
		       path, (int)pid);
		unlink(path);
	}
	rc = qmp_socket_answers(dirs, name);
	if (rc > 0) {
		snprintf(err, errlen, "VM %s: a QEMU answers on its QMP socket though its pidfile "
			 "names none (vmcd_vm_adopt)", name);
		return -EEXIST;
	}
	if (rc < 0) {
		snprintf(err, errlen, "VM %s: %s", name, strerror(-rc));
	}
	return rc;
}
