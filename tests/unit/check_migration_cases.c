/*
 * Golden cases of the migration queue and limit (lib/migration.h): each
 * tests/migration/NAME.case is a cluster (case_file.h), then the moves
 * asked and their steps in order, each applied as every replica applies
 * it, and what the state must say after:
 *
 *   limit N                                    (migration_max_parallel)
 *   do request|switchover|done|abort SENDER VM [TARGET] ID
 *                                              (applied, or the case fails)
 *   deny request|switchover|done|abort SENDER VM [TARGET] ID -- TEXT
 *                                              (refused, TEXT in the reason)
 *   expect VM [state=S] [owner=NODE] [phase=P] [target=NODE]
 *   in-flight NODE N                           (transfer or switchover, in or out)
 *
 * ID is a short word, padded to the 32 hex digits an id has.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "case_file.h"
#include "migration.h"
#include "msg.h"
#include "check_run.h"

#define CASE_DIR TEST_DATA_DIR "/../../migration"

static char case_paths[CASE_FILES_MAX][512];
static size_t n_cases;

struct mcase {
	struct case_base b;
	struct vmc_state *s;
	uint32_t limit;
	size_t n_checks;
};

static void state_ready(struct mcase *c)
{
	if (c->s == NULL) {
		c->s = case_state(&c->b);
		if (c->limit != 0) {
			c->s->settings.migration_max_parallel = c->limit;
		}
	}
}

/* "a1" -> "a1000000000000000000000000000000": any word as an id. */
static void id_pad(const char *word, char id[VMC_MIG_ID_MAX + 1])
{
	memset(id, '0', VMC_MIG_ID_MAX);
	id[VMC_MIG_ID_MAX] = '\0';
	for (size_t i = 0; word[i] != '\0' && i < VMC_MIG_ID_MAX; i++) {
		id[i] = strchr("0123456789abcdef", word[i]) ? word[i] : 'f';
	}
}

static int step_apply(struct mcase *c, char *save, char *detail, size_t len)
{
	static const struct {
		const char *word;
		uint16_t type;
	} steps[] = { { "request", VMC_MSG_MIGRATE_REQUEST }, { "switchover", VMC_MSG_MIGRATE_SWITCHOVER },
		      { "done", VMC_MSG_MIGRATE_DONE }, { "abort", VMC_MSG_MIGRATE_ABORT } };
	char *step = strtok_r(NULL, " \t", &save), *sender = strtok_r(NULL, " \t", &save);
	char *vm = strtok_r(NULL, " \t", &save), *target = NULL, *word, body[256], id[VMC_MIG_ID_MAX + 1];
	struct vmc_msg m = { .version = VMC_PROTO_VERSION_MAX };
	struct vmc_apply_ctx ctx;
	int rc;

	for (size_t i = 0; step != NULL && i < sizeof(steps) / sizeof(steps[0]); i++) {
		m.type = strcmp(step, steps[i].word) == 0 ? steps[i].type : m.type;
	}
	if (m.type == 0 || sender == NULL || vm == NULL) {
		case_fail(&c->b, "do|deny request|switchover|done|abort SENDER VM [TARGET] ID");
	}
	if (m.type == VMC_MSG_MIGRATE_REQUEST) {
		target = strtok_r(NULL, " \t", &save);
	}
	word = strtok_r(NULL, " \t", &save);
	if (word == NULL || (m.type == VMC_MSG_MIGRATE_REQUEST && target == NULL)) {
		case_fail(&c->b, "%s needs %sID", step, m.type == VMC_MSG_MIGRATE_REQUEST ? "TARGET and " : "");
	}
	state_ready(c);
	id_pad(word, id);
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"id\":\"%s\",\"mode\":\"live\",\"at_s\":1,\"reason\":\"case\"",
		 vm, id);
	if (target != NULL) {
		snprintf(body + strlen(body), sizeof(body) - strlen(body), ",\"target\":%u", case_node_id(&c->b, target));
	}
	snprintf(body + strlen(body), sizeof(body) - strlen(body), "}");
	m.sender = case_node_id(&c->b, sender);
	m.body = json_tokener_parse(body);
	ctx = (struct vmc_apply_ctx){ .sender = m.sender, .version = m.version, .members = c->b.members,
				      .n_members = c->b.n_members };
	rc = vmc_state_apply(c->s, &ctx, &m, detail, len);
	vmc_msg_clear(&m);
	return rc;
}

static void check_vm(struct mcase *c, char *save)
{
	char *vm = strtok_r(NULL, " \t", &save);
	const struct vmc_group *g;

	state_ready(c);
	g = vm != NULL ? vmc_state_group_find(c->s, vm) : NULL;
	if (g == NULL) {
		case_fail(&c->b, "expect VM: no such vm");
	}
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		const char *v;
		bool ok = true;
		if ((v = case_kv(t, "state")) != NULL) {
			ok = strcmp(vmc_group_state_to_str(g->state), v) == 0;
		} else if ((v = case_kv(t, "owner")) != NULL) {
			ok = g->owner == case_node_id(&c->b, v);
		} else if ((v = case_kv(t, "phase")) != NULL) {
			ok = strcmp(vmc_mig_phase_to_str(g->mig.phase), v) == 0;
		} else if ((v = case_kv(t, "target")) != NULL) {
			ok = g->mig.target == case_node_id(&c->b, v);
		} else {
			case_fail(&c->b, "unknown expect attribute '%s'", t);
		}
		if (!ok) {
			case_fail(&c->b, "%s: %s does not hold: %s, owner %u, phase %s to %u (%s)", vm, t,
				  vmc_group_state_to_str(g->state), g->owner, vmc_mig_phase_to_str(g->mig.phase),
				  g->mig.target, g->reason);
		}
		c->n_checks++;
	}
}

static void parse_line(void *ctx, char *text)
{
	struct mcase *c = ctx;
	char *save = NULL, *kw = strtok_r(text, " \t", &save), detail[512];

	if (kw == NULL || kw[0] == '#' || case_parse_base(&c->b, kw, save)) {
		return;
	}
	if (strcmp(kw, "limit") == 0) {
		c->limit = (uint32_t)atoi(strtok_r(NULL, " \t", &save) ?: "0");
	} else if (strcmp(kw, "do") == 0) {
		if (step_apply(c, save, detail, sizeof(detail)) != 0) {
			case_fail(&c->b, "refused: %s", detail);
		}
	} else if (strcmp(kw, "deny") == 0) {
		char *want = strstr(save, "-- ");
		if (want == NULL) {
			case_fail(&c->b, "deny ... -- TEXT");
		}
		want[-1] = '\0';
		want += 3;
		if (step_apply(c, save, detail, sizeof(detail)) == 0 || strstr(detail, want) == NULL) {
			case_fail(&c->b, "expected a refusal saying '%s', got '%s'", want, detail);
		}
		c->n_checks++;
	} else if (strcmp(kw, "expect") == 0) {
		check_vm(c, save);
	} else if (strcmp(kw, "in-flight") == 0) {
		char *node = strtok_r(NULL, " \t", &save), *n = strtok_r(NULL, " \t", &save);
		state_ready(c);
		if (node == NULL || n == NULL ||
		    vmc_migrations_in_flight(c->s, case_node_id(&c->b, node)) != (size_t)atoi(n)) {
			case_fail(&c->b, "in-flight %s: %zu, expected %s", node ? node : "?",
				  node ? vmc_migrations_in_flight(c->s, case_node_id(&c->b, node)) : 0, n ? n : "?");
		}
		c->n_checks++;
	} else {
		case_fail(&c->b, "unknown line '%s'", kw);
	}
}

START_TEST(test_case)
{
	struct mcase c;

	memset(&c, 0, sizeof(c));
	snprintf(c.b.me_name, sizeof(c.b.me_name), "node1");
	case_read(&c.b, case_paths[_i], parse_line, &c);
	ck_assert_msg(c.n_checks > 0, "%s: nothing checked", c.b.path);
	vmc_state_free(c.s);
}
END_TEST

START_TEST(test_enough_cases)
{
	ck_assert_uint_ge(n_cases, 5);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("migration_cases");
	TCase *t = tcase_create("cases");

	n_cases = case_files(CASE_DIR, case_paths, CASE_FILES_MAX);
	tcase_add_test(t, test_enough_cases);
	tcase_add_loop_test(t, test_case, 0, (int)n_cases);
	suite_add_tcase(s, t);
	return check_suite_run(s);
}
