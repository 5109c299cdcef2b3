/*
 * Golden tests of the fencing policy (lib/fence_policy.h): each
 * tests/fencing/NAME.case is a cluster state, the view and corosync's
 * membership, what this node knows of its fence runs, and the decisions
 * expected (case_file.h has the shared lines):
 *
 *   corosync node1,node2         (corosync's membership; default: the members)
 *   fence agent|pacemaker|lease|none|unset   (default agent)
 *   now MS                       (this node's monotonic clock)
 *   writable yes|no              (default yes)
 *   reports ready|missing        (the sync's barrier; default ready)
 *   nodelist ID NAME             (a corosync nodelist name)
 *   timeouts token=MS fence=S    (default token 1000, fence_timeout 60)
 *   local NODE [running=ATTEMPT@STARTED_MS] [result=ok|failed] [error=TEXT]
 *              [gone_since=MS] [failure_seen=ATTEMPTS@MS] [announced=ATTEMPTS@EPOCH]
 *              [turn_seen=ATTEMPTS@MS] [run_epoch=EPOCH]
 *              [lease=expired|waiting|unreadable] [lease_left=MS]  (its leases, read here)
 *   expect NODE ACTION [fencer=NODE] [attempt=N] [plug=NAME] [wait=MS]
 *   expect-nothing
 *
 * ACTION is a vmc_fence_action_to_str() name; attempt counts from 0.
 * Every decision must be expected.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_file.h"
#include "fence_policy.h"
#include "check_run.h"

#define CASE_DIR TEST_DATA_DIR "/../../fencing"

struct fcase {
	struct case_base b;
	struct vmc_fence_input in;
	char method[16];
	uint32_t cs[CASE_NODES_MAX];
	size_t n_cs;
	bool cs_set;
	struct vmc_fence_local locals[CASE_NODES_MAX];
	size_t n_locals;
	struct vmc_fence_name nodelist[CASE_NODES_MAX];
	char nodelist_names[CASE_NODES_MAX][32];
	size_t n_nodelist;
	uint32_t token_ms, fence_s;
	struct vmc_timeouts t;
	struct vmc_state *state;
	struct vmc_fence_decision got[CASE_NODES_MAX * 2];
	size_t n_got;
	bool decided;
	bool matched[CASE_NODES_MAX * 2];
	size_t n_expects;
};

static char case_paths[CASE_FILES_MAX][512];
static size_t n_cases;

/* "A@B" */
static void pair(struct fcase *c, const char *v, int64_t *a, int64_t *b)
{
	const char *at = strchr(v, '@');

	if (at == NULL) {
		case_fail(&c->b, "expected A@B, got '%s'", v);
	}
	*a = atoll(v);
	*b = atoll(at + 1);
}

static void parse_local(struct fcase *c, char *save)
{
	struct vmc_fence_local *l = &c->locals[c->n_locals];
	char *node = strtok_r(NULL, " \t", &save);
	int64_t a, b;
	const char *v;

	if (node == NULL || c->n_locals == CASE_NODES_MAX) {
		case_fail(&c->b, "local NODE [facts...]");
	}
	memset(l, 0, sizeof(*l));
	l->node = case_node_id(&c->b, node);
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if ((v = case_kv(t, "running")) != NULL) {
			pair(c, v, &a, &b);
			l->running = true;
			l->run_attempt = (uint32_t)a;
			l->run_started_ms = b;
		} else if ((v = case_kv(t, "result")) != NULL) {
			l->result_ready = true;
			l->result_ok = strcmp(v, "ok") == 0;
		} else if ((v = case_kv(t, "error")) != NULL) {
			snprintf(l->result_error, sizeof(l->result_error), "%s", v);
		} else if ((v = case_kv(t, "attempt")) != NULL) {
			l->run_attempt = (uint32_t)atoi(v);
		} else if ((v = case_kv(t, "lease")) != NULL) {
			l->lease = strcmp(v, "expired") == 0 ? 1 : strcmp(v, "waiting") == 0 ? 0 : -1;
			snprintf(l->lease_why, sizeof(l->lease_why), "%s", l->lease < 0 ? "volume csv1 cannot be read here" : "");
		} else if ((v = case_kv(t, "lease_left")) != NULL) {
			l->lease_left_ms = atoll(v);
		} else if ((v = case_kv(t, "gone_since")) != NULL) {
			l->daemon_gone_since_ms = atoll(v);
		} else if ((v = case_kv(t, "failure_seen")) != NULL) {
			pair(c, v, &a, &b);
			l->failure_seen_attempts = (uint32_t)a;
			l->failure_seen_ms = b;
		} else if ((v = case_kv(t, "turn_seen")) != NULL) {
			pair(c, v, &a, &b);
			l->turn_seen_attempts = (uint32_t)a;
			l->turn_seen_ms = b;
		} else if ((v = case_kv(t, "run_epoch")) != NULL) {
			l->run_epoch = strtoull(v, NULL, 10);
		} else if ((v = case_kv(t, "announced")) != NULL) {
			pair(c, v, &a, &b);
			l->announced = true;
			l->announced_attempts = (uint32_t)a;
			l->announced_epoch = (uint64_t)b;
		} else {
			case_fail(&c->b, "unknown local fact '%s'", t);
		}
	}
	c->n_locals++;
}

static enum vmc_fence_method method_of(struct fcase *c)
{
	static const struct {
		const char *name;
		enum vmc_fence_method m;
	} methods[] = { { "agent", VMC_FENCE_AGENT }, { "pacemaker", VMC_FENCE_PACEMAKER },
			{ "none", VMC_FENCE_NONE }, { "unset", VMC_FENCE_UNSET }, { "lease", VMC_FENCE_LEASE } };

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (strcmp(c->method, methods[i].name) == 0) {
			return methods[i].m;
		}
	}
	case_fail(&c->b, "unknown fence method '%s'", c->method);
	return VMC_FENCE_UNSET;
}

static void decide(struct fcase *c)
{
	if (c->decided) {
		return;
	}
	c->state = case_state(&c->b);
	c->state->settings.fence_method = method_of(c);
	vmc_timeouts_derive(&c->t, c->token_ms, c->fence_s, 60, 0);
	if (!c->cs_set) {
		memcpy(c->cs, c->b.members, sizeof(c->cs));
		c->n_cs = c->b.n_members;
	}
	c->in.state = c->state;
	c->in.my_id = c->b.me;
	c->in.members = c->b.members;
	c->in.n_members = c->b.n_members;
	c->in.cs_members = c->cs;
	c->in.n_cs_members = c->n_cs;
	c->in.nodelist = c->nodelist;
	c->in.n_nodelist = c->n_nodelist;
	c->in.locals = c->locals;
	c->in.n_locals = c->n_locals;
	c->in.t = &c->t;
	c->n_got = vmc_fence_decide(&c->in, c->got, CASE_NODES_MAX * 2);
	c->decided = true;
}

static void check_expect(struct fcase *c, char *save)
{
	char *node = strtok_r(NULL, " \t", &save), *action = strtok_r(NULL, " \t", &save);
	long attempt = -1;
	int64_t wait = -1;
	const char *fencer = NULL, *plug = NULL, *v;
	const struct vmc_fence_decision *d = NULL;
	uint32_t id;

	decide(c);
	if (node == NULL || action == NULL) {
		case_fail(&c->b, "expect NODE ACTION [fencer=NODE] [attempt=N] [plug=NAME] [wait=MS]");
	}
	id = case_node_id(&c->b, node);
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if ((v = case_kv(t, "attempt")) != NULL) {
			attempt = atol(v);
		} else if ((v = case_kv(t, "fencer")) != NULL) {
			fencer = v;
		} else if ((v = case_kv(t, "plug")) != NULL) {
			plug = v;
		} else if ((v = case_kv(t, "wait")) != NULL) {
			wait = atoll(v);
		} else {
			case_fail(&c->b, "unknown expectation '%s'", t);
		}
	}
	for (size_t k = 0; k < c->n_got; k++) {
		if (c->got[k].node == id) {
			d = &c->got[k];
			c->matched[k] = true;
		}
	}
	if (d == NULL) {
		case_fail(&c->b, "no decision for %s", node);
	}
	c->n_expects++;
	if (strcmp(vmc_fence_action_to_str(d->action), action) != 0 ||
	    (attempt >= 0 && d->attempt != (uint32_t)attempt) ||
	    (fencer != NULL && strcmp(case_node_name(&c->b, d->fencer), fencer) != 0) ||
	    (plug != NULL && strcmp(d->plug, plug) != 0) || (wait >= 0 && d->wait_ms != wait)) {
		case_fail(&c->b, "%s: got %s fencer=%s attempt=%u plug=%s wait=%lld (%s), expected %s", node,
			  vmc_fence_action_to_str(d->action), case_node_name(&c->b, d->fencer), d->attempt,
			  d->plug, (long long)d->wait_ms, d->why, action);
	}
}

static void parse_line(struct fcase *c, char *text)
{
	char *save = NULL, *kw = strtok_r(text, " \t", &save), *v;

	if (kw == NULL || kw[0] == '#' || case_parse_base(&c->b, kw, save)) {
		return;
	}
	if (strcmp(kw, "corosync") == 0) {
		v = strtok_r(NULL, " \t", &save);
		c->n_cs = v ? case_node_list(&c->b, v, c->cs, CASE_NODES_MAX) : 0;
		c->cs_set = true;
	} else if (strcmp(kw, "fence") == 0) {
		v = strtok_r(NULL, " \t", &save);
		snprintf(c->method, sizeof(c->method), "%s", v ? v : "");
	} else if (strcmp(kw, "now") == 0) {
		v = strtok_r(NULL, " \t", &save);
		c->in.now_ms = v ? atoll(v) : 0;
	} else if (strcmp(kw, "writable") == 0) {
		v = strtok_r(NULL, " \t", &save);
		c->in.writable = v != NULL && strcmp(v, "yes") == 0;
	} else if (strcmp(kw, "reports") == 0) {
		v = strtok_r(NULL, " \t", &save);
		c->in.reports_ready = v != NULL && strcmp(v, "ready") == 0;
	} else if (strcmp(kw, "nodelist") == 0) {
		char *id = strtok_r(NULL, " \t", &save), *name = strtok_r(NULL, " \t", &save);
		if (id == NULL || name == NULL || c->n_nodelist == CASE_NODES_MAX) {
			case_fail(&c->b, "nodelist ID NAME");
		}
		snprintf(c->nodelist_names[c->n_nodelist], sizeof(c->nodelist_names[0]), "%s", name);
		c->nodelist[c->n_nodelist] = (struct vmc_fence_name){ (uint32_t)atoi(id), c->nodelist_names[c->n_nodelist] };
		c->n_nodelist++;
	} else if (strcmp(kw, "timeouts") == 0) {
		for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
			if (case_kv(t, "token")) {
				c->token_ms = (uint32_t)atoi(case_kv(t, "token"));
			} else if (case_kv(t, "fence")) {
				c->fence_s = (uint32_t)atoi(case_kv(t, "fence"));
			}
		}
	} else if (strcmp(kw, "local") == 0) {
		parse_local(c, save);
	} else if (strcmp(kw, "expect") == 0) {
		check_expect(c, save);
	} else if (strcmp(kw, "expect-nothing") == 0) {
		decide(c);
		c->n_expects++;
		if (c->n_got != 0) {
			case_fail(&c->b, "expected no decision, got %s for node id %u (%s)",
				  vmc_fence_action_to_str(c->got[0].action), c->got[0].node, c->got[0].why);
		}
	} else {
		case_fail(&c->b, "unknown line '%s'", kw);
	}
}

static void line_parse(void *ctx, char *text)
{
	parse_line(ctx, text);
}

static const char *describe(size_t k, void *ctx)
{
	static char buf[384];
	struct fcase *c = ctx;

	snprintf(buf, sizeof(buf), "%s for node id %u (%s)", vmc_fence_action_to_str(c->got[k].action),
		 c->got[k].node, c->got[k].why);
	return buf;
}

static void case_run(const char *path)
{
	static struct fcase c;

	memset(&c, 0, sizeof(c));
	snprintf(c.method, sizeof(c.method), "agent");
	c.in.writable = c.in.reports_ready = true;
	c.token_ms = 1000;
	c.fence_s = 60;
	case_read(&c.b, path, line_parse, &c);
	decide(&c);
	case_all_matched(&c.b, c.matched, c.n_got, c.n_expects, describe, &c);
	vmc_state_free(c.state);
}

START_TEST(test_fence_case)
{
	case_run(case_paths[_i]);
}
END_TEST

START_TEST(test_enough_cases)
{
	ck_assert_uint_ge(n_cases, 20);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fence_policy");
	TCase *tc = tcase_create("golden");

	n_cases = case_files(CASE_DIR, case_paths, CASE_FILES_MAX);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_enough_cases);
	tcase_add_loop_test(tc, test_fence_case, 0, (int)n_cases);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
