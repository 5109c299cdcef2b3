/*
 * Cluster-wide settings (lib/settings.c): defaults, `cluster set`,
 * validation as a whole, the snapshot codec, the status warning.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "failback.h"
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
	{ "timezone=../../etc/passwd", NULL, "'timezone'" },
	{ "timezone=Europe/Ber lin", NULL, "'timezone'" },
	{ "timezone=", NULL, "'timezone'" },
	{ "quarantine_threshold=9", NULL, "'quarantine_threshold'" },
	{ "quarantine_duration_s=0", NULL, "'quarantine_duration_s'" },
	{ "failback_delay_s=-1", NULL, "'failback_delay_s'" },
	{ "shutdown_policy=hibernate", NULL, "'shutdown_policy'" },
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

START_TEST(test_node_settings_round_trip)
{
	struct vmc_settings s, out, back;
	const char *a[] = { "failback_delay_s=0", "quarantine_threshold=5", "quarantine_duration_s=600",
			    "timezone=America/New_York", "shutdown_policy=freeze" };
	char err[256];
	json_object *o;

	vmc_settings_defaults(&s);
	ck_assert_uint_eq(s.failback_delay_s, 60);
	ck_assert_uint_eq(s.quarantine_threshold, 3);
	ck_assert_uint_eq(s.quarantine_duration_s, 7200);
	ck_assert_str_eq(s.timezone, "UTC");
	ck_assert_int_eq(s.shutdown_policy, VMC_SHUTDOWN_MIGRATE);
	/* At their defaults they are not in the snapshot: older digests stay. */
	o = vmc_settings_to_json(&s);
	ck_assert(!json_object_object_get_ex(o, "timezone", NULL));
	ck_assert(!json_object_object_get_ex(o, "shutdown_policy", NULL));
	json_object_put(o);
	ck_assert_int_eq(vmc_settings_set(&s, a, 5, &out, err, sizeof(err)), 0);
	ck_assert(vmc_settings_nodes_changed(&s, &out));
	ck_assert_str_eq(vmc_shutdown_policy_to_str(out.shutdown_policy), "freeze");
	o = vmc_settings_to_json(&out);
	ck_assert_int_eq(vmc_settings_from_json(o, &back, err, sizeof(err)), 0);
	ck_assert_mem_eq(&back, &out, sizeof(back));
	json_object_put(o);
}
END_TEST

/* Failback windows are hours of the cluster's zone; a zone this host lacks is no hour at all. */
START_TEST(test_zone_minute_of_day)
{
	ck_assert_int_eq(vmc_zone_minute_of_day("UTC", 0), 0);
	ck_assert_int_eq(vmc_zone_minute_of_day("UTC", 25 * 3600 + 61), 61);
	ck_assert_int_eq(vmc_zone_minute_of_day("Nowhere/Atlantis", 0), -1);
	if (access("/usr/share/zoneinfo/Asia/Kolkata", R_OK) == 0) {
		char was[64];
		snprintf(was, sizeof(was), "%s", getenv("TZ") ? getenv("TZ") : "(unset)");
		ck_assert_int_eq(vmc_zone_minute_of_day("Asia/Kolkata", 0), 5 * 60 + 30);
		/* and the process's own zone is as it was */
		ck_assert_str_eq(getenv("TZ") ? getenv("TZ") : "(unset)", was);
	}
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
	tcase_add_test(tc, test_node_settings_round_trip);
	tcase_add_test(tc, test_zone_minute_of_day);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
