/*
 * VM group definition: the JSON document an operator writes
 * (`clusterctl vm add web1.json`), parsed into a typed struct and
 * validated field by field. The same code runs in clusterctl (early,
 * friendly errors), in the origin daemon and in every replica when the
 * change is applied, so every node reaches the same verdict.
 */
#ifndef VMC_GROUP_DEF_H
#define VMC_GROUP_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define VMC_NAME_MAX 63
#define VMC_MEMORY_MIB_MIN 16
#define VMC_MEMORY_MIB_MAX (1024 * 1024)
#define VMC_VCPUS_MAX 256
#define VMC_DISKS_MAX 16
#define VMC_NICS_MAX 8
#define VMC_OWNERS_MAX 32
#define VMC_CLASSES_MAX 16
#define VMC_CMDLINE_MAX 4096
#define VMC_FAILOVER_PERIOD_S_MAX (7 * 24 * 3600)
#define VMC_START_AFTER_MAX 16
#define VMC_START_AFTER_TIMEOUT_S_DEFAULT 300
#define VMC_START_AFTER_TIMEOUT_S_MAX 86400

enum vmc_priority {
	VMC_PRIORITY_HIGH = 0,
	VMC_PRIORITY_MEDIUM,
	VMC_PRIORITY_LOW,
	VMC_PRIORITY_NO_AUTO_START,
};

enum vmc_failback_mode {
	VMC_FAILBACK_NEVER = 0,
	VMC_FAILBACK_IMMEDIATE,
	VMC_FAILBACK_WINDOW,
};

enum vmc_manager {
	VMC_MANAGER_VMCLUSTER = 0,
	VMC_MANAGER_PACEMAKER,
};

struct vmc_disk {
	char *path;
	char *format; /* "raw" or "qcow2" */
	bool local;   /* on this node's own storage: no volume, no lock */
};

struct vmc_nic {
	char *bridge;
	char *mac; /* NULL: the driver derives one from the VM name */
};

struct vmc_strlist {
	size_t n;
	char **v;
};

struct vmc_group_def {
	char *name;
	uint32_t memory_mib;
	uint32_t vcpus;
	char *cpu;     /* a QEMU CPU model ("Haswell-v4"), or NULL for QEMU's default */
	bool has_boot;
	char *kernel;
	char *initrd;  /* may be NULL */
	char *cmdline; /* may be NULL */
	size_t n_disks;
	struct vmc_disk *disks;
	size_t n_nics;
	struct vmc_nic *nics;
	struct vmc_strlist preferred_owners;
	struct vmc_strlist possible_owners;
	struct vmc_strlist anti_affinity;
	enum vmc_priority priority;
	uint32_t failover_max_failures;
	uint32_t failover_period_s;
	enum vmc_failback_mode failback;
	uint16_t failback_start_min; /* window: minutes of the day, [start, end), may cross midnight */
	uint16_t failback_end_min;
	enum vmc_manager manager;
	/* Start order: it starts once these groups are online, or after the timeout (local_policy.h). */
	struct vmc_strlist start_after;
	uint32_t start_after_timeout_s;
};

/*
 * Parse and validate a definition. On error returns -EINVAL and writes one
 * line into err naming the field ("field 'vcpus': ..."); *out is untouched.
 */
int vmc_group_def_from_json(json_object *obj, struct vmc_group_def **out,
			    char *err, size_t errlen);
int vmc_group_def_from_string(const char *text, struct vmc_group_def **out,
			      char *err, size_t errlen);

/* Canonical JSON: every field present, fixed key order. */
json_object *vmc_group_def_to_json(const struct vmc_group_def *def);

struct vmc_group_def *vmc_group_def_copy(const struct vmc_group_def *def);
void vmc_group_def_free(struct vmc_group_def *def);

/*
 * Apply "key=value" assignments (`clusterctl vm set`) and validate the
 * result. Keys are field names, dotted for nested ones
 * ("failover.max_failures"); list fields take comma-separated values.
 */
int vmc_group_def_set(const struct vmc_group_def *def, const char *const *assignments,
		      size_t n, struct vmc_group_def **out, char *err, size_t errlen);

bool vmc_valid_name(const char *name);
const char *vmc_priority_to_str(enum vmc_priority p);
const char *vmc_manager_to_str(enum vmc_manager m);
/* Pacemaker places it: the cluster never starts, stops or moves it on its own. */
bool vmc_group_def_by_pacemaker(const struct vmc_group_def *def);
/* "never", "immediate" or "window HH-HH" (HH:MM-HH:MM when a side has minutes) into buf */
const char *vmc_failback_to_str(const struct vmc_group_def *def, char *buf, size_t len);
bool vmc_strlist_contains(const struct vmc_strlist *l, const char *s);

#endif
