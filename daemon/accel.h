/*
 * Which QEMU and which accelerator this node runs its VMs with.
 *
 * KVM cannot be trusted because /dev/kvm exists: under nested
 * virtualisation QEMU starts under KVM and a Linux guest then hangs before
 * its first console line. So `accel auto` boots a probe kernel under KVM
 * once per daemon run, with a deadline, and watches its serial console for
 * a line from the kernel; without one, VMs run under TCG.
 *
 * The probe is synchronous (up to VMCD_ACCEL_PROBE_DEADLINE_MS plus a
 * moment to reap the probe QEMU): call vmcd_accel_resolve(VMC_ACCEL_AUTO,
 * ...) once at start-up, before the main loop runs. Every later call
 * returns the cached verdict at once, and vmcd_vm_start() uses only the
 * cache, so nothing ever probes inside the loop.
 */
#ifndef VMCD_ACCEL_H
#define VMCD_ACCEL_H

#include <stdbool.h>
#include <stddef.h>

#include "settings.h"

/* How long the probe kernel has, under KVM, to print a console line. */
#define VMCD_ACCEL_PROBE_DEADLINE_MS 5000

/*
 * The QEMU binary: $VMC_QEMU when set (tests), else qemu-system-x86_64
 * from PATH. 0, -ENOENT (not found or not executable), -ENAMETOOLONG.
 */
int vmcd_qemu_find(char *path, size_t len);

/*
 * kvm -> kvm (a warning when /dev/kvm cannot be opened read-write),
 * tcg -> tcg, auto -> the probe's verdict, probed on the first call only.
 * probe_kernel NULL: /boot/vmlinuz-$(uname -r); probe_initrd may be NULL.
 * Every verdict of the probe is logged once with its reason.
 */
enum vmc_accel vmcd_accel_resolve(enum vmc_accel wanted, const char *probe_kernel,
				  const char *probe_initrd);

/* The cached verdict of auto, if the probe has run: true and *out set. */
bool vmcd_accel_auto_cached(enum vmc_accel *out);

/* Milliseconds the probe took (0 before it ran or when it was not needed). */
unsigned int vmcd_accel_probe_ms(void);

#endif
