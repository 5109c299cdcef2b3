/*
 * Cluster-wide settings (`clusterctl cluster show|set`), part of the
 * replicated state. Validated as a whole after every change, like a VM
 * definition, so no sequence of `set` commands can leave them inconsistent
 * (fence_method=agent without a fence_agent, say).
 */
#ifndef VMC_SETTINGS_H
#define VMC_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "timeouts.h"

#define VMC_FENCE_TIMEOUT_S_DEFAULT 60
#define VMC_FENCE_TIMEOUT_S_MAX 3600

enum vmc_fence_method {
	VMC_FENCE_UNSET = 0, /* nobody chose: lost nodes' VMs are not failed over */
	VMC_FENCE_AGENT,     /* a fence-agents-style executable */
	VMC_FENCE_PACEMAKER, /* pacemaker's fencer (libstonithd) */
	VMC_FENCE_NONE,      /* chosen explicitly: no proof a lost node is dead */
	VMC_FENCE_LEASE,     /* since protocol 4: a lost node's lease expired (timeouts.h) */
};

enum vmc_accel {
	VMC_ACCEL_AUTO = 0,  /* probe that KVM really boots a guest, else TCG */
	VMC_ACCEL_KVM,
	VMC_ACCEL_TCG,
};

struct vmc_settings {
	enum vmc_fence_method fence_method;
	char fence_agent[256];   /* absolute path; needed when fence_method is agent */
	uint32_t fence_timeout_s;
	enum vmc_accel accel;
	uint32_t lease_io_timeout_s; /* T of the lease timeline (timeouts.h) */
};

void vmc_settings_defaults(struct vmc_settings *s);
json_object *vmc_settings_to_json(const struct vmc_settings *s);
/* Missing keys take their defaults (snapshots written before a key existed). */
int vmc_settings_from_json(json_object *o, struct vmc_settings *out, char *err, size_t errlen);
/* Applies "key=value" assignments to a copy and validates the result. */
int vmc_settings_set(const struct vmc_settings *cur, const char *const *assignments, size_t n,
		     struct vmc_settings *out, char *err, size_t errlen);

const char *vmc_fence_method_to_str(enum vmc_fence_method m);
const char *vmc_accel_to_str(enum vmc_accel a);
/* One line an operator should see on every `status`, or NULL. */
const char *vmc_settings_warning(const struct vmc_settings *s);

#endif
