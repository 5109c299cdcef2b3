/*
 * Checks of a VM's files (kernel, initrd, disk images), which may sit on
 * shared storage that hangs (an NFS server gone): they run in a child,
 * and a check that does not finish within VMC_FS_CHECK_DEADLINE_MS is
 * killed and reported as such, so the main loop never blocks on them.
 */
#ifndef VMCD_FS_CHECK_H
#define VMCD_FS_CHECK_H

#include <stddef.h>

#include "context.h"
#include "group_def.h"

/* rc 0 when every file is readable (disks writable), else -errno with one line in why. */
typedef void (*vmcd_fs_check_done_fn)(struct vmcd *d, void *ctx, int rc, const char *why);

struct vmcd_fs_check_hooks {
	void (*changed)(struct vmcd *d); /* a check ended (after its done callback ran) */
};

void vmcd_fs_check_init(struct vmcd *d, const struct vmcd_fs_check_hooks *hooks);
/* Starts the check of def's files; done is called exactly once, from the loop. 0 or -errno. */
int vmcd_fs_check_vm_files(struct vmcd *d, const struct vmc_group_def *def, vmcd_fs_check_done_fn done,
			   void *ctx);
/*
 * Resolves a volume's directory (realpath) and checks it is one this node
 * may read and write: rc 0 with the resolved path in why, else -errno.
 */
int vmcd_fs_check_volume_dir(struct vmcd *d, const char *path, vmcd_fs_check_done_fn done, void *ctx);
/* Kills what still runs; their done callbacks are not called. */
void vmcd_fs_check_fini(struct vmcd *d);

#endif
