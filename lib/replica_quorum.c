/*
 * Which view is primary (replica.h): corosync's votequorum decides, over
 * the members that answer and have a history; views with an older member
 * count the daemons' votes against the nodelist.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "replica_internal.h"

/* Do the hellos carry votequorum's word, so that corosync decides? */
bool replica_corosync_decides(const struct vmc_replica *r)
{
	if (!VMC_PROTO_HAS_CONFIRM(r->proto)) {
		return false;
	}
	for (size_t i = 0; i < r->n_hellos; i++) {
		if (!r->hellos[i].has_vq) {
			return false;
		}
	}
	return true;
}

/*
 * A history: the sender took part in a primary sync since its disk began
 * (it promised), or its state is of an epoch of the first format (from
 * before protocol 3). A node wiped or new must not count: what it holds
 * it may have installed from a stale peer, and it cannot know what was
 * acknowledged without it.
 */
static bool has_history(const struct vmc_hello *h)
{
	return h->promised > 0 || (h->epoch > 0 && h->epoch >> 32 == 0);
}

/*
 * May the silent members' votes count for recovery? Only when a member
 * whose copy is the newest here (the highest epoch) has had every one of
 * them in its views since its last primary sync: anything they did since,
 * it saw, so the state this sync settles on lacks nothing they were
 * told. A silent member that left that member's views even once may have
 * been in a primary view elsewhere (the simulator's seed 77378).
 */
static bool silent_vouched_for(const struct vmc_replica *r)
{
	uint64_t newest = 0;

	for (size_t i = 0; i < r->n_hellos; i++) {
		newest = r->hellos[i].epoch > newest ? r->hellos[i].epoch : newest;
	}
	for (size_t e = 0; e < r->n_excluded; e++) {
		bool vouched = false;
		for (size_t i = 0; i < r->n_hellos && !vouched; i++) {
			const struct vmc_hello *h = &r->hellos[i];
			for (size_t k = 0; h->epoch == newest && k < h->n_steady && !vouched; k++) {
				vouched = h->steady[k] == r->excluded[e];
			}
		}
		if (!vouched) {
			return false;
		}
	}
	return true;
}

/* The same verdict on every member: it depends on the hellos alone. */
bool replica_view_primary(struct vmc_replica *r)
{
	uint32_t history = 0, all = 0, quorum = 0, qdevice = UINT32_MAX;
	const struct vmc_hello *first = &r->hellos[0];
	bool nobody_has_one = true;

	r->view_votes = 0;
	r->recovery_only = false;
	for (size_t i = 0; i < r->n_hellos; i++) {
		r->view_votes += r->hellos[i].votes;
	}
	if (!replica_corosync_decides(r)) {
		/* Older members: the daemons' votes against the nodelist's. */
		for (size_t i = 0; i < r->n_excluded; i++) {
			r->view_votes += r->ops->votes != NULL ? r->ops->votes(r->ctx, r->excluded[i]) : 1;
		}
		snprintf(r->not_primary, sizeof(r->not_primary),
			 "no quorum: the vmclusterd daemons in this partition hold %u of %u votes; changes need "
			 "a majority", r->view_votes, r->expected_votes);
		return 2 * (uint64_t)r->view_votes > r->expected_votes;
	}
	for (size_t i = 0; i < r->n_hellos; i++) {
		const struct vmc_hello *h = &r->hellos[i];
		if (!h->vq.known || !h->vq.quorate) {
			snprintf(r->not_primary, sizeof(r->not_primary),
				 "no quorum: corosync says node id %u is not in a quorate partition", h->node_id);
			return false;
		}
		if (h->vq.ring_node != first->vq.ring_node || h->vq.ring_seq != first->vq.ring_seq) {
			snprintf(r->not_primary, sizeof(r->not_primary),
				 "no quorum yet: members disagree on corosync's ring (membership still settling)");
			return false;
		}
		quorum = h->vq.quorum > quorum ? h->vq.quorum : quorum;
		qdevice = h->vq.qdevice_votes < qdevice ? h->vq.qdevice_votes : qdevice;
		all += h->votes;
		if (has_history(h)) {
			history += h->votes;
			nobody_has_one = false;
		}
	}
	/*
	 * Every node of the nodelist here: whatever anyone holds is in this view.
	 * Otherwise corosync's quorum is counted over the members that answer
	 * and have a history: its verdict covers members whose daemons are down
	 * or excluded, which hold no acknowledgement (so auto_tie_breaker's
	 * half of an even split, whose quorum corosync does not lower, is not
	 * primary; two_node and last_man_standing lower it).
	 */
	if (all >= r->expected_votes) {
		return true;
	}
	if (nobody_has_one) {
		snprintf(r->not_primary, sizeof(r->not_primary),
			 "no quorum yet: a new cluster starts once every node of the nodelist is up (%u of %u votes)",
			 all, r->expected_votes);
		return false;
	}
	if ((uint64_t)history + qdevice >= quorum) {
		return true;
	}
	snprintf(r->not_primary, sizeof(r->not_primary),
		 "no quorum: members with the cluster's history hold %u votes (with %u of a quorum device), "
		 "corosync's quorum is %u; nodes new or wiped count once every node is up",
		 history, qdevice, quorum);
	if (r->n_excluded > 0) {
		uint32_t silent = 0;
		for (size_t i = 0; i < r->n_excluded; i++) {
			silent += r->ops->votes != NULL ? r->ops->votes(r->ctx, r->excluded[i]) : 1;
		}
		r->recovery_only = (uint64_t)history + silent + qdevice >= quorum && silent_vouched_for(r);
		if (r->recovery_only) {
			snprintf(r->not_primary, sizeof(r->not_primary),
				 "the daemon of %zu member(s) does not answer (excluded from the sync): this "
				 "partition fences and recovers but takes no changes until they answer or leave",
				 r->n_excluded);
		}
	}
	return false;
}

bool replica_vq_differs(const struct vmc_quorum_info *a, const struct vmc_quorum_info *b)
{
	return a->known != b->known || a->quorate != b->quorate || a->ring_node != b->ring_node ||
	       a->ring_seq != b->ring_seq || a->quorum != b->quorum || a->qdevice_votes != b->qdevice_votes;
}

/*
 * What this node's hello said of votequorum as the sync counts it: the
 * one delivered (a hello sent for an earlier view with the same members
 * may have been taken for this one), else the one sent last.
 */
const struct vmc_quorum_info *replica_counted_vq(const struct vmc_replica *r)
{
	for (size_t i = 0; i < r->n_hellos; i++) {
		if (r->hellos[i].node_id == r->my_id && r->hellos[i].has_vq) {
			return &r->hellos[i].vq;
		}
	}
	return &r->hello_vq;
}

void vmc_replica_quorum(struct vmc_replica *r, const struct vmc_quorum_info *q)
{
	bool differs = replica_vq_differs(q, replica_counted_vq(r));

	r->vq = *q;
	if (!differs || !r->hello_sent || !replica_is_member(r, r->my_id) || r->excluded_self ||
	    !replica_hellos_know_exclusion(r)) {
		return;
	}
	if (r->phase == VMC_SYNC_DONE && !VMC_PROTO_HAS_CONFIRM(r->proto)) {
		return; /* an older view counts the daemons' votes: votequorum's word changes nothing */
	}
	replica_restart_request(r);
}
