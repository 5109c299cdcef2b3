/*
 * The replica: the sync after membership changes, and the requests, held
 * while a sync runs and decided in order after. Which view is primary is
 * replica_quorum.c's, confirmations and answers replica_acks.c's. See
 * replica.h for the protocol.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "json_util.h"
#include "msg_types.h"
#include "replica_internal.h"
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

static void held_drop_all(struct vmc_replica *r, bool report)
{
	struct vmc_held_msg *h = r->held_head;

	while (h != NULL) {
		struct vmc_held_msg *next = h->next;
		if (report) {
			static const char why[] = "cluster membership changed before the change was applied; retry";
			r->ops->outcome(r->ctx, h->msg.sender, h->msg.request_id, -VMC_E_RETRY, why);
			replica_own_dropped(r, &h->msg, why);
		}
		vmc_msg_clear(&h->msg);
		free(h);
		h = next;
	}
	r->held_head = NULL;
	r->held_tail = &r->held_head;
}

void replica_journal_add(struct vmc_replica *r, char *line)
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

bool replica_is_member(const struct vmc_replica *r, uint32_t id)
{
	for (size_t i = 0; i < r->n_members; i++) {
		if (r->members[i] == id) {
			return true;
		}
	}
	return false;
}

void replica_warn(const struct vmc_replica *r, const char *fmt, ...)
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
json_object *replica_sync_body(const struct vmc_replica *r)
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
	json_object *body = replica_sync_body(r);
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
		{
			json_object *steady = json_object_new_array();
			for (size_t i = 0; i < r->n_steady; i++) {
				json_object_array_add(steady, json_object_new_int64(r->steady[i]));
			}
			json_object_object_add(body, "steady", steady);
		}
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
	if (replica_is_member(r, r->my_id)) {
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
	/* Who left the view, even for a moment, may have done what this node did not see. */
	{
		size_t k = 0;
		for (size_t i = 0; i < r->n_steady; i++) {
			if (replica_is_member(r, r->steady[i])) {
				r->steady[k++] = r->steady[i];
			}
		}
		r->n_steady = k;
	}
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

void replica_restart_request(struct vmc_replica *r)
{
	json_object *body = replica_sync_body(r);

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
		replica_warn(r, "%s: this node takes no changes and asks for a new sync to get the state back", why);
		replica_restart_request(r);
	} else {
		/* Older members would drop a restart: wait for the next membership change. */
		replica_warn(r, "%s: this node takes no changes until the next membership change", why);
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
	h->n_steady = 0;
	if (json_object_object_get_ex(m->body, "steady", NULL)) {
		json_object *steady = vmc_json_array(m->body, "steady");
		if (steady == NULL || json_object_array_length(steady) > VMC_NODES_MAX) {
			return -VMC_E_PROTOCOL;
		}
		for (size_t i = 0; i < json_object_array_length(steady); i++) {
			json_object *id = json_object_array_get_idx(steady, i);
			if (!json_object_is_type(id, json_type_int) || json_object_get_int64(id) <= 0 ||
			    json_object_get_int64(id) > UINT32_MAX) {
				return -VMC_E_PROTOCOL;
			}
			h->steady[h->n_steady++] = (uint32_t)json_object_get_int64(id);
		}
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
void replica_sync_done(struct vmc_replica *r)
{
	r->phase = VMC_SYNC_DONE;
	r->prev_primary = r->primary;
	if (r->primary) {
		memcpy(r->steady, r->active, r->n_active * sizeof(r->active[0]));
		r->n_steady = r->n_active;
		if (VMC_PROTO_HAS_CONFIRM(r->proto) && !r->legacy_ack) {
			r->state->epoch = (r->counter << 32) | r->source->node_id;
		} else {
			r->state->epoch = r->max_epoch + 1;
		}
		replica_journal_add(r, vmc_journal_line_epoch(r->state->epoch, r->state->config_version));
	}
	r->syncs_done++;
	if (r->ops->synced != NULL) {
		r->ops->synced(r->ctx);
	}
	if (r->primary && replica_acks_by_view(r, r->proto)) {
		replica_pending_resolve(r);
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
	if (r->primary && replica_acks_by_view(r, r->proto)) {
		/* Establish the epoch first: persist the promise, confirm, wait for all. */
		r->phase = VMC_SYNC_CONFIRM;
		r->counter = next_counter(r);
		if (r->state->promised < r->counter) {
			r->state->promised = r->counter;
			replica_journal_add(r, vmc_journal_line_promise(r->counter, r->state->config_version));
		}
		replica_promises_count(r);
		return;
	}
	replica_sync_done(r);
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
	r->primary = replica_view_primary(r);
	if (replica_corosync_decides(r) && replica_vq_differs(replica_counted_vq(r), &r->vq) && replica_is_member(r, r->my_id) &&
	    !r->excluded_self) {
		/* Judged on what votequorum said before: judge it again on what it says now. */
		replica_restart_request(r);
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
bool replica_sync_body_current(const struct vmc_replica *r, json_object *body)
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
	    !replica_sync_body_current(r, m->body)) {
		return; /* stale: from another view, sync or phase */
	}
	if (hello_parse(m, &h) != 0) {
		replica_warn(r, "dropped a malformed hello from node %u", m->sender);
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
bool replica_hellos_know_exclusion(const struct vmc_replica *r)
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

	if (r->excluded_self || !replica_is_member(r, r->my_id) || !replica_hellos_know_exclusion(r)) {
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
			const struct vmc_confirm *c = replica_confirm_of(r, r->active[i]);
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
	body = replica_sync_body(r);
	json_object_object_add(body, "vouch", vouch);
	if (r->phase == VMC_SYNC_STATE) {
		json_object_object_add(body, "source", json_object_new_int64(r->source->node_id));
	} else if (r->phase == VMC_SYNC_CONFIRM) {
		json_object_object_add(body, "confirm", json_object_new_boolean(true));
	}
	r->ops->send(r->ctx, VMC_MSG_SYNC_EXCLUDE, body);
	json_object_put(body);
}

bool replica_vouched(json_object *body, uint32_t node)
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
void replica_excluded_self(struct vmc_replica *r)
{
	r->excluded_self = true;
	replica_warn(r, "this node was excluded from the sync (its daemon did not answer in time): asking for "
		"the sync again");
	replica_restart_request(r);
}

/* node leaves this sync: no longer active, its hello no longer counts. */
void replica_member_exclude(struct vmc_replica *r, uint32_t node)
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
	    !replica_vouched(m->body, source)) {
		return;
	}
	if (source == r->my_id) {
		replica_excluded_self(r);
		return;
	}
	replica_member_exclude(r, source);
	r->exclusions++;
	snapshot_reset(r);
	replica_warn(r, "node id %u, the sync's source, excluded: its snapshot did not come within the deadline", source);
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

	if (!replica_is_member(r, m->sender) || !replica_sync_body_current(r, m->body) || !replica_hellos_know_exclusion(r)) {
		return;
	}
	if (r->phase == VMC_SYNC_STATE && json_object_object_get_ex(m->body, "source", NULL)) {
		exclude_source(r, m);
		return;
	}
	if (r->phase == VMC_SYNC_CONFIRM && json_object_object_get_ex(m->body, "confirm", NULL)) {
		replica_exclude_unconfirmed(r, m);
		return;
	}
	if (r->phase != VMC_SYNC_HELLO || r->n_hellos == r->n_active) {
		return;
	}
	for (size_t i = 0; i < r->n_active; i++) {
		uint32_t id = r->active[i];
		size_t used = strlen(names);
		if (hello_from(r, id) || !replica_vouched(m->body, id)) {
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
		replica_excluded_self(r);
		return;
	}
	replica_warn(r, "node id(s) %s excluded from this sync: no hello within the deadline (treated as "
		"departed daemons until they answer)", names);
	if (r->n_hellos == r->n_active) {
		hellos_complete(r);
	}
}

/* A member excluded or tainted asks for the sync again: everyone starts over. */
static void receive_sync_restart(struct vmc_replica *r, const struct vmc_msg *m)
{
	if (!replica_is_member(r, m->sender) || !replica_sync_body_current(r, m->body)) {
		return;
	}
	r->sync_seq++;
	r->sync_restarts++;
	round_begin(r);
}

/* ---- protocol 3: the epoch's establishment and confirmations ---- */

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
		replica_journal_add(r, vmc_journal_line_change_in_view(m, r->state->config_version, r->active,
							       r->n_active));
	}
	r->ops->outcome(r->ctx, m->sender, m->request_id, rc, detail);
	if (m->sender == r->my_id) {
		char told[640];
		snprintf(told, sizeof(told), "outcome unknown: %s here, but a member's daemon does not answer, so "
			 "not every node holds it", detail);
		replica_answer(r, m->request_id, rc == 0 ? -VMC_E_UNKNOWN : rc, rc == 0 ? told : detail);
	}
}

/* Decided: the outcome on every member, and for our own request the client's answer. */
static void decided(struct vmc_replica *r, const struct vmc_msg *m, int rc, const char *detail)
{
	r->ops->outcome(r->ctx, m->sender, m->request_id, rc, detail);
	if (m->sender == r->my_id && rc != 0) {
		replica_answer(r, m->request_id, rc, detail); /* refused alike everywhere: nothing to wait for */
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
		replica_own_dropped(r, m, "out of memory on this node while applying the change: the other nodes "
				  "decided it; see 'clusterctl vm list'");
		return;
	}
	if (rc == 0) {
		replica_journal_add(r, vmc_journal_line_change_in_view(m, r->state->config_version, r->active,
							       r->n_active));
		if (m->sender == r->my_id) {
			/* Told once every member holds it (or, by the older rule, once this node does). */
			replica_pending_add(r, m, true, 0, r->state->config_version, detail);
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
		replica_receive_commit_confirm(r, m);
		return;
	default:
		break;
	}
	if (!vmc_replica_is_active(r, m->sender) || r->excluded_self) {
		/* Not this sync's: nobody decides it. Its origin must still answer its client. */
		if (m->sender == r->my_id && m->request_id != 0) {
			static const char why[] = "this node is not in the cluster's sync at the moment; retry";
			r->ops->outcome(r->ctx, m->sender, m->request_id, -VMC_E_RETRY, why);
			replica_own_dropped(r, m, why);
		}
		return;
	}
	if (r->phase != VMC_SYNC_DONE) {
		request_hold(r, m);
	} else {
		request_decide(r, m);
	}
}
