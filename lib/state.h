/*
 * The replicated cluster state. Every daemon holds one copy and changes it
 * only by applying CPG messages in delivery order (see replica.h), so the
 * copies stay equal. The canonical JSON snapshot is what is persisted,
 * what a joining node receives, and what state_digest hashes.
 */
#ifndef VMC_STATE_H
#define VMC_STATE_H

#include <stdint.h>
#include <json-c/json.h>

#include "group_def.h"
#include "health.h"
#include "settings.h"
#include "volume.h"

#define VMC_SNAPSHOT_FORMAT 1
#define VMC_DIGEST_HEX_LEN 64

enum vmc_group_state {
	VMC_GROUP_OFFLINE = 0,
	VMC_GROUP_STARTING,
	VMC_GROUP_ONLINE,
	VMC_GROUP_STOPPING,
	VMC_GROUP_MIGRATING,
	VMC_GROUP_FAILED,
};

/*
 * A move of a group to another node (migration.h): queued while the
 * group is online and the per-node limit is reached, then transfer and
 * switchover while it is migrating. Phase none otherwise.
 */
enum vmc_mig_phase {
	VMC_MIG_NONE = 0,
	VMC_MIG_QUEUED,     /* waiting for a free slot on the source or the target */
	VMC_MIG_TRANSFER,   /* the agents copy it; the source runs it and holds its locks */
	VMC_MIG_SWITCHOVER, /* the source is paused and the locks are the target's */
};

#define VMC_MIG_ID_MAX 32

/* Why a group moves (since protocol 6): what its end does to the group's home. */
enum vmc_mig_cause {
	VMC_MIG_BY_OPERATOR = 0, /* move-vm: the group stays where it went, no home kept */
	VMC_MIG_BY_DRAIN,        /* its node drains: home becomes the node it left */
	VMC_MIG_BY_FAILBACK,     /* back to its home: the home is done with */
	VMC_MIG_BY_EVACUATION,   /* a volume fails under it: the home stays as it was */
	VMC_MIG_BY_PACEMAKER,    /* pacemaker's agent moves a group pacemaker manages (since protocol 7) */
};

struct vmc_migration {
	enum vmc_mig_phase phase;
	enum vmc_mig_cause cause;
	uint32_t target;
	bool quick;                     /* save to a file and restore, not live */
	char id[VMC_MIG_ID_MAX + 1];    /* 32 hex digits, chosen by the requester */
	uint64_t since_s;               /* when it was asked for (the requester's clock) */
	uint64_t seq;                   /* config_version that queued it: the queue's order */
};

/*
 * Where a group came from when the cluster moved it without an operator
 * asking (since protocol 6): the node it failed over from, or was drained
 * from. Failback (failback.h) takes it there again; a manual move clears it.
 */
enum vmc_home_kind {
	VMC_HOME_NONE = 0,
	VMC_HOME_FAILOVER, /* it failed over: back per its failback policy, after failback_delay_s */
	VMC_HOME_DRAIN,    /* its node was drained: back when the node is resumed with a failback */
	VMC_HOME_RESUMED,  /* drained, then resumed with --failback policy: back per its policy */
	VMC_HOME_FROZEN,   /* stopped with its node's shutdown (policy freeze): it starts there when it is back */
};

struct vmc_home {
	enum vmc_home_kind kind;
	uint32_t node;
	uint64_t since_s;   /* when it left (the sender's clock) */
	uint32_t failed;    /* failbacks that failed since */
};

/* A group's moves off a draining node that failed (since protocol 6). */
struct vmc_drain_tries {
	uint8_t live_failed;
	uint8_t quick_failed;
};

struct vmc_group {
	struct vmc_group_def *def;
	uint32_t owner; /* corosync node id, 0 when no node owns it */
	enum vmc_group_state state;
	bool want_started;
	uint32_t attempt;  /* start attempts so far: raised on every entry into starting */
	char reason[320];  /* why it is in this state, for `vm show` */
	struct vmc_failure failures[VMC_FAILURES_KEPT];
	size_t n_failures;
	struct vmc_migration mig;   /* since protocol 5 */
	struct vmc_home home;       /* since protocol 6 */
	struct vmc_drain_tries drain;
	bool relocate;              /* stopping to start on another node once stopped (since protocol 6) */
	uint32_t failed_on;         /* failed: the node it failed on (since protocol 7; 0 when not said) */
};

#define VMC_CPU_MODELS_MAX 4096

/* What each node reported about itself (NODE_FACTS). */
struct vmc_node_facts {
	uint32_t id;
	char name[64];
	uint32_t mem_mib;  /* memory it offers to VMs */
	bool watchdog;     /* it holds an armed watchdog (since protocol 4) */
	char migration_addr[48]; /* where its migration agent listens, "" if none (since protocol 5) */
	/* What it can run (since protocol 5; "" when it did not say): for the checks before a move. */
	char cpu_vendor[32];
	char qemu_version[32];
	char accel[8];
	char cpu_models[VMC_CPU_MODELS_MAX]; /* comma-separated */
	uint64_t incarnation; /* its daemon's, random at each start (since protocol 6; 0 when it did not say) */
	uint32_t mig_window;  /* live migrations out of it at once, as it measured (MIGRATE_WINDOW); 0: none said */
};

#define VMC_STATE_NODES_MAX 64
/* Applied requests remembered, so an origin can tell after a membership change. */
#define VMC_RECENT_MAX 1024

/* One applied request: who sent it, under which id. */
struct vmc_request_ref {
	uint32_t origin;
	uint64_t id;
};

/*
 * The requests applied lately, oldest first (a ring), and per origin the
 * highest id applied: enough for an origin whose change was caught in a
 * membership change to learn, from the state the next primary sync settled
 * on, whether it was applied (replica.h, "acknowledged").
 */
struct vmc_recent {
	struct vmc_request_ref ring[VMC_RECENT_MAX];
	size_t n;     /* entries held */
	size_t head;  /* index of the oldest */
	struct vmc_request_ref max_id[VMC_STATE_NODES_MAX]; /* per origin, the highest applied */
	size_t n_max;
};

/*
 * Fencing of a lost node as the cluster saw it (FENCE_FAILED, NODE_FENCED):
 * how many attempts failed, so every member agrees whose turn the next one
 * is, and why the last one failed, for `status` on any node. Kept until the
 * node is fenced or announces itself again.
 */
struct vmc_fence_record {
	uint32_t node;
	uint32_t attempts;      /* failed attempts */
	uint32_t last_fencer;   /* who ran the last one */
	char last_error[160];
};

/*
 * What the cluster decided about a node, as opposed to what it reports
 * about itself (facts): kept while it is not simply active (node_admin.h).
 */
enum vmc_node_mode {
	VMC_NODE_ACTIVE = 0,
	VMC_NODE_DRAINING,     /* its groups move away; it takes none */
	VMC_NODE_PAUSED,       /* drained, or paused by an operator: it takes none */
	VMC_NODE_DRAIN_FAILED, /* some groups could not leave; it takes none */
	VMC_NODE_QUARANTINED,  /* it failed too often: it takes none until until_s */
};

#define VMC_NODE_FAILURES_KEPT VMC_QUARANTINE_THRESHOLD_MAX

struct vmc_node_admin {
	uint32_t node;
	enum vmc_node_mode mode;
	bool force;            /* drain --force: quick migration, then stop and start elsewhere */
	bool stop;             /* drain by stopping each group and starting it elsewhere (shutdown_policy stop) */
	bool freeze;           /* shutdown_policy freeze: each group stops and waits for this node to be back */
	bool shutdown;         /* drained for a host shutdown: its daemon exits once paused */
	bool resume_on_return; /* ... and the shutdown drained it (it was active): back, it is active again */
	uint64_t incarnation;  /* the node's daemon when the shutdown was asked: a new one ends it */
	uint32_t drain_target; /* drain --target, 0 for placement's choice */
	uint64_t since_s;      /* when it entered the mode */
	uint64_t until_s;      /* quarantined until then */
	bool lost;             /* proven dead, and it has not announced itself since */
	uint64_t back_s;       /* when it announced itself after its last loss */
	uint64_t failures[VMC_NODE_FAILURES_KEPT]; /* when it was proven dead, oldest first */
	size_t n_failures;
};

struct vmc_state {
	uint64_t epoch;          /* primary views completed; only quorate partitions raise it */
	uint64_t config_version; /* changes applied */
	struct vmc_settings settings;
	struct vmc_node_facts nodes[VMC_STATE_NODES_MAX]; /* sorted by id */
	size_t n_nodes;
	struct vmc_fence_record fencing[VMC_STATE_NODES_MAX]; /* sorted by node */
	size_t n_fencing;
	struct vmc_recent recent;  /* since protocol 3 */
	struct vmc_node_admin admin[VMC_STATE_NODES_MAX]; /* sorted by node; since protocol 6 */
	size_t n_admin;
	/* This node's own, not replicated (not in the digest, kept across a
	 * snapshot install): the highest epoch counter it promised in a
	 * primary sync (replica.h, "history"). */
	uint64_t promised;
	size_t n_groups;
	size_t cap_groups;
	struct vmc_group *groups; /* sorted by name */
	size_t n_volumes;
	struct vmc_volume *volumes; /* sorted by name; since protocol 4 */
};

struct vmc_state *vmc_state_new(void);
void vmc_state_free(struct vmc_state *s);
struct vmc_state *vmc_state_copy(const struct vmc_state *s);

struct vmc_group *vmc_state_group_find(const struct vmc_state *s, const char *name);
/* Takes ownership of def on success. -EEXIST if the name is taken. */
int vmc_state_group_add(struct vmc_state *s, struct vmc_group_def *def);
int vmc_state_group_remove(struct vmc_state *s, const char *name);
/* Replaces the definition (ownership taken); owner and state are kept. */
int vmc_state_group_redefine(struct vmc_state *s, struct vmc_group_def *def);

const struct vmc_node_facts *vmc_state_node(const struct vmc_state *s, uint32_t id);
/* The name a node reported (facts), else "node id N" in buf: for reasons an operator reads. */
const char *vmc_state_node_label(const struct vmc_state *s, uint32_t id, char *buf, size_t len);
/* Adds or replaces a node's facts; -ENOSPC when the table is full. */
int vmc_state_node_set(struct vmc_state *s, const struct vmc_node_facts *f);

/* Remember an applied request (origin, id); id 0 is not remembered. */
void vmc_state_recent_add(struct vmc_state *s, uint32_t origin, uint64_t id);
/* Was (origin, id) applied? 1 yes, 0 no, -1 cannot tell (older than what is remembered). */
int vmc_state_recent_find(const struct vmc_state *s, uint32_t origin, uint64_t id);

/*
 * Epochs: a counter paired with the node id of the sync that made it, so
 * that two primary views never share one. next is (counter + 1, node);
 * epochs of the first format (a bare counter, below 2^32) count as that
 * counter. Compared as plain integers, they keep their order.
 */
uint64_t vmc_epoch_next(uint64_t max, uint32_t node);
uint64_t vmc_epoch_counter(uint64_t epoch);

/* The fencing record of node, NULL when there is none. */
const struct vmc_fence_record *vmc_state_fencing(const struct vmc_state *s, uint32_t node);
/* Adds or replaces one; -ENOSPC when the table is full. */
int vmc_state_fencing_set(struct vmc_state *s, const struct vmc_fence_record *f);
void vmc_state_fencing_clear(struct vmc_state *s, uint32_t node);

struct vmc_volume *vmc_state_volume_find(const struct vmc_state *s, const char *name);
/* The volume path lies inside, or NULL. */
struct vmc_volume *vmc_state_volume_of(const struct vmc_state *s, const char *path);
/* A copy of v (its locks are not copied: it has none yet). -EEXIST, -ENOSPC, -ENOMEM. */
int vmc_state_volume_add(struct vmc_state *s, const struct vmc_volume *v);
int vmc_state_volume_remove(struct vmc_state *s, const char *name);
/* Reports of node on every volume forgotten (it was proven dead). */
void vmc_state_volumes_forget_node(struct vmc_state *s, uint32_t node);
int vmc_state_volume_seen_set(struct vmc_volume *v, const struct vmc_volume_seen *seen);

json_object *vmc_state_to_json(const struct vmc_state *s);
char *vmc_state_to_string(const struct vmc_state *s);
int vmc_state_from_json(json_object *obj, struct vmc_state **out, char *err, size_t errlen);
int vmc_state_from_string(const char *text, struct vmc_state **out, char *err, size_t errlen);

/* SHA-256 of the canonical snapshot, as 64 hex characters plus NUL. */
void vmc_state_digest(const struct vmc_state *s, char hex[VMC_DIGEST_HEX_LEN + 1]);

const char *vmc_group_state_to_str(enum vmc_group_state st);
int vmc_group_state_from_str(const char *str, enum vmc_group_state *out);

#endif
