/*
 * Pacemaker's view as clusterctl reads it (cli/pacemaker.h), from CIBs
 * saved with cibadmin -Q off a test cluster (tests/pacemaker/cib): which
 * node runs each VMGroup resource and which group it names, its target
 * role, failed and managed flags, and the nodes pacemaker has online or in
 * standby. libpe_status works the status section out, as crm_mon would.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include <crm/crm.h>
#include <crm/common/xml.h>

#include "pacemaker.h"
#include "check_run.h"

#define CIB_DIR TEST_DATA_DIR "/../../pacemaker/cib/"

static struct pcmk_view view;

static void view_load(const char *name)
{
	char path[512], err[256] = "";
	xmlNode *cib;

	snprintf(path, sizeof(path), "%s%s", CIB_DIR, name);
	cib = filename2xml(path);
	ck_assert_msg(cib != NULL, "cannot read %s", path);
	ck_assert_msg(pcmk_view_from_cib(cib, &view, err, sizeof(err)) == 0, "%s: %s", name, err);
}

static void teardown(void)
{
	pcmk_view_free(&view);
}

START_TEST(test_a_running_resource_names_its_node_and_group)
{
	const struct pcmk_rsc *r;

	view_load("running-standby.xml");
	ck_assert_uint_eq(view.n_rscs, 2);
	r = pcmk_view_group(&view, "db1");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->id, "d1");
	ck_assert_str_eq(r->target_role, "Started");
	ck_assert_uint_eq(r->n_running, 1);
	ck_assert_str_eq(r->running_on[0], "node3");
	ck_assert(!r->failed);
	ck_assert(r->managed);
	/* The resource's id is not a group name. */
	ck_assert_ptr_null(pcmk_view_group(&view, "d1"));
}
END_TEST

START_TEST(test_a_stopped_target_role_runs_nowhere)
{
	const struct pcmk_rsc *r;

	view_load("running-standby.xml");
	r = pcmk_view_group(&view, "web1");
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->target_role, "Stopped");
	ck_assert_uint_eq(r->n_running, 0);
}
END_TEST

START_TEST(test_standby_nodes_are_online_and_in_standby)
{
	const struct pcmk_node *n2, *n3;

	view_load("running-standby.xml");
	ck_assert_uint_eq(view.n_nodes, 3);
	n2 = pcmk_view_node(&view, "node2");
	n3 = pcmk_view_node(&view, "node3");
	ck_assert_ptr_nonnull(n2);
	ck_assert_ptr_nonnull(n3);
	ck_assert(n2->online && n2->standby && !n2->unclean);
	ck_assert(n3->online && !n3->standby);
	ck_assert_ptr_null(pcmk_view_node(&view, "node4"));
}
END_TEST

START_TEST(test_a_failed_monitor_marks_the_resource_failed)
{
	const struct pcmk_rsc *d1, *web1;

	view_load("failed-monitor.xml");
	d1 = pcmk_view_group(&view, "db1");
	web1 = pcmk_view_group(&view, "web1");
	ck_assert_ptr_nonnull(d1);
	ck_assert_ptr_nonnull(web1);
	ck_assert(d1->failed);
	ck_assert(d1->managed);
	ck_assert(!web1->failed);
	ck_assert(!web1->managed);
}
END_TEST

START_TEST(test_only_vmgroup_resources_are_listed)
{
	view_load("target-role-stopped.xml");
	/* d1 is an ocf:pacemaker:Dummy here, and the fence device is no VMGroup either. */
	ck_assert_uint_eq(view.n_rscs, 1);
	ck_assert_str_eq(view.rscs[0].id, "web1");
	ck_assert_ptr_null(pcmk_view_group(&view, "db1"));
	ck_assert(!pcmk_view_node(&view, "node2")->standby);
}
END_TEST

START_TEST(test_the_json_of_a_resource)
{
	json_object *o;

	view_load("running-standby.xml");
	o = pcmk_rsc_to_json(pcmk_view_group(&view, "db1"));
	ck_assert_str_eq(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			 "{\"resource\":\"d1\",\"running_on\":[\"node3\"],\"target_role\":\"Started\","
			 "\"failed\":false,\"managed\":true}");
	json_object_put(o);
}
END_TEST

static Suite *pacemaker_view_suite(void)
{
	Suite *s = suite_create("pacemaker_view");
	TCase *tc = tcase_create("cib");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_a_running_resource_names_its_node_and_group);
	tcase_add_test(tc, test_a_stopped_target_role_runs_nowhere);
	tcase_add_test(tc, test_standby_nodes_are_online_and_in_standby);
	tcase_add_test(tc, test_a_failed_monitor_marks_the_resource_failed);
	tcase_add_test(tc, test_only_vmgroup_resources_are_listed);
	tcase_add_test(tc, test_the_json_of_a_resource);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_suite_run(pacemaker_view_suite());
}
