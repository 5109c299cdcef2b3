/*
 * Golden tests of the local VM policy (lib/local_policy.h): each
 * tests/local/NAME.case is a cluster state, what this node knows of its
 * VMs, and the decisions expected (case_file.h has the shared lines):
 *
 *   quorum yes|no|unknown        (corosync's verdict; default yes)
 *   sync done|hello              (default done)
 *   writable yes|no              (primary and untainted; default yes)
 *   local VM [running] [start-pending] [stop-pending] [started=A]
 *            [exit=EVENT@A] [reason=TEXT] [reported=EVENT@A] [self-fenced] [exists]
 *            [volume-killed] [paused] [incoming=ID] [order-since=MS@A]
 *   now MS                       (the monotonic clock; default 1000000)
 *   lost-volume NAME             (its lease is past the kill deadline here)
 *   overdue-volume NAME          (its renewal is overdue here)
 *   expect VM ACTION [EVENT] [attempt=A]
 *   expect-nothing               (the policy decides nothing at all)
 *   expect-order VM VM ...       (these decisions come in this order)
 *
 * ACTION is a vmc_local_action_to_str() name. Every decision the policy
 * makes must be expected, and only those: a case lists them all.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_file.h"
#include "local_policy.h"
#include "check_run.h"

#define CASE_DIR TEST_DATA_DIR "/../../local"

struct lcase {
	struct case_base b;
	struct vmc_local_input in;
	struct vmc_local_vm vms[CASE_VMS_MAX];
	size_t n_vms;
	struct vmc_state *state;
	struct vmc_local_decision got[CASE_VMS_MAX];
	size_t n_got;
	bool decided;
	bool matched[CASE_VMS_MAX];
	size_t n_expects;
};

static char case_paths[CASE_FILES_MAX][512];
static size_t n_cases;

static bool yes_no(struct lcase *c, const char *v)
{
	if (v != NULL && strcmp(v, "yes") == 0) {
		return true;
	}
	if (v != NULL && strcmp(v, "no") == 0) {
		return false;
	}
	case_fail(&c->b, "expected yes or no, got '%s'", v ? v : "");
	return false;
}

/* EVENT@A */
static enum vmc_local_exit parse_exit(struct lcase *c, const char *v, uint32_t *attempt)
{
	const char *at = strchr(v, '@');
	enum vmc_local_exit e;

	if (at == NULL) {
		case_fail(&c->b, "exit=EVENT@ATTEMPT");
	}
	*attempt = (uint32_t)atoi(at + 1);
	for (e = VMC_EXIT_START_FAILED; e <= VMC_EXIT_STOPPED; e++) {
		if (strncmp(v, vmc_local_exit_to_str(e), (size_t)(at - v)) == 0 &&
		    strlen(vmc_local_exit_to_str(e)) == (size_t)(at - v)) {
			return e;
		}
	}
	case_fail(&c->b, "unknown exit '%s'", v);
	return VMC_EXIT_NONE;
}

static void parse_local(struct lcase *c, char *save)
{
	struct vmc_local_vm *l = &c->vms[c->n_vms];
	char *name = strtok_r(NULL, " \t", &save);
	const char *v;

	if (name == NULL || c->n_vms == CASE_VMS_MAX) {
		case_fail(&c->b, "local VM [facts...]");
	}
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", name);
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (strcmp(t, "running") == 0) {
			l->running = true;
		} else if (strcmp(t, "start-pending") == 0) {
			l->start_pending = true;
		} else if (strcmp(t, "stop-pending") == 0) {
			l->stop_pending = true;
		} else if (strcmp(t, "self-fenced") == 0) {
			l->self_fenced = true;
		} else if (strcmp(t, "exists") == 0) {
			l->exists_unfollowed = true;
		} else if (strcmp(t, "volume-killed") == 0) {
			l->volume_lost = true;
		} else if (strcmp(t, "paused") == 0) {
			l->paused = true;
		} else if ((v = case_kv(t, "order-since")) != NULL) {
			const char *at = strchr(v, '@');
			if (at == NULL) {
				case_fail(&c->b, "order-since=MS@ATTEMPT");
			}
			l->order_since_ms = strtoll(v, NULL, 10);
			l->order_attempt = (uint32_t)atoi(at + 1);
		} else if ((v = case_kv(t, "incoming")) != NULL) {
			snprintf(l->incoming_id, sizeof(l->incoming_id), "%s", v);
		} else if ((v = case_kv(t, "started")) != NULL) {
			l->started = true;
			l->started_attempt = (uint32_t)atoi(v);
		} else if ((v = case_kv(t, "exit")) != NULL) {
			l->exit = parse_exit(c, v, &l->exit_attempt);
		} else if ((v = case_kv(t, "reason")) != NULL) {
			snprintf(l->exit_reason, sizeof(l->exit_reason), "%s", v);
		} else if ((v = case_kv(t, "reported")) != NULL) {
			const char *at = strchr(v, '@');
			if (at == NULL) {
				case_fail(&c->b, "reported=EVENT@ATTEMPT");
			}
			l->reported = true;
			snprintf(l->reported_event, sizeof(l->reported_event), "%.*s", (int)(at - v), v);
			l->reported_attempt = (uint32_t)atoi(at + 1);
		} else {
			case_fail(&c->b, "unknown local fact '%s'", t);
		}
	}
	c->n_vms++;
}

static void decide(struct lcase *c)
{
	if (c->decided) {
		return;
	}
	c->state = case_state(&c->b);
	c->in.state = c->state;
	c->in.my_id = c->b.me;
	c->in.members = c->b.members;
	c->in.n_members = c->b.n_members;
	c->in.vms = c->vms;
	c->in.n_vms = c->n_vms;
	c->n_got = vmc_local_decide(&c->in, c->got, CASE_VMS_MAX);
	c->decided = true;
}

static void check_expect(struct lcase *c, char *save)
{
	char *vm = strtok_r(NULL, " \t", &save), *action = strtok_r(NULL, " \t", &save);
	const char *event = NULL;
	long attempt = -1;
	size_t k;

	decide(c);
	if (vm == NULL || action == NULL) {
		case_fail(&c->b, "expect VM ACTION [EVENT] [attempt=A]");
	}
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (case_kv(t, "attempt")) {
			attempt = atol(case_kv(t, "attempt"));
		} else {
			event = t;
		}
	}
	for (k = 0; k < c->n_got && strcmp(c->got[k].vm, vm) != 0; k++) {
	}
	if (k == c->n_got) {
		case_fail(&c->b, "no decision for %s", vm);
	}
	c->matched[k] = true;
	c->n_expects++;
	if (strcmp(vmc_local_action_to_str(c->got[k].action), action) != 0 ||
	    (event != NULL && (c->got[k].event == NULL || strcmp(c->got[k].event, event) != 0)) ||
	    (attempt >= 0 && c->got[k].attempt != (uint32_t)attempt)) {
		case_fail(&c->b, "%s: got %s %s attempt=%u (%s), expected %s %s attempt=%ld", vm,
			  vmc_local_action_to_str(c->got[k].action), c->got[k].event ? c->got[k].event : "",
			  c->got[k].attempt, c->got[k].why, action, event ? event : "", attempt);
	}
}

static void check_order(struct lcase *c, char *save)
{
	size_t last = 0;
	bool first = true;

	decide(c);
	for (char *vm = strtok_r(NULL, " \t", &save); vm; vm = strtok_r(NULL, " \t", &save)) {
		size_t k;
		for (k = 0; k < c->n_got && strcmp(c->got[k].vm, vm) != 0; k++) {
		}
		if (k == c->n_got) {
			case_fail(&c->b, "no decision for %s", vm);
		}
		if (!first && k < last) {
			case_fail(&c->b, "%s is decided before the VM named before it", vm);
		}
		last = k;
		first = false;
	}
}

/* KW NAME: the bit of a volume named on a volume line before it. */
static uint32_t volume_bit(struct lcase *c, const char *kw, char *save)
{
	char *v = strtok_r(NULL, " \t", &save);
	size_t i = 0;

	while (v != NULL && i < c->b.n_volumes && strcmp(c->b.volumes[i].name, v) != 0) {
		i++;
	}
	if (v == NULL || i == c->b.n_volumes) {
		case_fail(&c->b, "%s NAME of a volume line before it", kw);
	}
	return 1u << i;
}

static void parse_line(struct lcase *c, char *text)
{
	char *save = NULL, *kw = strtok_r(text, " \t", &save);

	if (kw == NULL || kw[0] == '#') {
		return;
	}
	if (case_parse_base(&c->b, kw, save)) {
		return;
	}
	if (strcmp(kw, "quorum") == 0) {
		char *v = strtok_r(NULL, " \t", &save);
		c->in.quorum_known = v == NULL || strcmp(v, "unknown") != 0;
		c->in.quorate = c->in.quorum_known ? yes_no(c, v) : false;
	} else if (strcmp(kw, "now") == 0) {
		c->in.now_ms = strtoll(strtok_r(NULL, " \t", &save) ?: "0", NULL, 10);
	} else if (strcmp(kw, "sync") == 0) {
		char *v = strtok_r(NULL, " \t", &save);
		c->in.synced = v != NULL && strcmp(v, "done") == 0;
	} else if (strcmp(kw, "writable") == 0) {
		c->in.writable = yes_no(c, strtok_r(NULL, " \t", &save));
	} else if (strcmp(kw, "local") == 0) {
		parse_local(c, save);
	} else if (strcmp(kw, "lost-volume") == 0) {
		c->in.volumes_lost |= volume_bit(c, kw, save);
	} else if (strcmp(kw, "overdue-volume") == 0) {
		c->in.volumes_overdue |= volume_bit(c, kw, save);
	} else if (strcmp(kw, "expect") == 0) {
		check_expect(c, save);
	} else if (strcmp(kw, "expect-nothing") == 0) {
		decide(c);
		c->n_expects++;
		if (c->n_got != 0) {
			case_fail(&c->b, "expected no decision, got %s %s (%s)", c->got[0].vm,
				  vmc_local_action_to_str(c->got[0].action), c->got[0].why);
		}
	} else if (strcmp(kw, "expect-order") == 0) {
		check_order(c, save);
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
	struct lcase *c = ctx;

	snprintf(buf, sizeof(buf), "%s %s %s (%s)", c->got[k].vm, vmc_local_action_to_str(c->got[k].action),
		 c->got[k].event ? c->got[k].event : "", c->got[k].why);
	return buf;
}

static void case_run(const char *path)
{
	static struct lcase c;

	memset(&c, 0, sizeof(c));
	c.in.now_ms = 1000000;
	c.in.quorum_known = c.in.quorate = c.in.synced = c.in.writable = true;
	case_read(&c.b, path, line_parse, &c);
	decide(&c);
	case_all_matched(&c.b, c.matched, c.n_got, c.n_expects, describe, &c);
	vmc_state_free(c.state);
}

START_TEST(test_local_case)
{
	case_run(case_paths[_i]);
}
END_TEST

START_TEST(test_enough_cases)
{
	ck_assert_uint_ge(n_cases, 20);
}
END_TEST

START_TEST(test_corosync_lost)
{
	struct vmc_settings st;
	char why[256];

	vmc_settings_defaults(&st);
	ck_assert_int_eq(vmc_local_on_corosync_lost(&st, why, sizeof(why)), VMC_LOCAL_KILL);
	st.fence_method = VMC_FENCE_NONE;
	ck_assert_int_eq(vmc_local_on_corosync_lost(&st, why, sizeof(why)), VMC_LOCAL_KILL);
	st.fence_method = VMC_FENCE_AGENT;
	ck_assert_int_eq(vmc_local_on_corosync_lost(&st, why, sizeof(why)), VMC_LOCAL_KEEP);
	ck_assert_ptr_nonnull(strstr(why, "fence"));
	st.fence_method = VMC_FENCE_PACEMAKER;
	ck_assert_int_eq(vmc_local_on_corosync_lost(&st, why, sizeof(why)), VMC_LOCAL_KEEP);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("local_policy");
	TCase *tc = tcase_create("golden");

	n_cases = case_files(CASE_DIR, case_paths, CASE_FILES_MAX);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_enough_cases);
	tcase_add_test(tc, test_corosync_lost);
	tcase_add_loop_test(tc, test_local_case, 0, (int)n_cases);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
