/*
 * How a VM's QEMU is launched (for the driver, vm_qemu.c): where its files
 * live, the checks of a definition and of this node before a start, QEMU's
 * command line, the detached spawn and what it reports back, and how a pid
 * is recognised as a VM's QEMU. Nothing here touches the loop: the driver
 * decides when, follows the process and reaps the spawn helper.
 */
#ifndef VMCD_QEMU_CMD_H
#define VMCD_QEMU_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "group_def.h"
#include "settings.h"

/* RUN_DIR and STATE_DIR: QMP's socket path must fit a sockaddr_un anyway. */
#define VMCD_QEMU_DIR_MAX 1024

/* Where the VMs' files live (the list is in vm_qemu.h). */
struct vmcd_qemu_dirs {
	char run[VMCD_QEMU_DIR_MAX];   /* RUN_DIR/vms */
	char state[VMCD_QEMU_DIR_MAX]; /* STATE_DIR/vms */
};

enum vmcd_qemu_file {
	VMCD_QEMU_FILE_PID,
	VMCD_QEMU_FILE_QMP,
	VMCD_QEMU_FILE_SERIAL,
	VMCD_QEMU_FILE_LOG,
};

/* The read end of a spawn pipe, with the part of a record read so far. */
struct vmcd_qemu_spawn_pipe {
	int fd;                                 /* -1: closed */
	unsigned char buf[2 * sizeof(int32_t)]; /* one record: kind, value */
	size_t have;
};

/* The path of one of VM name's files. 0 or -ENAMETOOLONG. */
int vmcd_qemu_file_path(const struct vmcd_qemu_dirs *dirs, const char *name, enum vmcd_qemu_file f,
			char *buf, size_t len);

/*
 * The definition alone: name, sizes (memory against this node's), the
 * kernel, initrd and disks readable (disks writable), bridges present.
 * 0, or -errno with one line in err.
 */
int vmcd_qemu_def_check(const struct vmc_group_def *def, char *err, size_t errlen);

/*
 * This node, for a VM the driver does not follow: accel auto resolved from
 * the cache (*accel set), paths short enough, and no QEMU already running
 * NAME by its pidfile or its QMP socket (stale ones are removed).
 * 0, or -errno with one line in err (-EEXIST: it runs here).
 */
int vmcd_qemu_host_check(const struct vmcd_qemu_dirs *dirs, const struct vmc_group_def *def,
			 enum vmc_accel *accel, char *err, size_t errlen);

/*
 * Writes NAME.qemu.log's start header and forks a helper that detaches
 * QEMU and exits. On success *helper is the helper to reap, spawn the
 * read end of the spawn pipe (non-blocking; see vmcd_qemu_spawn_read) and
 * *log_offset where this QEMU's lines start in NAME.qemu.log. 0, or -errno
 * with one line in err.
 */
int vmcd_qemu_spawn(const struct vmcd_qemu_dirs *dirs, const struct vmc_group_def *def,
		    enum vmc_accel accel, pid_t *helper, struct vmcd_qemu_spawn_pipe *spawn,
		    off_t *log_offset, char *err, size_t errlen);

/*
 * Reads what the spawn pipe holds: QEMU's pid (*pid and *got_pid set), or
 * why there is none (in why; *failed set when the helper could not fork,
 * while an exec failure only fills why: that process exits like a QEMU).
 * false on EOF or error, true once the pipe is empty but still open.
 */
bool vmcd_qemu_spawn_read(struct vmcd_qemu_spawn_pipe *p, pid_t *pid, bool *got_pid, bool *failed,
			  char *why, size_t whylen);

/* The last non-empty line QEMU wrote to NAME.qemu.log after offset from. */
void vmcd_qemu_log_last_line(const struct vmcd_qemu_dirs *dirs, const char *name, off_t from,
			     char *out, size_t len);

/* Reads NAME.pid: the pid, 0 when there is no such file, -errno. */
pid_t vmcd_qemu_pidfile_read(const char *path);

/* Alive and not a zombie (a zombie is gone as far as a VM is concerned). */
bool vmcd_qemu_pid_alive(pid_t pid);

/*
 * pid is a live QEMU started with "-name NAME" (or NAME,... or guest=NAME):
 * what makes a pidfile trustworthy, whatever pid reuse did.
 */
bool vmcd_qemu_pid_is_vm(pid_t pid, const char *name);

/* The QEMU that runs NAME here according to its pidfile, or 0. */
pid_t vmcd_qemu_pid_from_pidfile(const struct vmcd_qemu_dirs *dirs, const char *name);

#endif
