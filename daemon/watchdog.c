/*
 * The watchdog (watchdog.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "clock.h"
#include "leases.h"
#include "log.h"
#include "nodes.h"
#include "vm_qemu.h"
#include "watchdog.h"

#define RUNNING_MAX 256

static int wd_fd = -1;
static bool said_missing, said_stopped;
static qb_loop_timer_handle pet_timer;
static bool pet_armed;
static const struct vmcd_watchdog_hooks *wd_hooks;

/* May it be petted now? why says why not. */
static bool may_pet(struct vmcd *d, char *why, size_t len)
{
	const char *names[RUNNING_MAX];
	size_t n = vmcd_vm_list(names, RUNNING_MAX);

	if (n == 0) {
		return true; /* nothing here could write to a volume */
	}
	if (d->quorum_known && !d->quorate) {
		snprintf(why, len, "this node is not quorate and %zu VMs still run here", n);
		return false;
	}
	return vmcd_leases_allow_pet(d, names, n, why, len);
}

static void pet(void *data)
{
	struct vmcd *d = data;
	char why[256];

	pet_armed = false;
	if (wd_fd < 0) {
		return;
	}
	if (may_pet(d, why, sizeof(why))) {
		if (write(wd_fd, "p", 1) != 1 && errno != EAGAIN) {
			log_err("watchdog %s: cannot pet it: %s", d->opt.watchdog_device, strerror(errno));
		}
		if (said_stopped) {
			log_notice("watchdog %s: petted again", d->opt.watchdog_device);
			said_stopped = false;
		}
	} else if (!said_stopped) {
		log_err("watchdog %s: no longer petted (%s): it resets this node within %u ms unless that changes",
			 d->opt.watchdog_device, why, d->timeouts.watchdog_ms);
		said_stopped = true;
	}
	if (qb_loop_timer_add(d->loop, QB_LOOP_HIGH, (uint64_t)d->timeouts.watchdog_pet_ms * QB_TIME_NS_IN_MSEC, d,
			      pet, &pet_timer) == 0) {
		pet_armed = true;
	}
}

static void wd_open(struct vmcd *d)
{
	int timeout = (int)(d->timeouts.watchdog_ms / 1000), have = 0;

	wd_fd = open(d->opt.watchdog_device, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (wd_fd < 0) {
		if (!said_missing) {
			log_warn("watchdog %s: cannot open it (%s): this node holds no armed watchdog, so lost nodes "
				 "cannot be proven dead by their leases (load softdog, or set watchdog-device)",
				 d->opt.watchdog_device, strerror(errno));
			said_missing = true;
		}
		return;
	}
	if (ioctl(wd_fd, WDIOC_SETTIMEOUT, &timeout) == 0 && ioctl(wd_fd, WDIOC_GETTIMEOUT, &have) == 0) {
		log_notice("watchdog %s armed: resets this node %d s after the last pet", d->opt.watchdog_device,
			   have);
		if (have > timeout) {
			log_warn("watchdog %s: its timeout is %d s, above the lease timeline's %d s: lease "
				 "fencing counts on the timeline's", d->opt.watchdog_device, have, timeout);
		}
	} else {
		/* A FIFO (the test harness's emulator) or a device without the ioctls. */
		log_notice("watchdog %s armed (it takes no timeout ioctl: the timeline counts on %d s)",
			   d->opt.watchdog_device, timeout);
	}
	said_missing = false;
	d->watchdog_armed = true;
	pet(d);
	wd_hooks->changed(d);
}

void vmcd_watchdog_init(struct vmcd *d, const struct vmcd_watchdog_hooks *hooks)
{
	wd_hooks = hooks;
	vmcd_watchdog_reconcile(d);
}

void vmcd_watchdog_reconcile(struct vmcd *d)
{
	static uint64_t tried_ms;
	uint64_t now = vmc_now_ms();

	/* A restarted daemon must pet at once: its VMs' lease guarantee runs on. */
	if (wd_fd >= 0 || d->replica.state == NULL || d->replica.state->n_volumes == 0) {
		return;
	}
	if (tried_ms != 0 && now - tried_ms < 10000) {
		return;
	}
	tried_ms = now;
	wd_open(d);
}

void vmcd_watchdog_fini(struct vmcd *d)
{
	size_t running = vmcd_vm_count();

	if (pet_armed) {
		qb_loop_timer_del(d->loop, pet_timer);
		pet_armed = false;
	}
	if (wd_fd < 0) {
		return;
	}
	if (running == 0) {
		/* The magic close: nothing here needs resetting. */
		if (write(wd_fd, "V", 1) != 1) {
			log_warn("watchdog %s: cannot disarm it: %s", d->opt.watchdog_device, strerror(errno));
		} else {
			log_notice("watchdog %s disarmed (no VM runs here)", d->opt.watchdog_device);
		}
	} else {
		log_warn("watchdog %s left armed: %zu VMs run here; a vmclusterd must open it again within %u ms "
			 "or this node resets", d->opt.watchdog_device, running, d->timeouts.watchdog_ms);
	}
	close(wd_fd);
	wd_fd = -1;
	d->watchdog_armed = false;
}
