/*
 * Cluster-wide settings (lib/settings.c): defaults, `cluster set`,
 * validation as a whole, the snapshot codec, the status warning.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"
#include "check_run.h"

static int set(const struct vmc_settings *cur, struct vmc_settings *out, char *err, const char *a,
	       const char *b)
{
	const char *list[2] = { a, b };

	return vmc_settings_set(cur, list, b ? 2 : 1, out, err, 256);
}

START_TEST(test_defaults)
{
	struct vmc_settings s;

	vmc_settings_defaults(&s);
	ck_assert_int_eq(s.fence_method, VMC_FENCE_UNSET);
	ck_assert_uint_eq(s.fence_timeout_s, VMC_FENCE_TIMEOUT_S_DEFAULT);
	ck_assert_int_eq(s.accel, VMC_ACCEL_AUTO);
	ck_assert_str_eq(s.fence_agent, "");
	ck_assert_ptr_nonnull(strstr(vmc_settings_warning(&s), "not configured"));
}
END_TEST

START_TEST(test_set_valid_values)
{
	struct vmc_settings s, out;
	char err[256];

	vmc_settings_defaults(&s);
	ck_assert_int_eq(set(&s, &out, err, "fence_method=agent", "fence_agent=/usr/sbin/fence_x"), 0);
	ck_assert_int_eq(out.fence_method, VMC_FENCE_AGENT);
	ck_assert_str_eq(out.fence_agent, "/usr/sbin/fence_x");
	ck_assert_ptr_null(vmc_settings_warning(&out));
	ck_assert_int_eq(set(&out, &s, err, "accel=tcg", "fence_timeout_s=3600"), 0);
	ck_assert_int_eq(s.accel, VMC_ACCEL_TCG);
	ck_assert_uint_eq(s.fence_timeout_s, 3600);
	ck_assert_int_eq(set(&s, &out, err, "fence_method=none", NULL), 0);
	ck_assert_ptr_nonnull(strstr(vmc_settings_warning(&out), "disabled"));
}
END_TEST

static const struct {
	const char *a, *b, *field;
} refusals[] = {
	{ "fence_method=maybe", NULL, "'fence_method'" },
	{ "fence_method=unset", NULL, "'fence_method'" },
	{ "fence_method=agent", NULL, "fence_method=agent needs one" },
	{ "fence_agent=relative/fence", NULL, "not an absolute path" },
	{ "fence_timeout_s=0", NULL, "'fence_timeout_s'" },
	{ "fence_timeout_s=3601", NULL, "'fence_timeout_s'" },
	{ "fence_timeout_s=+5", NULL, "'fence_timeout_s'" },
	{ "fence_timeout_s=5s", NULL, "'fence_timeout_s'" },
	{ "accel=xen", NULL, "'accel'" },
	{ "colour=blue", NULL, "'colour': unknown" },
	{ "=x", NULL, "not KEY=VALUE" },
	{ "accel", NULL, "not KEY=VALUE" },
	{ "accel=tcg", "fence_method=bogus", "'fence_method'" },
};

START_TEST(test_set_refusals_change_nothing)
{
	struct vmc_settings s, out;
	char err[256] = "";

	vmc_settings_defaults(&s);
	memset(&out, 0x5a, sizeof(out));
	ck_assert_int_ne(set(&s, &out, err, refusals[_i].a, refusals[_i].b), 0);
	ck_assert_msg(strstr(err, refusals[_i].field) != NULL, "'%s': error '%s' lacks '%s'",
		      refusals[_i].a, err, refusals[_i].field);
	ck_assert_uint_eq(((unsigned char *)&out)[0], 0x5a); /* out untouched */
}
END_TEST

START_TEST(test_json_round_trip_and_defaults)
{
	struct vmc_settings s, back, out;
	char err[256];
	json_object *o;

	vmc_settings_defaults(&s);
	ck_assert_int_eq(set(&s, &out, err, "fence_method=agent", "fence_agent=/sbin/f"), 0);
	o = vmc_settings_to_json(&out);
	ck_assert_int_eq(vmc_settings_from_json(o, &back, err, sizeof(err)), 0);
	ck_assert_mem_eq(&back, &out, sizeof(back));
	json_object_put(o);

	o = json_tokener_parse("{}");
	ck_assert_int_eq(vmc_settings_from_json(o, &back, err, sizeof(err)), 0);
	ck_assert_mem_eq(&back, &s, sizeof(back));
	json_object_put(o);

	o = json_tokener_parse("{\"fence_method\":\"agent\",\"fence_agent\":\"\"}");
	ck_assert_int_ne(vmc_settings_from_json(o, &back, err, sizeof(err)), 0);
	json_object_put(o);
	o = json_tokener_parse("{\"fence_timeout_s\":[1]}");
	ck_assert_int_ne(vmc_settings_from_json(o, &back, err, sizeof(err)), 0);
	json_object_put(o);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("settings");
	TCase *tc = tcase_create("settings");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_set_valid_values);
	tcase_add_loop_test(tc, test_set_refusals_change_nothing, 0,
			    (int)(sizeof(refusals) / sizeof(refusals[0])));
	tcase_add_test(tc, test_json_round_trip_and_defaults);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
