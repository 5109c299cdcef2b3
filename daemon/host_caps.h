/*
 * What this node can run, for the checks a move makes before anything
 * starts (lib/migration.h): its CPU vendor, its QEMU's version, and the
 * CPU models that QEMU can give whole under this node's accelerator.
 * Probed once, before the loop (a QEMU with no machine, over QMP on a
 * pipe: a second or so); announced in this node's facts.
 */
#ifndef VMCD_HOST_CAPS_H
#define VMCD_HOST_CAPS_H

#include "state.h"

struct vmcd_host_caps {
	char cpu_vendor[32];      /* "GenuineIntel", "AuthenticAMD"; "" when unknown */
	char qemu_version[32];    /* "7.2.0"; "" when QEMU could not be asked */
	char accel[8];            /* what the probe ran under: kvm or tcg */
	char cpu_models[VMC_CPU_MODELS_MAX]; /* comma-separated; "" when unknown */
};

/* Asks, and logs what it found. Needs the accelerator probe done (accel.h). */
void vmcd_host_caps_probe(void);
const struct vmcd_host_caps *vmcd_host_caps(void);

#endif
