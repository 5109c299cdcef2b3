/*
 * What every module may do to the daemon as a whole: stop it.
 */
#include "config.h"

#include "context.h"

void vmcd_shutdown(struct vmcd *d, int code)
{
	if (d->exit_code == 0) {
		d->exit_code = code;
	}
	qb_loop_stop(d->loop);
}
