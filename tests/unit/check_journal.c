/*
 * Unit tests for the journal of applied changes (lib/journal.c): the
 * lines the replica writes for changes and epoch raises, and their replay
 * on top of a snapshot when a daemon starts.
 *
 * The reference for every replay is the state the same requests produce
 * when applied directly (vmc_state_apply_request): replay must reach the
 * same digest, skip what the snapshot already holds, ignore a line torn
 * by a crash, and refuse — naming the line — anything it cannot trust.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "replica.h"
#include "state.h"
#include "vmc_errors.h"
#include "check_run.h"

#define TEST_TIMEOUT_S 30
#define ERR_LEN 512
#define JOURNAL_LEN_MAX 8192

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct digest {
	char hex[VMC_DIGEST_HEX_LEN + 1];
};

/* A journal being written: the text as persist.c appends it. */
struct journal {
	char text[JOURNAL_LEN_MAX];
	size_t len;
	size_t lines;
};

static struct digest state_digest(const struct vmc_state *s)
{
	struct digest d;

	vmc_state_digest(s, d.hex);
	return d;
}

static void assert_same_state(const struct vmc_state *a, const struct vmc_state *b)
{
	struct digest da = state_digest(a);
	struct digest db = state_digest(b);

	ck_assert_uint_eq(b->config_version, a->config_version);
	ck_assert_uint_eq(b->epoch, a->epoch);
	ck_assert_str_eq(db.hex, da.hex);
}

static void journal_append(struct journal *j, char *line)
{
	size_t n;

	ck_assert_ptr_nonnull(line);
	n = strlen(line);
	ck_assert_msg(n > 0 && line[n - 1] == '\n', "line without its newline: '%s'", line);
	ck_assert_msg(strchr(line, '\n') == line + n - 1, "more than one line: '%s'", line);
	ck_assert_uint_lt(j->len + n, sizeof(j->text));
	memcpy(j->text + j->len, line, n + 1);
	j->len += n;
	j->lines++;
	free(line);
}

/* Append a line given as text (which must end with its newline). */
static void journal_append_text(struct journal *j, const char *line)
{
	char *copy = strdup(line);

	ck_assert_ptr_nonnull(copy);
	journal_append(j, copy);
}

static struct vmc_msg msg_make(uint16_t type, const char *body)
{
	struct vmc_msg m = {
		.version = VMC_PROTO_VERSION_MAX,
		.type = type,
		.sender = 2,
		.request_id = 7,
		.body = json_tokener_parse(body),
	};

	ck_assert_msg(m.body != NULL, "test body is not JSON: %s", body);
	return m;
}

/*
 * Apply one request to s, which must succeed, and journal it as the
 * replica does: the line carries the config_version the change produced.
 */
static void apply_and_journal(struct vmc_state *s, struct journal *j, uint16_t type,
			      const char *body)
{
	struct vmc_msg m = msg_make(type, body);
	char detail[ERR_LEN];
	int rc = vmc_state_apply_request(s, &m, detail, sizeof(detail));

	ck_assert_msg(rc == 0, "%s: rc %d: %s", body, rc, detail);
	journal_append(j, vmc_journal_line_change(&m, s->config_version));
	vmc_msg_clear(&m);
}

static void raise_epoch_and_journal(struct vmc_state *s, struct journal *j, uint64_t epoch)
{
	s->epoch = epoch;
	journal_append(j, vmc_journal_line_epoch(epoch, s->config_version));
}

#define ADD_WEB1 \
	"{\"definition\":{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"}}}"
#define ADD_DB1                                                                           \
	"{\"definition\":{\"name\":\"db1\",\"memory_mib\":2048,"                              \
	"\"disks\":[{\"path\":\"/srv/csv1/db1.qcow2\",\"format\":\"qcow2\",\"local\":true}]}}"
#define SET_WEB1 "{\"name\":\"web1\",\"set\":[\"vcpus=2\",\"possible_owners=node1, node2\"]}"
#define REMOVE_DB1 "{\"name\":\"db1\"}"

/*
 * Five lines: add web1, add db1, epoch 2, set web1, remove db1. snap_at
 * (may be NULL) gets a copy of the state after the first two changes,
 * the snapshot a daemon could have written then.
 */
static struct vmc_state *history_make(struct journal *j, struct vmc_state **snap_at)
{
	struct vmc_state *s = vmc_state_new();

	ck_assert_ptr_nonnull(s);
	apply_and_journal(s, j, VMC_MSG_GROUP_ADD, ADD_WEB1);
	apply_and_journal(s, j, VMC_MSG_GROUP_ADD, ADD_DB1);
	if (snap_at != NULL) {
		*snap_at = vmc_state_copy(s);
		ck_assert_ptr_nonnull(*snap_at);
	}
	raise_epoch_and_journal(s, j, 2);
	apply_and_journal(s, j, VMC_MSG_GROUP_SET, SET_WEB1);
	apply_and_journal(s, j, VMC_MSG_GROUP_REMOVE, REMOVE_DB1);
	ck_assert_uint_eq(j->lines, 5);
	ck_assert_uint_eq(s->config_version, 4);
	return s;
}

static void replay_ok(struct vmc_state *s, const char *text, size_t want_applied)
{
	char err[ERR_LEN] = "";
	size_t applied = 999;
	int rc = vmc_journal_replay(s, text, &applied, err, sizeof(err));

	ck_assert_msg(rc == 0, "replay refused (rc %d): %s\n%s", rc, err, text);
	ck_assert_uint_eq(applied, want_applied);
}

/* A refused replay: -VMC_E_PROTOCOL and an error that names the line. */
static void replay_refused(struct vmc_state *s, const char *text, unsigned int lineno,
			   const char *want_text)
{
	char err[ERR_LEN] = "";
	char where[32];
	size_t applied = 0;
	int rc = vmc_journal_replay(s, text, &applied, err, sizeof(err));

	snprintf(where, sizeof(where), "journal line %u", lineno);
	ck_assert_msg(rc == -VMC_E_PROTOCOL, "replay returned %d (%s), expected a refusal\n%s", rc,
		      err, text);
	ck_assert_msg(strstr(err, where) != NULL, "error '%s' does not name %s", err, where);
	ck_assert_msg(strstr(err, want_text) != NULL, "error '%s' lacks \"%s\"", err, want_text);
	ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: '%s'", err);
}

/* ---- lines ---- */

START_TEST(test_change_line_carries_the_request)
{
	struct vmc_msg m = msg_make(VMC_MSG_GROUP_SET, SET_WEB1);
	char *line = vmc_journal_line_change(&m, 12345678901ull);
	size_t n = strlen(line);
	json_object *o, *x;

	ck_assert_uint_gt(n, 1);
	ck_assert_int_eq(line[n - 1], '\n');
	ck_assert_ptr_eq(strchr(line, '\n'), line + n - 1);
	o = json_tokener_parse(line);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "v", &x));
	ck_assert_uint_eq(json_object_get_uint64(x), 12345678901ull);
	ck_assert(json_object_object_get_ex(o, "type", &x));
	ck_assert_int_eq(json_object_get_int(x), VMC_MSG_GROUP_SET);
	ck_assert(json_object_object_get_ex(o, "sender", &x));
	ck_assert_int_eq(json_object_get_int64(x), 2);
	ck_assert(json_object_object_get_ex(o, "request_id", &x));
	ck_assert_int_eq(json_object_get_int64(x), 7);
	ck_assert(json_object_object_get_ex(o, "body", &x));
	ck_assert(json_object_equal(x, m.body));
	ck_assert(!json_object_object_get_ex(o, "epoch", &x));
	json_object_put(o);
	free(line);
	vmc_msg_clear(&m);
}
END_TEST

START_TEST(test_epoch_line_carries_epoch_and_version)
{
	char *line = vmc_journal_line_epoch(9, 41);
	json_object *o, *x;

	ck_assert_int_eq(line[strlen(line) - 1], '\n');
	o = json_tokener_parse(line);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_object_get_ex(o, "epoch", &x));
	ck_assert_uint_eq(json_object_get_uint64(x), 9);
	ck_assert(json_object_object_get_ex(o, "v", &x));
	ck_assert_uint_eq(json_object_get_uint64(x), 41);
	ck_assert(!json_object_object_get_ex(o, "body", &x));
	json_object_put(o);
	free(line);
}
END_TEST

/* ---- replay ---- */

START_TEST(test_replay_reaches_the_digest_of_applying_directly)
{
	struct journal j = { .len = 0 };
	struct vmc_state *direct = history_make(&j, NULL);
	struct vmc_state *replayed = vmc_state_new();

	replay_ok(replayed, j.text, 5);
	assert_same_state(direct, replayed);
	ck_assert_ptr_null(vmc_state_group_find(replayed, "db1"));
	ck_assert_uint_eq(vmc_state_group_find(replayed, "web1")->def->vcpus, 2);
	vmc_state_free(replayed);
	vmc_state_free(direct);
}
END_TEST

START_TEST(test_replay_of_nothing_changes_nothing)
{
	struct journal j = { .len = 0 };
	struct vmc_state *direct = history_make(&j, NULL);
	struct vmc_state *copy = vmc_state_copy(direct);

	replay_ok(copy, "", 0);
	assert_same_state(direct, copy);
	vmc_state_free(copy);
	vmc_state_free(direct);
}
END_TEST

START_TEST(test_replay_skips_what_the_snapshot_holds)
{
	struct journal j = { .len = 0 };
	struct vmc_state *snap = NULL;
	struct vmc_state *direct = history_make(&j, &snap);

	ck_assert_uint_eq(snap->config_version, 2);
	/* the two adds are in the snapshot: only epoch, set and remove are applied */
	replay_ok(snap, j.text, 3);
	assert_same_state(direct, snap);
	vmc_state_free(snap);
	vmc_state_free(direct);
}
END_TEST

START_TEST(test_replaying_twice_changes_nothing)
{
	struct journal j = { .len = 0 };
	struct vmc_state *direct = history_make(&j, NULL);
	struct vmc_state *replayed = vmc_state_new();

	replay_ok(replayed, j.text, 5);
	/* a crash between writing a snapshot and truncating the journal */
	replay_ok(replayed, j.text, 0);
	assert_same_state(direct, replayed);
	vmc_state_free(replayed);
	vmc_state_free(direct);
}
END_TEST

START_TEST(test_replay_ignores_a_torn_last_line)
{
	struct journal j = { .len = 0 };
	struct vmc_state *direct = history_make(&j, NULL);
	struct vmc_state *before_last = vmc_state_new();
	size_t last_start;

	/* the state the first four lines make */
	last_start = j.len - 1;
	while (j.text[last_start - 1] != '\n') {
		last_start--;
	}
	j.text[last_start] = '\0';
	replay_ok(before_last, j.text, 4);
	j.text[last_start] = '{';

	/* every cut of the last line short of its newline is a torn write */
	for (size_t cut = last_start; cut < j.len - 1; cut++) {
		struct vmc_state *s = vmc_state_new();
		char saved = j.text[cut];

		j.text[cut] = '\0';
		replay_ok(s, j.text, 4);
		assert_same_state(before_last, s);
		j.text[cut] = saved;
		vmc_state_free(s);
	}
	vmc_state_free(before_last);
	vmc_state_free(direct);
}
END_TEST

/* Lines that are not one JSON object, each placed as line 3. */
static const char *const not_json_lines[] = {
	"garbage\n",
	"\n",
	"[1,2]\n",
	"\"v\"\n",
	"{\"v\":3,\"epoch\":5\n",
	/* two lines run together: the second must not be silently lost */
	"{\"v\":3,\"epoch\":5}{\"v\":3,\"epoch\":6}\n",
	"{\"v\":3,\"epoch\":5} trailing\n",
};

START_TEST(test_replay_refuses_a_line_that_is_not_json)
{
	struct journal j = { .len = 0 };
	struct vmc_state *direct = vmc_state_new();
	struct vmc_state *s = vmc_state_new();

	apply_and_journal(direct, &j, VMC_MSG_GROUP_ADD, ADD_WEB1);
	apply_and_journal(direct, &j, VMC_MSG_GROUP_ADD, ADD_DB1);
	ck_assert_uint_lt(j.len + strlen(not_json_lines[_i]), sizeof(j.text));
	strcat(j.text, not_json_lines[_i]);
	replay_refused(s, j.text, 3, "");
	vmc_state_free(s);
	vmc_state_free(direct);
}
END_TEST

/* Lines that are JSON objects but not journal lines, placed as line 2. */
static const char *const malformed_lines[] = {
	"{\"epoch\":3}\n",
	"{\"v\":\"2\",\"type\":3,\"sender\":1,\"request_id\":1,\"body\":{}}\n",
	"{\"v\":2,\"sender\":1,\"request_id\":1,\"body\":{}}\n",
	"{\"v\":2,\"type\":4,\"sender\":1,\"request_id\":1}\n",
	"{\"v\":2,\"type\":4,\"sender\":1,\"request_id\":1,\"body\":\"db1\"}\n",
	/* a negative version would read as 0 and be skipped as already applied */
	"{\"v\":-2,\"type\":4,\"sender\":1,\"request_id\":1,\"body\":{\"name\":\"web1\"}}\n",
	/* an epoch must be a number like every other counter */
	"{\"v\":1,\"epoch\":\"9\"}\n",
	"{\"v\":1,\"epoch\":-1}\n",
	"{\"v\":1,\"epoch\":2.5}\n",
};

START_TEST(test_replay_refuses_a_malformed_line)
{
	struct journal j = { .len = 0 };
	struct vmc_state *direct = vmc_state_new();
	struct vmc_state *s = vmc_state_new();

	apply_and_journal(direct, &j, VMC_MSG_GROUP_ADD, ADD_WEB1);
	journal_append_text(&j, malformed_lines[_i]);
	replay_refused(s, j.text, 2, "");
	/* nothing after the refused line was applied; the first line was */
	ck_assert_uint_eq(s->epoch, 0);
	ck_assert_ptr_nonnull(vmc_state_group_find(s, "web1"));
	vmc_state_free(s);
	vmc_state_free(direct);
}
END_TEST

START_TEST(test_replay_refuses_a_change_that_no_longer_applies)
{
	struct journal j = { .len = 0 };
	struct vmc_state *direct = vmc_state_new();
	struct vmc_state *s = vmc_state_new();
	struct vmc_msg again = msg_make(VMC_MSG_GROUP_ADD, ADD_WEB1);

	apply_and_journal(direct, &j, VMC_MSG_GROUP_ADD, ADD_WEB1);
	/* a second add of web1 can never have been applied */
	journal_append(&j, vmc_journal_line_change(&again, 2));
	apply_and_journal(direct, &j, VMC_MSG_GROUP_ADD, ADD_DB1);
	replay_refused(s, j.text, 2, "web1");
	ck_assert_ptr_null(vmc_state_group_find(s, "db1"));
	vmc_msg_clear(&again);
	vmc_state_free(s);
	vmc_state_free(direct);
}
END_TEST

START_TEST(test_replay_refuses_a_version_mismatch)
{
	struct journal j = { .len = 0 };
	struct vmc_state *s = vmc_state_new();
	struct vmc_msg add = msg_make(VMC_MSG_GROUP_ADD, ADD_WEB1);
	struct vmc_msg add_db = msg_make(VMC_MSG_GROUP_ADD, ADD_DB1);

	/* line 2 says version 3: a change between was lost */
	journal_append(&j, vmc_journal_line_change(&add, 1));
	journal_append(&j, vmc_journal_line_change(&add_db, 3));
	replay_refused(s, j.text, 2, "config_version");
	vmc_msg_clear(&add_db);
	vmc_msg_clear(&add);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_replay_refuses_a_journal_ahead_of_the_snapshot)
{
	struct journal j = { .len = 0 };
	struct vmc_state *direct = history_make(&j, NULL);
	struct vmc_state *s = vmc_state_new();
	const char *second = j.text;

	/* the journal from line 2 on, replayed on an empty state: db1 gives version 1, not 2 */
	second = strchr(second, '\n') + 1;
	replay_refused(s, second, 1, "config_version");
	vmc_state_free(s);
	vmc_state_free(direct);
}
END_TEST

START_TEST(test_replay_epoch_raises_never_lowers)
{
	struct vmc_state *s = vmc_state_new();
	struct journal j = { .len = 0 };

	s->epoch = 5;
	journal_append(&j, vmc_journal_line_epoch(3, 0));
	replay_ok(s, j.text, 0);
	ck_assert_uint_eq(s->epoch, 5);

	journal_append(&j, vmc_journal_line_epoch(7, 0));
	journal_append(&j, vmc_journal_line_epoch(6, 0));
	replay_ok(s, j.text, 1);
	ck_assert_uint_eq(s->epoch, 7);
	ck_assert_uint_eq(s->config_version, 0);

	/* an epoch line behind the snapshot's version raises the epoch all the same */
	s->config_version = 10;
	journal_append(&j, vmc_journal_line_epoch(8, 4));
	replay_ok(s, j.text, 1);
	ck_assert_uint_eq(s->epoch, 8);
	ck_assert_uint_eq(s->config_version, 10);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_replay_counts_only_lines_applied)
{
	struct journal j = { .len = 0 };
	struct vmc_state *snap = NULL;
	struct vmc_state *direct = history_make(&j, &snap);

	snap->epoch = 2; /* the epoch line adds nothing either */
	replay_ok(snap, j.text, 2);
	assert_same_state(direct, snap);
	vmc_state_free(snap);
	vmc_state_free(direct);
}
END_TEST

static TCase *tcase_make(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc;

	tc = tcase_make(s, "lines");
	tcase_add_test(tc, test_change_line_carries_the_request);
	tcase_add_test(tc, test_epoch_line_carries_epoch_and_version);

	tc = tcase_make(s, "replay");
	tcase_add_test(tc, test_replay_reaches_the_digest_of_applying_directly);
	tcase_add_test(tc, test_replay_of_nothing_changes_nothing);
	tcase_add_test(tc, test_replay_skips_what_the_snapshot_holds);
	tcase_add_test(tc, test_replaying_twice_changes_nothing);
	tcase_add_test(tc, test_replay_ignores_a_torn_last_line);
	tcase_add_test(tc, test_replay_epoch_raises_never_lowers);
	tcase_add_test(tc, test_replay_counts_only_lines_applied);

	tc = tcase_make(s, "refusals");
	tcase_add_loop_test(tc, test_replay_refuses_a_line_that_is_not_json, 0,
			    (int)ARRAY_LEN(not_json_lines));
	tcase_add_loop_test(tc, test_replay_refuses_a_malformed_line, 0,
			    (int)ARRAY_LEN(malformed_lines));
	tcase_add_test(tc, test_replay_refuses_a_change_that_no_longer_applies);
	tcase_add_test(tc, test_replay_refuses_a_version_mismatch);
	tcase_add_test(tc, test_replay_refuses_a_journal_ahead_of_the_snapshot);
	return s;
}

int main(void)
{
	return check_suite_run(journal_suite());
}
