/*
 * Unit tests of the group lifecycle table (lib/group_fsm.h): the rows a
 * migration needs, refusals that name the state and the event and change
 * nothing, attempts raised exactly on entering starting, and the whole
 * table checked pair by pair against the list below, so a row added or
 * lost by accident fails here.
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "group_fsm.h"
#include "vmc_errors.h"
#include "check_run.h"

#define OFF VMC_GROUP_OFFLINE
#define STA VMC_GROUP_STARTING
#define ONL VMC_GROUP_ONLINE
#define STP VMC_GROUP_STOPPING
#define MIG VMC_GROUP_MIGRATING
#define FLD VMC_GROUP_FAILED
#define NONE (-1)

/* next[state][event]: the state it goes to, or NONE where it is refused. */
static const int next_of[6][VMC_GEV_COUNT] = {
	/*            start stop run  stopd rhere fover gvup  dstp  sfenc recov rnone rleav adopt mig   migd  mrbk  reloc */
	[OFF] = { STA,  OFF,  NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE },
	[STA] = { NONE, STP,  ONL,  OFF,  STA,  STA,  FLD,  NONE, STA,  STA,  FLD,  OFF,  ONL,  NONE, NONE, NONE, NONE },
	[ONL] = { NONE, STP,  ONL,  OFF,  STA,  STA,  FLD,  NONE, STA,  STA,  FLD,  OFF,  ONL,  MIG,  NONE, NONE, STP  },
	[STP] = { NONE, STP,  STP,  OFF,  NONE, NONE, NONE, OFF,  OFF,  NONE, NONE, OFF,  STP,  NONE, NONE, NONE, NONE },
	[MIG] = { NONE, STP,  MIG,  OFF,  STA,  STA,  FLD,  NONE, STA,  STA,  FLD,  OFF,  ONL,  NONE, ONL,  ONL,  NONE },
	[FLD] = { STA,  OFF,  NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE },
};

static char def_name[] = "web1";
static struct vmc_group_def def = { .name = def_name };

static struct vmc_group group_in(enum vmc_group_state st)
{
	struct vmc_group g = { .def = &def, .owner = 1, .state = st, .attempt = 7 };

	return g;
}

START_TEST(test_table_pair_by_pair)
{
	char detail[256];

	for (int st = OFF; st <= FLD; st++) {
		for (int ev = 0; ev < VMC_GEV_COUNT; ev++) {
			struct vmc_group g = group_in((enum vmc_group_state)st);
			int rc = vmc_group_transition(&g, (enum vmc_group_event)ev, detail, sizeof(detail));
			int want = next_of[st][ev];

			ck_assert_msg(vmc_group_transition_allowed((enum vmc_group_state)st, (enum vmc_group_event)ev) ==
					      (want != NONE),
				      "allowed(%s, %s) disagrees", vmc_group_state_to_str((enum vmc_group_state)st),
				      vmc_group_event_to_str((enum vmc_group_event)ev));
			if (want == NONE) {
				ck_assert_msg(rc == -VMC_E_BUSY, "%s --%s--> taken, should be refused",
					      vmc_group_state_to_str((enum vmc_group_state)st),
					      vmc_group_event_to_str((enum vmc_group_event)ev));
				ck_assert_int_eq(g.state, st);
				ck_assert_uint_eq(g.attempt, 7);
			} else {
				ck_assert_msg(rc == 0 && (int)g.state == want, "%s --%s--> %s, want %s",
					      vmc_group_state_to_str((enum vmc_group_state)st),
					      vmc_group_event_to_str((enum vmc_group_event)ev),
					      vmc_group_state_to_str(g.state),
					      vmc_group_state_to_str((enum vmc_group_state)want));
				ck_assert_uint_eq(g.attempt, want == STA ? 8 : 7);
			}
		}
	}
}
END_TEST

START_TEST(test_refusal_names_state_and_event)
{
	struct vmc_group g = group_in(VMC_GROUP_ONLINE);
	char detail[256] = "";

	ck_assert_int_eq(vmc_group_transition(&g, VMC_GEV_START, detail, sizeof(detail)), -VMC_E_BUSY);
	ck_assert_ptr_nonnull(strstr(detail, "web1"));
	ck_assert_ptr_nonnull(strstr(detail, "start"));
	ck_assert_ptr_nonnull(strstr(detail, "online"));
}
END_TEST

START_TEST(test_migration_in_and_out)
{
	struct vmc_group g = group_in(VMC_GROUP_ONLINE);
	char detail[256];

	ck_assert_int_eq(vmc_group_transition(&g, VMC_GEV_MIGRATE, detail, sizeof(detail)), 0);
	ck_assert_int_eq(g.state, VMC_GROUP_MIGRATING);
	/* a second migration of a migrating group is refused */
	ck_assert_int_eq(vmc_group_transition(&g, VMC_GEV_MIGRATE, detail, sizeof(detail)), -VMC_E_BUSY);
	ck_assert_int_eq(vmc_group_transition(&g, VMC_GEV_MIGRATED, detail, sizeof(detail)), 0);
	ck_assert_int_eq(g.state, VMC_GROUP_ONLINE);
	ck_assert_int_eq(vmc_group_transition(&g, VMC_GEV_MIGRATE, detail, sizeof(detail)), 0);
	ck_assert_int_eq(vmc_group_transition(&g, VMC_GEV_MIGRATE_ROLLBACK, detail, sizeof(detail)), 0);
	ck_assert_int_eq(g.state, VMC_GROUP_ONLINE);
	/* a migration is never a new start attempt */
	ck_assert_uint_eq(g.attempt, 7);
	/* only an online group migrates */
	g.state = VMC_GROUP_STARTING;
	ck_assert_int_eq(vmc_group_transition(&g, VMC_GEV_MIGRATE, detail, sizeof(detail)), -VMC_E_BUSY);
}
END_TEST

START_TEST(test_every_state_can_be_stopped)
{
	char detail[256];

	for (int st = OFF; st <= FLD; st++) {
		struct vmc_group g = group_in((enum vmc_group_state)st);
		int steps = 0;

		while (g.state != VMC_GROUP_OFFLINE && steps++ < 3) {
			enum vmc_group_event ev = g.state == VMC_GROUP_STOPPING ? VMC_GEV_STOPPED : VMC_GEV_STOP;
			ck_assert_int_eq(vmc_group_transition(&g, ev, detail, sizeof(detail)), 0);
		}
		ck_assert_msg(g.state == VMC_GROUP_OFFLINE, "%s never reaches offline",
			      vmc_group_state_to_str((enum vmc_group_state)st));
	}
}
END_TEST

START_TEST(test_event_names)
{
	for (int ev = 0; ev < VMC_GEV_COUNT; ev++) {
		ck_assert_str_ne(vmc_group_event_to_str((enum vmc_group_event)ev), "unknown");
	}
	ck_assert_str_eq(vmc_group_event_to_str(VMC_GEV_COUNT), "unknown");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("group_fsm");
	TCase *tc = tcase_create("table");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_table_pair_by_pair);
	tcase_add_test(tc, test_refusal_names_state_and_event);
	tcase_add_test(tc, test_migration_in_and_out);
	tcase_add_test(tc, test_every_state_can_be_stopped);
	tcase_add_test(tc, test_event_names);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
