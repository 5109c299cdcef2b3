/*
 * Unit tests of the timeline (lib/timeouts.h): every deadline follows from
 * the operator's inputs, the orderings hold over a range of corosync
 * tokens, and the check catches a timeline that breaks one.
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "timeouts.h"
#include "check_run.h"

START_TEST(test_defaults)
{
	struct vmc_timeouts t;
	char why[256];

	vmc_timeouts_derive(&t, 0, 60, 30, 0);
	ck_assert_uint_eq(t.token_ms, VMC_TOKEN_MS_DEFAULT);
	ck_assert_uint_eq(t.membership_ms, 2200);
	ck_assert_uint_eq(t.hello_deadline_ms, 10000);
	ck_assert_uint_eq(t.daemon_grace_ms, 30000);
	ck_assert_uint_eq(t.fence_run_ms, 60000);
	ck_assert_uint_eq(t.stop_timeout_ms, 30000);
	ck_assert_int_eq(vmc_timeouts_check(&t, why, sizeof(why)), 0);
}
END_TEST

START_TEST(test_orderings_hold_for_any_token)
{
	static const uint32_t tokens[] = { 1, 300, 1000, 3000, 10000, 60000 };
	struct vmc_timeouts t;
	char why[256];

	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		vmc_timeouts_derive(&t, tokens[i], 1, 0, 0);
		ck_assert_msg(vmc_timeouts_check(&t, why, sizeof(why)) == 0, "token %u: %s", tokens[i], why);
		ck_assert_uint_ge(t.hello_deadline_ms, tokens[i] * VMC_HELLO_DEADLINE_TOKENS);
		ck_assert_uint_ge(t.daemon_grace_ms, 3 * t.hello_deadline_ms);
	}
}
END_TEST

START_TEST(test_check_catches_a_broken_timeline)
{
	struct vmc_timeouts t;
	char why[256] = "";

	vmc_timeouts_derive(&t, 1000, 60, 30, 0);
	t.daemon_grace_ms = t.hello_deadline_ms;
	ck_assert_int_ne(vmc_timeouts_check(&t, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(strstr(why, "daemon"));
}
END_TEST

START_TEST(test_huge_inputs_saturate)
{
	struct vmc_timeouts t;

	vmc_timeouts_derive(&t, UINT32_MAX, UINT32_MAX, UINT32_MAX, 0);
	ck_assert_uint_eq(t.fence_timeout_ms, UINT32_MAX);
	ck_assert_uint_eq(t.hello_deadline_ms, UINT32_MAX);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("timeouts");
	TCase *tc = tcase_create("timeline");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_orderings_hold_for_any_token);
	tcase_add_test(tc, test_check_catches_a_broken_timeline);
	tcase_add_test(tc, test_huge_inputs_saturate);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
