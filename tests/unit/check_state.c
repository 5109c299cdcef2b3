/*
 * Unit tests for the replicated state container (lib/state.c) and for
 * change requests applied to it (lib/apply.c, vmc_state_apply_request):
 * ordering, add/remove/find, refusals that leave the state untouched,
 * the snapshot codec and the digest that sync compares.
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"
#include "node_admin.h"
#include "state.h"
#include "vmc_errors.h"
#include "check_run.h"

#define TEST_TIMEOUT_S 30
#define ERR_LEN 512
#define SHUFFLE_SEED 4242u
#define SHUFFLE_ROUNDS 50

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct digest {
	char hex[VMC_DIGEST_HEX_LEN + 1];
};

/* Stands for "not written" in *out after a refusal. */
static struct vmc_state untouched_marker;
#define UNTOUCHED (&untouched_marker)

static char *def_text(const char *name, unsigned int memory_mib)
{
	char *text = NULL;
	int n = asprintf(&text,
			 "{\"name\":\"%s\",\"memory_mib\":%u,"
			 "\"boot\":{\"kernel\":\"/var/lib/vmcluster/guest/vmlinuz\"}}",
			 name, memory_mib);

	ck_assert_int_gt(n, 0);
	return text;
}

static struct vmc_group_def *def_make(const char *name, unsigned int memory_mib)
{
	struct vmc_group_def *def = NULL;
	char err[ERR_LEN];
	char *text = def_text(name, memory_mib);
	int rc = vmc_group_def_from_string(text, &def, err, sizeof(err));

	ck_assert_msg(rc == 0, "%s: %s", text, err);
	free(text);
	return def;
}

static struct vmc_state *state_make(void)
{
	struct vmc_state *s = vmc_state_new();

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->n_groups, 0);
	ck_assert_uint_eq(s->config_version, 0);
	return s;
}

static void state_add(struct vmc_state *s, const char *name, unsigned int memory_mib)
{
	ck_assert_int_eq(vmc_state_group_add(s, def_make(name, memory_mib)), 0);
}

static struct digest state_digest(const struct vmc_state *s)
{
	struct digest d;

	memset(d.hex, 'x', sizeof(d.hex));
	vmc_state_digest(s, d.hex);
	return d;
}

static void assert_sorted(const struct vmc_state *s)
{
	for (size_t i = 1; i < s->n_groups; i++) {
		ck_assert_msg(strcmp(s->groups[i - 1].def->name, s->groups[i].def->name) < 0,
			      "groups[%zu] '%s' is not before groups[%zu] '%s'", i - 1,
			      s->groups[i - 1].def->name, i, s->groups[i].def->name);
	}
}

/* ---- requests ---- */

static struct vmc_msg msg_make(uint16_t type, const char *body)
{
	struct vmc_msg m = {
		.version = VMC_PROTO_VERSION_MAX,
		.type = type,
		.sender = 1,
		.request_id = 1,
		.body = json_tokener_parse(body),
	};

	ck_assert_msg(m.body != NULL, "test body is not JSON: %s", body);
	return m;
}

/* Apply one request; detail gets the reason of a refusal. */
static int request_apply(struct vmc_state *s, uint16_t type, const char *body, char *detail)
{
	struct vmc_msg m = msg_make(type, body);
	int rc;

	detail[0] = '\0';
	rc = vmc_state_apply_request(s, &m, detail, ERR_LEN);
	vmc_msg_clear(&m);
	return rc;
}

static int request_add(struct vmc_state *s, const char *name, unsigned int memory_mib,
		       char *detail)
{
	char *def = def_text(name, memory_mib);
	char *body = NULL;
	int rc;

	ck_assert_int_gt(asprintf(&body, "{\"definition\":%s}", def), 0);
	rc = request_apply(s, VMC_MSG_GROUP_ADD, body, detail);
	free(body);
	free(def);
	return rc;
}

static int request_remove(struct vmc_state *s, const char *name, char *detail)
{
	char *body = NULL;
	int rc;

	ck_assert_int_gt(asprintf(&body, "{\"name\":\"%s\"}", name), 0);
	rc = request_apply(s, VMC_MSG_GROUP_REMOVE, body, detail);
	free(body);
	return rc;
}

static void request_add_ok(struct vmc_state *s, const char *name, unsigned int memory_mib)
{
	char detail[ERR_LEN];
	int rc = request_add(s, name, memory_mib, detail);

	ck_assert_msg(rc == 0, "add %s: rc %d: %s", name, rc, detail);
}

/*
 * A refused request: the rc, a reason that contains want_text, and a
 * state that did not change at all (same digest, same config_version).
 */
static void assert_refused_unchanged2(struct vmc_state *s, uint16_t type, const char *body,
				      int want_rc, const char *want_text, const char *want_text2)
{
	struct digest before = state_digest(s);
	struct digest after;
	uint64_t version = s->config_version;
	size_t n_groups = s->n_groups;
	char detail[ERR_LEN];
	int rc = request_apply(s, type, body, detail);

	ck_assert_msg(rc == want_rc, "%s: rc %d, expected %d (%s)", body, rc, want_rc, detail);
	ck_assert_msg(detail[0] != '\0', "%s: refused without a reason", body);
	ck_assert_msg(strstr(detail, want_text) != NULL, "%s: reason '%s' lacks \"%s\"", body,
		      detail, want_text);
	ck_assert_msg(strstr(detail, want_text2) != NULL, "%s: reason '%s' lacks \"%s\"", body,
		      detail, want_text2);
	ck_assert_uint_eq(s->config_version, version);
	ck_assert_uint_eq(s->n_groups, n_groups);
	after = state_digest(s);
	ck_assert_str_eq(after.hex, before.hex);
}

static void assert_refused_unchanged(struct vmc_state *s, uint16_t type, const char *body,
				     int want_rc, const char *want_text)
{
	assert_refused_unchanged2(s, type, body, want_rc, want_text, "");
}

static void request_ok(struct vmc_state *s, uint16_t type, const char *body)
{
	char detail[ERR_LEN];
	int rc = request_apply(s, type, body, detail);

	ck_assert_msg(rc == 0, "%s: rc %d: %s", body, rc, detail);
}

/* ---- container ---- */

START_TEST(test_new_state_is_empty)
{
	struct vmc_state *s = state_make();

	ck_assert_ptr_null(vmc_state_group_find(s, "web1"));
	ck_assert_int_eq(vmc_state_group_remove(s, "web1"), -ENOENT);
	vmc_state_free(s);
}
END_TEST

static const char *const insertion_orders[][6] = {
	{ "a", "app1", "b", "db2", "web10", "web3" },
	{ "web3", "web10", "db2", "b", "app1", "a" },
	{ "db2", "a", "web3", "app1", "web10", "b" },
	{ "web10", "web3", "app1", "a", "db2", "b" },
};

START_TEST(test_groups_sorted_whatever_the_insertion_order)
{
	const char *const *names = insertion_orders[_i];
	static const char *const sorted[] = { "a", "app1", "b", "db2", "web10", "web3" };
	struct vmc_state *s = state_make();

	for (size_t i = 0; i < ARRAY_LEN(sorted); i++) {
		state_add(s, names[i], 256);
		assert_sorted(s);
	}
	ck_assert_uint_eq(s->n_groups, ARRAY_LEN(sorted));
	for (size_t i = 0; i < ARRAY_LEN(sorted); i++) {
		ck_assert_str_eq(s->groups[i].def->name, sorted[i]);
	}
	vmc_state_free(s);
}
END_TEST

START_TEST(test_groups_sorted_after_random_adds_and_removes)
{
	char names[100][16];
	size_t order[100];
	struct vmc_state *s = state_make();

	srand(SHUFFLE_SEED);
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		snprintf(names[i], sizeof(names[i]), "vm%zu", i);
		order[i] = i;
	}
	for (size_t i = ARRAY_LEN(order) - 1; i > 0; i--) {
		size_t j = (size_t)rand() % (i + 1);
		size_t t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	/* 100 groups: more than the first allocation holds */
	for (size_t i = 0; i < ARRAY_LEN(order); i++) {
		state_add(s, names[order[i]], 128);
	}
	ck_assert_uint_eq(s->n_groups, 100);
	assert_sorted(s);
	for (size_t i = 0; i < ARRAY_LEN(order); i += 3) {
		ck_assert_int_eq(vmc_state_group_remove(s, names[order[i]]), 0);
		ck_assert_ptr_null(vmc_state_group_find(s, names[order[i]]));
		assert_sorted(s);
	}
	ck_assert_uint_eq(s->n_groups, 100 - 34);
	for (size_t i = 0; i < ARRAY_LEN(order); i++) {
		struct vmc_group *g = vmc_state_group_find(s, names[order[i]]);

		if (i % 3 == 0) {
			ck_assert_ptr_null(g);
		} else {
			ck_assert_ptr_nonnull(g);
			ck_assert_str_eq(g->def->name, names[order[i]]);
		}
	}
	vmc_state_free(s);
}
END_TEST

START_TEST(test_find_matches_whole_names)
{
	struct vmc_state *s = state_make();
	struct vmc_group *g;

	state_add(s, "web", 256);
	state_add(s, "web1", 512);
	state_add(s, "web10", 1024);
	g = vmc_state_group_find(s, "web1");
	ck_assert_ptr_nonnull(g);
	ck_assert_str_eq(g->def->name, "web1");
	ck_assert_uint_eq(g->def->memory_mib, 512);
	ck_assert_uint_eq(g->owner, 0);
	ck_assert_int_eq(g->state, VMC_GROUP_OFFLINE);
	ck_assert(!g->want_started);
	ck_assert_ptr_null(vmc_state_group_find(s, "web2"));
	ck_assert_ptr_null(vmc_state_group_find(s, "we"));
	ck_assert_ptr_null(vmc_state_group_find(s, "web100"));
	ck_assert_ptr_null(vmc_state_group_find(s, "Web1"));
	ck_assert_ptr_null(vmc_state_group_find(s, ""));
	vmc_state_free(s);
}
END_TEST

START_TEST(test_add_duplicate_is_refused)
{
	struct vmc_state *s = state_make();
	struct vmc_group_def *dup = def_make("web1", 4096);
	struct digest before, after;

	state_add(s, "web1", 512);
	before = state_digest(s);
	ck_assert_int_eq(vmc_state_group_add(s, dup), -EEXIST);
	after = state_digest(s);
	ck_assert_str_eq(after.hex, before.hex);
	ck_assert_uint_eq(s->n_groups, 1);
	ck_assert_uint_eq(vmc_state_group_find(s, "web1")->def->memory_mib, 512);
	/* not taken on refusal: still ours to free */
	vmc_group_def_free(dup);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_remove_then_add_again)
{
	struct vmc_state *s = state_make();

	state_add(s, "a", 256);
	state_add(s, "b", 256);
	state_add(s, "c", 256);
	ck_assert_int_eq(vmc_state_group_remove(s, "b"), 0);
	ck_assert_int_eq(vmc_state_group_remove(s, "b"), -ENOENT);
	ck_assert_uint_eq(s->n_groups, 2);
	ck_assert_str_eq(s->groups[0].def->name, "a");
	ck_assert_str_eq(s->groups[1].def->name, "c");
	state_add(s, "b", 768);
	ck_assert_uint_eq(vmc_state_group_find(s, "b")->def->memory_mib, 768);
	ck_assert_int_eq(vmc_state_group_remove(s, "c"), 0);
	ck_assert_int_eq(vmc_state_group_remove(s, "a"), 0);
	ck_assert_int_eq(vmc_state_group_remove(s, "b"), 0);
	ck_assert_uint_eq(s->n_groups, 0);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_redefine_keeps_owner_and_state)
{
	struct vmc_state *s = state_make();
	struct vmc_group *g;

	state_add(s, "web1", 512);
	g = vmc_state_group_find(s, "web1");
	g->owner = 3;
	g->state = VMC_GROUP_ONLINE;
	g->want_started = true;
	ck_assert_int_eq(vmc_state_group_redefine(s, def_make("web1", 2048)), 0);
	g = vmc_state_group_find(s, "web1");
	ck_assert_uint_eq(g->def->memory_mib, 2048);
	ck_assert_uint_eq(g->owner, 3);
	ck_assert_int_eq(g->state, VMC_GROUP_ONLINE);
	ck_assert(g->want_started);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_group_state_words_round_trip)
{
	for (int st = VMC_GROUP_OFFLINE; st <= VMC_GROUP_FAILED; st++) {
		enum vmc_group_state back = (enum vmc_group_state)-1;
		const char *word = vmc_group_state_to_str((enum vmc_group_state)st);

		ck_assert_str_ne(word, "unknown");
		ck_assert_int_eq(vmc_group_state_from_str(word, &back), 0);
		ck_assert_int_eq(back, st);
	}
	ck_assert_int_eq(vmc_group_state_from_str("running", &(enum vmc_group_state){ 0 }), -EINVAL);
	ck_assert_int_eq(vmc_group_state_from_str("", &(enum vmc_group_state){ 0 }), -EINVAL);
}
END_TEST

/* ---- requests ---- */

START_TEST(test_request_add_applies_and_bumps_version)
{
	struct vmc_state *s = state_make();
	struct vmc_group *g;

	request_add_ok(s, "web1", 512);
	ck_assert_uint_eq(s->config_version, 1);
	request_add_ok(s, "db1", 1024);
	ck_assert_uint_eq(s->config_version, 2);
	ck_assert_uint_eq(s->n_groups, 2);
	g = vmc_state_group_find(s, "db1");
	ck_assert_ptr_nonnull(g);
	ck_assert_uint_eq(g->def->memory_mib, 1024);
	ck_assert_int_eq(g->state, VMC_GROUP_OFFLINE);
	assert_sorted(s);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_add_duplicate_refused_state_unchanged)
{
	struct vmc_state *s = state_make();

	request_add_ok(s, "web1", 512);
	assert_refused_unchanged(s, VMC_MSG_GROUP_ADD,
				 "{\"definition\":{\"name\":\"web1\",\"memory_mib\":4096,"
				 "\"boot\":{\"kernel\":\"/boot/other\"}}}",
				 -VMC_E_EXISTS, "web1");
	ck_assert_uint_eq(vmc_state_group_find(s, "web1")->def->memory_mib, 512);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_add_invalid_definition_refused)
{
	struct vmc_state *s = state_make();

	request_add_ok(s, "web1", 512);
	assert_refused_unchanged(s, VMC_MSG_GROUP_ADD,
				 "{\"definition\":{\"name\":\"web2\",\"memory_mib\":512,\"vcpus\":0,"
				 "\"boot\":{\"kernel\":\"/k\"}}}",
				 -VMC_E_INVALID, "field 'vcpus'");
	assert_refused_unchanged(s, VMC_MSG_GROUP_ADD, "{\"definition\":[]}", -VMC_E_INVALID,
				 "JSON object");
	assert_refused_unchanged(s, VMC_MSG_GROUP_ADD, "{\"name\":\"web2\"}", -VMC_E_PROTOCOL,
				 "definition");
	ck_assert_ptr_null(vmc_state_group_find(s, "web2"));
	vmc_state_free(s);
}
END_TEST

/* start_after may name groups not there yet, but never close a cycle, at add or at set. */
START_TEST(test_request_start_after_cycle_refused)
{
	struct vmc_state *s = state_make();

	request_ok(s, VMC_MSG_GROUP_ADD, "{\"definition\":{\"name\":\"db\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"},"
					 "\"start_after\":[\"storage\"]}}");
	request_ok(s, VMC_MSG_GROUP_ADD, "{\"definition\":{\"name\":\"storage\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"}}}");
	request_ok(s, VMC_MSG_GROUP_ADD, "{\"definition\":{\"name\":\"web\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"},"
					 "\"start_after\":[\"db\",\"cache\"]}}");
	assert_refused_unchanged(s, VMC_MSG_GROUP_SET, "{\"name\":\"storage\",\"set\":[\"start_after=web\"]}",
				 -VMC_E_INVALID, "a cycle: storage after web after db after storage");
	assert_refused_unchanged(s, VMC_MSG_GROUP_ADD,
				 "{\"definition\":{\"name\":\"self\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"},"
				 "\"start_after\":[\"self\"]}}", -VMC_E_INVALID, "cannot start after itself");
	request_ok(s, VMC_MSG_GROUP_SET, "{\"name\":\"storage\",\"set\":[\"start_after=\"]}");
	ck_assert_uint_eq(vmc_state_group_find(s, "web")->def->start_after.n, 2);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_remove_applies_and_bumps_version)
{
	struct vmc_state *s = state_make();
	char detail[ERR_LEN];

	request_add_ok(s, "web1", 512);
	request_add_ok(s, "web2", 512);
	ck_assert_int_eq(request_remove(s, "web1", detail), 0);
	ck_assert_uint_eq(s->config_version, 3);
	ck_assert_ptr_null(vmc_state_group_find(s, "web1"));
	ck_assert_ptr_nonnull(vmc_state_group_find(s, "web2"));
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_remove_unknown_is_not_found)
{
	struct vmc_state *s = state_make();

	request_add_ok(s, "web1", 512);
	assert_refused_unchanged(s, VMC_MSG_GROUP_REMOVE, "{\"name\":\"web9\"}", -VMC_E_NOT_FOUND,
				 "web9");
	assert_refused_unchanged(s, VMC_MSG_GROUP_REMOVE, "{}", -VMC_E_PROTOCOL, "name");
	assert_refused_unchanged(s, VMC_MSG_GROUP_REMOVE, "{\"name\":7}", -VMC_E_PROTOCOL, "name");
	vmc_state_free(s);
}
END_TEST

static const enum vmc_group_state busy_states[] = {
	VMC_GROUP_STARTING,
	VMC_GROUP_ONLINE,
	VMC_GROUP_STOPPING,
	VMC_GROUP_MIGRATING,
};

START_TEST(test_request_remove_running_group_is_busy)
{
	enum vmc_group_state st = busy_states[_i];
	struct vmc_state *s = state_make();
	struct vmc_group *g;

	request_add_ok(s, "web1", 512);
	g = vmc_state_group_find(s, "web1");
	g->state = st;
	g->owner = 2;
	assert_refused_unchanged(s, VMC_MSG_GROUP_REMOVE, "{\"name\":\"web1\"}", -VMC_E_BUSY,
				 vmc_group_state_to_str(st));
	ck_assert_ptr_nonnull(vmc_state_group_find(s, "web1"));
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_remove_failed_group_is_allowed)
{
	struct vmc_state *s = state_make();
	char detail[ERR_LEN];

	request_add_ok(s, "web1", 512);
	vmc_state_group_find(s, "web1")->state = VMC_GROUP_FAILED;
	ck_assert_int_eq(request_remove(s, "web1", detail), 0);
	ck_assert_uint_eq(s->n_groups, 0);
	ck_assert_uint_eq(s->config_version, 2);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_set_applies_and_bumps_version)
{
	struct vmc_state *s = state_make();
	struct vmc_group *g;
	char detail[ERR_LEN];
	int rc;

	request_add_ok(s, "web1", 512);
	g = vmc_state_group_find(s, "web1");
	g->owner = 2;
	g->state = VMC_GROUP_ONLINE;
	g->want_started = true;
	rc = request_apply(s, VMC_MSG_GROUP_SET,
			   "{\"name\":\"web1\",\"set\":[\"memory_mib=2048\",\"priority=high\"]}",
			   detail);
	ck_assert_msg(rc == 0, "set: rc %d: %s", rc, detail);
	ck_assert_uint_eq(s->config_version, 2);
	g = vmc_state_group_find(s, "web1");
	ck_assert_uint_eq(g->def->memory_mib, 2048);
	ck_assert_int_eq(g->def->priority, VMC_PRIORITY_HIGH);
	ck_assert_uint_eq(g->owner, 2);
	ck_assert_int_eq(g->state, VMC_GROUP_ONLINE);
	ck_assert(g->want_started);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_set_refusals_state_unchanged)
{
	struct vmc_state *s = state_make();

	request_add_ok(s, "web1", 512);
	assert_refused_unchanged(s, VMC_MSG_GROUP_SET, "{\"name\":\"web1\",\"set\":[\"vcpus=0\"]}",
				 -VMC_E_INVALID, "field 'vcpus'");
	assert_refused_unchanged(s, VMC_MSG_GROUP_SET,
				 "{\"name\":\"web1\",\"set\":[\"memory_mib=1024\",\"cpus=2\"]}",
				 -VMC_E_INVALID, "field 'cpus'");
	assert_refused_unchanged(s, VMC_MSG_GROUP_SET, "{\"name\":\"web1\",\"set\":[\"name=web2\"]}",
				 -VMC_E_INVALID, "field 'name': cannot be changed");
	assert_refused_unchanged(s, VMC_MSG_GROUP_SET, "{\"name\":\"web1\",\"set\":[]}",
				 -VMC_E_INVALID, "nothing to set");
	assert_refused_unchanged(s, VMC_MSG_GROUP_SET, "{\"name\":\"web9\",\"set\":[\"vcpus=2\"]}",
				 -VMC_E_NOT_FOUND, "web9");
	assert_refused_unchanged(s, VMC_MSG_GROUP_SET, "{\"name\":\"web1\"}", -VMC_E_PROTOCOL, "set");
	assert_refused_unchanged(s, VMC_MSG_GROUP_SET, "{\"name\":\"web1\",\"set\":\"vcpus=2\"}",
				 -VMC_E_PROTOCOL, "set");
	ck_assert_uint_eq(vmc_state_group_find(s, "web1")->def->memory_mib, 512);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_of_other_type_is_refused)
{
	struct vmc_state *s = state_make();

	request_add_ok(s, "web1", 512);
	assert_refused_unchanged(s, VMC_MSG_HELLO, "{\"node_id\":1}", -VMC_E_PROTOCOL,
				 "not a change request");
	assert_refused_unchanged(s, VMC_MSG_STATE_CHUNK, "{}", -VMC_E_PROTOCOL,
				 "not a change request");
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_remove_online_group_says_it_must_be_stopped)
{
	struct vmc_state *s = state_make();

	request_add_ok(s, "web1", 512);
	vmc_state_group_find(s, "web1")->state = VMC_GROUP_ONLINE;
	assert_refused_unchanged2(s, VMC_MSG_GROUP_REMOVE, "{\"name\":\"web1\"}", -VMC_E_BUSY,
				  "must be stopped", "web1");
	vmc_state_free(s);
}
END_TEST

/* GROUP_SET entries that are not strings (once a crash in assignment_apply). */
static const struct {
	const char *body;
	const char *reason;
} non_string_sets[] = {
	{ "{\"name\":\"web1\",\"set\":[null]}", "assignment 1" },
	{ "{\"name\":\"web1\",\"set\":[1]}", "assignment 1" },
	{ "{\"name\":\"web1\",\"set\":[true]}", "assignment 1" },
	{ "{\"name\":\"web1\",\"set\":[{\"vcpus\":2}]}", "assignment 1" },
	{ "{\"name\":\"web1\",\"set\":[[\"vcpus=2\"]]}", "assignment 1" },
	/* a good assignment first is not applied either */
	{ "{\"name\":\"web1\",\"set\":[\"vcpus=2\",null]}", "assignment 2" },
};

START_TEST(test_request_set_non_string_assignment_refused)
{
	struct vmc_state *s = state_make();

	request_add_ok(s, "web1", 512);
	assert_refused_unchanged2(s, VMC_MSG_GROUP_SET, non_string_sets[_i].body, -VMC_E_INVALID,
				  non_string_sets[_i].reason, "KEY=VALUE");
	ck_assert_uint_eq(vmc_state_group_find(s, "web1")->def->vcpus, 1);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_set_assignments_takes_strings_only)
{
	json_object *good = json_tokener_parse("[\"vcpus=2\",\"priority=high\"]");
	json_object *bad = json_tokener_parse("[\"vcpus=2\",3]");
	const char *out[2] = { NULL, NULL };
	const char *one[1] = { NULL };
	char detail[ERR_LEN] = "";
	size_t n = 99;

	ck_assert_int_eq(vmc_set_assignments(good, out, ARRAY_LEN(out), &n, detail, sizeof(detail)),
			 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(out[0], "vcpus=2");
	ck_assert_str_eq(out[1], "priority=high");

	ck_assert_int_eq(vmc_set_assignments(bad, out, ARRAY_LEN(out), &n, detail, sizeof(detail)),
			 -VMC_E_INVALID);
	ck_assert_msg(strstr(detail, "assignment 2") != NULL, "detail '%s'", detail);

	/* more than fit: refused before anything is written past the array */
	detail[0] = '\0';
	ck_assert_int_eq(vmc_set_assignments(good, one, ARRAY_LEN(one), &n, detail, sizeof(detail)),
			 -VMC_E_INVALID);
	ck_assert_msg(strstr(detail, "at most 1") != NULL, "detail '%s'", detail);
	ck_assert_ptr_null(one[0]);
	json_object_put(bad);
	json_object_put(good);
}
END_TEST

#define MAC_A "52:54:00:12:34:5e"
#define MAC_B "52:54:00:ab:cd:ef"

/* A GROUP_ADD body whose second NIC has this MAC (the first has none). */
static char *add_with_mac(const char *name, const char *mac)
{
	char *body = NULL;

	ck_assert_int_gt(asprintf(&body,
				  "{\"definition\":{\"name\":\"%s\",\"memory_mib\":512,"
				  "\"boot\":{\"kernel\":\"/k\"},"
				  "\"nics\":[{\"bridge\":\"br1\"},{\"bridge\":\"br0\",\"mac\":\"%s\"}]}}",
				  name, mac),
			 0);
	return body;
}

/* MAC_A as another definition may spell it: MAC addresses ignore case. */
static const char *const mac_a_spellings[] = { MAC_A, "52:54:00:12:34:5E" };

START_TEST(test_request_add_mac_of_another_vm_refused)
{
	struct vmc_state *s = state_make();
	char *first = add_with_mac("web1", MAC_A);
	char *second = add_with_mac("web2", mac_a_spellings[_i]);
	char *other = add_with_mac("web3", MAC_B);

	request_ok(s, VMC_MSG_GROUP_ADD, first);
	assert_refused_unchanged2(s, VMC_MSG_GROUP_ADD, second, -VMC_E_EXISTS,
				  "field 'nics[1].mac'", "vm 'web1'");
	ck_assert_ptr_null(vmc_state_group_find(s, "web2"));
	/* NICs without a MAC never clash */
	request_ok(s, VMC_MSG_GROUP_ADD, other);
	free(other);
	free(second);
	free(first);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_request_set_mac_of_another_vm_refused)
{
	struct vmc_state *s = state_make();
	char *first = add_with_mac("web1", MAC_A);

	request_ok(s, VMC_MSG_GROUP_ADD, first);
	request_add_ok(s, "web2", 512);
	assert_refused_unchanged2(s, VMC_MSG_GROUP_SET,
				  "{\"name\":\"web2\",\"set\":[\"nics=[{\\\"bridge\\\":\\\"br0\\\","
				  "\\\"mac\\\":\\\"52:54:00:12:34:5E\\\"}]\"]}",
				  -VMC_E_EXISTS, "field 'nics[0].mac'", "vm 'web1'");
	ck_assert_uint_eq(vmc_state_group_find(s, "web2")->def->n_nics, 0);
	/* a VM keeps its own MAC through a change of something else */
	request_ok(s, VMC_MSG_GROUP_SET, "{\"name\":\"web1\",\"set\":[\"vcpus=2\"]}");
	request_ok(s, VMC_MSG_GROUP_SET,
		   "{\"name\":\"web2\",\"set\":[\"nics=[{\\\"bridge\\\":\\\"br0\\\","
		   "\\\"mac\\\":\\\"" MAC_B "\\\"}]\"]}");
	ck_assert_str_eq(vmc_state_group_find(s, "web2")->def->nics[0].mac, MAC_B);
	free(first);
	vmc_state_free(s);
}
END_TEST

/* ---- snapshots ---- */

/* A state with a bit of everything in it. */
static struct vmc_state *state_make_busy(void)
{
	struct vmc_state *s = state_make();
	struct vmc_group *g;

	request_add_ok(s, "web1", 512);
	request_add_ok(s, "db1", 4096);
	request_add_ok(s, "cache", 256);
	g = vmc_state_group_find(s, "db1");
	g->owner = 2;
	g->state = VMC_GROUP_ONLINE;
	g->want_started = true;
	g = vmc_state_group_find(s, "cache");
	g->owner = UINT32_MAX;
	g->state = VMC_GROUP_MIGRATING;
	g->want_started = true;
	s->config_version = 42;
	return s;
}

static struct vmc_state *state_from_text(const char *text)
{
	struct vmc_state *s = NULL;
	char err[ERR_LEN] = "";
	int rc = vmc_state_from_string(text, &s, err, sizeof(err));

	ck_assert_msg(rc == 0, "snapshot refused (rc %d): %s\n%s", rc, err, text);
	ck_assert_ptr_nonnull(s);
	return s;
}

START_TEST(test_snapshot_round_trip_same_digest)
{
	struct vmc_state *s = state_make_busy();
	char *text = vmc_state_to_string(s);
	struct vmc_state *back = state_from_text(text);
	char *text2 = vmc_state_to_string(back);
	struct digest a = state_digest(s);
	struct digest b = state_digest(back);
	struct vmc_group *g;

	ck_assert_str_eq(b.hex, a.hex);
	ck_assert_str_eq(text2, text);
	ck_assert_uint_eq(back->config_version, 42);
	ck_assert_uint_eq(back->n_groups, 3);
	assert_sorted(back);
	g = vmc_state_group_find(back, "cache");
	ck_assert_uint_eq(g->owner, UINT32_MAX);
	ck_assert_int_eq(g->state, VMC_GROUP_MIGRATING);
	ck_assert(g->want_started);
	g = vmc_state_group_find(back, "web1");
	ck_assert_uint_eq(g->owner, 0);
	ck_assert(!g->want_started);
	free(text);
	free(text2);
	vmc_state_free(back);
	vmc_state_free(s);
}
END_TEST

/* What protocol 6 adds — a node's record, a group's home and drain tries — survives a snapshot. */
START_TEST(test_snapshot_round_trip_drain_and_homes)
{
	struct vmc_state *s = state_make_busy(), *back;
	struct vmc_node_admin *a = vmc_node_admin_edit(s, 3);
	struct vmc_group *g = vmc_state_group_find(s, "db1");
	char *text, *text2;

	ck_assert_ptr_nonnull(a);
	a->mode = VMC_NODE_QUARANTINED;
	a->until_s = 9000;
	a->lost = true;
	a->failures[0] = 100;
	a->failures[1] = 200;
	a->n_failures = 2;
	g->home = (struct vmc_home){ .kind = VMC_HOME_DRAIN, .node = 3, .since_s = 77, .failed = 1 };
	g->drain = (struct vmc_drain_tries){ .live_failed = 2, .quick_failed = 1 };
	text = vmc_state_to_string(s);
	back = state_from_text(text);
	text2 = vmc_state_to_string(back);
	ck_assert_str_eq(text2, text);
	ck_assert_int_eq(vmc_node_mode(back, 3), VMC_NODE_QUARANTINED);
	ck_assert(!vmc_node_takes_groups(back, 3));
	ck_assert(vmc_node_takes_groups(back, 2));
	ck_assert_uint_eq(vmc_node_admin(back, 3)->n_failures, 2);
	ck_assert_uint_eq(vmc_state_group_find(back, "db1")->home.since_s, 77);
	ck_assert_uint_eq(vmc_state_group_find(back, "db1")->drain.quick_failed, 1);
	free(text);
	free(text2);
	vmc_state_free(back);
	/* A record that says nothing goes, and a snapshot with a bad one is refused. */
	a->mode = VMC_NODE_ACTIVE;
	a->lost = false;
	a->n_failures = 0;
	vmc_node_admin_tidy(s);
	ck_assert_uint_eq(s->n_admin, 0);
	back = NULL;
	{
		char err[ERR_LEN];
		const char *bad = "{\"format\":1,\"epoch\":1,\"config_version\":1,\"groups\":[],"
				  "\"node_admin\":[{\"node\":2,\"mode\":\"sleepy\"}]}";
		ck_assert_int_ne(vmc_state_from_string(bad, &back, err, sizeof(err)), 0);
		ck_assert_ptr_nonnull(strstr(err, "node_admin[0]"));
	}
	vmc_state_free(s);
}
END_TEST

START_TEST(test_snapshot_round_trip_empty_state)
{
	struct vmc_state *s = state_make();
	char *text = vmc_state_to_string(s);
	struct vmc_state *back = state_from_text(text);
	struct digest a = state_digest(s);
	struct digest b = state_digest(back);

	ck_assert_str_eq(b.hex, a.hex);
	ck_assert_uint_eq(back->n_groups, 0);
	free(text);
	vmc_state_free(back);
	vmc_state_free(s);
}
END_TEST

/*
 * Corrupt snapshots, each made from a valid one with one thing broken, so
 * they stay right when the snapshot grows new fields.
 */
static json_object *snapshot_json(void)
{
	struct vmc_state *s = state_make_busy();
	json_object *j = vmc_state_to_json(s);

	vmc_state_free(s);
	return j;
}

static json_object *snapshot_group0(json_object *snap)
{
	json_object *groups;

	ck_assert(json_object_object_get_ex(snap, "groups", &groups));
	return json_object_array_get_idx(groups, 0);
}

static void corrupt_format_2(json_object *snap)
{
	json_object_object_add(snap, "format", json_object_new_int(VMC_SNAPSHOT_FORMAT + 1));
}

static void corrupt_format_0(json_object *snap)
{
	json_object_object_add(snap, "format", json_object_new_int(0));
}

static void corrupt_format_missing(json_object *snap)
{
	json_object_object_del(snap, "format");
}

static void corrupt_groups_missing(json_object *snap)
{
	json_object_object_del(snap, "groups");
}

static void corrupt_groups_not_array(json_object *snap)
{
	json_object_object_add(snap, "groups", json_object_new_object());
}

static void corrupt_config_version_string(json_object *snap)
{
	json_object_object_add(snap, "config_version", json_object_new_string("42"));
}

static void corrupt_format_string(json_object *snap)
{
	json_object_object_add(snap, "format", json_object_new_string("1"));
}

static void corrupt_format_fraction(json_object *snap)
{
	json_object_object_add(snap, "format", json_object_new_double(1.5));
}

static void corrupt_config_version_negative(json_object *snap)
{
	json_object_object_add(snap, "config_version", json_object_new_int(-5));
}

static void corrupt_epoch_negative(json_object *snap)
{
	json_object_object_add(snap, "epoch", json_object_new_int(-1));
}

static void corrupt_epoch_string(json_object *snap)
{
	json_object_object_add(snap, "epoch", json_object_new_string("3"));
}

static void corrupt_epoch_missing(json_object *snap)
{
	json_object_object_del(snap, "epoch");
}

static void corrupt_group_without_definition(json_object *snap)
{
	json_object_object_del(snapshot_group0(snap), "definition");
}

static void corrupt_group_without_owner(json_object *snap)
{
	json_object_object_del(snapshot_group0(snap), "owner");
}

static void corrupt_group_without_state(json_object *snap)
{
	json_object_object_del(snapshot_group0(snap), "state");
}

static void corrupt_group_without_want_started(json_object *snap)
{
	json_object_object_del(snapshot_group0(snap), "want_started");
}

static void corrupt_group_not_object(json_object *snap)
{
	json_object *groups;

	json_object_object_get_ex(snap, "groups", &groups);
	json_object_array_put_idx(groups, 0, json_object_new_string("web1"));
}

static void corrupt_group_duplicate(json_object *snap)
{
	json_object *groups;
	json_object *copy = NULL;

	json_object_object_get_ex(snap, "groups", &groups);
	ck_assert_int_eq(json_object_deep_copy(snapshot_group0(snap), &copy, NULL), 0);
	json_object_array_add(groups, copy);
}

static void corrupt_group_state_unknown(json_object *snap)
{
	json_object_object_add(snapshot_group0(snap), "state", json_object_new_string("running"));
}

static void corrupt_group_owner_negative(json_object *snap)
{
	json_object_object_add(snapshot_group0(snap), "owner", json_object_new_int(-1));
}

static void corrupt_group_owner_too_big(json_object *snap)
{
	json_object_object_add(snapshot_group0(snap), "owner", json_object_new_int64(1ll << 32));
}

static void corrupt_group_definition_invalid(json_object *snap)
{
	json_object *def;

	ck_assert(json_object_object_get_ex(snapshot_group0(snap), "definition", &def));
	json_object_object_add(def, "vcpus", json_object_new_int(0));
}

struct snapshot_corruption {
	const char *what;
	void (*corrupt)(json_object *snap);
	const char *error_text; /* the error must contain it */
};

static const struct snapshot_corruption corruptions[] = {
	{ "format 2", corrupt_format_2, "format" },
	{ "format 0", corrupt_format_0, "format" },
	{ "no format", corrupt_format_missing, "format" },
	{ "no groups", corrupt_groups_missing, "groups" },
	{ "groups not an array", corrupt_groups_not_array, "groups" },
	{ "config_version a string", corrupt_config_version_string, "config_version" },
	{ "format a string", corrupt_format_string, "format" },
	{ "format with a fraction", corrupt_format_fraction, "format" },
	{ "negative config_version", corrupt_config_version_negative, "config_version" },
	{ "negative epoch", corrupt_epoch_negative, "epoch" },
	{ "epoch a string", corrupt_epoch_string, "epoch" },
	{ "no epoch", corrupt_epoch_missing, "epoch" },
	{ "group without definition", corrupt_group_without_definition, "groups[0]" },
	{ "group without owner", corrupt_group_without_owner, "groups[0]" },
	{ "group without state", corrupt_group_without_state, "groups[0]" },
	{ "group without want_started", corrupt_group_without_want_started, "groups[0]" },
	{ "group not an object", corrupt_group_not_object, "groups[0]" },
	{ "duplicate group", corrupt_group_duplicate, "twice" },
	{ "unknown state word", corrupt_group_state_unknown, "running" },
	{ "negative owner", corrupt_group_owner_negative, "owner" },
	{ "owner above 32 bits", corrupt_group_owner_too_big, "owner" },
	{ "invalid definition", corrupt_group_definition_invalid, "field 'vcpus'" },
};

static void assert_snapshot_refused(const char *text, const char *error_text, const char *what)
{
	struct vmc_state *s = UNTOUCHED;
	char err[ERR_LEN] = "";
	int rc = vmc_state_from_string(text, &s, err, sizeof(err));

	ck_assert_msg(rc < 0, "%s: snapshot accepted\n%s", what, text);
	ck_assert_msg(s == UNTOUCHED, "%s: *out written on refusal", what);
	ck_assert_msg(strstr(err, error_text) != NULL, "%s: error '%s' lacks \"%s\"", what, err,
		      error_text);
}

START_TEST(test_snapshot_corrupt_is_refused)
{
	const struct snapshot_corruption *c = &corruptions[_i];
	json_object *snap = snapshot_json();

	c->corrupt(snap);
	assert_snapshot_refused(json_object_to_json_string_ext(snap, JSON_C_TO_STRING_PLAIN),
				c->error_text, c->what);
	json_object_put(snap);
}
END_TEST

START_TEST(test_snapshot_not_json_is_refused)
{
	struct vmc_state *s = state_make_busy();
	char *text = vmc_state_to_string(s);

	assert_snapshot_refused("", "JSON", "empty text");
	assert_snapshot_refused("format=1", "JSON", "not JSON");
	assert_snapshot_refused("[]", "format", "an array");
	assert_snapshot_refused("null", "snapshot", "null");
	/* every proper prefix of a valid snapshot is cut short */
	for (size_t len = strlen(text) - 1; len > 0; len--) {
		text[len] = '\0';
		assert_snapshot_refused(text, "snapshot", "truncated snapshot");
	}
	free(text);
	vmc_state_free(s);
}
END_TEST

static const char *const after_snapshot[] = {
	" trailing",
	"x",
	"}",
	"{}",
	" {\"format\":1}",
	"\n[]",
};

START_TEST(test_snapshot_with_text_after_it_is_refused)
{
	struct vmc_state *s = state_make_busy();
	char *text = vmc_state_to_string(s);
	char *longer = NULL;

	ck_assert_int_gt(asprintf(&longer, "%s%s", text, after_snapshot[_i]), 0);
	assert_snapshot_refused(longer, "snapshot", after_snapshot[_i]);
	free(longer);
	free(text);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_snapshot_with_white_space_after_it_is_read)
{
	struct vmc_state *s = state_make_busy();
	char *text = vmc_state_to_string(s);
	char *longer = NULL;
	struct vmc_state *back;
	struct digest a = state_digest(s);
	struct digest b;

	ck_assert_int_gt(asprintf(&longer, "%s \n\t\n", text), 0);
	back = state_from_text(longer);
	b = state_digest(back);
	ck_assert_str_eq(b.hex, a.hex);
	vmc_state_free(back);
	free(longer);
	free(text);
	vmc_state_free(s);
}
END_TEST

/* A snapshot file holding only "null": the reason must say so. */
static const char *const null_snapshots[] = { "null", "null\n", " null " };

START_TEST(test_snapshot_null_is_refused_saying_null)
{
	struct vmc_state *s = UNTOUCHED;
	char err[ERR_LEN] = "";
	int rc = vmc_state_from_string(null_snapshots[_i], &s, err, sizeof(err));

	ck_assert_int_lt(rc, 0);
	ck_assert(s == UNTOUCHED);
	ck_assert_msg(strstr(err, "null") != NULL, "'%s': reason '%s' does not say null",
		      null_snapshots[_i], err);
	ck_assert_msg(strstr(err, "success") == NULL, "'%s': reason '%s'", null_snapshots[_i], err);
}
END_TEST

/* ---- digest ---- */

START_TEST(test_digest_is_64_lowercase_hex)
{
	struct vmc_state *empty = state_make();
	struct vmc_state *busy = state_make_busy();
	struct digest d[2] = { state_digest(empty), state_digest(busy) };

	for (size_t k = 0; k < ARRAY_LEN(d); k++) {
		ck_assert_uint_eq(strlen(d[k].hex), VMC_DIGEST_HEX_LEN);
		for (size_t i = 0; i < VMC_DIGEST_HEX_LEN; i++) {
			char c = d[k].hex[i];

			ck_assert_msg(isdigit((unsigned char)c) || (c >= 'a' && c <= 'f'),
				      "digest %s: '%c' at %zu", d[k].hex, c, i);
		}
	}
	ck_assert_str_ne(d[0].hex, d[1].hex);
	vmc_state_free(busy);
	vmc_state_free(empty);
}
END_TEST

START_TEST(test_digest_is_stable)
{
	struct vmc_state *s = state_make_busy();
	struct digest a = state_digest(s);
	struct digest b = state_digest(s);
	struct vmc_state *e1 = state_make();
	struct vmc_state *e2 = state_make();
	struct digest c = state_digest(e1);
	struct digest d = state_digest(e2);

	ck_assert_str_eq(a.hex, b.hex);
	ck_assert_str_eq(c.hex, d.hex);
	vmc_state_free(e2);
	vmc_state_free(e1);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_digest_equal_for_different_insertion_orders)
{
	static const char *const names[] = { "web1", "db1", "cache", "app-2", "app-10" };
	struct vmc_state *fwd = state_make();
	struct vmc_state *rev = state_make();
	struct digest a, b;

	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		request_add_ok(fwd, names[i], 256 + 64 * (unsigned int)i);
	}
	for (size_t i = ARRAY_LEN(names); i-- > 0;) {
		request_add_ok(rev, names[i], 256 + 64 * (unsigned int)i);
	}
	a = state_digest(fwd);
	b = state_digest(rev);
	ck_assert_str_eq(a.hex, b.hex);
	vmc_state_free(rev);
	vmc_state_free(fwd);
}
END_TEST

/* One difference between two otherwise equal states. */
static void differ_config_version(struct vmc_state *s)
{
	s->config_version++;
}

static void differ_memory_mib(struct vmc_state *s)
{
	vmc_state_group_find(s, "db1")->def->memory_mib = 4097;
}

static void differ_owner(struct vmc_state *s)
{
	vmc_state_group_find(s, "web1")->owner = 1;
}

static void differ_state(struct vmc_state *s)
{
	vmc_state_group_find(s, "web1")->state = VMC_GROUP_FAILED;
}

static void differ_want_started(struct vmc_state *s)
{
	vmc_state_group_find(s, "web1")->want_started = true;
}

static void differ_one_group_fewer(struct vmc_state *s)
{
	ck_assert_int_eq(vmc_state_group_remove(s, "cache"), 0);
}

static void differ_priority(struct vmc_state *s)
{
	vmc_state_group_find(s, "db1")->def->priority = VMC_PRIORITY_LOW;
}

static void (*const differences[])(struct vmc_state *s) = {
	differ_config_version, differ_memory_mib, differ_owner, differ_state,
	differ_want_started, differ_one_group_fewer, differ_priority,
};

START_TEST(test_digest_differs_when_anything_differs)
{
	struct vmc_state *a = state_make_busy();
	struct vmc_state *b = state_make_busy();
	struct digest da = state_digest(a);
	struct digest db = state_digest(b);

	ck_assert_str_eq(da.hex, db.hex);
	differences[_i](b);
	db = state_digest(b);
	ck_assert_str_ne(da.hex, db.hex);
	vmc_state_free(b);
	vmc_state_free(a);
}
END_TEST

/* ---- copy ---- */

START_TEST(test_copy_is_equal_and_independent)
{
	struct vmc_state *s = state_make_busy();
	struct vmc_state *copy = vmc_state_copy(s);
	struct digest a = state_digest(s);
	struct digest b;

	ck_assert_ptr_nonnull(copy);
	ck_assert_ptr_ne(copy, s);
	b = state_digest(copy);
	ck_assert_str_eq(b.hex, a.hex);
	ck_assert_uint_eq(copy->config_version, s->config_version);
	ck_assert_uint_eq(copy->n_groups, s->n_groups);
	ck_assert_ptr_ne(copy->groups[0].def, s->groups[0].def);

	request_add_ok(copy, "zz-new", 256);
	vmc_state_group_find(copy, "db1")->owner = 9;
	b = state_digest(s);
	ck_assert_str_eq(b.hex, a.hex);
	ck_assert_ptr_null(vmc_state_group_find(s, "zz-new"));
	vmc_state_free(copy);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_copy_of_empty_state)
{
	struct vmc_state *s = state_make();
	struct vmc_state *copy = vmc_state_copy(s);
	struct digest a = state_digest(s);
	struct digest b;

	ck_assert_ptr_nonnull(copy);
	b = state_digest(copy);
	ck_assert_str_eq(b.hex, a.hex);
	ck_assert_uint_eq(copy->n_groups, 0);
	vmc_state_free(copy);
	vmc_state_free(s);
}
END_TEST

static TCase *tcase_make(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	suite_add_tcase(s, tc);
	return tc;
}

/* Start attempts and fencing records travel in the snapshot; a state without them keeps its digest. */
START_TEST(test_snapshot_keeps_attempts_and_fencing_records)
{
	static const char *const text =
		"{\"format\":1,\"epoch\":3,\"config_version\":9,\"nodes\":[],"
		"\"fencing\":[{\"node\":3,\"attempts\":2,\"last_fencer\":1,\"last_error\":\"agent: exit 1\"}],"
		"\"groups\":[{\"definition\":{\"name\":\"web1\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"}},"
		"\"owner\":3,\"state\":\"online\",\"want_started\":true,\"attempt\":4,\"reason\":\"\",\"failures\":[]}]}";
	struct vmc_state *s = NULL, *back = NULL, *plain;
	char err[256], *again;
	char d1[VMC_DIGEST_HEX_LEN + 1], d2[VMC_DIGEST_HEX_LEN + 1];
	const struct vmc_fence_record *f;

	ck_assert_int_eq(vmc_state_from_string(text, &s, err, sizeof(err)), 0);
	ck_assert_uint_eq(vmc_state_group_find(s, "web1")->attempt, 4);
	f = vmc_state_fencing(s, 3);
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(f->attempts, 2);
	ck_assert_uint_eq(f->last_fencer, 1);
	ck_assert_str_eq(f->last_error, "agent: exit 1");
	again = vmc_state_to_string(s);
	ck_assert_int_eq(vmc_state_from_string(again, &back, err, sizeof(err)), 0);
	vmc_state_digest(s, d1);
	vmc_state_digest(back, d2);
	ck_assert_str_eq(d1, d2);
	vmc_state_fencing_clear(back, 3);
	ck_assert_ptr_null(vmc_state_fencing(back, 3));
	vmc_state_group_find(back, "web1")->attempt = 0;
	free(again);
	/* without attempts and records, the fields are absent: older daemons see the same digest */
	again = vmc_state_to_string(back);
	ck_assert_ptr_null(strstr(again, "attempt"));
	ck_assert_ptr_null(strstr(again, "fencing"));
	plain = vmc_state_copy(back);
	ck_assert_ptr_nonnull(plain);
	free(again);
	vmc_state_free(plain);
	vmc_state_free(back);
	vmc_state_free(s);
}
END_TEST

START_TEST(test_snapshot_bad_fencing_or_attempt_refused)
{
	static const char *const bad[] = {
		"{\"format\":1,\"epoch\":0,\"config_version\":0,\"fencing\":{},\"groups\":[]}",
		"{\"format\":1,\"epoch\":0,\"config_version\":0,\"fencing\":[{\"node\":0,\"attempts\":1,"
		"\"last_fencer\":1,\"last_error\":\"\"}],\"groups\":[]}",
		"{\"format\":1,\"epoch\":0,\"config_version\":0,\"groups\":[{\"definition\":{\"name\":\"a\","
		"\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"}},\"owner\":0,\"state\":\"offline\","
		"\"want_started\":false,\"attempt\":-1}]}",
	};
	char err[256];

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct vmc_state *s = NULL;
		err[0] = '\0';
		ck_assert_msg(vmc_state_from_string(bad[i], &s, err, sizeof(err)) != 0, "accepted: %s", bad[i]);
		ck_assert_msg(err[0] != '\0', "refused without a reason: %s", bad[i]);
	}
}
END_TEST

static Suite *state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc;

	tc = tcase_make(s, "container");
	tcase_add_test(tc, test_new_state_is_empty);
	tcase_add_loop_test(tc, test_groups_sorted_whatever_the_insertion_order, 0,
			    (int)ARRAY_LEN(insertion_orders));
	tcase_add_test(tc, test_groups_sorted_after_random_adds_and_removes);
	tcase_add_test(tc, test_find_matches_whole_names);
	tcase_add_test(tc, test_add_duplicate_is_refused);
	tcase_add_test(tc, test_remove_then_add_again);
	tcase_add_test(tc, test_redefine_keeps_owner_and_state);
	tcase_add_test(tc, test_group_state_words_round_trip);

	tc = tcase_make(s, "requests");
	tcase_add_test(tc, test_request_add_applies_and_bumps_version);
	tcase_add_test(tc, test_request_add_duplicate_refused_state_unchanged);
	tcase_add_test(tc, test_request_add_invalid_definition_refused);
	tcase_add_test(tc, test_request_remove_applies_and_bumps_version);
	tcase_add_test(tc, test_request_remove_unknown_is_not_found);
	tcase_add_loop_test(tc, test_request_remove_running_group_is_busy, 0,
			    (int)ARRAY_LEN(busy_states));
	tcase_add_test(tc, test_request_remove_failed_group_is_allowed);
	tcase_add_test(tc, test_request_set_applies_and_bumps_version);
	tcase_add_test(tc, test_request_set_refusals_state_unchanged);
	tcase_add_test(tc, test_request_of_other_type_is_refused);
	tcase_add_test(tc, test_request_remove_online_group_says_it_must_be_stopped);
	tcase_add_loop_test(tc, test_request_set_non_string_assignment_refused, 0,
			    (int)ARRAY_LEN(non_string_sets));
	tcase_add_test(tc, test_set_assignments_takes_strings_only);
	tcase_add_loop_test(tc, test_request_add_mac_of_another_vm_refused, 0,
			    (int)ARRAY_LEN(mac_a_spellings));
	tcase_add_test(tc, test_request_set_mac_of_another_vm_refused);

	tc = tcase_make(s, "snapshot");
	tcase_add_test(tc, test_snapshot_round_trip_same_digest);
	tcase_add_test(tc, test_snapshot_round_trip_drain_and_homes);
	tcase_add_test(tc, test_request_start_after_cycle_refused);
	tcase_add_test(tc, test_snapshot_round_trip_empty_state);
	tcase_add_test(tc, test_snapshot_keeps_attempts_and_fencing_records);
	tcase_add_test(tc, test_snapshot_bad_fencing_or_attempt_refused);
	tcase_add_loop_test(tc, test_snapshot_corrupt_is_refused, 0, (int)ARRAY_LEN(corruptions));
	tcase_add_test(tc, test_snapshot_not_json_is_refused);
	tcase_add_loop_test(tc, test_snapshot_with_text_after_it_is_refused, 0,
			    (int)ARRAY_LEN(after_snapshot));
	tcase_add_test(tc, test_snapshot_with_white_space_after_it_is_read);
	tcase_add_loop_test(tc, test_snapshot_null_is_refused_saying_null, 0,
			    (int)ARRAY_LEN(null_snapshots));

	tc = tcase_make(s, "digest");
	tcase_add_test(tc, test_digest_is_64_lowercase_hex);
	tcase_add_test(tc, test_digest_is_stable);
	tcase_add_test(tc, test_digest_equal_for_different_insertion_orders);
	tcase_add_loop_test(tc, test_digest_differs_when_anything_differs, 0,
			    (int)ARRAY_LEN(differences));
	tcase_add_test(tc, test_copy_is_equal_and_independent);
	tcase_add_test(tc, test_copy_of_empty_state);
	return s;
}

int main(void)
{
	return check_suite_run(state_suite());
}
