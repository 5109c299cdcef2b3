/*
 * Adaptive migration concurrency (mig_window.h). Pure.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "mig_window.h"

#define HOLD_MS 2000
#define IDLE_RESET_MS 60000
#define CONVERGE_MARGIN 1.2
#define ROOM 1.1
#define WORSE 0.9
#define SMOOTH 0.5

static uint32_t start_of(uint32_t cap)
{
	return cap < VMC_MIG_WINDOW_START ? cap : VMC_MIG_WINDOW_START;
}

void vmc_mig_window_init(struct vmc_mig_window *w, uint32_t cap)
{
	memset(w, 0, sizeof(*w));
	w->window = start_of(cap);
}

bool vmc_mig_sample_stalls(const struct vmc_mig_sample *s)
{
	return s->pass >= 2 && s->rate_mib_s < CONVERGE_MARGIN * s->dirty_mib_s;
}

static bool set(struct vmc_mig_window *w, uint32_t to, int64_t now_ms, const char *why)
{
	if (to == w->window) {
		return false;
	}
	w->window = to;
	w->changed_ms = now_ms;
	snprintf(w->why, sizeof(w->why), "%s", why);
	return true;
}

bool vmc_mig_window_update(struct vmc_mig_window *w, const struct vmc_mig_sample *s, size_t n, uint32_t cap,
			   int64_t now_ms)
{
	double total = 0;
	bool stalled = false;

	if (cap == 0) {
		cap = 1;
	}
	if (w->window > cap) {
		return set(w, cap, now_ms, "the cap (migration max_parallel) is lower now");
	}
	if (n == 0) {
		if (w->idle_since_ms == 0) {
			w->idle_since_ms = now_ms;
		} else if (now_ms - w->idle_since_ms >= IDLE_RESET_MS) {
			memset(w->rate_with, 0, sizeof(w->rate_with));
			return set(w, start_of(cap), now_ms, "no migration for a minute: starting over");
		}
		return false;
	}
	w->idle_since_ms = 0;
	for (size_t i = 0; i < n; i++) {
		total += s[i].rate_mib_s;
		stalled = stalled || vmc_mig_sample_stalls(&s[i]);
	}
	if (n <= VMC_MIGRATION_MAX_PARALLEL_MAX && total > 0) {
		double *r = &w->rate_with[n];
		*r = *r == 0 ? total : SMOOTH * *r + (1 - SMOOTH) * total;
	}
	if (now_ms - w->changed_ms < HOLD_MS) {
		return false;
	}
	if (stalled && w->window > 1) {
		return set(w, n > 1 ? (uint32_t)n - 1 : 1, now_ms, "a migration copies less than its guest dirties");
	}
	if (stalled || n < w->window || n > VMC_MIGRATION_MAX_PARALLEL_MAX) {
		return false;
	}
	/* The window is full and everything converges. */
	if (w->window < cap && (w->window == 1 || w->rate_with[w->window - 1] == 0 ||
				w->rate_with[w->window] > ROOM * w->rate_with[w->window - 1])) {
		return set(w, w->window + 1, now_ms, "all converge, and the last one added raised the total rate");
	}
	if (w->window > 1 && w->rate_with[w->window - 1] > 0 &&
	    w->rate_with[w->window] < WORSE * w->rate_with[w->window - 1]) {
		return set(w, w->window - 1, now_ms, "the last one added lowered the total rate");
	}
	return false;
}
