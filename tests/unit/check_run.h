/*
 * The end of every check suite's main(): run the suite, exit non-zero when
 * anything failed (automake's test driver reads the exit status).
 */
#ifndef VMC_CHECK_RUN_H
#define VMC_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

static inline int check_suite_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
