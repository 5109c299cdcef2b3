/*
 * Unit tests for one replica of the state machine (lib/replica.c), driven
 * by hand: the test plays CPG. What the replicas multicast is captured on
 * a "bus" in send order and delivered, message by message, to the nodes
 * the test chooses; the outcomes each node reports are captured too.
 * Hellos of absent peers are written by hand, so each rule of the sync —
 * quorum by votes, the choice of the source, stale hellos, the holding of
 * requests — is checked on its own. check_simulator runs the same code
 * with random schedules; here every case is one schedule, spelled out.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "replica.h"
#include "vmc_errors.h"
#include "check_run.h"

#define TEST_TIMEOUT_S 30
#define DETAIL_LEN 512
#define BUS_MAX 256
#define OUTCOMES_MAX 32
#define JOURNAL_TEXT_MAX 16384
/* Enough groups for a snapshot of more than one STATE_CHUNK. */
#define BIG_STATE_GROUPS 1000

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct digest {
	char hex[VMC_DIGEST_HEX_LEN + 1];
};

struct outcome {
	uint32_t origin;
	uint64_t request_id;
	int rc;
	char detail[DETAIL_LEN];
};

struct node {
	uint32_t id;
	struct vmc_replica r;
	struct outcome outcomes[OUTCOMES_MAX];
	size_t n_outcomes;
	size_t n_synced;
	size_t n_warnings;
};

struct sent {
	uint32_t sender;
	uint16_t type;
	json_object *body;
};

/* Everything multicast, in send order; bus_next is the next to deliver. */
static struct sent bus[BUS_MAX];
static size_t bus_len;
static size_t bus_next;

static void bus_reset(void)
{
	for (size_t i = 0; i < bus_len; i++) {
		json_object_put(bus[i].body);
	}
	bus_len = 0;
	bus_next = 0;
}

static void node_send(void *ctx, uint16_t type, json_object *body)
{
	struct node *n = ctx;

	ck_assert_uint_lt(bus_len, BUS_MAX);
	bus[bus_len].sender = n->id;
	bus[bus_len].type = type;
	bus[bus_len].body = json_object_get(body);
	bus_len++;
}

static void node_outcome(void *ctx, uint32_t origin, uint64_t request_id, int rc,
			 const char *detail)
{
	struct node *n = ctx;
	struct outcome *o;

	ck_assert_uint_lt(n->n_outcomes, OUTCOMES_MAX);
	o = &n->outcomes[n->n_outcomes++];
	o->origin = origin;
	o->request_id = request_id;
	o->rc = rc;
	snprintf(o->detail, sizeof(o->detail), "%s", detail != NULL ? detail : "");
}

static void node_synced(void *ctx)
{
	struct node *n = ctx;

	n->n_synced++;
}

static void node_warn(void *ctx, const char *what)
{
	struct node *n = ctx;

	ck_assert_ptr_nonnull(what);
	n->n_warnings++;
}

static const struct vmc_replica_ops node_ops = {
	.send = node_send,
	.outcome = node_outcome,
	.synced = node_synced,
	.warn = node_warn,
};

/*
 * The protocol the nodes of a test speak: 2 for the rules of the sync that
 * hold in every version (the daemons' votes decide quorum there); the
 * protocol 3 cases (votequorum, the epoch's promise, confirmations) set 3.
 */
static uint16_t test_proto = 2;

/* state may be NULL for an empty one; the replica takes it. */
static void node_start(struct node *n, uint32_t id, uint32_t votes, uint32_t expected_votes,
		       struct vmc_state *state)
{
	memset(n, 0, sizeof(*n));
	n->id = id;
	if (state == NULL) {
		state = vmc_state_new();
		ck_assert_ptr_nonnull(state);
	}
	vmc_replica_init(&n->r, id, votes, expected_votes, state, &node_ops, n);
	n->r.proto_max = test_proto;
}

static void node_stop(struct node *n)
{
	vmc_replica_fini(&n->r);
}

static void view_of(struct node *const *nodes, size_t n_nodes, const uint32_t *members,
		    size_t n_members)
{
	for (size_t i = 0; i < n_nodes; i++) {
		vmc_replica_view(&nodes[i]->r, members, n_members);
	}
}

static void deliver(struct node *const *to, size_t n_to, uint32_t sender, uint16_t type,
		    uint64_t request_id, json_object *body)
{
	struct vmc_msg m = {
		.version = test_proto,
		.type = type,
		.sender = sender,
		.request_id = request_id,
		.body = body,
	};

	for (size_t i = 0; i < n_to; i++) {
		vmc_replica_deliver(&to[i]->r, &m);
	}
}

/* Deliver the next bus message; false when there is none. */
static bool bus_deliver_next(struct node *const *to, size_t n_to)
{
	struct sent *s;

	if (bus_next == bus_len) {
		return false;
	}
	s = &bus[bus_next++];
	deliver(to, n_to, s->sender, s->type, 0, s->body);
	return true;
}

/* Deliver until nothing is left, including what the deliveries send. */
static void bus_run(struct node *const *to, size_t n_to)
{
	while (bus_deliver_next(to, n_to)) {
	}
}

static size_t bus_count(uint16_t type, uint32_t sender)
{
	size_t k = 0;

	for (size_t i = 0; i < bus_len; i++) {
		k += bus[i].type == type && bus[i].sender == sender;
	}
	return k;
}

static void request(struct node *const *to, size_t n_to, uint32_t origin, uint64_t request_id,
		    uint16_t type, const char *body_text)
{
	json_object *body = json_tokener_parse(body_text);

	ck_assert_msg(body != NULL, "test body is not JSON: %s", body_text);
	deliver(to, n_to, origin, type, request_id, body);
	json_object_put(body);
}

#define ADD_WEB1 \
	"{\"definition\":{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"}}}"
#define ADD_WEB1_BIG \
	"{\"definition\":{\"name\":\"web1\",\"memory_mib\":1024,\"boot\":{\"kernel\":\"/k\"}}}"
#define ADD_DB1 \
	"{\"definition\":{\"name\":\"db1\",\"memory_mib\":2048,\"boot\":{\"kernel\":\"/k\"}}}"
#define SET_WEB1_VCPUS "{\"name\":\"web1\",\"set\":[\"vcpus=2\"]}"
#define REMOVE_WEB1 "{\"name\":\"web1\"}"

/* A state that already holds changes, as a node that was primary before. */
static struct vmc_state *state_with(uint64_t epoch, const char *const *adds, size_t n)
{
	struct vmc_state *s = vmc_state_new();

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < n; i++) {
		struct vmc_msg m = { .version = 1, .type = VMC_MSG_GROUP_ADD, .sender = 9,
				     .request_id = i + 1, .body = json_tokener_parse(adds[i]) };
		char detail[DETAIL_LEN];
		int rc = vmc_state_apply_request(s, &m, detail, sizeof(detail));

		ck_assert_msg(rc == 0, "%s: %s", adds[i], detail);
		vmc_msg_clear(&m);
	}
	s->epoch = epoch;
	return s;
}

static struct digest state_digest(const struct vmc_state *s)
{
	struct digest d;

	vmc_state_digest(s, d.hex);
	return d;
}

static struct digest replica_digest(struct vmc_replica *r)
{
	struct digest d;

	snprintf(d.hex, sizeof(d.hex), "%s", vmc_replica_digest(r));
	return d;
}

static void assert_outcome(const struct node *n, size_t i, uint64_t request_id, int rc)
{
	const struct outcome *o;

	ck_assert_msg(i < n->n_outcomes, "node %u: outcome %zu missing (%zu reported)", n->id, i,
		      n->n_outcomes);
	o = &n->outcomes[i];
	ck_assert_msg(o->request_id == request_id && o->rc == rc,
		      "node %u outcome %zu: request %llu rc %d (%s); expected request %llu rc %d",
		      n->id, i, (unsigned long long)o->request_id, o->rc, o->detail,
		      (unsigned long long)request_id, rc);
}

/* ---- hand-written hellos ---- */

struct hello_spec {
	uint64_t epoch;
	uint64_t config_version;
	char digest_char; /* the digest is 64 of it */
	bool prev_primary;
	uint32_t expected_votes;
	uint32_t votes;
};

static json_object *hello_make(const struct hello_spec *h, const uint32_t *members, size_t n)
{
	json_object *body = json_object_new_object();
	json_object *list = json_object_new_array();
	char digest[VMC_DIGEST_HEX_LEN + 1];

	memset(digest, h->digest_char, VMC_DIGEST_HEX_LEN);
	digest[VMC_DIGEST_HEX_LEN] = '\0';
	for (size_t i = 0; i < n; i++) {
		json_object_array_add(list, json_object_new_int64(members[i]));
	}
	json_object_object_add(body, "epoch", json_object_new_uint64(h->epoch));
	json_object_object_add(body, "config_version", json_object_new_uint64(h->config_version));
	json_object_object_add(body, "digest", json_object_new_string(digest));
	json_object_object_add(body, "prev_primary", json_object_new_boolean(h->prev_primary));
	json_object_object_add(body, "expected_votes", json_object_new_int64(h->expected_votes));
	json_object_object_add(body, "votes", json_object_new_int64(h->votes));
	json_object_object_add(body, "proto_max", json_object_new_int(VMC_PROTO_VERSION_MAX));
	json_object_object_add(body, "round", json_object_new_int64(1));
	json_object_object_add(body, "members", list);
	return body;
}

static void hello_deliver(struct node *n, uint32_t sender, const struct hello_spec *h,
			  const uint32_t *members, size_t n_members)
{
	json_object *body = hello_make(h, members, n_members);

	deliver(&n, 1, sender, VMC_MSG_HELLO, 0, body);
	json_object_put(body);
}

static int64_t body_int(json_object *body, const char *key)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(body, key, &v), "no '%s' in %s", key,
		      json_object_to_json_string(body));
	ck_assert_msg(json_object_is_type(v, json_type_int), "'%s' is not an integer", key);
	return json_object_get_int64(v);
}

static void setup(void)
{
	bus_reset();
	test_proto = 2;
}

static void teardown(void)
{
	bus_reset();
}

/* ---- quorum ---- */

START_TEST(test_single_replica_with_one_expected_vote_is_primary)
{
	static const uint32_t members[] = { 1 };
	struct node a;
	struct node *all[] = { &a };
	json_object *hello;

	node_start(&a, 1, 1, 1, NULL);
	view_of(all, 1, members, 1);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_HELLO);
	ck_assert(!vmc_replica_writable(&a.r));
	ck_assert_uint_eq(bus_len, 1);
	ck_assert_uint_eq(bus[0].type, VMC_MSG_HELLO);
	hello = bus[0].body;
	ck_assert_int_eq(body_int(hello, "votes"), 1);
	ck_assert_int_eq(body_int(hello, "expected_votes"), 1);
	ck_assert_int_eq(body_int(hello, "config_version"), 0);

	bus_run(all, 1);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_DONE);
	ck_assert(a.r.primary);
	ck_assert(vmc_replica_writable(&a.r));
	ck_assert_uint_eq(a.n_synced, 1);
	ck_assert_uint_eq(a.r.state->epoch, 1);

	request(all, 1, 1, 11, VMC_MSG_GROUP_ADD, ADD_WEB1);
	ck_assert_uint_eq(a.n_outcomes, 1);
	assert_outcome(&a, 0, 11, 0);
	ck_assert_uint_eq(a.outcomes[0].origin, 1);
	ck_assert_ptr_nonnull(vmc_state_group_find(a.r.state, "web1"));
	ck_assert_uint_eq(a.r.state->config_version, 1);
	node_stop(&a);
}
END_TEST

START_TEST(test_one_of_three_votes_refuses_with_no_quorum)
{
	static const uint32_t members[] = { 1 };
	struct node a;
	struct node *all[] = { &a };
	struct digest before;

	node_start(&a, 1, 1, 3, NULL);
	view_of(all, 1, members, 1);
	bus_run(all, 1);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_DONE);
	ck_assert(!a.r.primary);
	ck_assert(!vmc_replica_writable(&a.r));
	/* only a quorate partition raises the epoch */
	ck_assert_uint_eq(a.r.state->epoch, 0);
	before = state_digest(a.r.state);

	request(all, 1, 1, 5, VMC_MSG_GROUP_ADD, ADD_WEB1);
	assert_outcome(&a, 0, 5, -VMC_E_NO_QUORUM);
	ck_assert_msg(strstr(a.outcomes[0].detail, "1 of 3 votes") != NULL,
		      "detail '%s' does not give the votes", a.outcomes[0].detail);
	ck_assert_uint_eq(a.r.state->config_version, 0);
	ck_assert_uint_eq(a.r.state->n_groups, 0);
	ck_assert_str_eq(state_digest(a.r.state).hex, before.hex);
	ck_assert(!vmc_replica_has_changes(&a.r));
	node_stop(&a);
}
END_TEST

START_TEST(test_member_with_most_votes_is_primary_alone)
{
	static const uint32_t members[] = { 4 };
	struct node a;
	struct node *all[] = { &a };

	node_start(&a, 4, 2, 3, NULL);
	view_of(all, 1, members, 1);
	bus_run(all, 1);
	ck_assert(a.r.primary);
	ck_assert_uint_eq(a.r.view_votes, 2);
	request(all, 1, 4, 1, VMC_MSG_GROUP_ADD, ADD_WEB1);
	assert_outcome(&a, 0, 1, 0);
	node_stop(&a);
}
END_TEST

static const struct {
	uint32_t votes_a, votes_b, expected_votes;
	bool primary;
} vote_cases[] = {
	{ 1, 2, 3, true },
	{ 1, 1, 4, false },
	{ 1, 2, 4, true },
	/* two members of five nodes: a majority only by their votes */
	{ 1, 1, 5, false },
	{ 1, 2, 5, true },
	{ 2, 2, 5, true },
	{ 1, 3, 8, false },
};

START_TEST(test_two_members_quorum_counts_votes_not_members)
{
	static const uint32_t members[] = { 1, 2 };
	struct node a, b;
	struct node *all[] = { &a, &b };
	int want_rc = vote_cases[_i].primary ? 0 : -VMC_E_NO_QUORUM;

	node_start(&a, 1, vote_cases[_i].votes_a, vote_cases[_i].expected_votes, NULL);
	node_start(&b, 2, vote_cases[_i].votes_b, vote_cases[_i].expected_votes, NULL);
	view_of(all, 2, members, 2);
	bus_run(all, 2);
	for (size_t i = 0; i < ARRAY_LEN(all); i++) {
		ck_assert_int_eq(all[i]->r.phase, VMC_SYNC_DONE);
		ck_assert_msg(all[i]->r.primary == vote_cases[_i].primary,
			      "node %u: %u+%u of %u votes: primary %d", all[i]->id,
			      vote_cases[_i].votes_a, vote_cases[_i].votes_b,
			      vote_cases[_i].expected_votes, all[i]->r.primary);
		ck_assert_uint_eq(all[i]->r.view_votes,
				  vote_cases[_i].votes_a + vote_cases[_i].votes_b);
	}
	/* a request is decided alike on both members */
	request(all, 2, 2, 3, VMC_MSG_GROUP_ADD, ADD_WEB1);
	assert_outcome(&a, 0, 3, want_rc);
	assert_outcome(&b, 0, 3, want_rc);
	ck_assert_str_eq(state_digest(a.r.state).hex, state_digest(b.r.state).hex);
	node_stop(&b);
	node_stop(&a);
}
END_TEST

START_TEST(test_highest_expected_votes_among_members_counts)
{
	static const uint32_t members[] = { 1, 2 };
	struct node a, b;
	struct node *all[] = { &a, &b };

	/* a alone would be primary with its own nodelist; b knows of 5 votes */
	node_start(&a, 1, 1, 1, NULL);
	node_start(&b, 2, 1, 5, NULL);
	view_of(all, 2, members, 2);
	bus_run(all, 2);
	ck_assert(!a.r.primary);
	ck_assert(!b.r.primary);
	ck_assert_uint_eq(a.r.expected_votes, 5);
	ck_assert_uint_eq(b.r.expected_votes, 5);
	node_stop(&b);
	node_stop(&a);
}
END_TEST

/* ---- requests held during a sync ---- */

START_TEST(test_requests_before_the_hellos_are_held_then_applied_in_order)
{
	static const uint32_t members[] = { 1, 2 };
	struct node a, b;
	struct node *all[] = { &a, &b };

	node_start(&a, 1, 1, 2, NULL);
	node_start(&b, 2, 1, 2, NULL);
	view_of(all, 2, members, 2);
	ck_assert(bus_deliver_next(all, 2)); /* a's hello; b's is still to come */
	ck_assert_int_eq(a.r.phase, VMC_SYNC_HELLO);

	/* in this order every one applies; in any other, one fails */
	request(all, 2, 1, 1, VMC_MSG_GROUP_ADD, ADD_WEB1);
	request(all, 2, 2, 2, VMC_MSG_GROUP_SET, SET_WEB1_VCPUS);
	request(all, 2, 1, 3, VMC_MSG_GROUP_REMOVE, REMOVE_WEB1);
	request(all, 2, 2, 4, VMC_MSG_GROUP_ADD, ADD_WEB1_BIG);
	ck_assert_uint_eq(a.n_outcomes, 0);
	ck_assert_uint_eq(b.n_outcomes, 0);
	ck_assert_uint_eq(a.r.state->config_version, 0);

	bus_run(all, 2);
	for (size_t i = 0; i < ARRAY_LEN(all); i++) {
		struct node *n = all[i];

		ck_assert_int_eq(n->r.phase, VMC_SYNC_DONE);
		ck_assert_uint_eq(n->n_outcomes, 4);
		for (size_t k = 0; k < 4; k++) {
			assert_outcome(n, k, k + 1, 0);
		}
		ck_assert_uint_eq(n->outcomes[1].origin, 2);
		ck_assert_uint_eq(n->r.state->config_version, 4);
		ck_assert_uint_eq(vmc_state_group_find(n->r.state, "web1")->def->memory_mib, 1024);
		ck_assert_uint_eq(vmc_state_group_find(n->r.state, "web1")->def->vcpus, 1);
	}
	node_stop(&b);
	node_stop(&a);
}
END_TEST

START_TEST(test_view_change_drops_held_requests_with_retry)
{
	static const uint32_t both[] = { 1, 2 };
	static const uint32_t alone[] = { 1 };
	struct node a, b;
	struct node *all[] = { &a, &b };
	struct node *only_a[] = { &a };

	node_start(&a, 1, 1, 1, NULL);
	node_start(&b, 2, 1, 1, NULL);
	view_of(all, 2, both, 2);
	ck_assert(bus_deliver_next(all, 2));
	request(all, 2, 1, 21, VMC_MSG_GROUP_ADD, ADD_WEB1);
	request(all, 2, 2, 22, VMC_MSG_GROUP_ADD, ADD_DB1);
	ck_assert_uint_eq(a.n_outcomes, 0);

	/* b dies before its hello was delivered */
	view_of(only_a, 1, alone, 1);
	ck_assert_uint_eq(a.n_outcomes, 2);
	assert_outcome(&a, 0, 21, -VMC_E_RETRY);
	assert_outcome(&a, 1, 22, -VMC_E_RETRY);
	ck_assert_ptr_nonnull(strstr(a.outcomes[0].detail, "retry"));

	/* the new view's sync ends without them: they are gone, not applied late */
	bus_run(only_a, 1);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_DONE);
	ck_assert(a.r.primary);
	ck_assert_uint_eq(a.n_outcomes, 2);
	ck_assert_uint_eq(a.r.state->config_version, 0);
	ck_assert_uint_eq(a.r.state->n_groups, 0);
	node_stop(&b);
	node_stop(&a);
}
END_TEST

START_TEST(test_requests_held_during_a_snapshot_apply_after_it)
{
	static const uint32_t members[] = { 1, 2 };
	static const char *const adds[] = { ADD_WEB1 };
	struct node a, b;
	struct node *all[] = { &a, &b };

	node_start(&a, 1, 1, 2, state_with(2, adds, 1));
	node_start(&b, 2, 1, 2, NULL);
	view_of(all, 2, members, 2);
	ck_assert(bus_deliver_next(all, 2));
	ck_assert(bus_deliver_next(all, 2));
	ck_assert_int_eq(b.r.phase, VMC_SYNC_STATE);
	/* b has no web1 yet: applied before the snapshot, the set would fail there */
	request(all, 2, 2, 31, VMC_MSG_GROUP_SET, SET_WEB1_VCPUS);
	ck_assert_uint_eq(b.n_outcomes, 0);

	bus_run(all, 2);
	assert_outcome(&a, 0, 31, 0);
	assert_outcome(&b, 0, 31, 0);
	ck_assert_uint_eq(vmc_state_group_find(b.r.state, "web1")->def->vcpus, 2);
	ck_assert_str_eq(state_digest(b.r.state).hex, state_digest(a.r.state).hex);
	node_stop(&b);
	node_stop(&a);
}
END_TEST

START_TEST(test_request_from_a_non_member_is_ignored)
{
	static const uint32_t members[] = { 1 };
	struct node a;
	struct node *all[] = { &a };

	node_start(&a, 1, 1, 1, NULL);
	view_of(all, 1, members, 1);
	bus_run(all, 1);
	request(all, 1, 7, 1, VMC_MSG_GROUP_ADD, ADD_WEB1);
	ck_assert_uint_eq(a.n_outcomes, 0);
	ck_assert_uint_eq(a.r.state->config_version, 0);
	node_stop(&a);
}
END_TEST

/* ---- the sync source ---- */

/* Node 1 (empty state: epoch 0, config_version 0, not prev_primary) meets 2 and 3. */
static const struct {
	const char *rule;
	struct hello_spec h2, h3;
	uint32_t source;
} source_cases[] = {
	{ "higher epoch beats higher config_version",
	  { 2, 50, 'a', true, 3, 1 }, { 3, 1, 'b', false, 3, 1 }, 3 },
	{ "then higher config_version", { 1, 7, 'a', false, 3, 1 }, { 1, 6, 'b', true, 3, 1 }, 2 },
	{ "then prev_primary", { 1, 5, 'a', false, 3, 1 }, { 1, 5, 'b', true, 3, 1 }, 3 },
	{ "then lowest id", { 1, 5, 'a', true, 3, 1 }, { 1, 5, 'b', true, 3, 1 }, 2 },
	{ "lowest id: ourselves", { 0, 0, 'a', false, 3, 1 }, { 0, 0, 'b', false, 3, 1 }, 1 },
};

START_TEST(test_source_rule)
{
	static const uint32_t members[] = { 1, 2, 3 };
	size_t c = (size_t)_i / 2;
	bool reversed = _i % 2 == 1; /* each case in both arrival orders */
	struct node a;
	struct node *all[] = { &a };
	uint64_t max_epoch = source_cases[c].h2.epoch > source_cases[c].h3.epoch
				     ? source_cases[c].h2.epoch
				     : source_cases[c].h3.epoch;

	node_start(&a, 1, 1, 3, NULL);
	view_of(all, 1, members, 3);
	if (reversed) {
		hello_deliver(&a, 3, &source_cases[c].h3, members, 3);
		hello_deliver(&a, 2, &source_cases[c].h2, members, 3);
		ck_assert(bus_deliver_next(all, 1));
	} else {
		ck_assert(bus_deliver_next(all, 1));
		hello_deliver(&a, 2, &source_cases[c].h2, members, 3);
		hello_deliver(&a, 3, &source_cases[c].h3, members, 3);
	}
	ck_assert_msg(a.r.phase == VMC_SYNC_STATE, "%s: phase %s", source_cases[c].rule,
		      vmc_sync_phase_to_str(a.r.phase));
	ck_assert_ptr_nonnull(a.r.source);
	ck_assert_msg(a.r.source->node_id == source_cases[c].source, "%s: source %u, expected %u",
		      source_cases[c].rule, a.r.source->node_id, source_cases[c].source);
	ck_assert_uint_eq(a.r.max_epoch, max_epoch);
	/* only the source multicasts its snapshot */
	ck_assert_uint_eq(bus_count(VMC_MSG_STATE_CHUNK, 1) > 0, source_cases[c].source == 1);
	node_stop(&a);
}
END_TEST

/*
 * A node of the release before vote weighting sends protocol-1 hellos
 * without "votes". Ignoring them leaves the sync waiting forever; such a
 * member must count as one vote, as every member did then.
 */
START_TEST(test_hello_without_votes_from_an_older_node_completes_the_sync)
{
	static const uint32_t members[] = { 1, 2 };
	static const struct hello_spec old = { 0, 0, 'a', false, 2, 1 };
	struct node a;
	struct node *all[] = { &a };
	json_object *body = hello_make(&old, members, 2);
	struct vmc_msg m = { .version = VMC_PROTO_VERSION_MIN, .type = VMC_MSG_HELLO, .sender = 2,
			     .body = body };

	json_object_object_del(body, "votes");
	node_start(&a, 1, 1, 2, NULL);
	view_of(all, 1, members, 2);
	ck_assert(bus_deliver_next(all, 1));
	vmc_replica_deliver(&a.r, &m);
	ck_assert_msg(a.r.phase != VMC_SYNC_HELLO, "the sync waits for a hello it dropped");
	ck_assert_uint_eq(a.r.view_votes, 2);
	json_object_put(body);
	node_stop(&a);
}
END_TEST

START_TEST(test_equal_digests_finish_without_a_snapshot)
{
	static const uint32_t members[] = { 1, 2 };
	struct node a, b;
	struct node *all[] = { &a, &b };
	static const char *const adds[] = { ADD_WEB1 };

	node_start(&a, 1, 1, 2, state_with(4, adds, 1));
	node_start(&b, 2, 1, 2, state_with(4, adds, 1));
	view_of(all, 2, members, 2);
	bus_run(all, 2);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_DONE);
	ck_assert_int_eq(b.r.phase, VMC_SYNC_DONE);
	ck_assert_uint_eq(bus_count(VMC_MSG_STATE_CHUNK, 1) + bus_count(VMC_MSG_STATE_CHUNK, 2), 0);
	ck_assert_uint_eq(a.r.snapshots_installed + b.r.snapshots_installed, 0);
	ck_assert_uint_eq(a.r.state->epoch, 5);
	ck_assert_uint_eq(b.r.state->epoch, 5);
	node_stop(&b);
	node_stop(&a);
}
END_TEST

START_TEST(test_stale_hellos_are_ignored)
{
	static const uint32_t three[] = { 1, 2, 3 };
	static const uint32_t two[] = { 1, 2 };
	static const struct hello_spec peer = { 0, 0, 'a', false, 2, 1 };
	struct node a;
	struct node *all[] = { &a };

	node_start(&a, 1, 1, 2, NULL);
	view_of(all, 1, three, 3);
	view_of(all, 1, two, 2);
	ck_assert_uint_eq(bus_len, 2);

	/* our own hello of the view before */
	ck_assert(bus_deliver_next(all, 1));
	ck_assert_uint_eq(a.r.n_hellos, 0);
	/* a peer's hello of the view before */
	hello_deliver(&a, 2, &peer, three, 3);
	ck_assert_uint_eq(a.r.n_hellos, 0);
	/* a hello from outside the view, naming the view */
	hello_deliver(&a, 3, &peer, two, 2);
	ck_assert_uint_eq(a.r.n_hellos, 0);
	/* members unsorted or with one missing do not describe the view either */
	hello_deliver(&a, 2, &peer, (const uint32_t[]){ 2, 1 }, 2);
	hello_deliver(&a, 2, &peer, two, 1);
	ck_assert_uint_eq(a.r.n_hellos, 0);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_HELLO);

	ck_assert(bus_deliver_next(all, 1));
	ck_assert_uint_eq(a.r.n_hellos, 1);
	hello_deliver(&a, 2, &peer, two, 2);
	ck_assert_int_ne(a.r.phase, VMC_SYNC_HELLO);
	ck_assert_uint_eq(a.r.n_hellos, 2);
	node_stop(&a);
}
END_TEST

START_TEST(test_snapshot_from_the_source_is_installed)
{
	static const uint32_t members[] = { 1, 2 };
	static const char *const adds[] = { ADD_WEB1, ADD_DB1 };
	struct node a, b;
	struct node *all[] = { &a, &b };
	struct digest da;

	node_start(&a, 1, 1, 2, state_with(3, adds, 2));
	node_start(&b, 2, 1, 2, NULL);
	view_of(all, 2, members, 2);
	bus_run(all, 2);
	ck_assert_uint_ge(bus_count(VMC_MSG_STATE_CHUNK, 1), 1);
	ck_assert_uint_eq(bus_count(VMC_MSG_STATE_CHUNK, 2), 0);
	for (size_t i = 0; i < ARRAY_LEN(all); i++) {
		ck_assert_int_eq(all[i]->r.phase, VMC_SYNC_DONE);
		ck_assert(all[i]->r.primary);
		ck_assert_uint_eq(all[i]->r.state->epoch, 4);
		ck_assert_uint_eq(all[i]->r.state->config_version, 2);
		ck_assert_uint_eq(all[i]->n_synced, 1);
	}
	ck_assert_uint_eq(a.r.snapshots_installed, 0);
	ck_assert_uint_eq(b.r.snapshots_installed, 1);
	ck_assert_ptr_nonnull(vmc_state_group_find(b.r.state, "db1"));
	da = state_digest(a.r.state);
	ck_assert_str_eq(state_digest(b.r.state).hex, da.hex);

	/* from there on both decide alike */
	request(all, 2, 2, 9, VMC_MSG_GROUP_SET, SET_WEB1_VCPUS);
	assert_outcome(&a, 0, 9, 0);
	assert_outcome(&b, 0, 9, 0);
	ck_assert_str_eq(state_digest(b.r.state).hex, state_digest(a.r.state).hex);
	node_stop(&b);
	node_stop(&a);
}
END_TEST

START_TEST(test_snapshot_larger_than_a_chunk_is_installed)
{
	static const uint32_t members[] = { 1, 2 };
	struct vmc_state *big = vmc_state_new();
	struct node a, b;
	struct node *all[] = { &a, &b };
	char *text;

	for (int i = 0; i < BIG_STATE_GROUPS; i++) {
		char def[160];
		struct vmc_group_def *d = NULL;
		char err[DETAIL_LEN];

		snprintf(def, sizeof(def),
			 "{\"name\":\"vm-%04d\",\"memory_mib\":512,"
			 "\"boot\":{\"kernel\":\"/var/lib/vmcluster/guest/vmlinuz\"}}",
			 i);
		ck_assert_int_eq(vmc_group_def_from_string(def, &d, err, sizeof(err)), 0);
		ck_assert_int_eq(vmc_state_group_add(big, d), 0);
	}
	big->config_version = BIG_STATE_GROUPS;
	text = vmc_state_to_string(big);
	ck_assert_uint_gt(strlen(text), VMC_SNAPSHOT_CHUNK_LEN);
	free(text);

	node_start(&a, 1, 1, 2, NULL);
	node_start(&b, 2, 1, 2, big);
	view_of(all, 2, members, 2);
	bus_run(all, 2);
	ck_assert_uint_ge(bus_count(VMC_MSG_STATE_CHUNK, 2), 2);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_DONE);
	ck_assert_uint_eq(a.r.snapshots_installed, 1);
	ck_assert_uint_eq(a.r.state->n_groups, BIG_STATE_GROUPS);
	ck_assert_str_eq(state_digest(a.r.state).hex, state_digest(b.r.state).hex);
	node_stop(&b);
	node_stop(&a);
}
END_TEST

/* Node 1 with an empty state waits for node 2's snapshot. */
static void wait_for_snapshot_from_2(struct node *a)
{
	static const uint32_t members[] = { 1, 2 };
	static const struct hello_spec newer = { 5, 3, 'c', true, 2, 1 };
	struct node *all[] = { a };

	node_start(a, 1, 1, 2, NULL);
	view_of(all, 1, members, 2);
	ck_assert(bus_deliver_next(all, 1));
	hello_deliver(a, 2, &newer, members, 2);
	ck_assert_int_eq(a->r.phase, VMC_SYNC_STATE);
	ck_assert_uint_eq(a->r.source->node_id, 2);
}

static json_object *chunk_make(int64_t round, int64_t index, int64_t count, const char *data)
{
	json_object *body = json_object_new_object();

	json_object_object_add(body, "round", json_object_new_int64(round));
	json_object_object_add(body, "index", json_object_new_int64(index));
	json_object_object_add(body, "count", json_object_new_int64(count));
	json_object_object_add(body, "data", json_object_new_string(data));
	return body;
}

START_TEST(test_chunks_not_from_the_source_or_out_of_turn_are_ignored)
{
	static const char snap[] = "{\"format\":1,\"epoch\":5,\"config_version\":0,\"groups\":[]}";
	struct node a;
	struct node *all[] = { &a };
	json_object *body;

	wait_for_snapshot_from_2(&a);
	body = chunk_make(1, 0, 1, snap);
	deliver(all, 1, 1, VMC_MSG_STATE_CHUNK, 0, body); /* not the source */
	json_object_put(body);
	body = chunk_make(1, 1, 2, snap);                 /* not the next index */
	deliver(all, 1, 2, VMC_MSG_STATE_CHUNK, 0, body);
	json_object_put(body);
	body = chunk_make(7, 0, 1, snap);                 /* another round */
	deliver(all, 1, 2, VMC_MSG_STATE_CHUNK, 0, body);
	json_object_put(body);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_STATE);

	body = chunk_make(1, 0, 1, snap);
	deliver(all, 1, 2, VMC_MSG_STATE_CHUNK, 0, body);
	json_object_put(body);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_DONE);
	ck_assert_uint_eq(a.r.snapshots_installed, 1);
	ck_assert_uint_eq(a.r.state->epoch, 6);
	node_stop(&a);
}
END_TEST

START_TEST(test_unusable_snapshot_warns_and_keeps_our_state)
{
	struct node a;
	struct node *all[] = { &a };
	json_object *body;

	wait_for_snapshot_from_2(&a);
	body = chunk_make(1, 0, 1, "{\"format\":1,\"epoch\":\"5\"}");
	deliver(all, 1, 2, VMC_MSG_STATE_CHUNK, 0, body);
	json_object_put(body);
	/* the sync ends rather than waiting forever */
	ck_assert_int_eq(a.r.phase, VMC_SYNC_DONE);
	ck_assert_uint_eq(a.n_warnings, 1);
	ck_assert_uint_eq(a.r.snapshots_installed, 0);
	ck_assert_uint_eq(a.r.state->config_version, 0);
	node_stop(&a);
}
END_TEST

/* ---- what the replica asks its owner to persist ---- */

/* The pending journal lines, as persist.c would append them. */
static char *journal_text(const struct vmc_replica *r)
{
	char *text = calloc(1, JOURNAL_TEXT_MAX);

	ck_assert_ptr_nonnull(text);
	for (size_t i = 0; i < r->n_journal; i++) {
		ck_assert_uint_lt(strlen(text) + strlen(r->journal[i]), JOURNAL_TEXT_MAX);
		strcat(text, r->journal[i]);
	}
	return text;
}

static json_object *journal_line(const struct vmc_replica *r, size_t i)
{
	json_object *o;

	ck_assert_uint_lt(i, r->n_journal);
	o = json_tokener_parse(r->journal[i]);
	ck_assert_msg(o != NULL, "journal line %zu is not JSON: %s", i, r->journal[i]);
	return o;
}

static void assert_epoch_line(const struct vmc_replica *r, size_t i, uint64_t epoch,
			      uint64_t version)
{
	json_object *o = journal_line(r, i);

	ck_assert_int_eq(body_int(o, "epoch"), (int64_t)epoch);
	ck_assert_int_eq(body_int(o, "v"), (int64_t)version);
	json_object_put(o);
}

static void assert_change_line(const struct vmc_replica *r, size_t i, uint64_t version,
			       uint64_t request_id)
{
	json_object *o = journal_line(r, i);
	json_object *x;

	ck_assert(!json_object_object_get_ex(o, "epoch", &x));
	ck_assert_int_eq(body_int(o, "v"), (int64_t)version);
	ck_assert_int_eq(body_int(o, "request_id"), (int64_t)request_id);
	json_object_put(o);
}

START_TEST(test_journal_after_applies_replays_to_the_same_state)
{
	static const uint32_t members[] = { 1 };
	struct node a;
	struct node *all[] = { &a };
	struct vmc_state *replayed = vmc_state_new();
	char err[DETAIL_LEN] = "";
	size_t applied = 0;
	char *text;

	node_start(&a, 1, 1, 1, NULL);
	view_of(all, 1, members, 1);
	bus_run(all, 1);
	ck_assert_uint_eq(a.r.n_journal, 1);
	assert_epoch_line(&a.r, 0, 1, 0);

	request(all, 1, 1, 1, VMC_MSG_GROUP_ADD, ADD_WEB1);
	request(all, 1, 1, 2, VMC_MSG_GROUP_ADD, ADD_WEB1); /* refused: no line */
	request(all, 1, 1, 3, VMC_MSG_GROUP_SET, SET_WEB1_VCPUS);
	assert_outcome(&a, 1, 2, -VMC_E_EXISTS);
	ck_assert_uint_eq(a.r.n_journal, 3);
	assert_change_line(&a.r, 1, 1, 1);
	assert_change_line(&a.r, 2, 2, 3);
	ck_assert(!a.r.snapshot_needed);
	ck_assert(vmc_replica_has_changes(&a.r));

	text = journal_text(&a.r);
	ck_assert_int_eq(vmc_journal_replay(replayed, text, &applied, err, sizeof(err)), 0);
	ck_assert_uint_eq(applied, 3);
	ck_assert_str_eq(state_digest(replayed).hex, vmc_replica_digest(&a.r));

	vmc_replica_persisted(&a.r);
	ck_assert_uint_eq(a.r.n_journal, 0);
	ck_assert(!vmc_replica_has_changes(&a.r));
	request(all, 1, 1, 4, VMC_MSG_GROUP_REMOVE, REMOVE_WEB1);
	ck_assert_uint_eq(a.r.n_journal, 1);
	assert_change_line(&a.r, 0, 3, 4);
	free(text);
	vmc_state_free(replayed);
	node_stop(&a);
}
END_TEST

START_TEST(test_journal_after_an_epoch_raise)
{
	static const uint32_t members[] = { 1 };
	struct node a;
	struct node *all[] = { &a };

	node_start(&a, 1, 1, 1, NULL);
	view_of(all, 1, members, 1);
	bus_run(all, 1);
	request(all, 1, 1, 1, VMC_MSG_GROUP_ADD, ADD_WEB1);
	vmc_replica_persisted(&a.r);

	/* every primary view raises the epoch, and journals it */
	view_of(all, 1, members, 1);
	bus_run(all, 1);
	ck_assert_uint_eq(a.r.state->epoch, 2);
	ck_assert_uint_eq(a.r.n_journal, 1);
	assert_epoch_line(&a.r, 0, 2, 1);
	ck_assert(!a.r.snapshot_needed);
	node_stop(&a);
}
END_TEST

START_TEST(test_non_primary_view_journals_nothing)
{
	static const uint32_t members[] = { 1 };
	struct node a;
	struct node *all[] = { &a };
	static const char *const adds[] = { ADD_WEB1 };

	node_start(&a, 1, 1, 3, state_with(4, adds, 1));
	view_of(all, 1, members, 1);
	bus_run(all, 1);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_DONE);
	ck_assert_uint_eq(a.r.state->epoch, 4);
	ck_assert_uint_eq(a.r.n_journal, 0);
	ck_assert(!vmc_replica_has_changes(&a.r));
	node_stop(&a);
}
END_TEST

START_TEST(test_journal_after_a_snapshot_install)
{
	static const uint32_t members[] = { 1, 2 };
	static const char *const adds[] = { ADD_WEB1, ADD_DB1 };
	struct node a, b;
	struct node *all[] = { &a, &b };

	node_start(&a, 1, 1, 2, state_with(3, adds, 2));
	node_start(&b, 2, 1, 2, NULL);
	view_of(all, 2, members, 2);
	bus_run(all, 2);
	/* b's state was replaced: it must write a whole snapshot */
	ck_assert(b.r.snapshot_needed);
	ck_assert(vmc_replica_has_changes(&b.r));
	ck_assert(!a.r.snapshot_needed);
	ck_assert_uint_eq(a.r.n_journal, 1);
	assert_epoch_line(&a.r, 0, 4, 2);

	vmc_replica_persisted(&b.r);
	ck_assert(!b.r.snapshot_needed);
	ck_assert_uint_eq(b.r.n_journal, 0);
	ck_assert(!vmc_replica_has_changes(&b.r));
	request(all, 2, 1, 5, VMC_MSG_GROUP_REMOVE, REMOVE_WEB1);
	ck_assert(!b.r.snapshot_needed);
	ck_assert_uint_eq(b.r.n_journal, 1);
	assert_change_line(&b.r, 0, 3, 5);
	node_stop(&b);
	node_stop(&a);
}
END_TEST

/* ---- digest ---- */

START_TEST(test_replica_digest_follows_the_state)
{
	static const uint32_t members[] = { 1 };
	struct node a;
	struct node *all[] = { &a };
	struct digest d0, d1, d2, d3;

	node_start(&a, 1, 1, 1, NULL);
	d0 = replica_digest(&a.r);
	ck_assert_str_eq(d0.hex, state_digest(a.r.state).hex);

	view_of(all, 1, members, 1);
	bus_run(all, 1); /* the epoch is raised */
	d1 = replica_digest(&a.r);
	ck_assert_str_ne(d1.hex, d0.hex);
	ck_assert_str_eq(d1.hex, state_digest(a.r.state).hex);

	request(all, 1, 1, 1, VMC_MSG_GROUP_ADD, ADD_WEB1);
	d2 = replica_digest(&a.r);
	ck_assert_str_ne(d2.hex, d1.hex);
	ck_assert_str_eq(d2.hex, state_digest(a.r.state).hex);

	request(all, 1, 1, 2, VMC_MSG_GROUP_REMOVE, "{\"name\":\"web9\"}"); /* refused */
	d3 = replica_digest(&a.r);
	ck_assert_str_eq(d3.hex, d2.hex);
	ck_assert_str_eq(d3.hex, state_digest(a.r.state).hex);
	node_stop(&a);
}
END_TEST

START_TEST(test_replica_digest_follows_a_snapshot_install)
{
	static const uint32_t members[] = { 1, 2 };
	static const char *const adds[] = { ADD_WEB1 };
	struct node a, b;
	struct node *all[] = { &a, &b };
	struct digest before;

	node_start(&a, 1, 1, 2, state_with(3, adds, 1));
	node_start(&b, 2, 1, 2, NULL);
	before = replica_digest(&b.r);
	view_of(all, 2, members, 2);
	bus_run(all, 2);
	ck_assert_uint_eq(b.r.snapshots_installed, 1);
	ck_assert_str_ne(replica_digest(&b.r).hex, before.hex);
	ck_assert_str_eq(replica_digest(&b.r).hex, state_digest(b.r.state).hex);
	ck_assert_str_eq(replica_digest(&b.r).hex, replica_digest(&a.r).hex);
	node_stop(&b);
	node_stop(&a);
}
END_TEST

START_TEST(test_hello_carries_the_replica_digest)
{
	static const uint32_t members[] = { 1, 2 };
	static const char *const adds[] = { ADD_WEB1 };
	struct node a;
	struct node *all[] = { &a };
	json_object *digest;

	node_start(&a, 1, 1, 2, state_with(2, adds, 1));
	view_of(all, 1, members, 2);
	ck_assert_uint_eq(bus_len, 1);
	ck_assert(json_object_object_get_ex(bus[0].body, "digest", &digest));
	ck_assert_str_eq(json_object_get_string(digest), vmc_replica_digest(&a.r));
	ck_assert_str_eq(json_object_get_string(digest), state_digest(a.r.state).hex);
	ck_assert_int_eq(body_int(bus[0].body, "epoch"), 2);
	ck_assert_int_eq(body_int(bus[0].body, "config_version"), 1);
	node_stop(&a);
}
END_TEST

/* ---- a silent member: the hello deadline, exclusion, restart ---- */

/* Deliver bus messages [from, to) to the given nodes. */
static void bus_deliver_range(struct node *const *nodes, size_t n, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		deliver(nodes, n, bus[i].sender, bus[i].type, 0, bus[i].body);
	}
}

static size_t bus_find(uint16_t type, size_t from)
{
	for (size_t i = from; i < bus_len; i++) {
		if (bus[i].type == type) {
			return i;
		}
	}
	ck_abort_msg("no %s on the bus after message %zu", vmc_msg_type_to_str(type), from);
	return 0;
}

/* Three nodes synced once (each heard the others speak protocol 2); the bus emptied. */
static void three_synced(struct node *a, struct node *b, struct node *c)
{
	static const uint32_t members[] = { 1, 2, 3 };
	struct node *abc[] = { a, b, c };

	node_start(a, 1, 1, 3, NULL);
	node_start(b, 2, 1, 3, NULL);
	node_start(c, 3, 1, 3, NULL);
	view_of(abc, 3, members, 3);
	bus_run(abc, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert(vmc_replica_writable(&abc[i]->r));
	}
	bus_reset();
}

/*
 * Nodes 1 and 2 answer, node 3 is in the view but its daemon is frozen
 * (the next view change reaches 1 and 2 only): the deadline on node 1
 * excludes node 3 on both alike, the sync ends without it (primary: its
 * vote still counts), and its requests are ignored.
 */
START_TEST(test_hello_deadline_excludes_the_silent_member)
{
	static const uint32_t members[] = { 1, 2, 3 };
	struct node a, b, c;
	struct node *ab[] = { &a, &b };
	size_t mark;

	three_synced(&a, &b, &c);
	view_of(ab, 2, members, 3);
	bus_run(ab, 2);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_HELLO);
	/* node 1's deadline asks for an exclusion, one message, vouching for node 3 */
	mark = bus_len;
	vmc_replica_hello_deadline(&a.r);
	ck_assert_uint_eq(bus_len, mark + 1);
	ck_assert_uint_eq(bus[mark].type, VMC_MSG_SYNC_EXCLUDE);
	vmc_replica_hello_deadline(&b.r); /* both may ask: the first delivered decides */
	bus_run(ab, 2);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_int_eq(ab[i]->r.phase, VMC_SYNC_DONE);
		ck_assert(ab[i]->r.primary);
		ck_assert_uint_eq(ab[i]->r.n_active, 2);
		ck_assert_uint_eq(ab[i]->r.n_excluded, 1);
		ck_assert_uint_eq(ab[i]->r.excluded[0], 3);
		ck_assert(!vmc_replica_is_active(&ab[i]->r, 3));
		ck_assert_uint_eq(ab[i]->r.view_votes, 3);
	}
	ck_assert_str_eq(replica_digest(&a.r).hex, replica_digest(&b.r).hex);
	/* node 3's requests are not the view's: nobody applies them */
	request(ab, 2, 3, 7, VMC_MSG_GROUP_ADD, ADD_WEB1);
	ck_assert_uint_eq(a.r.state->n_groups, 0);
	request(ab, 2, 1, 8, VMC_MSG_GROUP_ADD, ADD_WEB1);
	ck_assert_uint_eq(a.r.state->n_groups, 1);
	ck_assert_uint_eq(b.r.state->n_groups, 1);
	vmc_replica_hello_deadline(&a.r); /* synced: nothing to exclude */
	ck_assert_uint_eq(bus_count(VMC_MSG_SYNC_EXCLUDE, 1), 1);
	node_stop(&a);
	node_stop(&b);
	node_stop(&c);
}
END_TEST

/* A member never heard from (it may be an older daemon) is never excluded: the sync waits. */
START_TEST(test_a_member_never_heard_is_not_excluded)
{
	static const uint32_t members[] = { 1, 2, 3 };
	struct node a, b;
	struct node *ab[] = { &a, &b };

	node_start(&a, 1, 1, 3, NULL);
	node_start(&b, 2, 1, 3, NULL);
	view_of(ab, 2, members, 3);
	bus_run(ab, 2);
	vmc_replica_hello_deadline(&a.r);
	ck_assert_uint_eq(bus_count(VMC_MSG_SYNC_EXCLUDE, 1), 0);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_HELLO);
	node_stop(&a);
	node_stop(&b);
}
END_TEST

/*
 * The frozen node wakes up: it reads everything in order, finds itself
 * excluded, asks for a restart, and the sync of the same view runs again
 * with all three; they end equal.
 */
START_TEST(test_excluded_member_wakes_and_the_sync_restarts)
{
	static const uint32_t members[] = { 1, 2, 3 };
	struct node a, b, c;
	struct node *ab[] = { &a, &b };
	struct node *abc[] = { &a, &b, &c };
	struct node *only_c[] = { &c };
	size_t woke, restart;

	three_synced(&a, &b, &c);
	view_of(ab, 2, members, 3);
	bus_run(ab, 2);
	vmc_replica_hello_deadline(&a.r);
	bus_run(ab, 2);
	request(ab, 2, 1, 9, VMC_MSG_GROUP_ADD, ADD_WEB1);
	ck_assert(a.r.primary && b.r.primary);
	/* c wakes: its view change, then what the others saw, in order */
	woke = bus_len;
	view_of(only_c, 1, members, 3);
	bus_deliver_range(only_c, 1, 0, woke);
	request(only_c, 1, 1, 9, VMC_MSG_GROUP_ADD, ADD_WEB1);
	ck_assert(c.r.excluded_self);
	ck_assert(!vmc_replica_writable(&c.r));
	restart = bus_find(VMC_MSG_SYNC_RESTART, woke);
	ck_assert_uint_eq(bus[restart].sender, 3);
	/* its late hello reaches everyone and changes nothing; then the restart */
	bus_next = woke;
	bus_run(abc, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(abc[i]->r.phase, VMC_SYNC_DONE);
		ck_assert(abc[i]->r.primary);
		ck_assert_uint_eq(abc[i]->r.n_active, 3);
		ck_assert_uint_eq(abc[i]->r.sync_seq, 1);
		ck_assert(!abc[i]->r.excluded_self);
	}
	ck_assert_str_eq(replica_digest(&a.r).hex, replica_digest(&c.r).hex);
	ck_assert_ptr_nonnull(vmc_state_group_find(c.r.state, "web1"));
	node_stop(&a);
	node_stop(&b);
	node_stop(&c);
}
END_TEST

/*
 * The source says hello, then freezes before its snapshot: at the deadline
 * the others exclude it and take the next source; they end equal.
 */
START_TEST(test_silent_source_excluded_in_the_state_phase)
{
	static const uint32_t members[] = { 1, 2, 3 };
	struct node a, b, c;
	struct node *bc[] = { &b, &c };
	struct node *abc[] = { &a, &b, &c };

	three_synced(&a, &b, &c);
	/* node 1 moves ahead alone, so it becomes the source of the next sync */
	request((struct node *[]){ &a }, 1, 1, 3, VMC_MSG_GROUP_ADD, ADD_DB1);
	ck_assert_uint_eq(a.r.state->config_version, 1);
	view_of(abc, 3, members, 3);
	/* a's hello goes out, then a freezes: only b and c go on */
	bus_run(bc, 2);
	ck_assert_int_eq(b.r.phase, VMC_SYNC_STATE);
	ck_assert_uint_eq(b.r.source->node_id, 1);
	vmc_replica_hello_deadline(&b.r);
	bus_run(bc, 2);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_int_eq(bc[i]->r.phase, VMC_SYNC_DONE);
		ck_assert_uint_eq(bc[i]->r.n_excluded, 1);
		ck_assert_uint_eq(bc[i]->r.excluded[0], 1);
		ck_assert(bc[i]->r.primary);
	}
	ck_assert_str_eq(replica_digest(&b.r).hex, replica_digest(&c.r).hex);
	node_stop(&a);
	node_stop(&b);
	node_stop(&c);
}
END_TEST

/* An exclusion of an earlier sync of the view, or with an older member, changes nothing. */
START_TEST(test_exclusion_needs_the_current_sync_and_protocol_2)
{
	static const uint32_t members[] = { 1, 2 };
	struct hello_spec old = { 0, 0, 'a', false, 2, 1 };
	struct node a;
	json_object *body, *hello;

	node_start(&a, 1, 1, 2, NULL);
	vmc_replica_view(&a.r, members, 2);
	bus_run((struct node *[]){ &a }, 1);
	/* an exclusion from another sync of this view (sync_seq 5) */
	body = json_object_new_object();
	json_object_object_add(body, "members", json_tokener_parse("[1,2]"));
	json_object_object_add(body, "sync_seq", json_object_new_int64(5));
	deliver((struct node *[]){ &a }, 1, 2, VMC_MSG_SYNC_EXCLUDE, 0, body);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_HELLO);
	ck_assert_uint_eq(a.r.n_excluded, 0);
	json_object_put(body);
	node_stop(&a);

	node_start(&a, 1, 1, 3, NULL);
	vmc_replica_view(&a.r, (const uint32_t[]){ 1, 2, 3 }, 3);
	bus_run((struct node *[]){ &a }, 1);
	hello = hello_make(&old, (const uint32_t[]){ 1, 2, 3 }, 3);
	json_object_object_add(hello, "proto_max", json_object_new_int(1));
	deliver((struct node *[]){ &a }, 1, 2, VMC_MSG_HELLO, 0, hello);
	json_object_put(hello);
	vmc_replica_hello_deadline(&a.r); /* an old member answered: no exclusion asked */
	ck_assert_uint_eq(bus_count(VMC_MSG_SYNC_EXCLUDE, 1), 0);
	body = json_object_new_object();
	json_object_object_add(body, "members", json_tokener_parse("[1,2,3]"));
	json_object_object_add(body, "sync_seq", json_object_new_int64(0));
	deliver((struct node *[]){ &a }, 1, 2, VMC_MSG_SYNC_EXCLUDE, 0, body);
	json_object_put(body);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_HELLO);
	ck_assert_uint_eq(a.r.n_excluded, 0);
	node_stop(&a);
}
END_TEST

/* A tainted copy is never the source, whatever its config_version. */
START_TEST(test_tainted_hello_is_never_the_source)
{
	static const uint32_t members[] = { 1, 2 };
	struct hello_spec ahead = { 9, 50, 'f', true, 2, 1 };
	struct node a;
	json_object *hello;

	node_start(&a, 1, 1, 2, NULL);
	vmc_replica_view(&a.r, members, 2);
	hello = hello_make(&ahead, members, 2);
	json_object_object_add(hello, "tainted", json_object_new_boolean(true));
	deliver((struct node *[]){ &a }, 1, 2, VMC_MSG_HELLO, 0, hello);
	json_object_put(hello);
	bus_run((struct node *[]){ &a }, 1);
	ck_assert_ptr_nonnull(a.r.source);
	ck_assert_uint_eq(a.r.source->node_id, 1);
	node_stop(&a);
}
END_TEST

static TCase *tcase_make(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *replica_suite(void)
{
	Suite *s = suite_create("replica");
	TCase *tc;

	tc = tcase_make(s, "quorum");
	tcase_add_test(tc, test_single_replica_with_one_expected_vote_is_primary);
	tcase_add_test(tc, test_one_of_three_votes_refuses_with_no_quorum);
	tcase_add_test(tc, test_member_with_most_votes_is_primary_alone);
	tcase_add_loop_test(tc, test_two_members_quorum_counts_votes_not_members, 0,
			    (int)ARRAY_LEN(vote_cases));
	tcase_add_test(tc, test_highest_expected_votes_among_members_counts);

	tc = tcase_make(s, "held");
	tcase_add_test(tc, test_requests_before_the_hellos_are_held_then_applied_in_order);
	tcase_add_test(tc, test_view_change_drops_held_requests_with_retry);
	tcase_add_test(tc, test_requests_held_during_a_snapshot_apply_after_it);
	tcase_add_test(tc, test_request_from_a_non_member_is_ignored);

	tc = tcase_make(s, "sync");
	tcase_add_loop_test(tc, test_source_rule, 0, 2 * (int)ARRAY_LEN(source_cases));
	tcase_add_test(tc, test_hello_without_votes_from_an_older_node_completes_the_sync);
	tcase_add_test(tc, test_equal_digests_finish_without_a_snapshot);
	tcase_add_test(tc, test_stale_hellos_are_ignored);
	tcase_add_test(tc, test_snapshot_from_the_source_is_installed);
	tcase_add_test(tc, test_snapshot_larger_than_a_chunk_is_installed);
	tcase_add_test(tc, test_chunks_not_from_the_source_or_out_of_turn_are_ignored);
	tcase_add_test(tc, test_unusable_snapshot_warns_and_keeps_our_state);

	tc = tcase_make(s, "exclusion");
	tcase_add_test(tc, test_hello_deadline_excludes_the_silent_member);
	tcase_add_test(tc, test_a_member_never_heard_is_not_excluded);
	tcase_add_test(tc, test_silent_source_excluded_in_the_state_phase);
	tcase_add_test(tc, test_excluded_member_wakes_and_the_sync_restarts);
	tcase_add_test(tc, test_exclusion_needs_the_current_sync_and_protocol_2);
	tcase_add_test(tc, test_tainted_hello_is_never_the_source);

	tc = tcase_make(s, "journal");
	tcase_add_test(tc, test_journal_after_applies_replays_to_the_same_state);
	tcase_add_test(tc, test_journal_after_an_epoch_raise);
	tcase_add_test(tc, test_non_primary_view_journals_nothing);
	tcase_add_test(tc, test_journal_after_a_snapshot_install);

	tc = tcase_make(s, "digest");
	tcase_add_test(tc, test_replica_digest_follows_the_state);
	tcase_add_test(tc, test_replica_digest_follows_a_snapshot_install);
	tcase_add_test(tc, test_hello_carries_the_replica_digest);
	return s;
}

int main(void)
{
	return check_suite_run(replica_suite());
}
