/*
 * Every CPG message type in one table (msg_types.c): its number, its
 * name, the protocol version that introduced it, and — for a change
 * request — the parser that turns its JSON body into a typed body and
 * the function that applies that to the state. Sync traffic (hello,
 * state chunks, exclusions and restarts of a sync) is the replica's own
 * and has no apply function here.
 *
 * A typed body points into the JSON body it was parsed from: it lives as
 * long as the message. A parser checks presence, types and ranges and
 * nothing else: whether the change is allowed is the apply function's
 * decision, made against the state.
 */
#ifndef VMC_MSG_TYPES_H
#define VMC_MSG_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "apply.h"
#include "msg.h"
#include "state.h"

#define VMC_SET_MAX 64

struct vmc_body_group_add {
	json_object *definition;
};

/* GROUP_REMOVE, GROUP_START, GROUP_STOP */
struct vmc_body_name {
	const char *name;
	uint32_t node; /* since protocol 7, start and stop: on this node only; 0 when absent */
};

/* GROUP_SET (name set) and SETTINGS_SET (name NULL) */
struct vmc_body_set {
	const char *name;
	const char *assignments[VMC_SET_MAX];
	size_t n;
};

struct vmc_body_node_facts {
	const char *name;
	uint32_t mem_mib;
	bool watchdog;            /* since protocol 4: it holds an armed watchdog */
	const char *migration_addr; /* since protocol 5: its agent's IPv4 address, or NULL */
	const char *cpu_vendor;     /* since protocol 5, each NULL when absent */
	const char *qemu_version;
	const char *accel;
	const char *cpu_models;
	uint64_t at_s;              /* since protocol 6: the sender's clock, 0 when absent */
	uint64_t incarnation;       /* since protocol 6: its daemon's, 0 when absent */
};

/* VOLUME_ADD (path set), VOLUME_MOVE (node set) */
struct vmc_body_volume {
	const char *name;
	const char *path;
	const char *node;
};

struct vmc_body_volume_health {
	const char *name;
	const char *health;
	int32_t err;
	const char *detail;
	uint64_t at_s;
};

struct vmc_body_group_report {
	const char *name;
	const char *event;
	const char *reason;       /* "" when the sender gave none */
	uint64_t at_s;
	bool has_attempt;         /* since protocol 2 */
	uint32_t attempt;
};

struct vmc_body_node_fenced {
	uint32_t node;
	const char *method;       /* "" when the sender gave none */
	bool has_epoch;           /* since protocol 2 */
	uint64_t epoch;           /* the epoch the loss was proven in */
	json_object *reports;     /* [[node, [vm, ...]], ...], NULL when absent */
	const char *by;           /* who confirmed it by hand (method "manual"), or NULL */
	uint64_t at_s;            /* since protocol 6: when it was proven dead, 0 when absent */
};

struct vmc_body_fence_failed {
	uint32_t node;
	uint32_t attempt;         /* the attempt that failed (attempts recorded before it) */
	const char *method;
	const char *error;
};

/* MIGRATE_REQUEST (target, mode, at_s), _SWITCHOVER, _DONE, _ABORT (reason) */
struct vmc_body_migrate {
	const char *name;
	const char *id;
	uint32_t target;
	bool quick;
	uint64_t at_s;
	const char *reason;       /* "" when the sender gave none */
	enum vmc_mig_cause cause; /* since protocol 6 (MIGRATE_REQUEST); operator when absent */
};

/* NODE_DRAIN (force, target), NODE_RESUME (failback, expired); since protocol 6 */
struct vmc_body_node_admin {
	uint32_t node;
	bool force;
	uint32_t target;          /* 0: placement's choice */
	const char *failback;     /* "none", "immediate" or "policy" */
	bool expired;             /* sent because its quarantine ran out, not by an operator */
	bool shutdown;            /* NODE_DRAIN for a host shutdown: shutdown_policy decides how */
	uint64_t at_s;
};

/* MIGRATE_WINDOW; since protocol 6 */
struct vmc_body_window {
	uint32_t window;
};

union vmc_body {
	struct vmc_body_group_add group_add;
	struct vmc_body_name name;
	struct vmc_body_set set;
	struct vmc_body_node_facts node_facts;
	struct vmc_body_group_report report;
	struct vmc_body_node_fenced fenced;
	struct vmc_body_fence_failed fence_failed;
	struct vmc_body_volume volume;
	struct vmc_body_volume_health volume_health;
	struct vmc_body_migrate migrate;
	struct vmc_body_node_admin node_admin;
	struct vmc_body_window window;
};

typedef int (*vmc_body_parse_fn)(json_object *body, union vmc_body *out, char *detail, size_t len);
typedef int (*vmc_body_apply_fn)(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
				 const union vmc_body *b, char *detail, size_t len);

struct vmc_msg_type_info {
	uint16_t type;
	const char *name;
	uint16_t since;            /* protocol version that introduced it */
	vmc_body_parse_fn parse;   /* NULL: sync traffic, handled by the replica */
	vmc_body_apply_fn apply;
	/* What the nodes report (facts, VM events, fencing), as opposed to an
	 * operator's change: a view that may only recover takes these alone. */
	bool report;
};

/* The table's row for type, or NULL for a type this build does not know. */
const struct vmc_msg_type_info *vmc_msg_type_info(uint16_t type);

#endif
