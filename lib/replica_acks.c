/*
 * Acknowledgements (replica.h, "acknowledged"): the members' confirmations
 * of what they persisted, the promise that establishes a primary sync's
 * epoch, and the answers to this node's own clients, told once every
 * member holds a change, or after the next established sync.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "replica_internal.h"
#include "vmc_errors.h"

void replica_answer(struct vmc_replica *r, uint64_t id, int rc, const char *detail)
{
	if (rc == 0) {
		r->answers_done++;
	} else if (rc == -VMC_E_RETRY) {
		r->answers_not_applied++;
	} else if (rc == -VMC_E_UNKNOWN) {
		r->answers_unknown++;
	}
	if (r->ops->answer != NULL && id != 0) {
		r->ops->answer(r->ctx, id, rc, detail);
	}
}

/* Do acknowledgements wait for the view's confirmations (protocol 3)? */
bool replica_acks_by_view(const struct vmc_replica *r, uint16_t version)
{
	return VMC_PROTO_HAS_CONFIRM(version) && !r->legacy_ack;
}

/*
 * Remember one of our requests until its answer is known. resolved: its
 * verdict is known in this sync, told once version is confirmed by every
 * active member; else a view change caught it and the next established
 * primary sync tells.
 */
void replica_pending_add(struct vmc_replica *r, const struct vmc_msg *m, bool resolved, int verdict,
			uint64_t version, const char *detail)
{
	struct vmc_pending *p;

	if (m->request_id == 0) {
		return;
	}
	if (r->n_pending == r->cap_pending) {
		size_t cap = r->cap_pending ? r->cap_pending * 2 : 16;
		struct vmc_pending *grown = realloc(r->pending, cap * sizeof(*grown));
		if (grown == NULL) {
			replica_answer(r, m->request_id, -VMC_E_UNKNOWN,
			       "outcome unknown: this node ran out of memory while it waited for the "
			       "cluster's confirmation; see 'clusterctl vm list'");
			return;
		}
		r->pending = grown;
		r->cap_pending = cap;
	}
	p = &r->pending[r->n_pending++];
	memset(p, 0, sizeof(*p));
	p->request_id = m->request_id;
	p->msg_version = m->version;
	p->round = r->round;
	p->sync_seq = r->sync_seq;
	p->resolved = resolved;
	p->verdict = verdict;
	p->version = version;
	snprintf(p->detail, sizeof(p->detail), "%s", detail != NULL ? detail : "");
}

/* Our request dropped by the sync machinery: it may have been applied elsewhere. */
void replica_own_dropped(struct vmc_replica *r, const struct vmc_msg *m, const char *why)
{
	if (m->sender != r->my_id || m->request_id == 0) {
		return;
	}
	if (replica_acks_by_view(r, m->version)) {
		replica_pending_add(r, m, false, 0, 0, "");
	} else {
		replica_answer(r, m->request_id, -VMC_E_RETRY, why);
	}
}

static void pending_remove(struct vmc_replica *r, size_t i)
{
	memmove(&r->pending[i], &r->pending[i + 1], (r->n_pending - i - 1) * sizeof(r->pending[0]));
	r->n_pending--;
}

static bool pending_current(const struct vmc_replica *r, const struct vmc_pending *p)
{
	return p->round == r->round && p->sync_seq == r->sync_seq;
}

uint64_t vmc_replica_oldest_pending(const struct vmc_replica *r)
{
	return r->n_pending > 0 ? r->pending[0].request_id : 0;
}

/* node's slot, added on first use; NULL when the table is full. */
static struct vmc_confirm *confirm_slot(struct vmc_replica *r, uint32_t node)
{
	for (size_t i = 0; i < r->n_confirms; i++) {
		if (r->confirms[i].node == node) {
			return &r->confirms[i];
		}
	}
	if (r->n_confirms == VMC_NODES_MAX) {
		return NULL;
	}
	r->confirms[r->n_confirms] = (struct vmc_confirm){ .node = node };
	return &r->confirms[r->n_confirms++];
}

const struct vmc_confirm *replica_confirm_of(const struct vmc_replica *r, uint32_t node)
{
	for (size_t i = 0; i < r->n_confirms; i++) {
		if (r->confirms[i].node == node) {
			return &r->confirms[i];
		}
	}
	return NULL;
}

static bool all_promised(const struct vmc_replica *r)
{
	for (size_t i = 0; i < r->n_active; i++) {
		const struct vmc_confirm *c = replica_confirm_of(r, r->active[i]);
		if (c == NULL || !c->promised) {
			return false;
		}
	}
	return true;
}

/* The config_version every active member has confirmed; false when one has confirmed none. */
static bool confirmed_by_all(const struct vmc_replica *r, uint64_t *version)
{
	*version = UINT64_MAX;
	for (size_t i = 0; i < r->n_active; i++) {
		const struct vmc_confirm *c = replica_confirm_of(r, r->active[i]);
		if (c == NULL || !c->confirmed) {
			return false;
		}
		*version = c->version < *version ? c->version : *version;
	}
	return r->n_active > 0;
}

/* Tell the clients whose changes every active member now holds on disk. */
static void acks_check(struct vmc_replica *r)
{
	uint64_t version;
	size_t i = 0;

	if (!confirmed_by_all(r, &version)) {
		return;
	}
	while (i < r->n_pending) {
		struct vmc_pending *p = &r->pending[i];
		if (!p->resolved || !pending_current(r, p) || p->version > version) {
			i++;
			continue;
		}
		if (p->verdict == 0) {
			replica_answer(r, p->request_id, 0, p->detail);
		} else {
			replica_answer(r, p->request_id, p->verdict,
			       "not applied: a cluster membership change came first and the cluster's state "
			       "does not hold the change; retry");
		}
		pending_remove(r, i);
	}
}

/*
 * A primary sync is established: whatever of ours a view change caught is
 * decided by the state this sync settled on, and told once every member
 * has confirmed that state (so the verdict cannot be undone by a crash).
 */
void replica_pending_resolve(struct vmc_replica *r)
{
	size_t i = 0;

	while (i < r->n_pending) {
		struct vmc_pending *p = &r->pending[i];
		int found = vmc_state_recent_find(r->state, r->my_id, p->request_id);

		if (found == 0 && !VMC_PROTO_HAS_CONFIRM(p->msg_version)) {
			found = -1; /* written in an older protocol: the state does not record it */
		}
		if (found < 0) {
			replica_answer(r, p->request_id, -VMC_E_UNKNOWN,
			       "outcome unknown: a cluster membership change came first and the cluster no "
			       "longer remembers this change; see 'clusterctl vm list'");
			pending_remove(r, i);
			continue;
		}
		p->round = r->round;
		p->sync_seq = r->sync_seq;
		p->resolved = true;
		p->verdict = found == 1 ? 0 : -VMC_E_RETRY;
		p->version = r->state->config_version;
		if (found == 1 && p->detail[0] == '\0') {
			snprintf(p->detail, sizeof(p->detail), "applied (confirmed after a membership change)");
		}
		i++;
	}
}

static void confirm_send(struct vmc_replica *r, const char *key, uint64_t value, uint64_t version)
{
	json_object *body = replica_sync_body(r);

	json_object_object_add(body, key, json_object_new_uint64(value));
	if (version != UINT64_MAX) {
		json_object_object_add(body, "v", json_object_new_uint64(version));
	}
	r->ops->send(r->ctx, VMC_MSG_COMMIT_CONFIRM, body);
	json_object_put(body);
}

void vmc_replica_confirm(struct vmc_replica *r)
{
	if (vmc_replica_has_changes(r)) {
		return; /* what is not on disk is not confirmed */
	}
	if (r->legacy_ack || !VMC_PROTO_HAS_CONFIRM(r->proto)) {
		/* The older rule: this node's own disk is enough. */
		for (size_t i = 0; i < r->n_pending;) {
			if (r->pending[i].resolved) {
				replica_answer(r, r->pending[i].request_id, r->pending[i].verdict, r->pending[i].detail);
				pending_remove(r, i);
			} else {
				i++;
			}
		}
		return;
	}
	if (!vmc_replica_is_active(r, r->my_id) || r->excluded_self) {
		return;
	}
	if (r->phase == VMC_SYNC_CONFIRM && !r->promise_sent && r->state->promised >= r->counter) {
		r->promise_sent = true;
		confirm_send(r, "promise", r->counter, UINT64_MAX);
	} else if (r->phase == VMC_SYNC_DONE && r->primary &&
		   (!r->confirm_sent || r->state->config_version > r->confirm_sent_version)) {
		r->confirm_sent = true;
		r->confirm_sent_version = r->state->config_version;
		confirm_send(r, "epoch", r->state->epoch, r->state->config_version);
	}
}

void replica_receive_commit_confirm(struct vmc_replica *r, const struct vmc_msg *m)
{
	struct vmc_confirm *c;
	uint64_t value, version;

	if (!replica_sync_body_current(r, m->body) || !vmc_replica_is_active(r, m->sender) ||
	    (c = confirm_slot(r, m->sender)) == NULL) {
		return; /* late, from another view or sync, or from a member not in it */
	}
	/* A member whose copy needed no snapshot may promise while this one still
	 * takes the source's: kept, and counted once this node's confirm phase
	 * begins (replica_promises_count), or members would disagree on who
	 * promised (the simulator's seed 66949). */
	if (r->phase == VMC_SYNC_STATE || r->phase == VMC_SYNC_HELLO) {
		if (vmc_json_u64(m->body, "promise", &value)) {
			c->promise = value;
		}
		return;
	}
	if (r->phase == VMC_SYNC_CONFIRM) {
		if (vmc_json_u64(m->body, "promise", &value) && value == r->counter) {
			c->promise = value;
			c->promised = true;
			if (all_promised(r)) {
				replica_sync_done(r);
			}
		}
		return;
	}
	if (r->phase != VMC_SYNC_DONE || !r->primary || !vmc_json_u64(m->body, "epoch", &value) ||
	    !vmc_json_u64(m->body, "v", &version) || value != r->state->epoch) {
		return;
	}
	if (!c->confirmed || version > c->version) {
		c->version = version;
	}
	c->confirmed = true;
	acks_check(r);
}

void replica_promises_count(struct vmc_replica *r)
{
	for (size_t i = 0; i < r->n_confirms; i++) {
		r->confirms[i].promised = r->confirms[i].promise != 0 && r->confirms[i].promise == r->counter;
	}
}

/*
 * Members that have not confirmed the promise when the deadline passes
 * leave the sync, as silent ones do in the hello phase. The view is then
 * judged again on who is left.
 */
void replica_exclude_unconfirmed(struct vmc_replica *r, const struct vmc_msg *m)
{
	uint32_t gone[VMC_NODES_MAX];
	size_t n = 0;
	bool me = false;

	for (size_t i = 0; i < r->n_active; i++) {
		const struct vmc_confirm *c = replica_confirm_of(r, r->active[i]);
		if ((c == NULL || !c->promised) && replica_vouched(m->body, r->active[i])) {
			gone[n++] = r->active[i];
		}
	}
	for (size_t i = 0; i < n; i++) {
		replica_member_exclude(r, gone[i]);
		me |= gone[i] == r->my_id;
	}
	if (n == 0) {
		return;
	}
	r->exclusions++;
	if (me) {
		replica_excluded_self(r);
		return;
	}
	replica_warn(r, "%zu member(s) excluded from this sync: the epoch's promise was not confirmed within the "
		"deadline", n);
	r->primary = replica_view_primary(r);
	if (!r->primary || all_promised(r)) {
		replica_sync_done(r);
	}
}

void vmc_replica_ack_deadline(struct vmc_replica *r)
{
	bool waiting = false;

	for (size_t i = 0; i < r->n_pending; i++) {
		waiting |= r->pending[i].resolved && pending_current(r, &r->pending[i]);
	}
	if (waiting && r->phase == VMC_SYNC_DONE && r->primary && !r->excluded_self && replica_hellos_know_exclusion(r)) {
		replica_warn(r, "a member has not confirmed this node's changes in time: asking for the sync again");
		replica_restart_request(r);
	}
}
