/*
 * The log ring (logring.h): a libqb custom log target that keeps the last
 * N formatted events in a fixed array of fixed-size slots, so logging
 * never allocates.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <qb/qblog.h>

#include "logring.h"

#define SLOT_LEN 480

static char (*slots)[SLOT_LEN];
static size_t n_slots;
static size_t next_slot;   /* where the next event goes */
static unsigned long long written;
static int32_t target = -1;

static const char *level_name(uint8_t priority)
{
	static const char *const names[] = { "emerg", "alert", "crit", "error",
					     "warning", "notice", "info", "debug" };

	return priority < sizeof(names) / sizeof(names[0]) ? names[priority] : "debug";
}

static void ring_log(int32_t t, struct qb_log_callsite *cs, struct timespec *ts, const char *msg)
{
	struct tm tm;
	char stamp[32];
	time_t sec = ts != NULL ? ts->tv_sec : time(NULL);

	gmtime_r(&sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(slots[next_slot], SLOT_LEN, "%s.%03ldZ %s: %s", stamp, ts != NULL ? ts->tv_nsec / 1000000 : 0L,
		 level_name(cs->priority), msg);
	next_slot = (next_slot + 1) % n_slots;
	written++;
}

int vmcd_logring_init(size_t lines)
{
	slots = calloc(lines, sizeof(*slots));
	if (slots == NULL) {
		return -ENOMEM;
	}
	n_slots = lines;
	target = qb_log_custom_open(ring_log, NULL, NULL, NULL);
	if (target < 0) {
		free(slots);
		slots = NULL;
		return target;
	}
	qb_log_filter_ctl(target, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_DEBUG);
	qb_log_ctl(target, QB_LOG_CONF_ENABLED, QB_TRUE);
	return 0;
}

json_object *vmcd_logring_to_json(size_t last)
{
	json_object *o = json_object_new_object();
	json_object *a = json_object_new_array();
	size_t held = written < n_slots ? (size_t)written : n_slots;
	size_t from = held > last ? held - last : 0;

	for (size_t i = from; i < held; i++) {
		size_t slot = (next_slot + n_slots - held + i) % n_slots;
		json_object_array_add(a, json_object_new_string(slots[slot]));
	}
	json_object_object_add(o, "events", a);
	json_object_object_add(o, "dropped", json_object_new_int64((int64_t)(written - (held - from))));
	return o;
}

void vmcd_logring_fini(void)
{
	if (target >= 0) {
		qb_log_custom_close(target);
		target = -1;
	}
	free(slots);
	slots = NULL;
	n_slots = next_slot = 0;
	written = 0;
}
