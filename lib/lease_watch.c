/*
 * Watching lease slots and tracking renewals (lease_watch.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lease_watch.h"

void vmc_lease_watch_begin(struct vmc_lease_watch *w, uint64_t begin_ms)
{
	memset(w, 0, sizeof(*w));
	w->begin_ms = begin_ms;
}

/* Is what the block holds the value the watch has? */
static bool watch_same(const struct vmc_lease_watch *w, enum vmc_lease_decode kind,
		       const struct vmc_lease_slot *slot, uint32_t raw_crc)
{
	if (kind != w->kind) {
		return false;
	}
	/* A valid value is compared field by field: consecutive renewals must
	 * never look alike, which a checksum alone does not promise. */
	return kind == VMC_LEASE_VALID ? vmc_lease_slot_same(slot, &w->value) : raw_crc == w->raw_crc;
}

void vmc_lease_watch_read(struct vmc_lease_watch *w, const uint8_t *block, uint64_t started_ms,
			  uint64_t done_ms)
{
	struct vmc_lease_slot slot = { 0 };
	char why[128];
	enum vmc_lease_decode kind;
	uint32_t raw_crc;

	if (started_ms < w->begin_ms || done_ms < started_ms) {
		return; /* from before the loss: proves nothing about after it */
	}
	kind = vmc_lease_slot_decode(block, VMC_LEASE_BLOCK, &slot, why, sizeof(why));
	raw_crc = kind == VMC_LEASE_VALID ? 0 : vmc_crc32c(block, VMC_LEASE_BLOCK);
	if (w->have && watch_same(w, kind, &slot, raw_crc)) {
		if (started_ms > w->confirmed_ms) {
			w->confirmed_ms = started_ms;
		}
		return;
	}
	w->have = true;
	w->kind = kind;
	w->value = slot;
	w->raw_crc = raw_crc;
	w->seen_ms = done_ms;
	w->confirmed_ms = done_ms; /* not evidence of anything yet */
	w->changes++;
}

bool vmc_lease_watch_expired(const struct vmc_lease_watch *w, const struct vmc_timeouts *t)
{
	return w->have && w->confirmed_ms > w->seen_ms && vmc_lease_expired(t, w->seen_ms, w->confirmed_ms);
}

uint64_t vmc_lease_watch_remaining_ms(const struct vmc_lease_watch *w, const struct vmc_timeouts *t,
				      uint64_t now_ms)
{
	if (!w->have) {
		return t->lease_timeout_ms;
	}
	if (vmc_lease_watch_expired(w, t)) {
		return 0;
	}
	return vmc_lease_remaining_ms(t, w->seen_ms, now_ms);
}

void vmc_lease_renewal_started(struct vmc_lease_renewal *r, uint64_t now_ms)
{
	r->in_flight = true;
	r->in_flight_ms = now_ms;
}

void vmc_lease_renewal_done(struct vmc_lease_renewal *r, uint64_t started_ms, int err, const char *why)
{
	r->in_flight = false;
	r->last_err = err;
	snprintf(r->last_why, sizeof(r->last_why), "%s", err != 0 && why != NULL ? why : "");
	if (err == 0 && (!r->ever_ok || started_ms > r->ok_ms)) {
		r->ever_ok = true;
		r->ok_ms = started_ms;
	}
}

enum vmc_volume_health vmc_lease_renewal_health(const struct vmc_lease_renewal *r,
						const struct vmc_timeouts *t, uint64_t now_ms)
{
	if (r->in_flight && now_ms >= r->in_flight_ms && now_ms - r->in_flight_ms > t->lease_io_ms) {
		return VMC_VOLUME_HUNG;
	}
	if (r->last_err != 0) {
		return VMC_VOLUME_FAILING;
	}
	return r->ever_ok ? VMC_VOLUME_OK : VMC_VOLUME_UNKNOWN;
}

static const char *const health_names[] = {
	[VMC_VOLUME_UNKNOWN] = "unknown",
	[VMC_VOLUME_OK] = "ok",
	[VMC_VOLUME_FAILING] = "failing",
	[VMC_VOLUME_HUNG] = "hung",
};

const char *vmc_volume_health_to_str(enum vmc_volume_health h)
{
	return (size_t)h < sizeof(health_names) / sizeof(health_names[0]) ? health_names[h] : "unknown";
}

int vmc_volume_health_from_str(const char *s, enum vmc_volume_health *out)
{
	for (size_t i = 0; i < sizeof(health_names) / sizeof(health_names[0]); i++) {
		if (strcmp(s, health_names[i]) == 0) {
			*out = (enum vmc_volume_health)i;
			return 0;
		}
	}
	return -EINVAL;
}
