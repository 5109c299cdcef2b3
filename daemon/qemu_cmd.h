/*
 * How a VM's QEMU is launched (for the driver, vm_qemu.c): where its files
 * live, the checks of a definition and of this node before a start, the
 * spawn helper (which checks the VM's own files, builds QEMU's command
 * line and detaches QEMU) and what it reports back, and how a pid is
 * recognised as a VM's QEMU. Nothing here touches the loop: the driver
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
/* The longest reason the spawn helper sends (one line). */
#define VMCD_QEMU_WHY_MAX 384
/* One record on the spawn pipe: a fixed part, then up to VMCD_QEMU_WHY_MAX of text. */
#define VMCD_QEMU_SPAWN_RECORD_MAX (16 + VMCD_QEMU_WHY_MAX)

/* Where the VMs' files live (the list is in vm_qemu.h). */
struct vmcd_qemu_dirs {
	char run[VMCD_QEMU_DIR_MAX];   /* RUN_DIR/vms */
	char state[VMCD_QEMU_DIR_MAX]; /* STATE_DIR/vms */
};

enum vmcd_qemu_file {
	VMCD_QEMU_FILE_PID,
	VMCD_QEMU_FILE_QMP,
	VMCD_QEMU_FILE_MIGRATE_QMP, /* a second QMP monitor, the migration agent's */
	VMCD_QEMU_FILE_SERIAL,
	VMCD_QEMU_FILE_LOG,
};

/* The read end of a spawn pipe, and what the helper said on it so far. */
struct vmcd_qemu_spawn_pipe {
	int fd; /* -1: closed */
	unsigned char buf[VMCD_QEMU_SPAWN_RECORD_MAX];
	size_t have;
	pid_t pid;         /* QEMU's pid; 0 until reported */
	off_t log_offset;  /* where QEMU's own lines start in NAME.qemu.log; -1: QEMU never ran */
	bool failed;       /* no QEMU will come: why says why */
	char why[VMCD_QEMU_WHY_MAX]; /* a failure, or QEMU's failed exec; "" when none */
};

/* The path of one of VM name's files. 0 or -ENAMETOOLONG. */
int vmcd_qemu_file_path(const struct vmcd_qemu_dirs *dirs, const char *name, enum vmcd_qemu_file f,
			char *buf, size_t len);

/*
 * The definition alone, with no file system call on the VM's paths: name,
 * sizes (memory against this node's), something to boot, paths given,
 * disk formats. 0, or -EINVAL with one line in err.
 */
int vmcd_qemu_def_check(const struct vmc_group_def *def, char *err, size_t errlen);

/*
 * This node: accel auto resolved from the cache (*accel set), and the
 * VM's run and state paths short enough. 0, or -errno with one line in err.
 */
int vmcd_qemu_host_check(const struct vmcd_qemu_dirs *dirs, const struct vmc_group_def *def,
			 enum vmc_accel *accel, char *err, size_t errlen);

/*
 * Forks the spawn helper, which (in a session of its own) checks the
 * VM's files: kernel, initrd and disks exist, are regular files (disks:
 * or block devices), readable (disks: writable) and pass
 * vmcd_path_root_safe(); bridges exist. A check that fails is one line in
 * NAME.qemu.log ("vmclusterd: cannot start VM NAME: kernel PATH: why")
 * and on the pipe; otherwise the helper writes the start header, detaches
 * QEMU and exits. On success *helper is the helper (to reap, and to kill
 * with its process group if it hangs) and spawn the read end of the pipe
 * (non-blocking; see vmcd_qemu_spawn_read). incoming starts QEMU waiting
 * for a migration (-incoming defer) and paused once it came (-S), for the
 * migration agent to feed and the daemon to resume. 0, or -errno with one
 * line in err.
 */
int vmcd_qemu_spawn(const struct vmcd_qemu_dirs *dirs, const struct vmc_group_def *def,
		    enum vmc_accel accel, bool incoming, pid_t *helper, struct vmcd_qemu_spawn_pipe *spawn,
		    char *err, size_t errlen);

/*
 * Reads what the spawn pipe holds into p: QEMU's pid, where its log
 * lines start, or why there is none (p->failed when a check or the
 * helper's fork failed; an exec failure only fills why: that process
 * exits like a QEMU). false on EOF or error, true once the pipe is empty
 * but still open.
 */
bool vmcd_qemu_spawn_read(struct vmcd_qemu_spawn_pipe *p);

/* The directories a VM's files must lie in (vmcd_vm_driver_vm_paths). */
void vmcd_qemu_vm_paths_set(const char *paths);
/*
 * path lies in one of the ':'-separated directories of paths (or paths is
 * empty). 0, or -EPERM with one line in why.
 */
int vmcd_qemu_path_allowed(const char *paths, const char *what, const char *path, char *why, size_t len);

/* The last non-empty line QEMU wrote to NAME.qemu.log after offset from. */
void vmcd_qemu_log_last_line(const struct vmcd_qemu_dirs *dirs, const char *name, off_t from,
			     char *out, size_t len);

/* Reads NAME.pid: the pid, 0 when there is no such file, -errno. */
pid_t vmcd_qemu_pidfile_read(const char *path);

/* Alive and not a zombie (a zombie is gone as far as a VM is concerned). */
bool vmcd_qemu_pid_alive(pid_t pid);

/*
 * pid is a live QEMU started with "-name NAME" (or NAME,... or guest=NAME)
 * in this process's mount and network namespaces: what makes a pidfile
 * trustworthy, whatever pid reuse did. Nodes that share a PID namespace
 * (test nodes are each a network and mount namespace on one machine)
 * see each other's QEMUs in /proc; a QEMU elsewhere is never ours.
 */
bool vmcd_qemu_pid_is_vm(pid_t pid, const char *name);

/*
 * A live QEMU of NAME that runs in another mount or network namespace:
 * another node's (in a shared PID namespace), or ours if this daemon was
 * restarted in a namespace of its own (a systemd sandboxing option). Not
 * ours to follow, nor are its files ours to remove as stale.
 */
bool vmcd_qemu_pid_is_vm_elsewhere(pid_t pid, const char *name);

/* The QEMU that runs NAME here according to its pidfile, or 0. */
pid_t vmcd_qemu_pid_from_pidfile(const struct vmcd_qemu_dirs *dirs, const char *name);

#endif
