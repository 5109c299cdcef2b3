/*
 * Cluster-wide settings (`clusterctl cluster show|set`), part of the
 * replicated state. Validated as a whole after every change, like a VM
 * definition, so no sequence of `set` commands can leave them inconsistent
 * (fence_method=agent without a fence_agent, say).
 */
#ifndef VMC_SETTINGS_H
#define VMC_SETTINGS_H

#include <stdbool.h>
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

/* Migrations (since protocol 5; migration.h). */
#define VMC_MIGRATION_MAX_PARALLEL_DEFAULT 2
#define VMC_MIGRATION_MAX_PARALLEL_MAX 16
#define VMC_MIGRATION_DOWNTIME_MS_DEFAULT 300
#define VMC_MIGRATION_TIMEOUT_S_DEFAULT 600
#define VMC_MIGRATION_PORT_DEFAULT 7794
#define VMC_MIGRATION_NETWORK_MAX 64
#define VMC_MIGRATION_NODES_MAX 512

/* Nodes that come back, fail, or shut down (since protocol 6; drain.h, failback.h). */
#define VMC_FAILBACK_DELAY_S_DEFAULT 60
#define VMC_QUARANTINE_THRESHOLD_DEFAULT 3
#define VMC_QUARANTINE_DURATION_S_DEFAULT 7200
#define VMC_QUARANTINE_THRESHOLD_MAX 8
#define VMC_TIMEZONE_MAX 64

enum vmc_shutdown_policy {
	VMC_SHUTDOWN_MIGRATE = 0, /* drain the node, then stop */
	VMC_SHUTDOWN_STOP,        /* shut its VMs down; the cluster restarts them elsewhere */
	VMC_SHUTDOWN_FREEZE,      /* leave them for this node to restart when it is back */
};

struct vmc_settings {
	enum vmc_fence_method fence_method;
	char fence_agent[256];   /* absolute path; needed when fence_method is agent */
	uint32_t fence_timeout_s;
	enum vmc_accel accel;
	uint32_t lease_io_timeout_s; /* T of the lease timeline (timeouts.h) */
	/* Where the agents listen and connect: an IPv4 CIDR, "" for the corosync ring addresses. */
	char migration_network[VMC_MIGRATION_NETWORK_MAX];
	uint32_t migration_port;
	uint32_t migration_max_parallel; /* per node, in or out; more wait in the queue (the adaptive window's cap) */
	bool migration_adaptive;          /* since protocol 6: out of a node, as many as its window (mig_window.h) */
	uint32_t migration_bandwidth_mib; /* MiB/s per migration; 0: as fast as the link goes */
	uint32_t migration_downtime_ms;   /* the pause QEMU may plan for at the switchover */
	uint32_t migration_timeout_s;     /* a live migration not finished by then is cancelled */
	bool migration_encrypt;           /* the agents seal the stream (AES-256-GCM) */
	/* Nodes that take no migration in, or send none out: comma-separated names, "" for none. */
	char migration_no_incoming[VMC_MIGRATION_NODES_MAX];
	char migration_no_outgoing[VMC_MIGRATION_NODES_MAX];
	uint32_t failback_delay_s;      /* a node back for less than this takes no group back */
	uint32_t quarantine_threshold;  /* losses within an hour that quarantine a node; 0: never */
	uint32_t quarantine_duration_s;
	char timezone[VMC_TIMEZONE_MAX]; /* failback windows are hours of this zone (IANA name or UTC) */
	enum vmc_shutdown_policy shutdown_policy;
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
/* Does any migration setting differ from its default? (they need protocol 5) */
bool vmc_settings_migration_changed(const struct vmc_settings *a, const struct vmc_settings *b);
/* Does any of the protocol 6 settings differ? */
bool vmc_settings_nodes_changed(const struct vmc_settings *a, const struct vmc_settings *b);
const char *vmc_shutdown_policy_to_str(enum vmc_shutdown_policy p);
/* Is node named in the comma-separated list? */
bool vmc_name_in_list(const char *list, const char *node);
/* An IPv4 CIDR "a.b.c.d/n": 0 with the network and prefix, or -EINVAL. */
int vmc_cidr_parse(const char *cidr, uint32_t *net, unsigned *prefix);

#endif
