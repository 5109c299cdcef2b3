/*
 * Finding the QEMUs that run here without the driver following them (for
 * the driver, vm_qemu.c): those a previous vmclusterd left, and one that
 * a daemon which died while starting it never got to follow. A QEMU is a
 * VM's when vmcd_qemu_pid_is_vm() says so: its command line names the
 * VM, and it runs in this node's mount and network namespaces (nodes may
 * share a PID namespace, as the test nodes do, so /proc shows other
 * nodes' QEMUs of the same VM). Nothing here touches the loop.
 */
#ifndef VMCD_VM_ATTACH_H
#define VMCD_VM_ATTACH_H

#include <stddef.h>
#include <sys/types.h>

#include "qemu_cmd.h"

/*
 * Calls found(ctx, NAME) for every RUN_DIR/vms/NAME.pid whose NAME is a
 * valid VM name (found may create and remove files there). 0, or -errno
 * when the directory cannot be read.
 */
int vmcd_attach_scan(const struct vmcd_qemu_dirs *dirs, void (*found)(void *ctx, const char *name),
		     void *ctx);

/*
 * The QEMU NAME.pid names, when it is NAME's; otherwise 0, and the stale
 * pidfile and QMP socket are removed, unless the pid is a QEMU of NAME in
 * other namespaces (vmcd_qemu_pid_is_vm_elsewhere: left alone).
 */
pid_t vmcd_attach_pidfile(const struct vmcd_qemu_dirs *dirs, const char *name);

/*
 * NAME's QEMU, by its pidfile, else by a scan of /proc; files are left as
 * they are. The pid (*how: "pidfile" or "process"), or 0.
 */
pid_t vmcd_attach_find(const struct vmcd_qemu_dirs *dirs, const char *name, const char **how);

/*
 * Before a start: 0 when no QEMU runs NAME here by its pidfile or its QMP
 * socket (stale ones are removed); -EEXIST with one line in err when one
 * does, or when the pidfile names a QEMU of NAME in other namespaces
 * (never two QEMUs on one VM's files), or -errno.
 */
int vmcd_attach_check_absent(const struct vmcd_qemu_dirs *dirs, const char *name, char *err,
			     size_t errlen);

#endif
