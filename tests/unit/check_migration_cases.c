/*
 * Golden cases of the moves the replicated state asks for: the migration
 * queue and limit (lib/migration.h, tests/migration), drains and resumes
 * (lib/drain.h, tests/drain), failback plans, windows, delays and
 * quarantine (lib/failback.h, lib/node_admin.h, tests/failback), groups
 * pacemaker manages (tests/pacemaker). Each
 * NAME.case is a cluster (case_file.h), then the messages in order, each
 * applied as every replica applies it, and what the state must say after:
 *
 *   limit N                                    (migration_max_parallel)
 *   set KEY=VALUE                              (a cluster setting)
 *   view NODE,NODE                             (the members from here on)
 *   protocol N                                 (the version messages speak from here on)
 *   do STEP ...                                (applied, or the case fails)
 *   deny STEP ... -- TEXT                      (refused, TEXT in the reason)
 *     STEP: request|switchover|done|abort SENDER VM [TARGET] ID [cause=C]
 *           drain SENDER NODE [force] [target=NODE] [at=S]
 *           resume SENDER NODE none|immediate|policy [expired] [at=S]
 *           fenced SENDER NODE [at=S]          (the node proven dead)
 *           facts SENDER [at=S] [incarnation=N] (the sender announces itself)
 *           report SENDER VM EVENT             (its owner says: running, stopped, crashed)
 *           start|stop SENDER VM [node=NODE]   (group-start, group-stop; node= on that node only)
 *           window SENDER N                    (its adaptive migration window)
 *   expect VM [state=S] [owner=NODE] [phase=P] [target=NODE] [cause=C]
 *             [home=NODE|none] [kind=K] [failed-on=NODE|none]
 *             (owner=none: no node owns it)
 *   reason VM TEXT                             (TEXT is in its reason)
 *   node NODE mode=M                           (after the cluster lines: its mode)
 *   in-flight NODE N                           (transfer or switchover, in or out)
 *   failback VM NOW MINUTE VERDICT [TEXT]      (the plan at NOW s, MINUTE of the day)
 *
 * ID is a short word, padded to the 32 hex digits an id has; @ is the id
 * the group's move has now (one the replicas derived).
 */
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "failback.h"
#include "node_admin.h"
#include "case_file.h"
#include "migration.h"
#include "msg.h"
#include "check_run.h"

static const char *const case_dirs[] = { TEST_DATA_DIR "/../../migration", TEST_DATA_DIR "/../../drain",
					 TEST_DATA_DIR "/../../failback", TEST_DATA_DIR "/../../pacemaker" };

static char case_paths[CASE_FILES_MAX][512];
static size_t n_cases;

struct mcase {
	struct case_base b;
	struct vmc_state *s;
	uint32_t limit;
	uint16_t version; /* of the messages and of failback's view; 0: the newest */
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

static const struct vmc_group *vm_named(struct mcase *c, const char *vm)
{
	const struct vmc_group *g;

	state_ready(c);
	g = vm != NULL ? vmc_state_group_find(c->s, vm) : NULL;
	if (g == NULL) {
		case_fail(&c->b, "no vm '%s'", vm ? vm : "");
	}
	return g;
}

/* The words after STEP SENDER: kv attributes and flags into the body, the rest positional. */
static void body_add(char *body, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void body_add(char *body, size_t len, const char *fmt, ...)
{
	size_t l = strlen(body);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body + l, len - l, fmt, ap);
	va_end(ap);
}

static void attrs_add(struct mcase *c, char *save, char *body, size_t len)
{
	for (char *w = strtok_r(NULL, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (case_kv(w, "at")) {
			body_add(body, len, ",\"at_s\":%s", case_kv(w, "at"));
		} else if (case_kv(w, "target")) {
			body_add(body, len, ",\"target\":%u", case_node_id(&c->b, case_kv(w, "target")));
		} else if (case_kv(w, "node")) {
			body_add(body, len, ",\"node\":%u", case_node_id(&c->b, case_kv(w, "node")));
		} else if (case_kv(w, "cause")) {
			body_add(body, len, ",\"cause\":\"%s\"", case_kv(w, "cause"));
		} else if (case_kv(w, "incarnation")) {
			body_add(body, len, ",\"incarnation\":%s", case_kv(w, "incarnation"));
		} else if (strcmp(w, "force") == 0 || strcmp(w, "expired") == 0 || strcmp(w, "shutdown") == 0) {
			body_add(body, len, ",\"%s\":true", w);
		} else {
			case_fail(&c->b, "unknown step attribute '%s'", w);
		}
	}
}

/* node-fenced as the daemon sends it: this epoch, every member's (empty) report. */
static void fenced_body(struct mcase *c, const char *node, char *body, size_t len)
{
	body_add(body, len, "{\"node\":%u,\"method\":\"agent\",\"epoch\":%llu,\"reports\":[", case_node_id(&c->b, node),
		 (unsigned long long)c->s->epoch);
	for (size_t i = 0; i < c->b.n_members; i++) {
		body_add(body, len, "%s[%u,[]]", i ? "," : "", c->b.members[i]);
	}
	body_add(body, len, "]");
}

static int step_apply(struct mcase *c, char *save, char *detail, size_t len)
{
	static const struct {
		const char *word;
		uint16_t type;
	} steps[] = { { "request", VMC_MSG_MIGRATE_REQUEST }, { "switchover", VMC_MSG_MIGRATE_SWITCHOVER },
		      { "done", VMC_MSG_MIGRATE_DONE }, { "abort", VMC_MSG_MIGRATE_ABORT },
		      { "drain", VMC_MSG_NODE_DRAIN }, { "resume", VMC_MSG_NODE_RESUME },
		      { "fenced", VMC_MSG_NODE_FENCED }, { "facts", VMC_MSG_NODE_FACTS },
		      { "report", VMC_MSG_GROUP_REPORT }, { "window", VMC_MSG_MIGRATE_WINDOW },
		      { "start", VMC_MSG_GROUP_START }, { "stop", VMC_MSG_GROUP_STOP } };
	char *step = strtok_r(NULL, " \t", &save), *sender = strtok_r(NULL, " \t", &save), *vm = NULL, *word;
	char body[1024] = "", id[VMC_MIG_ID_MAX + 1];
	struct vmc_msg m = { .version = c->version ? c->version : VMC_PROTO_VERSION_MAX };
	struct vmc_apply_ctx ctx;
	int rc;

	for (size_t i = 0; step != NULL && i < sizeof(steps) / sizeof(steps[0]); i++) {
		m.type = strcmp(step, steps[i].word) == 0 ? steps[i].type : m.type;
	}
	if (m.type == 0 || sender == NULL) {
		case_fail(&c->b, "do|deny STEP SENDER ...: unknown step '%s'", step ? step : "");
	}
	state_ready(c);
	m.sender = case_node_id(&c->b, sender);
	switch (m.type) {
	case VMC_MSG_NODE_DRAIN:
	case VMC_MSG_NODE_RESUME:
		vm = strtok_r(NULL, " \t", &save);
		if (vm == NULL) {
			case_fail(&c->b, "%s SENDER NODE", step);
		}
		body_add(body, sizeof(body), "{\"node\":%u", case_node_id(&c->b, vm));
		if (m.type == VMC_MSG_NODE_RESUME) {
			word = strtok_r(NULL, " \t", &save);
			body_add(body, sizeof(body), ",\"failback\":\"%s\"", word ? word : "");
		}
		break;
	case VMC_MSG_NODE_FENCED:
		vm = strtok_r(NULL, " \t", &save);
		if (vm == NULL) {
			case_fail(&c->b, "fenced SENDER NODE");
		}
		fenced_body(c, vm, body, sizeof(body));
		break;
	case VMC_MSG_GROUP_REPORT:
		vm = strtok_r(NULL, " \t", &save);
		word = vm ? strtok_r(NULL, " \t", &save) : NULL;
		if (word == NULL) {
			case_fail(&c->b, "report SENDER VM EVENT");
		}
		body_add(body, sizeof(body), "{\"name\":\"%s\",\"event\":\"%s\",\"at_s\":1,\"attempt\":%u", vm, word,
			 vm_named(c, vm)->attempt);
		break;
	case VMC_MSG_GROUP_START:
	case VMC_MSG_GROUP_STOP:
		vm = strtok_r(NULL, " \t", &save);
		if (vm == NULL) {
			case_fail(&c->b, "%s SENDER VM [node=NODE]", step);
		}
		body_add(body, sizeof(body), "{\"name\":\"%s\"", vm);
		break;
	case VMC_MSG_MIGRATE_WINDOW:
		word = strtok_r(NULL, " \t", &save);
		body_add(body, sizeof(body), "{\"window\":%s", word ? word : "0");
		break;
	case VMC_MSG_NODE_FACTS:
		body_add(body, sizeof(body), "{\"name\":\"%s\",\"mem_mib\":%u", sender,
			 vmc_state_node(c->s, m.sender) ? vmc_state_node(c->s, m.sender)->mem_mib : 4096);
		break;
	default:
		vm = strtok_r(NULL, " \t", &save);
		word = vm ? strtok_r(NULL, " \t", &save) : NULL;
		if (word != NULL && m.type == VMC_MSG_MIGRATE_REQUEST) {
			body_add(body, sizeof(body), "{\"target\":%u,", case_node_id(&c->b, word));
			word = strtok_r(NULL, " \t", &save);
		} else {
			body_add(body, sizeof(body), "{");
		}
		if (word == NULL) {
			case_fail(&c->b, "%s SENDER VM %sID", step, m.type == VMC_MSG_MIGRATE_REQUEST ? "TARGET " : "");
		}
		if (strcmp(word, "@") == 0) { /* the id the replicas chose */
			snprintf(id, sizeof(id), "%s", vm_named(c, vm)->mig.id);
		} else {
			id_pad(word, id);
		}
		body_add(body, sizeof(body), "\"name\":\"%s\",\"id\":\"%s\",\"mode\":\"live\",\"at_s\":1,"
			 "\"reason\":\"case\"", vm, id);
	}
	attrs_add(c, save, body, sizeof(body));
	body_add(body, sizeof(body), "}");
	m.body = json_tokener_parse(body);
	if (m.body == NULL) {
		case_fail(&c->b, "the step's body is not JSON: %s", body);
	}
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
			ok = g->owner == (strcmp(v, "none") == 0 ? 0 : case_node_id(&c->b, v));
		} else if ((v = case_kv(t, "phase")) != NULL) {
			ok = strcmp(vmc_mig_phase_to_str(g->mig.phase), v) == 0;
		} else if ((v = case_kv(t, "target")) != NULL) {
			ok = g->mig.target == case_node_id(&c->b, v);
		} else if ((v = case_kv(t, "cause")) != NULL) {
			ok = strcmp(vmc_mig_cause_to_str(g->mig.cause), v) == 0;
		} else if ((v = case_kv(t, "home")) != NULL) {
			ok = strcmp(v, "none") == 0 ? g->home.kind == VMC_HOME_NONE
						    : g->home.kind != VMC_HOME_NONE && g->home.node == case_node_id(&c->b, v);
		} else if ((v = case_kv(t, "kind")) != NULL) {
			ok = strcmp(vmc_home_kind_to_str(g->home.kind), v) == 0;
		} else if ((v = case_kv(t, "failed-on")) != NULL) {
			ok = g->failed_on == (strcmp(v, "none") == 0 ? 0 : case_node_id(&c->b, v));
		} else {
			case_fail(&c->b, "unknown expect attribute '%s'", t);
		}
		if (!ok) {
			case_fail(&c->b, "%s: %s does not hold: %s, owner %u, phase %s to %u, home %s %u (%s)", vm, t,
				  vmc_group_state_to_str(g->state), g->owner, vmc_mig_phase_to_str(g->mig.phase),
				  g->mig.target, vmc_home_kind_to_str(g->home.kind), g->home.node, g->reason);
		}
		c->n_checks++;
	}
}

static void check_reason(struct mcase *c, char *save)
{
	const struct vmc_group *g = vm_named(c, strtok_r(NULL, " \t", &save));

	if (save == NULL || strstr(g->reason, save) == NULL) {
		case_fail(&c->b, "%s: reason '%s' lacks '%s'", g->def->name, g->reason, save ? save : "");
	}
	c->n_checks++;
}

static void check_node(struct mcase *c, char *save)
{
	char *node = strtok_r(NULL, " \t", &save), *mode = strtok_r(NULL, " \t", &save);
	uint32_t id = node ? case_node_id(&c->b, node) : 0;

	state_ready(c);
	if (mode == NULL || case_kv(mode, "mode") == NULL) {
		case_fail(&c->b, "node NODE mode=M");
	}
	if (strcmp(vmc_node_mode_to_str(vmc_node_mode(c->s, id)), case_kv(mode, "mode")) != 0) {
		case_fail(&c->b, "node %s is %s, not %s", node, vmc_node_mode_to_str(vmc_node_mode(c->s, id)),
			  case_kv(mode, "mode"));
	}
	c->n_checks++;
}

static void check_failback(struct mcase *c, char *save)
{
	static const char *const verdicts[] = { "none", "due", "wait", "stays" };
	const struct vmc_group *g = vm_named(c, strtok_r(NULL, " \t", &save));
	char *now = strtok_r(NULL, " \t", &save), *minute = strtok_r(NULL, " \t", &save);
	char *verdict = strtok_r(NULL, " \t", &save);
	struct vmc_apply_ctx ctx = { .version = c->version ? c->version : VMC_PROTO_VERSION_MAX,
				     .members = c->b.members, .n_members = c->b.n_members };
	struct vmc_failback_plan p;

	if (verdict == NULL) {
		case_fail(&c->b, "failback VM NOW MINUTE VERDICT [TEXT]");
	}
	vmc_failback_explain(c->s, &ctx, g, strtoull(now, NULL, 10), atoi(minute), &p);
	if (strcmp(verdicts[p.verdict], verdict) != 0 || (save != NULL && *save != '\0' && strstr(p.why, save) == NULL)) {
		case_fail(&c->b, "failback of %s: %s (%s), expected %s %s", g->def->name, verdicts[p.verdict], p.why, verdict,
			  save ? save : "");
	}
	c->n_checks++;
}

static void parse_line(void *ctx, char *text)
{
	struct mcase *c = ctx;
	char *save = NULL, *kw = strtok_r(text, " \t", &save), detail[512];

	if (kw == NULL || kw[0] == '#' || ((strcmp(kw, "node") != 0 || c->s == NULL) && case_parse_base(&c->b, kw, save))) {
		return;
	}
	if (strcmp(kw, "limit") == 0) {
		c->limit = (uint32_t)atoi(strtok_r(NULL, " \t", &save) ?: "0");
	} else if (strcmp(kw, "set") == 0) {
		const char *a[1] = { strtok_r(NULL, " \t", &save) };
		state_ready(c);
		if (a[0] == NULL || vmc_settings_set(&c->s->settings, a, 1, &c->s->settings, detail, sizeof(detail)) != 0) {
			case_fail(&c->b, "set KEY=VALUE: %s", a[0] ? detail : "missing");
		}
	} else if (strcmp(kw, "view") == 0) {
		char *list = strtok_r(NULL, " \t", &save);
		state_ready(c);
		c->b.n_members = list ? case_node_list(&c->b, list, c->b.members, CASE_NODES_MAX) : 0;
	} else if (strcmp(kw, "protocol") == 0) {
		c->version = (uint16_t)atoi(strtok_r(NULL, " \t", &save) ?: "0");
	} else if (strcmp(kw, "reason") == 0) {
		check_reason(c, save);
	} else if (strcmp(kw, "node") == 0 && c->s != NULL) {
		check_node(c, save);
	} else if (strcmp(kw, "failback") == 0) {
		check_failback(c, save);
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
	ck_assert_uint_ge(n_cases, 15);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("migration_cases");
	TCase *t = tcase_create("cases");

	for (size_t d = 0; d < sizeof(case_dirs) / sizeof(case_dirs[0]); d++) {
		n_cases += case_files(case_dirs[d], case_paths + n_cases, CASE_FILES_MAX - n_cases);
	}
	tcase_add_test(t, test_enough_cases);
	tcase_add_loop_test(t, test_case, 0, (int)n_cases);
	suite_add_tcase(s, t);
	return check_suite_run(s);
}
