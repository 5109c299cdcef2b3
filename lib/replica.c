/*
 * The replica: sync after membership changes, the quorum gate, and the
 * holding of requests while a sync runs. See replica.h for the protocol.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "replica.h"
#include "vmc_errors.h"

const char *vmc_sync_phase_to_str(enum vmc_sync_phase p)
{
	switch (p) {
	case VMC_SYNC_HELLO:
		return "hello";
	case VMC_SYNC_STATE:
		return "state";
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
	r->expected_votes = expected_votes;
	r->state = state;
	r->ops = ops;
	r->ctx = ctx;
	r->phase = VMC_SYNC_HELLO;
	r->held_tail = &r->held_head;
}

static void hellos_clear(struct vmc_replica *r);

static void held_drop_all(struct vmc_replica *r, bool report)
{
	struct vmc_held_msg *h = r->held_head;

	while (h != NULL) {
		struct vmc_held_msg *next = h->next;
		if (report) {
			r->ops->outcome(r->ctx, h->msg.sender, h->msg.request_id, -VMC_E_RETRY,
					"cluster membership changed before the change was applied; retry");
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
	return r->phase == VMC_SYNC_DONE && r->primary;
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

static void hello_send(struct vmc_replica *r)
{
	json_object *body = json_object_new_object();
	json_object *members = json_object_new_array();
	const char *digest = vmc_replica_digest(r);

	for (size_t i = 0; i < r->n_members; i++) {
		json_object_array_add(members, json_object_new_int64(r->members[i]));
	}
	json_object_object_add(body, "epoch", json_object_new_uint64(r->state->epoch));
	json_object_object_add(body, "config_version", json_object_new_uint64(r->state->config_version));
	json_object_object_add(body, "digest", json_object_new_string(digest));
	json_object_object_add(body, "prev_primary", json_object_new_boolean(r->prev_primary));
	json_object_object_add(body, "expected_votes", json_object_new_int64(r->expected_votes));
	json_object_object_add(body, "votes", json_object_new_int64(r->my_votes));
	json_object_object_add(body, "proto_max", json_object_new_int(VMC_PROTO_VERSION_MAX));
	json_object_object_add(body, "round", json_object_new_int64(r->round));
	json_object_object_add(body, "members", members);
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

	if (r->phase != VMC_SYNC_DONE || r->n_hellos != r->n_members) {
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

void vmc_replica_view(struct vmc_replica *r, const uint32_t *members, size_t n)
{
	if (n > VMC_NODES_MAX) {
		n = VMC_NODES_MAX;
	}
	memcpy(r->members, members, n * sizeof(*members));
	qsort(r->members, n, sizeof(*members), cmp_u32);
	r->n_members = n;
	r->round++;
	r->phase = VMC_SYNC_HELLO;
	r->primary = false;
	hellos_clear(r);
	r->source = NULL;
	snapshot_reset(r);
	held_drop_all(r, true);
	if (is_member(r, r->my_id)) {
		hello_send(r);
	}
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
	h->running = NULL;
	if (json_object_object_get_ex(m->body, "running", &running) &&
	    json_object_is_type(running, json_type_array)) {
		h->running = json_object_get(running);
	}
	return 0;
}

/* Same rule on every member: newest state, then one that was primary, then lowest id. */
static bool hello_better(const struct vmc_hello *a, const struct vmc_hello *b)
{
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

static void sync_finish(struct vmc_replica *r)
{
	r->phase = VMC_SYNC_DONE;
	r->prev_primary = r->primary;
	if (r->primary) {
		r->state->epoch = r->max_epoch + 1;
		journal_add(r, vmc_journal_line_epoch(r->state->epoch, r->state->config_version));
	}
	r->syncs_done++;
	snapshot_reset(r);
	if (r->ops->synced != NULL) {
		r->ops->synced(r->ctx);
	}
	held_apply_all(r);
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
	uint32_t votes = r->expected_votes;
	uint16_t proto = VMC_PROTO_VERSION_MAX;
	bool all_equal = true;

	r->view_votes = 0;
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
		r->view_votes += h->votes;
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
	r->primary = 2 * (uint64_t)r->view_votes > votes;
	if (all_equal) {
		sync_finish(r);
		return;
	}
	r->phase = VMC_SYNC_STATE;
	if (r->source->node_id == r->my_id) {
		snapshot_send(r);
	}
}

static void receive_hello(struct vmc_replica *r, const struct vmc_msg *m)
{
	struct vmc_hello h;
	json_object *members;
	size_t i;

	if (r->phase != VMC_SYNC_HELLO || !is_member(r, m->sender) ||
	    !json_object_object_get_ex(m->body, "members", &members) ||
	    !hello_matches_view(r, members)) {
		return; /* stale: from another view or phase */
	}
	if (hello_parse(m, &h) != 0) {
		if (r->ops->warn != NULL) {
			char what[96];
			snprintf(what, sizeof(what), "dropped a malformed hello from node %u", m->sender);
			r->ops->warn(r->ctx, what);
		}
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
	if (r->n_hellos == r->n_members) {
		hellos_complete(r);
	}
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
		/* Finish without it rather than wait forever, but take no changes. */
		r->primary = false;
		if (r->ops->warn != NULL) {
			r->ops->warn(r->ctx, "out of memory gathering a snapshot: this node refuses changes "
					     "until the next membership change");
		}
		sync_finish(r);
		return;
	}
	r->snapshot = grown;
	memcpy(r->snapshot + r->snapshot_len, json_object_get_string(data), n);
	r->snapshot_len += n;
	r->snapshot[r->snapshot_len] = '\0';
	r->next_chunk++;
	if ((int64_t)r->next_chunk >= json_object_get_int64(count)) {
		snapshot_install(r);
		sync_finish(r);
	}
}

static void request_decide(struct vmc_replica *r, const struct vmc_msg *m)
{
	char detail[512];
	int rc;

	if (!r->primary) {
		snprintf(detail, sizeof(detail),
			 "no quorum: the vmclusterd daemons in this partition hold %u of %u votes; "
			 "changes need a majority",
			 r->view_votes, r->expected_votes);
		r->ops->outcome(r->ctx, m->sender, m->request_id, -VMC_E_NO_QUORUM, detail);
		return;
	}
	struct vmc_apply_ctx ctx = { .sender = m->sender, .members = r->members,
				     .n_members = r->n_members };

	rc = vmc_state_apply(r->state, &ctx, m, detail, sizeof(detail));
	if (rc == 0) {
		journal_add(r, vmc_journal_line_change_in_view(m, r->state->config_version, r->members,
							       r->n_members));
	}
	r->ops->outcome(r->ctx, m->sender, m->request_id, rc, detail);
}

static void request_hold(struct vmc_replica *r, const struct vmc_msg *m)
{
	struct vmc_held_msg *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		r->ops->outcome(r->ctx, m->sender, m->request_id, -ENOMEM, "out of memory");
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
	switch (m->type) {
	case VMC_MSG_HELLO:
		receive_hello(r, m);
		return;
	case VMC_MSG_STATE_CHUNK:
		receive_state_chunk(r, m);
		return;
	default:
		break;
	}
	if (!is_member(r, m->sender)) {
		return;
	}
	if (r->phase != VMC_SYNC_DONE) {
		request_hold(r, m);
	} else {
		request_decide(r, m);
	}
}
