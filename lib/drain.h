/*
 * Draining a node and resuming it, in the replicated state (protocol 6).
 *
 *   NODE_DRAIN {node, force, target, at_s}   active|drain-failed -> draining
 *   NODE_RESUME {node, failback, at_s}       any -> active
 *
 * A draining node takes no group (placement.h, migration.h), and every
 * group running there is moved live, one request per group queued in
 * priority order within the migration limits (migration.h). After every
 * applied change vmc_drains_progress looks again, so the node's mode is
 * true at every moment: `paused` once nothing runs there any more,
 * `drain-failed` once what is left can go nowhere — each such group's
 * reason says why: no node can take it, or its live migration failed
 * twice. With force, what live migration cannot move goes by quick
 * migration (a group with a disk on a volume), and each group's reason
 * says which way it went.
 *
 * With force, what quick migration cannot move either (no volume, or it
 * failed) is stopped and started on another node (relocate, group_fsm.h).
 *
 * A drain for a host shutdown (NODE_DRAIN shutdown, clusterctl node
 * shutdown or the systemd unit's stop) follows shutdown_policy: migrate
 * drains with force; stop stops every group to start it elsewhere. The
 * node's daemon exits once the node is paused; a new daemon there (a new
 * incarnation in its facts) ends the shutdown: active again.
 *
 * A group drained away remembers the node as its home (state.h); resume
 * with failback `immediate` moves every such group back live now,
 * `policy` leaves it to each group's failback policy (failback.h), `none`
 * forgets the homes. Resume also ends a quarantine (node_admin.h) and
 * cancels the drain's moves still queued.
 *
 * Every handler checks before it changes anything and none allocates.
 */
#ifndef VMC_DRAIN_H
#define VMC_DRAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "apply.h"
#include "msg_types.h"
#include "state.h"

/* How many live migrations of one group off a draining node may fail before it is given up on. */
#define VMC_DRAIN_LIVE_TRIES 2

int vmc_apply_node_drain(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			 char *detail, size_t len);
int vmc_apply_node_resume(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			  char *detail, size_t len);

/* Ask for the next move of every draining node's groups; settle paused or drain-failed. */
void vmc_drains_progress(struct vmc_state *s, const struct vmc_apply_ctx *ctx);

/*
 * A move of g ended (done: it runs at its target now), before its
 * migration record is cleared: the drain counts a failure, the home
 * follows the move's cause (state.h).
 */
void vmc_drain_move_ended(struct vmc_state *s, struct vmc_group *g, bool done);

/*
 * node announced itself with daemon incarnation: when it was shut down
 * (NODE_DRAIN shutdown) by another incarnation, the shutdown is over — it
 * takes VMs again, and what the shutdown moved away follows each VM's
 * failback policy. true when that happened.
 */
bool vmc_drain_node_restarted(struct vmc_state *s, uint32_t node, uint64_t incarnation);

/* The groups still on node and what holds each, for `node list` and `node drain --wait`. */
struct vmc_drain_status {
	size_t left;     /* groups still running there */
	size_t moving;   /* of those, with a move queued or in flight */
};
void vmc_drain_status(const struct vmc_state *s, uint32_t node, struct vmc_drain_status *out);

/* The drain tries as the snapshot's "drain" object of a group; NULL when there were none. */
json_object *vmc_drain_tries_to_json(const struct vmc_drain_tries *t);
int vmc_drain_tries_from_json(json_object *o, struct vmc_drain_tries *t);

#endif
