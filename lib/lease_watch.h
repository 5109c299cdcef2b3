/*
 * The arithmetic of host leases, on this node's clock only (timeouts.h
 * has the timeline).
 *
 * Watching another node's slot (a survivor proving a lost node dead): a
 * watch begins when the node is lost; reads that started before do not
 * count. A value is first seen when the read that returned it
 * *completed* (it was written no later than that, and its writer's own
 * deadlines run from before it wrote). The lease has expired once a read
 * that *started* lease_timeout_ms after that first sight still returns
 * the same value: nothing was written in between. Any other value — a
 * renewal, a slot gone corrupt, a restarted writer — begins the count
 * again.
 *
 * Renewing this node's own slot: what the last attempts did gives the
 * volume's health here (ok, failing with an errno, hung while an I/O is
 * out for longer than lease_io_ms) and the time of the last success, from
 * which the kill and watchdog deadlines run.
 */
#ifndef VMC_LEASE_WATCH_H
#define VMC_LEASE_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "lease_slot.h"
#include "timeouts.h"

struct vmc_lease_watch {
	uint64_t begin_ms;     /* reads started before are ignored */
	bool have;             /* a value was seen since */
	enum vmc_lease_decode kind;
	struct vmc_lease_slot value;  /* when kind is valid */
	uint32_t raw_crc;      /* of the whole block, when it is not */
	uint64_t seen_ms;      /* the first read returning it completed */
	uint64_t confirmed_ms; /* the latest read returning it started */
	uint32_t changes;      /* values seen since begin_ms, for the log */
};

void vmc_lease_watch_begin(struct vmc_lease_watch *w, uint64_t begin_ms);
/* One read of the slot: the block read, when it started and completed. */
void vmc_lease_watch_read(struct vmc_lease_watch *w, const uint8_t *block, uint64_t started_ms,
			  uint64_t done_ms);
bool vmc_lease_watch_expired(const struct vmc_lease_watch *w, const struct vmc_timeouts *t);
/* How long at least until it can have expired, counted from now_ms. */
uint64_t vmc_lease_watch_remaining_ms(const struct vmc_lease_watch *w, const struct vmc_timeouts *t,
				      uint64_t now_ms);

enum vmc_volume_health {
	VMC_VOLUME_UNKNOWN = 0,  /* no renewal finished yet */
	VMC_VOLUME_OK,
	VMC_VOLUME_FAILING,      /* the last attempt failed: errno */
	VMC_VOLUME_HUNG,         /* an I/O is out for longer than lease_io_ms */
};

struct vmc_lease_renewal {
	bool ever_ok;
	uint64_t ok_ms;          /* the last successful renewal started */
	bool in_flight;
	uint64_t in_flight_ms;   /* ... the one out now started */
	int last_err;            /* of the last attempt that finished, 0 when it worked */
	char last_why[160];
};

void vmc_lease_renewal_started(struct vmc_lease_renewal *r, uint64_t now_ms);
/* err 0: written and read back intact; why says what failed otherwise. */
void vmc_lease_renewal_done(struct vmc_lease_renewal *r, uint64_t started_ms, int err, const char *why);
enum vmc_volume_health vmc_lease_renewal_health(const struct vmc_lease_renewal *r,
						const struct vmc_timeouts *t, uint64_t now_ms);

const char *vmc_volume_health_to_str(enum vmc_volume_health h);
int vmc_volume_health_from_str(const char *s, enum vmc_volume_health *out);

#endif
