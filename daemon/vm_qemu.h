/*
 * The QEMU driver: starts, follows, stops and kills this node's VMs.
 *
 * Each VM is one qemu-system-x86_64, detached from vmclusterd (its own
 * session, not our child) so it survives the daemon exiting or being
 * upgraded; a new daemon finds it again through its pidfile
 * (vmcd_vm_attach_all). Files, for a VM called NAME:
 *
 *   RUN_DIR/vms/NAME.pid           written by QEMU (-pidfile)
 *   RUN_DIR/vms/NAME.qmp           QMP, a unix socket QEMU listens on
 *   RUN_DIR/vms/NAME.migrate.qmp   a second QMP socket, the migration agent's
 *   STATE_DIR/vms/NAME.serial.log  the guest's ttyS0, appended
 *   STATE_DIR/vms/NAME.qemu.log    QEMU's stdout and stderr, appended,
 *                                  one header line per start
 *
 * Everything runs on the daemon's libqb loop and never blocks it: QMP is
 * a non-blocking socket (vm_qmp.c), the QEMU process is followed with a
 * pidfd (or a kill(pid, 0) timer on kernels without one), and nothing here
 * touches a VM's own files (kernel, initrd, disk images, which may sit on
 * a hung NFS mount) in the daemon's process: they are checked by the
 * spawn helper, a child, and a check that fails or hangs ends in
 * VMCD_VM_START_FAILED. Events are delivered from a loop timer, never
 * from inside a call into this module, so the event callback may call any
 * function here (vmcd_vm_start again after a crash) except
 * vmcd_vm_driver_fini.
 */
#ifndef VMCD_VM_QEMU_H
#define VMCD_VM_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <qb/qbloop.h>

#include "group_def.h"
#include "settings.h"

/* Its deadlines are VMC_VM_START_DEADLINE_MS (vmcd_vm_start to QMP saying
 * "running") and VMC_VM_EXIT_GRACE_MS (QMP closed, the process still
 * there: SIGKILL), in lib/timeouts.h. */

enum vmcd_vm_event {
	VMCD_VM_RUNNING,      /* started here and running (not sent on re-attach) */
	VMCD_VM_STOPPED,      /* gone after vmcd_vm_stop or vmcd_vm_kill */
	VMCD_VM_CRASHED,      /* gone without being asked: reason says how */
	VMCD_VM_START_FAILED, /* never reached running: reason is QEMU's last stderr line,
			       * or the line saying which of the VM's files failed its check */
	VMCD_VM_STATUS,       /* still running, but QEMU's status changed (reason: the new one) */
};

struct vmcd_vm_ops {
	void (*event)(void *ctx, const char *vm, enum vmcd_vm_event ev, const char *reason);
};

/*
 * The directories a VM's kernel, initrd and disks must lie in (after their
 * links are resolved), ':'-separated; NULL or "" allows any. QEMU runs as
 * root, so a definition (which members of haclient may write) must not
 * make it open /etc/shadow as a disk. Kept until the driver finishes.
 */
void vmcd_vm_driver_vm_paths(const char *paths);

/* Creates RUN_DIR/vms and STATE_DIR/vms (0750). 0 or -errno. */
int vmcd_vm_driver_init(qb_loop_t *loop, const char *run_dir, const char *state_dir,
			const struct vmcd_vm_ops *ops, void *ctx);
/*
 * Detaches from every QEMU (they keep running) and drops events not yet
 * delivered. A stop in progress is abandoned: its SIGKILL will not come.
 */
void vmcd_vm_driver_fini(void);

/*
 * Follows again the QEMUs a previous daemon left: every RUN_DIR/vms/NAME.pid
 * naming a live qemu started with -name NAME in this node's mount and
 * network namespaces. Stale pidfiles (and their QMP sockets) are removed,
 * but not those naming a QEMU of NAME in other namespaces. No event unless
 * something changes later. Returns how many VMs are followed again.
 */
size_t vmcd_vm_attach_all(void);

/*
 * Checks the definition and this node (no VM file is touched here),
 * refuses a VM that runs here already, and starts the spawn helper; 0
 * means "started": VMCD_VM_RUNNING or VMCD_VM_START_FAILED follows. The
 * helper checks the VM's files before it execs QEMU (they must exist,
 * disks be writable, and each be owned by root and writable by no group
 * or other, privilege.h; bridges must exist); a file that fails, or
 * storage that does not answer within VMC_FS_CHECK_DEADLINE_MS, ends in
 * VMCD_VM_START_FAILED whose reason names the file and why.
 * accel VMC_ACCEL_AUTO takes the verdict cached by vmcd_accel_resolve()
 * and is refused before the probe ran. On error nothing was started and
 * err holds one line: -EINVAL (definition, accel), -EEXIST (runs here:
 * followed, or found by its pidfile or QMP socket; see vmcd_vm_adopt),
 * -ENAMETOOLONG (paths), or the -errno of what failed.
 */
int vmcd_vm_start(const struct vmc_group_def *def, enum vmc_accel accel, char *err, size_t errlen);

/*
 * The same for an incoming migration: QEMU waits for it (-incoming defer,
 * fed by the migration agent through NAME.migrate.qmp) and stays paused
 * once it came; QMP saying "inmigrate" counts as running. vmcd_vm_resume
 * runs it once the cluster says it is this node's.
 */
int vmcd_vm_start_incoming(const struct vmc_group_def *def, enum vmc_accel accel, char *err, size_t errlen);

/* QEMU's status as last seen ("running", "paused", "postmigrate", "inmigrate", ...), "" when not running. */
const char *vmcd_vm_run_status(const char *vm);

/*
 * cont (and, with announce, announce-self: the gratuitous ARPs a moved VM
 * sends). 0, -ENOENT (not running here), -ENOTCONN (QMP not up).
 */
int vmcd_vm_resume(const char *vm, bool announce);

/* The migration agent's QMP socket of vm. 0 or -ENAMETOOLONG. */
int vmcd_vm_migrate_qmp_path(const char *vm, char *buf, size_t len);

/*
 * migrate_cancel (a source left at pre-switchover by a dead agent runs
 * again), then query-status: its status after a move is known again.
 * 0, -ENOENT, -ENOTCONN.
 */
int vmcd_vm_migrate_cancel(const char *vm);

/*
 * Follows a QEMU that runs VM here but that the driver does not follow
 * (left by a daemon that died while starting it): found by its pidfile,
 * else by its process (a qemu started with "-name VM" in this node's
 * mount and network namespaces). Like a re-attach: no RUNNING event, the
 * VM is followed from now on. 0, -ENOENT (no such QEMU here), -EEXIST
 * (followed already), -ENOMEM.
 */
int vmcd_vm_adopt(const char *vm);

/*
 * ACPI power button (system_powerdown), SIGKILL if QEMU still runs after
 * timeout_s; VMCD_VM_STOPPED when it is gone. A stop while stopping keeps
 * the earlier deadline; a stop (or a kill) while the spawn helper still
 * runs kills it and its session at once. 0 or -ENOENT when the VM is not
 * followed here.
 */
int vmcd_vm_stop(const char *vm, unsigned int timeout_s);

/*
 * SIGKILL now. A followed VM reports VMCD_VM_STOPPED when it is gone; a
 * QEMU found only through its pidfile is killed without an event.
 * 0, -ENOENT (no such QEMU here), or the -errno of the kill.
 */
int vmcd_vm_kill(const char *vm);

/*
 * A followed VM, from vmcd_vm_start returning 0 (or attach) until its
 * final event. *pid (when pid is not NULL) is 0 for the first
 * milliseconds of a start, before QEMU's pid is known.
 */
bool vmcd_vm_is_running(const char *vm, pid_t *pid);

/* How many VMs the driver follows. */
size_t vmcd_vm_count(void);

/* Names of the followed VMs (valid until the next call into this module). */
size_t vmcd_vm_list(const char **names, size_t max);

const char *vmcd_vm_event_to_str(enum vmcd_vm_event ev);

#endif
