/*
 * The replica: sync after membership changes, the quorum gate, and the
 * holding of requests while a sync runs. See replica.h for the protocol.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "msg_types.h"
#include "json_util.h"
#include "replica.h"
#include "vmc_errors.h"

const char *vmc_sync_phase_to_str(enum vmc_sync_phase p)
{
	switch (p) {
	case VMC_SYNC_HELLO:
		return "hello";
	case VMC_SYNC_STATE:
		return "state";
	case VMC_SYNC_CONFIRM:
		return "confirm";
	case VMC_SYNC_DONE:
		return "done";
	}
	return "unknown";
}

void vmc_replica_init(struct vmc_replica *r, uint32_t my_id, uint32_t my_votes,
		      uint32_t expected_votes, struct vmc_state *state,
		      const struct vmc_replica_ops *ops, void *ctx)
{
	memset(r, 0, sizeof(*r));
	r->my_id = my_id;
	r->my_votes = my_votes;
	r->nodelist_votes = expected_votes;
	r->expected_votes = expected_votes;
	r->state = state;
	r->ops = ops;
	r->ctx = ctx;
	r->phase = VMC_SYNC_HELLO;
	r->held_tail = &r->held_head;
	r->proto_max = VMC_PROTO_VERSION_MAX;
}

void vmc_replica_nodelist(struct vmc_replica *r, uint32_t my_votes, uint32_t nodelist_votes)
{
	r->my_votes = my_votes;
	r->nodelist_votes = nodelist_votes;
}

static void hellos_clear(struct vmc_replica *r);

/* ---- answers to this node's own requests ---- */

static void answer(struct vmc_replica *r, uint64_t id, int rc, const char *detail)
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
static bool acks_by_view(const struct vmc_replica *r, uint16_t version)
{
	return VMC_PROTO_HAS_CONFIRM(version) && !r->legacy_ack;
}

/*
 * Remember one of our requests until its answer is known. resolved: its
 * verdict is known in this sync, told once version is confirmed by every
 * active member; else a view change caught it and the next established
 * primary sync tells.
 */
static void pending_add(struct vmc_replica *r, const struct vmc_msg *m, bool resolved, int verdict,
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
			answer(r, m->request_id, -VMC_E_UNKNOWN,
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
static void own_dropped(struct vmc_replica *r, const struct vmc_msg *m, const char *why)
{
	if (m->sender != r->my_id || m->request_id == 0) {
		return;
	}
	if (acks_by_view(r, m->version)) {
		pending_add(r, m, false, 0, 0, "");
	} else {
		answer(r, m->request_id, -VMC_E_RETRY, why);
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

static void held_drop_all(struct vmc_replica *r, bool report)
{
	struct vmc_held_msg *h = r->held_head;

	while (h != NULL) {
		struct vmc_held_msg *next = h->next;
		if (report) {
			static const char why[] = "cluster membership changed before the change was applied; retry";
			r->ops->outcome(r->ctx, h->msg.sender, h->msg.request_id, -VMC_E_RETRY, why);
			own_dropped(r, &h->msg, why);
		}
		vmc_msg_clear(&h->msg);
		free(h);
		h = next;
	}
	r->held_head = NULL;
	r->held_tail = &r->held_head;
}

static void journal_add(struct vmc_replica *r, char *line)
{
	r->generation++;
	if (line == NULL) {
		r->snapshot_needed = true; /* out of memory: fall back to a full snapshot */
		return;
	}
	if (r->n_journal == r->cap_journal) {
		size_t cap = r->cap_journal ? r->cap_journal * 2 : 64;
		char **grown = realloc(r->journal, cap * sizeof(*grown));
		if (grown == NULL) {
			free(line);
			r->snapshot_needed = true;
			return;
		}
		r->journal = grown;
		r->cap_journal = cap;
	}
	r->journal[r->n_journal++] = line;
}

const char *vmc_replica_digest(struct vmc_replica *r)
{
	if (r->digest_generation != r->generation || r->digest[0] == '\0') {
		vmc_state_digest(r->state, r->digest);
		r->digest_generation = r->generation;
	}
	return r->digest;
}

bool vmc_replica_has_changes(const struct vmc_replica *r)
{
	return r->snapshot_needed || r->n_journal > 0;
}

void vmc_replica_persisted(struct vmc_replica *r)
{
	for (size_t i = 0; i < r->n_journal; i++) {
		free(r->journal[i]);
	}
	r->n_journal = 0;
	r->snapshot_needed = false;
}

static void snapshot_reset(struct vmc_replica *r)
{
	free(r->snapshot);
	r->snapshot = NULL;
	r->snapshot_len = 0;
	r->next_chunk = 0;
}

void vmc_replica_fini(struct vmc_replica *r)
{
	held_drop_all(r, false);
	free(r->pending);
	r->pending = NULL;
	r->n_pending = r->cap_pending = 0;
	snapshot_reset(r);
	hellos_clear(r);
	vmc_replica_persisted(r);
	free(r->journal);
	r->journal = NULL;
	r->cap_journal = 0;
	vmc_state_free(r->state);
	r->state = NULL;
}

bool vmc_replica_writable(const struct vmc_replica *r)
{
	return r->phase == VMC_SYNC_DONE && (r->primary || r->recovery_only) && !r->excluded_self;
}

bool vmc_replica_accepts_changes(const struct vmc_replica *r)
{
	return r->phase == VMC_SYNC_DONE && r->primary && !r->excluded_self;
}

static bool is_member(const struct vmc_replica *r, uint32_t id)
{
	for (size_t i = 0; i < r->n_members; i++) {
		if (r->members[i] == id) {
			return true;
		}
	}
	return false;
}

static void warn(const struct vmc_replica *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(const struct vmc_replica *r, const char *fmt, ...)
{
	char what[384];
	va_list ap;

	if (r->ops->warn == NULL) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	r->ops->warn(r->ctx, what);
}

/* The members list and sync_seq that tie a sync message to one sync of one view. */
static json_object *sync_body(const struct vmc_replica *r)
{
	json_object *body = json_object_new_object();
	json_object *members = json_object_new_array();

	for (size_t i = 0; i < r->n_members; i++) {
		json_object_array_add(members, json_object_new_int64(r->members[i]));
	}
	json_object_object_add(body, "members", members);
	json_object_object_add(body, "sync_seq", json_object_new_int64(r->sync_seq));
	return body;
}

static void hello_send(struct vmc_replica *r)
{
	json_object *body = sync_body(r);
	const char *digest = vmc_replica_digest(r);

	json_object_object_add(body, "epoch", json_object_new_uint64(r->state->epoch));
	json_object_object_add(body, "config_version", json_object_new_uint64(r->state->config_version));
	json_object_object_add(body, "digest", json_object_new_string(digest));
	json_object_object_add(body, "prev_primary", json_object_new_boolean(r->prev_primary));
	json_object_object_add(body, "expected_votes", json_object_new_int64(r->expected_votes));
	json_object_object_add(body, "votes", json_object_new_int64(r->my_votes));
	json_object_object_add(body, "proto_max", json_object_new_int(r->proto_max));
	json_object_object_add(body, "round", json_object_new_int64(r->round));
	json_object_object_add(body, "tainted", json_object_new_boolean(r->tainted));
	r->hello_tainted = r->tainted;
	r->hello_sent = true;
	if (VMC_PROTO_HAS_CONFIRM(r->proto_max)) {
		json_object *vq = json_object_new_object();
		json_object *ring = json_object_new_array();

		json_object_array_add(ring, json_object_new_int64(r->vq.ring_node));
		json_object_array_add(ring, json_object_new_uint64(r->vq.ring_seq));
		json_object_object_add(vq, "known", json_object_new_boolean(r->vq.known));
		json_object_object_add(vq, "quorate", json_object_new_boolean(r->vq.quorate));
		json_object_object_add(vq, "ring", ring);
		json_object_object_add(vq, "quorum", json_object_new_int64(r->vq.quorum));
		json_object_object_add(vq, "qdevice_votes", json_object_new_int64(r->vq.qdevice_votes));
		json_object_object_add(body, "vq", vq);
		json_object_object_add(body, "promised", json_object_new_uint64(r->state->promised));
		r->hello_vq = r->vq;
	}
	if (r->ops->running != NULL) {
		json_object_object_add(body, "running", r->ops->running(r->ctx));
	}
	r->ops->send(r->ctx, VMC_MSG_HELLO, body);
	json_object_put(body);
}

static void hellos_clear(struct vmc_replica *r)
{
	for (size_t i = 0; i < r->n_hellos; i++) {
		json_object_put(r->hellos[i].running);
		r->hellos[i].running = NULL;
	}
	r->n_hellos = 0;
}

json_object *vmc_replica_reports(const struct vmc_replica *r)
{
	json_object *a;

	if (r->phase != VMC_SYNC_DONE || r->n_hellos != r->n_active) {
		return NULL;
	}
	for (size_t i = 0; i < r->n_hellos; i++) {
		if (r->hellos[i].running == NULL) {
			return NULL;
		}
	}
	a = json_object_new_array();
	for (size_t i = 0; i < r->n_hellos; i++) {
		json_object *pair = json_object_new_array();
		json_object_array_add(pair, json_object_new_int64(r->hellos[i].node_id));
		json_object_array_add(pair, json_object_get(r->hellos[i].running));
		json_object_array_add(a, pair);
	}
	return a;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* A sync of the current view begins: at a view change, and at each restart. */
static void round_begin(struct vmc_replica *r)
{
	r->phase = VMC_SYNC_HELLO;
	r->primary = false;
	r->recovery_only = false;
	hellos_clear(r);
	r->source = NULL;
	snapshot_reset(r);
	held_drop_all(r, true);
	memcpy(r->active, r->members, r->n_members * sizeof(r->members[0]));
	r->n_active = r->n_members;
	r->n_excluded = 0;
	r->excluded_self = false;
	r->hello_sent = false;
	r->promise_sent = false;
	r->confirm_sent = false;
	r->confirm_sent_version = 0;
	r->n_confirms = 0;
	r->counter = 0;
	if (is_member(r, r->my_id)) {
		hello_send(r);
		if (r->ops->sync_started != NULL) {
			r->ops->sync_started(r->ctx);
		}
	}
}

void vmc_replica_view(struct vmc_replica *r, const uint32_t *members, size_t n)
{
	if (n > VMC_NODES_MAX) {
		n = VMC_NODES_MAX;
	}
	memcpy(r->members, members, n * sizeof(*members));
	qsort(r->members, n, sizeof(*members), cmp_u32);
	r->n_members = n;
	r->round++;
	r->sync_seq = 0;
	round_begin(r);
}

bool vmc_replica_is_active(const struct vmc_replica *r, uint32_t node)
{
	for (size_t i = 0; i < r->n_active; i++) {
		if (r->active[i] == node) {
			return true;
		}
	}
	return false;
}

static void restart_request(struct vmc_replica *r)
{
	json_object *body = sync_body(r);

	r->ops->send(r->ctx, VMC_MSG_SYNC_RESTART, body);
	json_object_put(body);
}

/*
 * This node failed where the others did not (out of memory): its copy may
 * now lack a change they applied. It takes no changes and asks for the
 * sync again, where it takes the source's copy (apply.h).
 */
static void taint(struct vmc_replica *r, const char *why)
{
	bool first = !r->tainted;

	r->tainted = true;
	r->primary = false;
	if (!first) {
		return;
	}
	if (VMC_PROTO_HAS_ATTEMPTS(r->proto)) {
		warn(r, "%s: this node takes no changes and asks for a new sync to get the state back", why);
		restart_request(r);
	} else {
		/* Older members would drop a restart: wait for the next membership change. */
		warn(r, "%s: this node takes no changes until the next membership change", why);
	}
}

void vmc_replica_local_failure(struct vmc_replica *r, const char *why)
{
	taint(r, why);
}

/* The hello must describe the view we are in now, else it is stale. */
static bool hello_matches_view(const struct vmc_replica *r, json_object *members)
{
	if (!json_object_is_type(members, json_type_array) ||
	    json_object_array_length(members) != r->n_members) {
		return false;
	}
	for (size_t i = 0; i < r->n_members; i++) {
		json_object *v = json_object_array_get_idx(members, i);
		if (!json_object_is_type(v, json_type_int) ||
		    json_object_get_int64(v) != (int64_t)r->members[i]) {
			return false;
		}
	}
	return true;
}

static int hello_parse(const struct vmc_msg *m, struct vmc_hello *h)
{
	json_object *epoch, *version, *digest, *prev, *votes, *own, *proto, *round, *running;

	if (!json_object_object_get_ex(m->body, "epoch", &epoch) ||
	    !json_object_object_get_ex(m->body, "config_version", &version) ||
	    !json_object_object_get_ex(m->body, "digest", &digest) ||
	    !json_object_object_get_ex(m->body, "prev_primary", &prev) ||
	    !json_object_object_get_ex(m->body, "expected_votes", &votes) ||

	    !json_object_object_get_ex(m->body, "proto_max", &proto) ||
	    !json_object_object_get_ex(m->body, "round", &round) ||
	    !json_object_is_type(epoch, json_type_int) ||
	    !json_object_is_type(version, json_type_int) ||
	    !json_object_is_type(digest, json_type_string) ||
	    json_object_get_string_len(digest) != VMC_DIGEST_HEX_LEN ||
	    !json_object_is_type(votes, json_type_int) ||
	    !json_object_is_type(proto, json_type_int) ||
	    !json_object_is_type(round, json_type_int)) {
		return -VMC_E_PROTOCOL;
	}
	h->node_id = m->sender;
	h->epoch = json_object_get_uint64(epoch);
	h->config_version = json_object_get_uint64(version);
	memcpy(h->digest, json_object_get_string(digest), VMC_DIGEST_HEX_LEN + 1);
	h->prev_primary = json_object_get_boolean(prev);
	h->expected_votes = (uint32_t)json_object_get_int64(votes);
	/* Hellos from builds before "votes" existed count as one vote. */
	h->votes = json_object_object_get_ex(m->body, "votes", &own) && json_object_is_type(own, json_type_int)
			   ? (uint32_t)json_object_get_int64(own)
			   : 1;
	h->proto_max = (uint16_t)json_object_get_int(proto);
	h->round = (uint32_t)json_object_get_int64(round);
	h->sync_seq = 0;
	h->tainted = false;
	if (json_object_object_get_ex(m->body, "sync_seq", NULL) &&
	    !vmc_json_u32(m->body, "sync_seq", &h->sync_seq)) {
		return -VMC_E_PROTOCOL;
	}
	if (json_object_object_get_ex(m->body, "tainted", NULL) &&
	    !vmc_json_bool(m->body, "tainted", &h->tainted)) {
		return -VMC_E_PROTOCOL;
	}
	h->has_vq = false;
	h->promised = 0;
	if (json_object_object_get_ex(m->body, "vq", NULL)) {
		json_object *vq = vmc_json_object(m->body, "vq");
		json_object *ring = vq != NULL ? vmc_json_array(vq, "ring") : NULL;
		json_object *rn = ring != NULL ? json_object_array_get_idx(ring, 0) : NULL;
		json_object *rs = ring != NULL ? json_object_array_get_idx(ring, 1) : NULL;

		if (vq == NULL || !vmc_json_bool(vq, "known", &h->vq.known) ||
		    !vmc_json_bool(vq, "quorate", &h->vq.quorate) || !vmc_json_u32(vq, "quorum", &h->vq.quorum) ||
		    !vmc_json_u32(vq, "qdevice_votes", &h->vq.qdevice_votes) ||
		    !json_object_is_type(rn, json_type_int) || !json_object_is_type(rs, json_type_int)) {
			return -VMC_E_PROTOCOL;
		}
		h->vq.ring_node = (uint32_t)json_object_get_int64(rn);
		h->vq.ring_seq = json_object_get_uint64(rs);
		h->has_vq = true;
	}
	if (json_object_object_get_ex(m->body, "promised", NULL) &&
	    !vmc_json_u64(m->body, "promised", &h->promised)) {
		return -VMC_E_PROTOCOL;
	}
	h->running = NULL;
	if (json_object_object_get_ex(m->body, "running", &running) &&
	    json_object_is_type(running, json_type_array)) {
		h->running = json_object_get(running);
	}
	return 0;
}

/* Same rule on every member: untainted, newest state, then one that was primary, then lowest id. */
static bool hello_better(const struct vmc_hello *a, const struct vmc_hello *b)
{
	if (a->tainted != b->tainted) {
		return !a->tainted;
	}
	if (a->epoch != b->epoch) {
		return a->epoch > b->epoch;
	}
	if (a->config_version != b->config_version) {
		return a->config_version > b->config_version;
	}
	if (a->prev_primary != b->prev_primary) {
		return a->prev_primary;
	}
	return a->node_id < b->node_id;
}

static void held_apply_all(struct vmc_replica *r);
static void pending_resolve(struct vmc_replica *r);
static void exclude_unconfirmed(struct vmc_replica *r, const struct vmc_msg *m);
static const struct vmc_confirm *confirm_of(const struct vmc_replica *r, uint32_t node);
static bool view_primary(struct vmc_replica *r);
static bool vq_differs(const struct vmc_quorum_info *a, const struct vmc_quorum_info *b);
static const struct vmc_quorum_info *counted_vq(const struct vmc_replica *r);

/* The epoch counter one above every epoch and promise in this round's hellos. */
static uint64_t next_counter(const struct vmc_replica *r)
{
	uint64_t c = r->state->promised;

	for (size_t i = 0; i < r->n_hellos; i++) {
		uint64_t e = vmc_epoch_counter(r->hellos[i].epoch);
		c = e > c ? e : c;
		c = r->hellos[i].promised > c ? r->hellos[i].promised : c;
	}
	return c + 1;
}

/* The sync of this view is over: its state is final and, if primary, writable. */
static void sync_done(struct vmc_replica *r)
{
	r->phase = VMC_SYNC_DONE;
	r->prev_primary = r->primary;
	if (r->primary) {
		if (VMC_PROTO_HAS_CONFIRM(r->proto) && !r->legacy_ack) {
			r->state->epoch = (r->counter << 32) | r->source->node_id;
		} else {
			r->state->epoch = r->max_epoch + 1;
		}
		journal_add(r, vmc_journal_line_epoch(r->state->epoch, r->state->config_version));
	}
	r->syncs_done++;
	if (r->ops->synced != NULL) {
		r->ops->synced(r->ctx);
	}
	if (r->primary && acks_by_view(r, r->proto)) {
		pending_resolve(r);
	}
	held_apply_all(r);
}

/* caught_up: this copy is now the source's (or the source's is no better). */
static void sync_finish(struct vmc_replica *r, bool caught_up)
{
	/* Cured only by a sync that knew of the taint (its hello said so); a taint
	 * that came later waits for the sync it asked for. */
	if (caught_up && r->hello_tainted) {
		r->tainted = false;
	}
	if (r->tainted) {
		r->primary = false;
		r->recovery_only = false;
	}
	snapshot_reset(r);
	if (r->primary && acks_by_view(r, r->proto)) {
		/* Establish the epoch first: persist the promise, confirm, wait for all. */
		r->phase = VMC_SYNC_CONFIRM;
		r->counter = next_counter(r);
		if (r->state->promised < r->counter) {
			r->state->promised = r->counter;
			journal_add(r, vmc_journal_line_promise(r->counter, r->state->config_version));
		}
		return;
	}
	sync_done(r);
}

static void snapshot_send(struct vmc_replica *r)
{
	char *text = vmc_state_to_string(r->state);
	size_t len = strlen(text);
	uint32_t count = (uint32_t)((len + VMC_SNAPSHOT_CHUNK_LEN - 1) / VMC_SNAPSHOT_CHUNK_LEN);

	for (uint32_t i = 0; i < count; i++) {
		size_t off = (size_t)i * VMC_SNAPSHOT_CHUNK_LEN;
		size_t n = len - off < VMC_SNAPSHOT_CHUNK_LEN ? len - off : VMC_SNAPSHOT_CHUNK_LEN;
		json_object *body = json_object_new_object();

		json_object_object_add(body, "round", json_object_new_int64(r->source->round));
		json_object_object_add(body, "index", json_object_new_int64(i));
		json_object_object_add(body, "count", json_object_new_int64(count));
		json_object_object_add(body, "data", json_object_new_string_len(text + off, (int)n));
		r->ops->send(r->ctx, VMC_MSG_STATE_CHUNK, body);
		json_object_put(body);
	}
	free(text);
}

/* Do the hellos carry votequorum's word, so that corosync decides? */
static bool corosync_decides(const struct vmc_replica *r)
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

/* The same verdict on every member: it depends on the hellos alone. */
static bool view_primary(struct vmc_replica *r)
{
	uint32_t history = 0, all = 0, quorum = 0, qdevice = UINT32_MAX;
	const struct vmc_hello *first = &r->hellos[0];
	bool nobody_has_one = true;

	r->view_votes = 0;
	r->recovery_only = false;
	for (size_t i = 0; i < r->n_hellos; i++) {
		r->view_votes += r->hellos[i].votes;
	}
	if (!corosync_decides(r)) {
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
		r->recovery_only = (uint64_t)history + silent + qdevice >= quorum;
		if (r->recovery_only) {
			snprintf(r->not_primary, sizeof(r->not_primary),
				 "the daemon of %zu member(s) does not answer (excluded from the sync): this "
				 "partition fences and recovers but takes no changes until they answer or leave",
				 r->n_excluded);
		}
	}
	return false;
}

static void hellos_complete(struct vmc_replica *r)
{
	uint32_t votes = r->nodelist_votes;
	uint16_t proto = r->proto_max;
	bool all_equal = true;

	r->source = &r->hellos[0];
	r->max_epoch = 0;
	for (size_t i = 0; i < r->n_hellos; i++) {
		const struct vmc_hello *h = &r->hellos[i];
		if (h->epoch > r->max_epoch) {
			r->max_epoch = h->epoch;
		}
		if (h->expected_votes > votes) {
			votes = h->expected_votes;
		}
		if (h->proto_max < proto) {
			proto = h->proto_max;
		}
		if (hello_better(h, r->source)) {
			r->source = h;
		}
	}
	for (size_t i = 0; i < r->n_hellos; i++) {
		if (strcmp(r->hellos[i].digest, r->source->digest) != 0) {
			all_equal = false;
		}
	}
	r->proto = proto;
	r->expected_votes = votes;
	/* A tainted copy takes part: this sync gives it the source's state (sync_finish). */
	r->primary = view_primary(r);
	if (corosync_decides(r) && vq_differs(counted_vq(r), &r->vq) && is_member(r, r->my_id) &&
	    !r->excluded_self) {
		/* Judged on what votequorum said before: judge it again on what it says now. */
		restart_request(r);
	}
	if (all_equal) {
		sync_finish(r, true);
		return;
	}
	r->phase = VMC_SYNC_STATE;
	if (r->source->node_id == r->my_id) {
		snapshot_send(r);
	}
}

/* What protocol a node spoke in the last hello this replica had from it (0: none). */
static uint16_t proto_seen_of(const struct vmc_replica *r, uint32_t node)
{
	for (size_t i = 0; i < r->n_proto_seen; i++) {
		if (r->proto_seen[i].node == node) {
			return r->proto_seen[i].proto;
		}
	}
	return 0;
}

static void proto_seen_set(struct vmc_replica *r, uint32_t node, uint16_t proto)
{
	for (size_t i = 0; i < r->n_proto_seen; i++) {
		if (r->proto_seen[i].node == node) {
			r->proto_seen[i].proto = proto;
			return;
		}
	}
	if (r->n_proto_seen < VMC_NODES_MAX) {
		r->proto_seen[r->n_proto_seen].node = node;
		r->proto_seen[r->n_proto_seen++].proto = proto;
	}
}

/* A sync message of this view's current sync (members and sync_seq match)? */
static bool sync_body_current(const struct vmc_replica *r, json_object *body)
{
	json_object *members;
	uint32_t seq = 0;

	if (!json_object_object_get_ex(body, "members", &members) || !hello_matches_view(r, members)) {
		return false;
	}
	if (json_object_object_get_ex(body, "sync_seq", NULL) && !vmc_json_u32(body, "sync_seq", &seq)) {
		return false;
	}
	return seq == r->sync_seq;
}

static void receive_hello(struct vmc_replica *r, const struct vmc_msg *m)
{
	struct vmc_hello h;
	size_t i;

	if (r->phase != VMC_SYNC_HELLO || !vmc_replica_is_active(r, m->sender) ||
	    !sync_body_current(r, m->body)) {
		return; /* stale: from another view, sync or phase */
	}
	if (hello_parse(m, &h) != 0) {
		warn(r, "dropped a malformed hello from node %u", m->sender);
		return;
	}
	for (i = 0; i < r->n_hellos; i++) {
		if (r->hellos[i].node_id == m->sender) {
			break;
		}
	}
	if (i < r->n_hellos) {
		json_object_put(r->hellos[i].running);
	}
	r->hellos[i] = h;
	if (i == r->n_hellos) {
		r->n_hellos++;
	}
	proto_seen_set(r, h.node_id, h.proto_max);
	if (r->n_hellos == r->n_active) {
		hellos_complete(r);
	}
}

static bool hello_from(const struct vmc_replica *r, uint32_t node)
{
	for (size_t i = 0; i < r->n_hellos; i++) {
		if (r->hellos[i].node_id == node) {
			return true;
		}
	}
	return false;
}

/* Every member that answered speaks a protocol that knows exclusion. */
static bool hellos_know_exclusion(const struct vmc_replica *r)
{
	for (size_t i = 0; i < r->n_hellos; i++) {
		if (r->hellos[i].proto_max < 2) {
			return false;
		}
	}
	return true;
}

/*
 * Members this node vouches for: it heard them speak protocol 2 before, so
 * they will understand their own exclusion. An exclusion names them, and
 * every member excludes only those, so what each knows does not matter.
 */
static json_object *vouch_for(const struct vmc_replica *r, const uint32_t *ids, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++) {
		if (ids[i] != r->my_id && proto_seen_of(r, ids[i]) >= 2) {
			json_object_array_add(a, json_object_new_int64(ids[i]));
		}
	}
	return a;
}

void vmc_replica_hello_deadline(struct vmc_replica *r)
{
	uint32_t silent[VMC_NODES_MAX];
	size_t n = 0;
	json_object *body, *vouch;

	if (r->excluded_self || !is_member(r, r->my_id) || !hellos_know_exclusion(r)) {
		return;
	}
	if (r->phase == VMC_SYNC_HELLO) {
		for (size_t i = 0; i < r->n_active; i++) {
			if (!hello_from(r, r->active[i])) {
				silent[n++] = r->active[i];
			}
		}
	} else if (r->phase == VMC_SYNC_STATE && r->source != NULL && r->source->node_id != r->my_id) {
		silent[n++] = r->source->node_id; /* the source went quiet before its snapshot ended */
	} else if (r->phase == VMC_SYNC_CONFIRM) {
		for (size_t i = 0; i < r->n_active; i++) {
			const struct vmc_confirm *c = confirm_of(r, r->active[i]);
			if (c == NULL || !c->promised) {
				silent[n++] = r->active[i];
			}
		}
	}
	vouch = vouch_for(r, silent, n);
	if (json_object_array_length(vouch) == 0) {
		json_object_put(vouch);
		return;
	}
	body = sync_body(r);
	json_object_object_add(body, "vouch", vouch);
	if (r->phase == VMC_SYNC_STATE) {
		json_object_object_add(body, "source", json_object_new_int64(r->source->node_id));
	} else if (r->phase == VMC_SYNC_CONFIRM) {
		json_object_object_add(body, "confirm", json_object_new_boolean(true));
	}
	r->ops->send(r->ctx, VMC_MSG_SYNC_EXCLUDE, body);
	json_object_put(body);
}

static bool vouched(json_object *body, uint32_t node)
{
	json_object *a = vmc_json_array(body, "vouch");

	for (size_t i = 0; a != NULL && i < json_object_array_length(a); i++) {
		json_object *v = json_object_array_get_idx(a, i);
		if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) == (int64_t)node) {
			return true;
		}
	}
	return false;
}


/* This node learns it was excluded: it asks for the sync again. */
static void excluded_self(struct vmc_replica *r)
{
	r->excluded_self = true;
	warn(r, "this node was excluded from the sync (its daemon did not answer in time): asking for "
		"the sync again");
	restart_request(r);
}

/* node leaves this sync: no longer active, its hello no longer counts. */
static void member_exclude(struct vmc_replica *r, uint32_t node)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n_hellos; i++) {
		if (r->hellos[i].node_id != node) {
			r->hellos[k++] = r->hellos[i];
		} else {
			json_object_put(r->hellos[i].running);
		}
	}
	r->n_hellos = k;
	k = 0;
	for (size_t i = 0; i < r->n_active; i++) {
		if (r->active[i] != node) {
			r->active[k++] = r->active[i];
		}
	}
	r->n_active = k;
	r->excluded[r->n_excluded++] = node;
}

/*
 * The source went quiet in the state phase: it leaves the sync, and the
 * hellos of the others, all in, choose another source.
 */
static void exclude_source(struct vmc_replica *r, const struct vmc_msg *m)
{
	uint32_t source;

	if (!vmc_json_u32(m->body, "source", &source) || r->source == NULL || r->source->node_id != source ||
	    !vouched(m->body, source)) {
		return;
	}
	if (source == r->my_id) {
		excluded_self(r);
		return;
	}
	member_exclude(r, source);
	r->exclusions++;
	snapshot_reset(r);
	warn(r, "node id %u, the sync's source, excluded: its snapshot did not come within the deadline", source);
	hellos_complete(r);
}

/*
 * The first exclusion delivered decides, for every member alike: whoever
 * has not said hello at this point of the order, and was vouched for, is
 * out of this sync.
 */
static void receive_sync_exclude(struct vmc_replica *r, const struct vmc_msg *m)
{
	size_t kept = 0;
	bool me = false;
	char names[256] = "";

	if (!is_member(r, m->sender) || !sync_body_current(r, m->body) || !hellos_know_exclusion(r)) {
		return;
	}
	if (r->phase == VMC_SYNC_STATE && json_object_object_get_ex(m->body, "source", NULL)) {
		exclude_source(r, m);
		return;
	}
	if (r->phase == VMC_SYNC_CONFIRM && json_object_object_get_ex(m->body, "confirm", NULL)) {
		exclude_unconfirmed(r, m);
		return;
	}
	if (r->phase != VMC_SYNC_HELLO || r->n_hellos == r->n_active) {
		return;
	}
	for (size_t i = 0; i < r->n_active; i++) {
		uint32_t id = r->active[i];
		size_t used = strlen(names);
		if (hello_from(r, id) || !vouched(m->body, id)) {
			r->active[kept++] = id;
			continue;
		}
		r->excluded[r->n_excluded++] = id;
		me |= id == r->my_id;
		snprintf(names + used, sizeof(names) - used, "%s%u", r->n_excluded > 1 ? ", " : "", id);
	}
	if (kept == r->n_active) {
		return; /* nobody silent was vouched for */
	}
	r->n_active = kept;
	r->exclusions++;
	if (me) {
		excluded_self(r);
		return;
	}
	warn(r, "node id(s) %s excluded from this sync: no hello within the deadline (treated as "
		"departed daemons until they answer)", names);
	if (r->n_hellos == r->n_active) {
		hellos_complete(r);
	}
}

/* A member excluded or tainted asks for the sync again: everyone starts over. */
static void receive_sync_restart(struct vmc_replica *r, const struct vmc_msg *m)
{
	if (!is_member(r, m->sender) || !sync_body_current(r, m->body)) {
		return;
	}
	r->sync_seq++;
	r->sync_restarts++;
	round_begin(r);
}

/* ---- protocol 3: the epoch's establishment and confirmations ---- */

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

static const struct vmc_confirm *confirm_of(const struct vmc_replica *r, uint32_t node)
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
		const struct vmc_confirm *c = confirm_of(r, r->active[i]);
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
		const struct vmc_confirm *c = confirm_of(r, r->active[i]);
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
			answer(r, p->request_id, 0, p->detail);
		} else {
			answer(r, p->request_id, p->verdict,
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
static void pending_resolve(struct vmc_replica *r)
{
	size_t i = 0;

	while (i < r->n_pending) {
		struct vmc_pending *p = &r->pending[i];
		int found = vmc_state_recent_find(r->state, r->my_id, p->request_id);

		if (found == 0 && !VMC_PROTO_HAS_CONFIRM(p->msg_version)) {
			found = -1; /* written in an older protocol: the state does not record it */
		}
		if (found < 0) {
			answer(r, p->request_id, -VMC_E_UNKNOWN,
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
	json_object *body = sync_body(r);

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
				answer(r, r->pending[i].request_id, r->pending[i].verdict, r->pending[i].detail);
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

static void receive_commit_confirm(struct vmc_replica *r, const struct vmc_msg *m)
{
	struct vmc_confirm *c;
	uint64_t value, version;

	if (!sync_body_current(r, m->body) || !vmc_replica_is_active(r, m->sender) ||
	    (c = confirm_slot(r, m->sender)) == NULL) {
		return; /* late, from another view or sync, or from a member not in it */
	}
	if (r->phase == VMC_SYNC_CONFIRM) {
		if (vmc_json_u64(m->body, "promise", &value) && value == r->counter) {
			c->promised = true;
			if (all_promised(r)) {
				sync_done(r);
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

/*
 * Members that have not confirmed the promise when the deadline passes
 * leave the sync, as silent ones do in the hello phase. The view is then
 * judged again on who is left.
 */
static void exclude_unconfirmed(struct vmc_replica *r, const struct vmc_msg *m)
{
	uint32_t gone[VMC_NODES_MAX];
	size_t n = 0;
	bool me = false;

	for (size_t i = 0; i < r->n_active; i++) {
		const struct vmc_confirm *c = confirm_of(r, r->active[i]);
		if ((c == NULL || !c->promised) && vouched(m->body, r->active[i])) {
			gone[n++] = r->active[i];
		}
	}
	for (size_t i = 0; i < n; i++) {
		member_exclude(r, gone[i]);
		me |= gone[i] == r->my_id;
	}
	if (n == 0) {
		return;
	}
	r->exclusions++;
	if (me) {
		excluded_self(r);
		return;
	}
	warn(r, "%zu member(s) excluded from this sync: the epoch's promise was not confirmed within the "
		"deadline", n);
	r->primary = view_primary(r);
	if (!r->primary || all_promised(r)) {
		sync_done(r);
	}
}

void vmc_replica_ack_deadline(struct vmc_replica *r)
{
	bool waiting = false;

	for (size_t i = 0; i < r->n_pending; i++) {
		waiting |= r->pending[i].resolved && pending_current(r, &r->pending[i]);
	}
	if (waiting && r->phase == VMC_SYNC_DONE && r->primary && !r->excluded_self && hellos_know_exclusion(r)) {
		warn(r, "a member has not confirmed this node's changes in time: asking for the sync again");
		restart_request(r);
	}
}

static bool vq_differs(const struct vmc_quorum_info *a, const struct vmc_quorum_info *b)
{
	return a->known != b->known || a->quorate != b->quorate || a->ring_node != b->ring_node ||
	       a->ring_seq != b->ring_seq || a->quorum != b->quorum || a->qdevice_votes != b->qdevice_votes;
}

/*
 * What this node's hello said of votequorum as the sync counts it: the
 * one delivered (a hello sent for an earlier view with the same members
 * may have been taken for this one), else the one sent last.
 */
static const struct vmc_quorum_info *counted_vq(const struct vmc_replica *r)
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
	bool differs = vq_differs(q, counted_vq(r));

	r->vq = *q;
	if (!differs || !r->hello_sent || !is_member(r, r->my_id) || r->excluded_self ||
	    !hellos_know_exclusion(r)) {
		return;
	}
	if (r->phase == VMC_SYNC_DONE && !VMC_PROTO_HAS_CONFIRM(r->proto)) {
		return; /* an older view counts the daemons' votes: votequorum's word changes nothing */
	}
	restart_request(r);
}

static void snapshot_install(struct vmc_replica *r)
{
	struct vmc_state *fresh = NULL;
	char digest[VMC_DIGEST_HEX_LEN + 1];
	char err[256];

	vmc_state_digest(r->state, digest);
	if (strcmp(digest, r->source->digest) == 0) {
		return;
	}
	/* The same bytes reach every member, so a bad snapshot fails on all alike. */
	if (vmc_state_from_string(r->snapshot, &fresh, err, sizeof(err)) != 0) {
		/* Our copy differs from the source's: never let it take changes. */
		r->primary = false;
		if (r->ops->warn != NULL) {
			char what[384];
			snprintf(what, sizeof(what),
				 "the snapshot from node %u is unusable (%s): this node refuses changes "
				 "until the next membership change",
				 r->source->node_id, err);
			r->ops->warn(r->ctx, what);
		}
		return;
	}
	/* What this node promised is its own, not the source's. */
	fresh->promised = r->state->promised;
	vmc_state_free(r->state);
	r->state = fresh;
	r->snapshot_needed = true;
	r->generation++;
	r->snapshots_installed++;
}

static void receive_state_chunk(struct vmc_replica *r, const struct vmc_msg *m)
{
	json_object *round, *index, *count, *data;
	size_t n;
	char *grown;

	if (r->phase != VMC_SYNC_STATE || m->sender != r->source->node_id ||
	    !json_object_object_get_ex(m->body, "round", &round) ||
	    !json_object_object_get_ex(m->body, "index", &index) ||
	    !json_object_object_get_ex(m->body, "count", &count) ||
	    !json_object_object_get_ex(m->body, "data", &data) ||
	    !json_object_is_type(data, json_type_string) ||
	    json_object_get_int64(round) != (int64_t)r->source->round ||
	    json_object_get_int64(index) != (int64_t)r->next_chunk) {
		return;
	}
	n = (size_t)json_object_get_string_len(data);
	grown = realloc(r->snapshot, r->snapshot_len + n + 1);
	if (grown == NULL) {
		/* Finish without it rather than wait forever, and ask for it again. */
		taint(r, "out of memory gathering a snapshot");
		sync_finish(r, false);
		return;
	}
	r->snapshot = grown;
	memcpy(r->snapshot + r->snapshot_len, json_object_get_string(data), n);
	r->snapshot_len += n;
	r->snapshot[r->snapshot_len] = '\0';
	r->next_chunk++;
	if ((int64_t)r->next_chunk >= json_object_get_int64(count)) {
		snapshot_install(r);
		sync_finish(r, true);
	}
}

/*
 * A report in a view that may only recover: applied, but not held by every
 * node (a member is silent), so its origin cannot promise it stays.
 */
static void recovery_decide(struct vmc_replica *r, const struct vmc_msg *m)
{
	struct vmc_apply_ctx ctx = { .sender = m->sender, .version = m->version, .members = r->active,
				     .n_members = r->n_active };
	char detail[512];
	int rc = vmc_state_apply(r->state, &ctx, m, detail, sizeof(detail));

	if (rc == -ENOMEM) {
		taint(r, "out of memory applying a change");
		r->ops->outcome(r->ctx, m->sender, m->request_id, -ENOMEM, "out of memory on this node");
		return;
	}
	if (rc == 0) {
		journal_add(r, vmc_journal_line_change_in_view(m, r->state->config_version, r->active,
							       r->n_active));
	}
	r->ops->outcome(r->ctx, m->sender, m->request_id, rc, detail);
	if (m->sender == r->my_id) {
		char told[640];
		snprintf(told, sizeof(told), "outcome unknown: %s here, but a member's daemon does not answer, so "
			 "not every node holds it", detail);
		answer(r, m->request_id, rc == 0 ? -VMC_E_UNKNOWN : rc, rc == 0 ? told : detail);
	}
}

/* Decided: the outcome on every member, and for our own request the client's answer. */
static void decided(struct vmc_replica *r, const struct vmc_msg *m, int rc, const char *detail)
{
	r->ops->outcome(r->ctx, m->sender, m->request_id, rc, detail);
	if (m->sender == r->my_id && rc != 0) {
		answer(r, m->request_id, rc, detail); /* refused alike everywhere: nothing to wait for */
	}
}

static void request_decide(struct vmc_replica *r, const struct vmc_msg *m)
{
	struct vmc_apply_ctx ctx = { .sender = m->sender, .version = m->version, .members = r->active,
				     .n_members = r->n_active };
	char detail[512];
	int rc;

	if (r->recovery_only && !r->tainted && vmc_msg_type_info(m->type) != NULL &&
	    vmc_msg_type_info(m->type)->report) {
		recovery_decide(r, m);
		return;
	}
	if (!r->primary) {
		if (r->tainted) {
			snprintf(detail, sizeof(detail),
				 "this node is resyncing after a local failure and takes no changes; retry");
		} else {
			snprintf(detail, sizeof(detail), "%s", r->not_primary);
		}
		decided(r, m, r->tainted ? -VMC_E_RETRY : -VMC_E_NO_QUORUM, detail);
		return;
	}
	if (m->version > r->proto) {
		/* Written before the view agreed on a lower protocol: an older member dropped it. */
		snprintf(detail, sizeof(detail), "written in protocol %u, the view speaks %u; retry", m->version,
			 r->proto);
		decided(r, m, -VMC_E_RETRY, detail);
		return;
	}
	rc = vmc_state_apply(r->state, &ctx, m, detail, sizeof(detail));
	if (rc == -ENOMEM) {
		/* Not a verdict: the others applied or refused it, this node could not tell. */
		taint(r, "out of memory applying a change");
		r->ops->outcome(r->ctx, m->sender, m->request_id, -ENOMEM,
				"out of memory on this node while applying the change: the other nodes "
				"decided it; see 'clusterctl vm list'");
		own_dropped(r, m, "out of memory on this node while applying the change: the other nodes "
				  "decided it; see 'clusterctl vm list'");
		return;
	}
	if (rc == 0) {
		journal_add(r, vmc_journal_line_change_in_view(m, r->state->config_version, r->active,
							       r->n_active));
		if (m->sender == r->my_id) {
			/* Told once every member holds it (or, by the older rule, once this node does). */
			pending_add(r, m, true, 0, r->state->config_version, detail);
		}
	}
	decided(r, m, rc, detail);
}

static void request_hold(struct vmc_replica *r, const struct vmc_msg *m)
{
	struct vmc_held_msg *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		taint(r, "out of memory holding a change during a sync");
		return;
	}
	h->msg = *m;
	h->msg.body = json_object_get(m->body);
	*r->held_tail = h;
	r->held_tail = &h->next;
}

static void held_apply_all(struct vmc_replica *r)
{
	struct vmc_held_msg *h = r->held_head;

	r->held_head = NULL;
	r->held_tail = &r->held_head;
	while (h != NULL) {
		struct vmc_held_msg *next = h->next;
		request_decide(r, &h->msg);
		vmc_msg_clear(&h->msg);
		free(h);
		h = next;
	}
}

void vmc_replica_deliver(struct vmc_replica *r, const struct vmc_msg *m)
{
	/* Excluded, this node waits for the sync it asked for: nothing else moves it. */
	if (r->excluded_self && m->type != VMC_MSG_SYNC_RESTART &&
	    (m->type == VMC_MSG_HELLO || m->type == VMC_MSG_STATE_CHUNK || m->type == VMC_MSG_SYNC_EXCLUDE ||
	     m->type == VMC_MSG_COMMIT_CONFIRM)) {
		return;
	}
	switch (m->type) {
	case VMC_MSG_HELLO:
		receive_hello(r, m);
		return;
	case VMC_MSG_STATE_CHUNK:
		receive_state_chunk(r, m);
		return;
	case VMC_MSG_SYNC_EXCLUDE:
		receive_sync_exclude(r, m);
		return;
	case VMC_MSG_SYNC_RESTART:
		receive_sync_restart(r, m);
		return;
	case VMC_MSG_COMMIT_CONFIRM:
		receive_commit_confirm(r, m);
		return;
	default:
		break;
	}
	if (!vmc_replica_is_active(r, m->sender) || r->excluded_self) {
		/* Not this sync's: nobody decides it. Its origin must still answer its client. */
		if (m->sender == r->my_id && m->request_id != 0) {
			static const char why[] = "this node is not in the cluster's sync at the moment; retry";
			r->ops->outcome(r->ctx, m->sender, m->request_id, -VMC_E_RETRY, why);
			own_dropped(r, m, why);
		}
		return;
	}
	if (r->phase != VMC_SYNC_DONE) {
		request_hold(r, m);
	} else {
		request_decide(r, m);
	}
}
