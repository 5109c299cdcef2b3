/*
 * Moving a running group to another node, as the replicated state sees
 * it (the agents that carry the VM are agents/migrate/). Four CPG
 * messages, each applied by every replica at the same point of the total
 * order, so every node knows at every moment who may run the VM:
 *
 *   MIGRATE_REQUEST  (anyone)   online -> queued, or migrating/transfer
 *                                when the source and the target each have a
 *                                free slot (migration_max_parallel)
 *   MIGRATE_SWITCHOVER (source) transfer -> switchover: the source QEMU is
 *                                paused at pre-switchover; the image locks
 *                                become the target's (image_locks.h)
 *   MIGRATE_DONE     (target)   switchover -> online, owner = target: the
 *                                point of no return
 *   MIGRATE_ABORT    (source or target) any phase -> online at the source,
 *                                locks back with it; a queued move is dropped
 *
 * Only the owner of the message's migration id counts, so a late message
 * of an earlier migration of the same group is refused. Whichever of DONE
 * and ABORT comes first in the total order wins and the other is refused:
 * the target resumes its QEMU only once DONE is applied, the source only
 * once its group is online here again, so after any crash exactly one of
 * them may run the VM. A lost source is a lost owner (fence_policy.h); a
 * lost target makes the source abort.
 *
 * When a slot frees, vmc_migrations_promote (after every applied change)
 * starts the next queued move in priority order (high first, then the
 * order they were asked in), dropping those that can no longer go.
 */
#ifndef VMC_MIGRATION_H
#define VMC_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "apply.h"
#include "msg_types.h"
#include "state.h"

/*
 * Could g move to target now? The hard rules every replica checks when
 * it applies a request, and that clusterctl's daemon checks first so a
 * refusal comes before anything is sent: the group online (not moving),
 * the target another node, in the view, a possible owner, with the memory
 * and every volume the VM uses healthy there. 0, or a negative VMC_E_*
 * with one line in why.
 */
int vmc_migration_check(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
			uint32_t target, char *why, size_t len);
/*
 * May a request with this cause move g to target? An operator's moves a
 * group vmcluster manages, pacemaker's one pacemaker manages (protocol
 * 7), a failback only to the group's home. 0, or a negative VMC_E_*.
 */
int vmc_migration_cause_allowed(const struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_group *g,
				enum vmc_mig_cause cause, uint32_t target, char *detail, size_t len);

/*
 * Where g should move when the operator names no node: its first
 * preferred owner that passes vmc_migration_check, else the node with the
 * most memory free that does. 0 when none can, with each node's reason in why.
 */
uint32_t vmc_migration_pick_target(const struct vmc_state *s, const struct vmc_apply_ctx *ctx,
				   const struct vmc_group *g, char *why, size_t len);

/*
 * Where a quick migration of g saves the VM: on the volume of its first
 * disk that lies on one, VOLUME/.vmcluster-migrate/NAME.ID.state (every
 * node sees it there). 0, or -ENOENT with one line in buf when g has no
 * disk on a volume (quick migration needs one).
 */
int vmc_migration_state_file(const struct vmc_state *s, const struct vmc_group *g, const char *id, char *buf,
			     size_t len);

/*
 * Queue a move of g (checked already) and start it when the source and
 * the target have a slot: true when it started. Never allocates.
 */
bool vmc_migration_queue(struct vmc_state *s, struct vmc_group *g, uint32_t target, bool quick,
			 enum vmc_mig_cause cause, uint64_t at_s, const char *id);

/* An id for a move the replicas ask for themselves: derived alike on every one of them, from why and the state. */
void vmc_migration_derive_id(const struct vmc_state *s, const struct vmc_group *g, const char *why,
			     char id[VMC_MIG_ID_MAX + 1]);

/* How many live migrations out of node may run at once: its adaptive window within the cap, or the cap. */
uint32_t vmc_migration_out_limit(const struct vmc_state *s, uint32_t node);

/* Migrations in flight (transfer or switchover) with node as source or target. */
size_t vmc_migrations_in_flight(const struct vmc_state *s, uint32_t node);

/* Start the queued moves that fit now; drop those that cannot go any more. Never allocates. */
void vmc_migrations_promote(struct vmc_state *s, const struct vmc_apply_ctx *ctx);

/*
 * A volume fails or hangs on node: every running group of node that uses
 * it moves live to the best node that sees it healthy (queued past the
 * limit), with an id every replica derives alike. A group no node can
 * take stays, and the volume's kill deadline (local_policy.h) moves it
 * the hard way if the volume does not come back. From protocol 5.
 * Returns how many moves it asked for. Never allocates.
 */
size_t vmc_migrations_evacuate(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const struct vmc_volume *v,
			       uint32_t node);

int vmc_apply_migrate_request(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			      char *detail, size_t len);
int vmc_apply_migrate_switchover(struct vmc_state *s, const struct vmc_apply_ctx *ctx,
				 const union vmc_body *b, char *detail, size_t len);
int vmc_apply_migrate_done(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			   char *detail, size_t len);
/* MIGRATE_WINDOW: the sender's adaptive window (mig_window.h). Never allocates. */
int vmc_apply_migrate_window(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			     char *detail, size_t len);
int vmc_apply_migrate_abort(struct vmc_state *s, const struct vmc_apply_ctx *ctx, const union vmc_body *b,
			    char *detail, size_t len);

/* The snapshot's "migration" object of a group; NULL when it has none. */
json_object *vmc_migration_to_json(const struct vmc_migration *m);
int vmc_migration_from_json(json_object *o, struct vmc_migration *m, char *err, size_t errlen);
const char *vmc_mig_phase_to_str(enum vmc_mig_phase p);
const char *vmc_mig_cause_to_str(enum vmc_mig_cause c);
int vmc_mig_cause_from_str(const char *str, enum vmc_mig_cause *out);

#endif
