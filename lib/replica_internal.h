/*
 * What the three files of the replica share (replica.c: the sync and the
 * requests; replica_quorum.c: which view is primary; replica_acks.c:
 * confirmations and the answers to this node's clients). Not for use
 * outside lib/replica*.c: replica.h is the interface.
 */
#ifndef VMC_REPLICA_INTERNAL_H
#define VMC_REPLICA_INTERNAL_H

#include "replica.h"

/* replica.c */
void replica_journal_add(struct vmc_replica *r, char *line);
bool replica_is_member(const struct vmc_replica *r, uint32_t id);
/* This node's confirm phase begins: the promises that came before it count now. */
void replica_promises_count(struct vmc_replica *r);
void replica_warn(const struct vmc_replica *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The members list and sync_seq that tie a sync message to one sync of one view. */
json_object *replica_sync_body(const struct vmc_replica *r);
/* A sync message of this view's current sync (members and sync_seq match)? */
bool replica_sync_body_current(const struct vmc_replica *r, json_object *body);
void replica_restart_request(struct vmc_replica *r);
/* The sync of this view is over: its state is final and, if primary, writable. */
void replica_sync_done(struct vmc_replica *r);
/* Every member that answered speaks a protocol that knows exclusion. */
bool replica_hellos_know_exclusion(const struct vmc_replica *r);
bool replica_vouched(json_object *body, uint32_t node);
/* This node learns it was excluded: it asks for the sync again. */
void replica_excluded_self(struct vmc_replica *r);
/* node leaves this sync: no longer active, its hello no longer counts. */
void replica_member_exclude(struct vmc_replica *r, uint32_t node);

/* replica_quorum.c */
/* Do the hellos carry votequorum's word, so that corosync decides? */
bool replica_corosync_decides(const struct vmc_replica *r);
/* Primary (or recovery only, r->recovery_only), from the hellos alone; why not in r->not_primary. */
bool replica_view_primary(struct vmc_replica *r);
bool replica_vq_differs(const struct vmc_quorum_info *a, const struct vmc_quorum_info *b);
const struct vmc_quorum_info *replica_counted_vq(const struct vmc_replica *r);

/* replica_acks.c */
void replica_answer(struct vmc_replica *r, uint64_t id, int rc, const char *detail);
/* Do acknowledgements wait for the view's confirmations (protocol 3)? */
bool replica_acks_by_view(const struct vmc_replica *r, uint16_t version);
void replica_pending_add(struct vmc_replica *r, const struct vmc_msg *m, bool resolved, int verdict,
			 uint64_t version, const char *detail);
/* Our request dropped by the sync machinery: it may have been applied elsewhere. */
void replica_own_dropped(struct vmc_replica *r, const struct vmc_msg *m, const char *why);
void replica_pending_resolve(struct vmc_replica *r);
void replica_receive_commit_confirm(struct vmc_replica *r, const struct vmc_msg *m);
void replica_exclude_unconfirmed(struct vmc_replica *r, const struct vmc_msg *m);
const struct vmc_confirm *replica_confirm_of(const struct vmc_replica *r, uint32_t node);

#endif
