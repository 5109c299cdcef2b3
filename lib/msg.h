/*
 * The CPG wire format of vmclusterd.
 *
 * Every message is a fixed 24-byte little-endian header followed by a
 * NUL-terminated JSON payload:
 *
 *   offset size field
 *    0     4   magic        "VMCL" (0x4c434d56)
 *    4     2   version      protocol version the sender wrote it in
 *    6     2   type         enum vmc_msg_type; 0 is invalid
 *    8     4   sender       corosync node id of the sender
 *   12     4   payload_len  bytes after the header, including the NUL
 *   16     8   request_id   chosen by the sender; 0 for sync traffic
 *
 * Protocol history (never reuse a type number; add, don't change). Each
 * type's version is in the table of lib/msg_types.c; fields added to a
 * body later are listed here and are optional to a reader:
 *   1  HELLO, STATE_CHUNK, GROUP_ADD, GROUP_REMOVE, GROUP_SET, SETTINGS_SET,
 *      NODE_FACTS, GROUP_START, GROUP_STOP, GROUP_REPORT, NODE_FENCED;
 *      later in version 1: HELLO "votes" (a sender without it has 1 vote),
 *      HELLO "running" (the VMs its node runs: the recovery barrier),
 *      NODE_FENCED "reports" (the running VMs every member reported in
 *      the sync of the view it was decided in)
 *   2  FENCE_FAILED (a failed fencing attempt: the next one is another
 *      member's), SYNC_EXCLUDE (members whose hello missed the deadline
 *      leave this sync), SYNC_RESTART (a member excluded, or tainted by a
 *      local failure, asks for the sync again);
 *      HELLO "sync_seq" (which sync of the view it belongs to) and
 *      "tainted" (this copy must not be a sync source);
 *      GROUP_REPORT "attempt" (the start attempt it is about; a report for
 *      another attempt is stale) and the event "self_fenced" (killed on
 *      losing quorum: restarted, not counted as a failure);
 *      NODE_FENCED "epoch" (the epoch it was decided in: refused in any
 *      other, so a late or repeated confirmation cannot recover a node that
 *      has come back), method "manual" with "by" (clusterctl node
 *      confirm-fenced). From version 2, NODE_FENCED needs "epoch" and the
 *      reports of every member of the view.
 *   3  COMMIT_CONFIRM (a member has applied and persisted everything up to a
 *      config_version in an epoch: an origin answers its client "done" once
 *      every member of the primary view has); HELLO "vq" (votequorum's
 *      quorate flag, ring id, quorum and qdevice votes: the view is primary
 *      when corosync says so, counting only members with a history);
 *      SYNC_EXCLUDE "history" (which vouched members have one); epochs
 *      are (counter << 32 | node id); the state's "recent" (requests
 *      applied, so no change is applied twice and an origin can tell)
 *   4  VOLUME_ADD, VOLUME_REMOVE, VOLUME_MOVE (an operator's volumes and
 *      their coordinator), VOLUME_HEALTH (what a node's lease renewals say
 *      about a volume); the state's "volumes" with their image locks;
 *      GROUP_REPORT event "volume_lost" (killed because a volume it uses
 *      failed on its node: restarted elsewhere, not counted as a failure);
 *      NODE_FACTS "watchdog" (the node holds an armed watchdog); the
 *      fence method "lease" and NODE_FENCED method "lease"; a disk must
 *      lie on a volume unless it is marked local
 *   5  MIGRATE_REQUEST, MIGRATE_SWITCHOVER, MIGRATE_DONE, MIGRATE_ABORT (a
 *      group moved to another node, migration.h); a group's "migration"
 *      in the state; the settings migration_* (network, port, limit,
 *      bandwidth, downtime, timeout, encryption)
 *   6  NODE_DRAIN, NODE_RESUME (drain.h); the state's "node_admin" (a
 *      node's mode: active, draining, paused, drain-failed, quarantined,
 *      and its recent failures) and a group's "home" (where it failed
 *      over or was drained from, for failback); MIGRATE_REQUEST "cause";
 *      NODE_FENCED and NODE_FACTS "at_s"; the settings failback_delay_s,
 *      quarantine_threshold, quarantine_duration_s, timezone, shutdown_policy,
 *      migration_adaptive; MIGRATE_WINDOW (how many live migrations out of
 *      the sender at once, mig_window.h); a group's start_after
 *   7: GROUP_START and GROUP_STOP "node" (start there, stop only if there:
 *      what pacemaker's agent asks for), MIGRATE_REQUEST cause "pacemaker";
 *      a group's "failed_on" (the node it failed on, for the agent's
 *      monitor); groups with manager pacemaker are started, stopped,
 *      moved and recovered only by pacemaker (apply.h, vmc_apply_by_pacemaker)
 *
 * A cluster speaks the lowest version its members support (advertised in
 * HELLO), so an upgraded node keeps talking to the others. Feature tests
 * go through the VMC_PROTO_HAS_* macros below, never a bare number.
 */
#ifndef VMC_MSG_H
#define VMC_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define VMC_MSG_MAGIC 0x4c434d56u
#define VMC_MSG_HEADER_LEN 24
#define VMC_PROTO_VERSION_MIN 1
#define VMC_PROTO_VERSION_MAX 7
/* Report attempts, fencing rotation, sync exclusion, NODE_FENCED bound to its epoch. */
#define VMC_PROTO_HAS_ATTEMPTS(v) ((v) >= 2)
/* Commit confirmations, votequorum decides primary, epochs paired with a node id,
 * the state remembers applied requests. */
#define VMC_PROTO_HAS_CONFIRM(v) ((v) >= 3)
/* Volumes, image locks, host leases, the watchdog. */
#define VMC_PROTO_HAS_VOLUMES(v) ((v) >= 4)
/* Live and quick migration of groups between nodes. */
#define VMC_PROTO_HAS_MIGRATION(v) ((v) >= 5)
/* Node drain and resume, failback homes, node quarantine, a move's cause. */
#define VMC_PROTO_HAS_DRAIN(v) ((v) >= 6)
/* Pacemaker-managed groups: GROUP_START and GROUP_STOP on one node, cause pacemaker. */
#define VMC_PROTO_HAS_PACEMAKER(v) ((v) >= 7)
/* Big enough for one snapshot chunk with its JSON escaping. */
#define VMC_MSG_MAX_LEN (1024 * 1024)

enum vmc_msg_type {
	VMC_MSG_INVALID = 0,
	VMC_MSG_HELLO = 1,
	VMC_MSG_STATE_CHUNK = 2,
	VMC_MSG_GROUP_ADD = 3,
	VMC_MSG_GROUP_REMOVE = 4,
	VMC_MSG_GROUP_SET = 5,
	VMC_MSG_SETTINGS_SET = 6,
	VMC_MSG_NODE_FACTS = 7,
	VMC_MSG_GROUP_START = 8,
	VMC_MSG_GROUP_STOP = 9,
	VMC_MSG_GROUP_REPORT = 10,
	VMC_MSG_NODE_FENCED = 11,
	VMC_MSG_FENCE_FAILED = 12,
	VMC_MSG_SYNC_EXCLUDE = 13,
	VMC_MSG_SYNC_RESTART = 14,
	VMC_MSG_COMMIT_CONFIRM = 15,
	VMC_MSG_VOLUME_ADD = 16,
	VMC_MSG_VOLUME_REMOVE = 17,
	VMC_MSG_VOLUME_MOVE = 18,
	VMC_MSG_VOLUME_HEALTH = 19,
	VMC_MSG_MIGRATE_REQUEST = 20,
	VMC_MSG_MIGRATE_SWITCHOVER = 21,
	VMC_MSG_MIGRATE_DONE = 22,
	VMC_MSG_MIGRATE_ABORT = 23,
	VMC_MSG_NODE_DRAIN = 24,
	VMC_MSG_NODE_RESUME = 25,
	VMC_MSG_MIGRATE_WINDOW = 26,
	VMC_MSG_TYPE_COUNT,
};

struct vmc_msg {
	uint16_t version;
	uint16_t type;
	uint32_t sender;
	uint64_t request_id;
	json_object *body; /* owned by the message */
};

/* Header + payload in a new malloc()ed buffer. */
int vmc_msg_encode(const struct vmc_msg *m, void **buf, size_t *len);
/*
 * Checks, in order: length >= header, magic, version we speak, known
 * type (and one its version has), payload length consistent,
 * NUL-terminated, valid JSON object.
 * On success m->body holds a reference the caller must release with
 * vmc_msg_clear().
 */
int vmc_msg_decode(const void *buf, size_t len, struct vmc_msg *m, char *err, size_t errlen);
void vmc_msg_clear(struct vmc_msg *m);
const char *vmc_msg_type_to_str(uint16_t type);

/* Little-endian field helpers, shared with other wire formats. */
void vmc_put_le16(uint8_t *p, uint16_t v);
void vmc_put_le32(uint8_t *p, uint32_t v);
void vmc_put_le64(uint8_t *p, uint64_t v);
uint16_t vmc_get_le16(const uint8_t *p);
uint32_t vmc_get_le32(const uint8_t *p);
uint64_t vmc_get_le64(const uint8_t *p);

#endif
