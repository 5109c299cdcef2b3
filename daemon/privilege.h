/*
 * What root may be made to run or to open. Members of group haclient
 * manage VMs through clusterctl, but the daemon runs fence agents and
 * QEMU as root: a path that comes from the replicated state (fence_agent,
 * a VM's kernel, initrd and disks) is used only when root alone could
 * have put that file there.
 */
#ifndef VMCD_PRIVILEGE_H
#define VMCD_PRIVILEGE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * path, with its symbolic links resolved, is a regular file (or a block
 * device when block_ok) owned by root that neither its group nor others
 * may write, and every directory above it is owned by root and not
 * writable by group or others unless it is sticky (as /tmp is).
 * 0, or -EPERM (or the -errno of a failed look-up) with one line in why
 * that starts with what, e.g. "fence_agent /usr/local/sbin/f: owned by uid 1000".
 */
int vmcd_path_root_safe(const char *what, const char *path, bool block_ok, char *why, size_t len);

#endif
