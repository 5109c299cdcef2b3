/*
 * The failure policy (lib/health.c): restart here, fail over, give up.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "check_run.h"

static struct vmc_group_def *def_make(unsigned int max_failures, unsigned int period_s)
{
	struct vmc_group_def *d = NULL;
	char json[256], err[256];

	snprintf(json, sizeof(json),
		 "{\"name\":\"web1\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"},"
		 "\"failover\":{\"max_failures\":%u,\"period_s\":%u}}",
		 max_failures, period_s);
	ck_assert_int_eq(vmc_group_def_from_string(json, &d, err, sizeof(err)), 0);
	return d;
}

static const struct {
	const char *what;
	unsigned int max, period;
	struct vmc_failure history[4];
	size_t n;
	uint32_t node;
	uint64_t now;
	enum vmc_health_action want;
	const char *why;
} cases[] = {
	{ "first failure restarts in place", 3, 600, { { 0, 0 } }, 0, 2, 1000, VMC_HEALTH_RESTART_HERE,
	  "restarting on the same node" },
	{ "second failure on the same node fails over", 3, 600, { { 900, 2 } }, 1, 2, 1000,
	  VMC_HEALTH_FAIL_OVER, "failing over" },
	{ "an earlier failure on another node: restart here", 3, 600, { { 900, 1 } }, 1, 2, 1000,
	  VMC_HEALTH_RESTART_HERE, "2 of 3" },
	{ "a failure older than the period is forgotten", 3, 600, { { 300, 2 } }, 1, 2, 1000,
	  VMC_HEALTH_RESTART_HERE, "1 of 3" },
	{ "exactly at the period's edge counts as gone", 3, 600, { { 400, 2 } }, 1, 2, 1000,
	  VMC_HEALTH_RESTART_HERE, "1 of 3" },
	{ "max_failures reached is still allowed", 3, 600, { { 990, 1 }, { 995, 3 } }, 2, 2, 1000,
	  VMC_HEALTH_RESTART_HERE, "3 of 3" },
	{ "one more than max_failures gives up", 3, 600, { { 990, 1 }, { 995, 3 }, { 998, 1 } }, 3, 2,
	  1000, VMC_HEALTH_GIVE_UP, "failover.max_failures (3)" },
	{ "max_failures 0 gives up at once", 0, 600, { { 0, 0 } }, 0, 1, 1000, VMC_HEALTH_GIVE_UP,
	  "failed 1 times" },
	{ "a clock ahead on another node does not count as recent", 3, 600, { { 5000, 2 } }, 1, 2, 1000,
	  VMC_HEALTH_RESTART_HERE, "1 of 3" },
};

START_TEST(test_health_case)
{
	struct vmc_group_def *d = def_make(cases[_i].max, cases[_i].period);
	char why[256] = "";
	enum vmc_health_action got = vmc_health_on_failure(d, cases[_i].history, cases[_i].n,
							   cases[_i].node, cases[_i].now, why, sizeof(why));

	ck_assert_msg(got == cases[_i].want, "%s: got %s (%s)", cases[_i].what,
		      vmc_health_action_to_str(got), why);
	ck_assert_msg(strstr(why, cases[_i].why) != NULL, "%s: '%s' lacks '%s'", cases[_i].what, why,
		      cases[_i].why);
	vmc_group_def_free(d);
}
END_TEST

START_TEST(test_record_keeps_the_newest)
{
	struct vmc_failure h[VMC_FAILURES_KEPT];
	size_t n = 0;

	for (uint64_t t = 1; t <= VMC_FAILURES_KEPT + 5; t++) {
		vmc_health_record(h, &n, (uint32_t)(t % 3), t * 10);
	}
	ck_assert_uint_eq(n, VMC_FAILURES_KEPT);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_gt(h[i].at_s, 50); /* the five oldest (10..50) were dropped */
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("policy");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_health_case, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_record_keeps_the_newest);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
