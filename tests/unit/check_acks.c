/*
 * Protocol 3 of the replica (lib/replica.h), one schedule per case:
 * corosync's votequorum deciding which view is primary, nodes without a
 * history, the promise that establishes an epoch, and the bookkeeping of
 * acknowledgements (an origin answers once every member confirmed; late,
 * duplicate and other-view confirmations count for nothing; after a view
 * change the next established sync tells). The test plays CPG and the
 * daemon: what replicas multicast goes on a bus in send order, and
 * "commit" is what the daemon does after persisting (persisted, confirm).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"
#include "vmc_errors.h"
#include "check_run.h"

#define BUS_LEN 512
#define ANSWERS_MAX 16
#define ADD(name) "{\"definition\":{\"name\":\"" name "\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"}}}"

struct answer {
	uint64_t request_id;
	int rc;
	char detail[256];
};

struct peer {
	uint32_t id;
	struct vmc_replica r;
	struct answer answers[ANSWERS_MAX];
	size_t n_answers;
};

static struct {
	uint32_t sender;
	uint16_t type;
	json_object *body;
} wire[BUS_LEN];
static size_t wire_len, wire_next;

static void wire_reset(void)
{
	for (size_t i = 0; i < wire_len; i++) {
		json_object_put(wire[i].body);
	}
	wire_len = wire_next = 0;
}

static void peer_send(void *ctx, uint16_t type, json_object *body)
{
	struct peer *p = ctx;

	ck_assert_uint_lt(wire_len, BUS_LEN);
	wire[wire_len].sender = p->id;
	wire[wire_len].type = type;
	wire[wire_len].body = json_object_get(body);
	wire_len++;
}

static void peer_outcome(void *ctx, uint32_t origin, uint64_t id, int rc, const char *detail)
{
}

static void peer_answer(void *ctx, uint64_t id, int rc, const char *detail)
{
	struct peer *p = ctx;

	for (size_t i = 0; i < p->n_answers; i++) {
		ck_assert_msg(p->answers[i].request_id != id, "node %u answered request %llu twice", p->id,
			      (unsigned long long)id);
	}
	ck_assert_uint_lt(p->n_answers, ANSWERS_MAX);
	p->answers[p->n_answers].request_id = id;
	p->answers[p->n_answers].rc = rc;
	snprintf(p->answers[p->n_answers].detail, sizeof(p->answers[0].detail), "%s", detail);
	p->n_answers++;
}

static const struct vmc_replica_ops peer_ops = { .send = peer_send, .outcome = peer_outcome,
						 .answer = peer_answer };

/* A node whose state has history epoch (0: none) and the groups it holds. */
static void peer_start(struct peer *p, uint32_t id, uint32_t nodelist_votes, uint64_t epoch)
{
	struct vmc_state *s = vmc_state_new();

	ck_assert_ptr_nonnull(s);
	s->epoch = epoch;
	memset(p, 0, sizeof(*p));
	p->id = id;
	vmc_replica_init(&p->r, id, 1, nodelist_votes, s, &peer_ops, p);
}

static struct vmc_quorum_info vq(bool quorate, uint64_t ring_seq, uint32_t quorum)
{
	return (struct vmc_quorum_info){ .known = true, .quorate = quorate, .ring_node = 1, .ring_seq = ring_seq,
					 .quorum = quorum };
}

/* votequorum speaks to every peer, then CPG announces the view. */
static void view(struct peer **ps, size_t n, const uint32_t *members, size_t n_members,
		 const struct vmc_quorum_info *q)
{
	for (size_t i = 0; i < n; i++) {
		vmc_replica_quorum(&ps[i]->r, q);
	}
	for (size_t i = 0; i < n; i++) {
		vmc_replica_view(&ps[i]->r, members, n_members);
	}
}

static void deliver_to(struct peer **ps, size_t n, uint32_t sender, uint16_t type, uint64_t id,
		       json_object *body)
{
	struct vmc_msg m = { .version = VMC_PROTO_VERSION_MAX, .type = type, .sender = sender,
			     .request_id = id, .body = body };

	for (size_t i = 0; i < n; i++) {
		vmc_replica_deliver(&ps[i]->r, &m);
	}
}

/* Deliver what is on the wire (and what that sends) to ps. */
static void run(struct peer **ps, size_t n)
{
	while (wire_next < wire_len) {
		size_t i = wire_next++;
		deliver_to(ps, n, wire[i].sender, wire[i].type, 0, wire[i].body);
	}
}

/* The daemon's step after persisting: forget the journal, confirm. */
static void commit(struct peer **ps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		vmc_replica_persisted(&ps[i]->r);
		vmc_replica_confirm(&ps[i]->r);
	}
}

/* Deliver and commit until nothing more is said. */
static void settle(struct peer **ps, size_t n)
{
	size_t before;

	do {
		before = wire_len;
		run(ps, n);
		commit(ps, n);
	} while (wire_len != before);
}

static void add(struct peer **ps, size_t n, uint32_t origin, uint64_t id, const char *body_text)
{
	json_object *body = json_tokener_parse(body_text);

	deliver_to(ps, n, origin, VMC_MSG_GROUP_ADD, id, body);
	json_object_put(body);
}

static const struct answer *answer_of(const struct peer *p, uint64_t id)
{
	for (size_t i = 0; i < p->n_answers; i++) {
		if (p->answers[i].request_id == id) {
			return &p->answers[i];
		}
	}
	return NULL;
}

/* The last message on the wire of this type from sender. */
static json_object *last_sent(uint16_t type, uint32_t sender)
{
	for (size_t i = wire_len; i-- > 0;) {
		if (wire[i].type == type && wire[i].sender == sender) {
			return wire[i].body;
		}
	}
	return NULL;
}

static void peers_stop(struct peer **ps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		vmc_replica_fini(&ps[i]->r);
	}
}

static void setup(void)
{
	wire_reset();
}

static const uint32_t abc_ids[] = { 1, 2, 3 };

/* Three nodes with history (epoch 4, the old format), synced and established. */
static void three_established(struct peer *a, struct peer *b, struct peer *c)
{
	struct peer *all[] = { a, b, c };
	struct vmc_quorum_info q = vq(true, 7, 2);

	peer_start(a, 1, 3, 4);
	peer_start(b, 2, 3, 4);
	peer_start(c, 3, 3, 4);
	view(all, 3, abc_ids, 3, &q);
	settle(all, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert(vmc_replica_writable(&all[i]->r));
	}
}

/* ---- votequorum decides ---- */

START_TEST(test_quorate_view_establishes_its_epoch_once_every_member_promised)
{
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c };
	struct vmc_quorum_info q = vq(true, 7, 2);

	peer_start(&a, 1, 3, 4);
	peer_start(&b, 2, 3, 4);
	peer_start(&c, 3, 3, 4);
	view(all, 3, abc_ids, 3, &q);
	run(all, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(all[i]->r.phase, VMC_SYNC_CONFIRM);
		ck_assert(!vmc_replica_writable(&all[i]->r));
		ck_assert_uint_eq(all[i]->r.state->promised, 5);
		ck_assert(vmc_replica_has_changes(&all[i]->r)); /* the promise goes to disk first */
	}
	/* nothing confirmed before it is persisted */
	vmc_replica_confirm(&a.r);
	ck_assert_ptr_null(last_sent(VMC_MSG_COMMIT_CONFIRM, 1));
	commit(all, 2);
	run(all, 3);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_CONFIRM); /* node 3 has not promised */
	commit(&all[2], 1);
	run(all, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(all[i]->r.phase, VMC_SYNC_DONE);
		ck_assert(vmc_replica_writable(&all[i]->r));
		/* counter 5, paired with the source (lowest id of equals) */
		ck_assert_uint_eq(all[i]->r.state->epoch, (5ULL << 32) | 1);
	}
	peers_stop(all, 3);
}
END_TEST

START_TEST(test_a_member_corosync_calls_not_quorate_keeps_the_view_from_primary)
{
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c };
	struct vmc_quorum_info q = vq(true, 7, 2), not_q = vq(false, 7, 2);

	peer_start(&a, 1, 3, 4);
	peer_start(&b, 2, 3, 4);
	peer_start(&c, 3, 3, 4);
	view(all, 2, abc_ids, 3, &q);
	view(&all[2], 1, abc_ids, 3, &not_q);
	settle(all, 3);
	ck_assert(!a.r.primary);
	ck_assert_ptr_nonnull(strstr(a.r.not_primary, "corosync"));
	add(all, 3, 1, 11, ADD("web1"));
	ck_assert_ptr_nonnull(answer_of(&a, 11));
	ck_assert_int_eq(answer_of(&a, 11)->rc, -VMC_E_NO_QUORUM);
	/* corosync changes its mind on node 3: it asks for the sync again, which is primary */
	vmc_replica_quorum(&c.r, &q);
	ck_assert_ptr_nonnull(last_sent(VMC_MSG_SYNC_RESTART, 3));
	settle(all, 3);
	ck_assert(vmc_replica_writable(&a.r) && vmc_replica_writable(&c.r));
	peers_stop(all, 3);
}
END_TEST

START_TEST(test_members_on_different_rings_are_not_primary)
{
	struct peer a, b;
	struct peer *all[] = { &a, &b };
	struct vmc_quorum_info q7 = vq(true, 7, 2), q8 = vq(true, 8, 2);

	peer_start(&a, 1, 3, 4);
	peer_start(&b, 2, 3, 4);
	view(all, 1, abc_ids, 2, &q7);
	view(&all[1], 1, abc_ids, 2, &q8);
	settle(all, 2);
	ck_assert(!a.r.primary && !b.r.primary);
	ck_assert_ptr_nonnull(strstr(a.r.not_primary, "ring"));
	vmc_replica_quorum(&a.r, &q8);
	settle(all, 2);
	ck_assert(vmc_replica_writable(&a.r) && vmc_replica_writable(&b.r));
	peers_stop(all, 2);
}
END_TEST

/* two_node: corosync calls one node of two quorate; the replica follows it. */
START_TEST(test_corosync_quorum_of_one_makes_a_lone_node_primary)
{
	static const uint32_t one[] = { 1 };
	struct peer a;
	struct peer *all[] = { &a };
	struct vmc_quorum_info q = vq(true, 9, 1);

	peer_start(&a, 1, 2, 4);
	view(all, 1, one, 1, &q);
	settle(all, 1);
	ck_assert(vmc_replica_writable(&a.r));
	peers_stop(all, 1);
}
END_TEST

/* A quorum device's votes count with the members' history. */
START_TEST(test_qdevice_votes_count_toward_the_quorum)
{
	static const uint32_t one[] = { 1 };
	struct peer a;
	struct peer *all[] = { &a };
	struct vmc_quorum_info q = vq(true, 9, 2);

	peer_start(&a, 1, 2, 4);
	q.qdevice_votes = 1;
	view(all, 1, one, 1, &q);
	settle(all, 1);
	ck_assert(vmc_replica_writable(&a.r));
	peers_stop(all, 1);
}
END_TEST

/* ---- history ---- */

START_TEST(test_a_new_cluster_starts_only_with_every_node)
{
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c };
	struct vmc_quorum_info q = vq(true, 7, 2);

	peer_start(&a, 1, 3, 0);
	peer_start(&b, 2, 3, 0);
	peer_start(&c, 3, 3, 0);
	view(all, 2, abc_ids, 2, &q);
	settle(all, 2);
	ck_assert(!a.r.primary);
	ck_assert_ptr_nonnull(strstr(a.r.not_primary, "every node"));
	view(all, 3, abc_ids, 3, &q);
	settle(all, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert(vmc_replica_writable(&all[i]->r));
		ck_assert_uint_eq(vmc_epoch_counter(all[i]->r.state->epoch), 1);
	}
	peers_stop(all, 3);
}
END_TEST

/*
 * Node 2 was wiped. With node 1 it installs node 1's state, but that copy
 * is no history of its own: 1 of the 2 votes needed. With node 3 as well
 * the view is primary, node 2 takes part in its sync, and from then on it
 * counts: {2, 3} is primary without node 1.
 */
START_TEST(test_a_wiped_member_counts_once_it_took_part_in_a_primary_sync)
{
	static const uint32_t bc_ids[] = { 2, 3 };
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c }, *bc[] = { &b, &c };
	struct vmc_quorum_info q = vq(true, 7, 2);

	peer_start(&a, 1, 3, 4);
	peer_start(&b, 2, 3, 0);
	peer_start(&c, 3, 3, 4);
	view(all, 2, abc_ids, 2, &q);
	settle(all, 2);
	ck_assert(!a.r.primary);
	ck_assert_ptr_nonnull(strstr(a.r.not_primary, "history"));
	ck_assert_uint_eq(b.r.snapshots_installed, 1);
	ck_assert_uint_eq(b.r.state->epoch, 4);
	view(all, 3, abc_ids, 3, &q);
	settle(all, 3);
	ck_assert(vmc_replica_writable(&b.r));
	ck_assert_uint_gt(b.r.state->promised, 0);
	view(bc, 2, bc_ids, 2, &q);
	settle(bc, 2);
	ck_assert(vmc_replica_writable(&b.r) && vmc_replica_writable(&c.r));
	peers_stop(all, 3);
}
END_TEST

/* A copy installed from a peer in a view that was not primary does not count as a history. */
START_TEST(test_a_copy_installed_outside_a_primary_sync_is_no_history)
{
	static const uint32_t ab_ids[] = { 1, 2 }, bc_ids[] = { 2, 3 };
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c }, *ab[] = { &a, &b }, *bc[] = { &b, &c };
	struct vmc_quorum_info q = vq(true, 7, 2);

	three_established(&a, &b, &c);
	/* node 2 is wiped; node 3 stays away while 1 and 2 meet (not primary) */
	vmc_replica_fini(&b.r);
	peer_start(&b, 2, 3, 0);
	view(ab, 2, ab_ids, 2, &q);
	settle(ab, 2);
	ck_assert(!a.r.primary);
	ck_assert_uint_eq(b.r.state->epoch, a.r.state->epoch);
	/* 2 and 3 alone: node 2's copy is node 1's, node 3 is one vote of two */
	view(bc, 2, bc_ids, 2, &q);
	settle(bc, 2);
	ck_assert(!b.r.primary && !c.r.primary);
	peers_stop(all, 3);
}
END_TEST

/* The next counter is above every epoch and every promise the hellos carry. */
START_TEST(test_a_promise_raises_the_next_counter)
{
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c };
	struct vmc_quorum_info q = vq(true, 7, 2);

	peer_start(&a, 1, 3, 4);
	peer_start(&b, 2, 3, 4);
	peer_start(&c, 3, 3, 4);
	b.r.state->promised = 9; /* promised in a sync that never finished */
	view(all, 3, abc_ids, 3, &q);
	settle(all, 3);
	ck_assert_uint_eq(a.r.state->epoch, (10ULL << 32) | 1);
	peers_stop(all, 3);
}
END_TEST

/* A member that never confirms the promise is excluded at the deadline; two of three go on. */
START_TEST(test_a_member_silent_in_the_confirm_phase_is_excluded)
{
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c }, *ab[] = { &a, &b };
	struct vmc_quorum_info q = vq(true, 7, 2);

	peer_start(&a, 1, 3, 4);
	peer_start(&b, 2, 3, 4);
	peer_start(&c, 3, 3, 4);
	view(all, 3, abc_ids, 3, &q);
	run(all, 3);
	/* node 3 freezes now: nothing more reaches it */
	settle(ab, 2);
	ck_assert_int_eq(a.r.phase, VMC_SYNC_CONFIRM);
	vmc_replica_hello_deadline(&a.r);
	ck_assert_ptr_nonnull(last_sent(VMC_MSG_SYNC_EXCLUDE, 1));
	settle(ab, 2);
	ck_assert(vmc_replica_writable(&a.r) && vmc_replica_writable(&b.r));
	ck_assert(!vmc_replica_is_active(&a.r, 3));
	peers_stop(all, 3);
}
END_TEST

/*
 * Node 2's daemon is frozen (excluded), node 3 gone: node 1 alone holds 1
 * of the 2 votes needed, but node 2's corosync is in the ring, so no other
 * partition can be quorate. The view may recover (reports apply, answered
 * "outcome unknown": not every node holds them) but takes no operator's
 * change and raises no epoch.
 */
START_TEST(test_a_view_quorate_only_with_a_silent_member_may_recover_only)
{
	static const uint32_t ab_ids[] = { 1, 2 };
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c }, *one[] = { &a };
	struct vmc_quorum_info q = vq(true, 8, 2);
	uint64_t epoch;
	json_object *facts;

	three_established(&a, &b, &c);
	epoch = a.r.state->epoch;
	view(one, 1, ab_ids, 2, &q);
	run(one, 1);
	vmc_replica_hello_deadline(&a.r);
	settle(one, 1);
	ck_assert(!a.r.primary && a.r.recovery_only);
	ck_assert(vmc_replica_writable(&a.r) && !vmc_replica_accepts_changes(&a.r));
	ck_assert_uint_eq(a.r.state->epoch, epoch);
	add(one, 1, 1, 81, ADD("web1"));
	ck_assert_int_eq(answer_of(&a, 81)->rc, -VMC_E_NO_QUORUM);
	ck_assert_ptr_nonnull(strstr(answer_of(&a, 81)->detail, "does not answer"));
	facts = json_tokener_parse("{\"name\":\"node1\",\"mem_mib\":2048}");
	deliver_to(one, 1, 1, VMC_MSG_NODE_FACTS, 82, facts);
	json_object_put(facts);
	ck_assert_int_eq(answer_of(&a, 82)->rc, -VMC_E_UNKNOWN);
	ck_assert_ptr_nonnull(vmc_state_node(a.r.state, 1));
	peers_stop(all, 3);
}
END_TEST

/*
 * The simulator's seed 77378: a silent member that left this node's view
 * since its last primary sync may have been in a primary view elsewhere,
 * so its votes do not make this node's (possibly stale) copy one that
 * recovers.
 */
START_TEST(test_a_silent_member_that_left_the_view_since_is_not_vouched_for)
{
	static const uint32_t a_ids[] = { 1 }, ab_ids[] = { 1, 2 };
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c }, *one[] = { &a };
	struct vmc_quorum_info alone = vq(false, 8, 2), q = vq(true, 9, 2);

	three_established(&a, &b, &c);
	ck_assert_uint_eq(a.r.n_steady, 3);
	view(one, 1, a_ids, 1, &alone);
	run(one, 1);
	ck_assert_uint_eq(a.r.n_steady, 1);
	view(one, 1, ab_ids, 2, &q);
	run(one, 1);
	vmc_replica_hello_deadline(&a.r);
	settle(one, 1);
	ck_assert(!a.r.primary);
	ck_assert_msg(!a.r.recovery_only, "a member that left the view was vouched for");
	ck_assert(!vmc_replica_writable(&a.r));
	peers_stop(all, 3);
}
END_TEST

/* ---- acknowledgements ---- */

START_TEST(test_the_origin_answers_once_every_member_confirmed)
{
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c };

	three_established(&a, &b, &c);
	add(all, 3, 1, 21, ADD("web1"));
	ck_assert_ptr_nonnull(vmc_state_group_find(c.r.state, "web1"));
	ck_assert_uint_eq(a.n_answers, 0);
	commit(all, 2);
	run(all, 3);
	ck_assert_uint_eq(a.n_answers, 0); /* node 3 has not confirmed */
	commit(&all[2], 1);
	run(all, 3);
	ck_assert_uint_eq(a.n_answers, 1);
	ck_assert_int_eq(a.answers[0].rc, 0);
	ck_assert_uint_eq(b.n_answers + c.n_answers, 0); /* only the origin answers */
	/* one confirmation per commit group, however many changes it holds */
	{
		size_t before = wire_len;
		add(all, 3, 2, 22, ADD("db1"));
		add(all, 3, 2, 23, ADD("app1"));
		commit(all, 3);
		ck_assert_uint_eq(wire_len - before, 3);
		run(all, 3);
		ck_assert_uint_eq(b.n_answers, 2);
	}
	peers_stop(all, 3);
}
END_TEST

/* A refusal is the same everywhere: it is told at once. */
START_TEST(test_a_refusal_is_answered_at_once)
{
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c };

	three_established(&a, &b, &c);
	add(all, 3, 1, 21, ADD("web1"));
	add(all, 3, 1, 22, ADD("web1"));
	ck_assert_uint_eq(a.n_answers, 1);
	ck_assert_int_eq(a.answers[0].request_id, 22);
	ck_assert_int_eq(a.answers[0].rc, -VMC_E_EXISTS);
	peers_stop(all, 3);
}
END_TEST

static json_object *confirm_body(const uint32_t *members, size_t n, uint32_t sync_seq, uint64_t epoch,
				 uint64_t v)
{
	json_object *body = json_object_new_object();
	json_object *list = json_object_new_array();

	for (size_t i = 0; i < n; i++) {
		json_object_array_add(list, json_object_new_int64(members[i]));
	}
	json_object_object_add(body, "members", list);
	json_object_object_add(body, "sync_seq", json_object_new_int64(sync_seq));
	json_object_object_add(body, "epoch", json_object_new_uint64(epoch));
	json_object_object_add(body, "v", json_object_new_uint64(v));
	return body;
}

static void confirm_from(struct peer **ps, size_t n, uint32_t sender, json_object *body)
{
	deliver_to(ps, n, sender, VMC_MSG_COMMIT_CONFIRM, 0, body);
	json_object_put(body);
}

START_TEST(test_duplicate_late_and_foreign_confirmations_count_for_nothing)
{
	static const uint32_t ab_ids[] = { 1, 2 };
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c };
	uint64_t epoch, v;

	three_established(&a, &b, &c);
	add(all, 3, 1, 31, ADD("web1"));
	epoch = a.r.state->epoch;
	v = a.r.state->config_version;
	commit(all, 2);
	run(all, 3);
	/* node 2's confirmation again: still not node 3's */
	confirm_from(all, 3, 2, confirm_body(abc_ids, 3, 0, epoch, v));
	ck_assert_uint_eq(a.n_answers, 0);
	/* node 3 confirming another epoch, another view, another sync of this view */
	confirm_from(all, 3, 3, confirm_body(abc_ids, 3, 0, epoch - 1, v));
	confirm_from(all, 3, 3, confirm_body(ab_ids, 2, 0, epoch, v));
	confirm_from(all, 3, 3, confirm_body(abc_ids, 3, 1, epoch, v));
	/* an older version than the change's */
	confirm_from(all, 3, 3, confirm_body(abc_ids, 3, 0, epoch, v - 1));
	/* a node outside the view */
	confirm_from(all, 3, 4, confirm_body(abc_ids, 3, 0, epoch, v));
	ck_assert_uint_eq(a.n_answers, 0);
	/* the real one */
	confirm_from(all, 3, 3, confirm_body(abc_ids, 3, 0, epoch, v));
	ck_assert_uint_eq(a.n_answers, 1);
	ck_assert_int_eq(a.answers[0].rc, 0);
	/* late ones after the answer change nothing, and answer nothing twice */
	confirm_from(all, 3, 3, confirm_body(abc_ids, 3, 0, epoch, v));
	ck_assert_uint_eq(a.n_answers, 1);
	peers_stop(all, 3);
}
END_TEST

/*
 * Node 3 leaves before confirming: node 1's change waits; the next primary
 * sync of {1, 2} holds it, and once both confirmed that sync's state, it is
 * acknowledged. A change of node 1 that the view change dropped before it
 * was applied anywhere is told "not applied".
 */
START_TEST(test_a_view_change_defers_the_answer_to_the_next_primary_sync)
{
	static const uint32_t ab_ids[] = { 1, 2 };
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c }, *ab[] = { &a, &b };
	struct vmc_quorum_info q = vq(true, 8, 2);

	three_established(&a, &b, &c);
	add(all, 3, 1, 41, ADD("web1"));
	commit(all, 2);
	run(all, 3);
	view(ab, 2, ab_ids, 2, &q);
	/* held in the new sync's hello phase, then dropped by another view change */
	add(ab, 2, 1, 42, ADD("db1"));
	view(ab, 2, ab_ids, 2, &q);
	ck_assert_uint_eq(a.n_answers, 0);
	run(ab, 2);
	ck_assert_uint_eq(a.n_answers, 0); /* not before the new epoch is established... */
	settle(ab, 2);
	ck_assert(vmc_replica_writable(&a.r));
	ck_assert_uint_eq(a.n_answers, 2); /* ...and confirmed */
	ck_assert_int_eq(answer_of(&a, 41)->rc, 0);
	ck_assert_int_eq(answer_of(&a, 42)->rc, -VMC_E_RETRY);
	ck_assert_ptr_nonnull(strstr(answer_of(&a, 42)->detail, "not applied"));
	ck_assert_ptr_null(vmc_state_group_find(a.r.state, "db1"));
	peers_stop(all, 3);
}
END_TEST

/* Cut off alone (corosync: not quorate), node 1 never answers "done". */
START_TEST(test_a_minority_never_answers_done)
{
	static const uint32_t a_id[] = { 1 };
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c }, *one[] = { &a };
	struct vmc_quorum_info alone = vq(false, 9, 2);

	three_established(&a, &b, &c);
	add(all, 3, 1, 51, ADD("web1"));
	commit(one, 1);
	run(all, 3);
	view(one, 1, a_id, 1, &alone);
	settle(one, 1);
	add(one, 1, 1, 52, ADD("db1"));
	settle(one, 1);
	ck_assert_ptr_null(answer_of(&a, 51));
	ck_assert_int_eq(answer_of(&a, 52)->rc, -VMC_E_NO_QUORUM);
	ck_assert_uint_eq(vmc_replica_oldest_pending(&a.r), 51);
	peers_stop(all, 3);
}
END_TEST

/* The old rule, kept behind a switch: the origin's own disk was enough. */
START_TEST(test_legacy_ack_answers_after_the_origins_own_persist)
{
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c };

	three_established(&a, &b, &c);
	a.r.legacy_ack = true;
	add(all, 3, 1, 61, ADD("web1"));
	commit(all, 1);
	ck_assert_uint_eq(a.n_answers, 1);
	ck_assert_int_eq(a.answers[0].rc, 0);
	peers_stop(all, 3);
}
END_TEST

/* A member stops confirming after the sync: the origin asks for the sync again. */
START_TEST(test_confirmations_overdue_restart_the_sync)
{
	struct peer a, b, c;
	struct peer *all[] = { &a, &b, &c };

	three_established(&a, &b, &c);
	vmc_replica_ack_deadline(&a.r); /* nothing waits: nothing asked */
	ck_assert_ptr_null(last_sent(VMC_MSG_SYNC_RESTART, 1));
	add(all, 3, 1, 71, ADD("web1"));
	commit(all, 2);
	run(all, 3);
	vmc_replica_ack_deadline(&a.r);
	ck_assert_ptr_nonnull(last_sent(VMC_MSG_SYNC_RESTART, 1));
	settle(all, 3);
	ck_assert_int_eq(answer_of(&a, 71)->rc, 0);
	peers_stop(all, 3);
}
END_TEST

static Suite *acks_suite(void)
{
	Suite *s = suite_create("acks");
	TCase *tc = tcase_create("votequorum");

	tcase_add_checked_fixture(tc, setup, wire_reset);
	tcase_add_test(tc, test_quorate_view_establishes_its_epoch_once_every_member_promised);
	tcase_add_test(tc, test_a_member_corosync_calls_not_quorate_keeps_the_view_from_primary);
	tcase_add_test(tc, test_members_on_different_rings_are_not_primary);
	tcase_add_test(tc, test_corosync_quorum_of_one_makes_a_lone_node_primary);
	tcase_add_test(tc, test_qdevice_votes_count_toward_the_quorum);
	suite_add_tcase(s, tc);

	tc = tcase_create("history");
	tcase_add_checked_fixture(tc, setup, wire_reset);
	tcase_add_test(tc, test_a_new_cluster_starts_only_with_every_node);
	tcase_add_test(tc, test_a_wiped_member_counts_once_it_took_part_in_a_primary_sync);
	tcase_add_test(tc, test_a_copy_installed_outside_a_primary_sync_is_no_history);
	tcase_add_test(tc, test_a_promise_raises_the_next_counter);
	tcase_add_test(tc, test_a_member_silent_in_the_confirm_phase_is_excluded);
	tcase_add_test(tc, test_a_view_quorate_only_with_a_silent_member_may_recover_only);
	tcase_add_test(tc, test_a_silent_member_that_left_the_view_since_is_not_vouched_for);
	suite_add_tcase(s, tc);

	tc = tcase_create("confirmations");
	tcase_add_checked_fixture(tc, setup, wire_reset);
	tcase_add_test(tc, test_the_origin_answers_once_every_member_confirmed);
	tcase_add_test(tc, test_a_refusal_is_answered_at_once);
	tcase_add_test(tc, test_duplicate_late_and_foreign_confirmations_count_for_nothing);
	tcase_add_test(tc, test_a_view_change_defers_the_answer_to_the_next_primary_sync);
	tcase_add_test(tc, test_a_minority_never_answers_done);
	tcase_add_test(tc, test_legacy_ack_answers_after_the_origins_own_persist);
	tcase_add_test(tc, test_confirmations_overdue_restart_the_sync);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_suite_run(acks_suite());
}
