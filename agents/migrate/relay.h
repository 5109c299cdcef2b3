/*
 * The encrypted relay of one migration: QEMU's stream between the agent's
 * end of a socketpair to QEMU (plain) and the TCP connection to the peer
 * agent (net), sealed in records (lib/migrate_record.h) each way.
 *
 *   QEMU <-plain-> [sender:   read, seal, write ] --net--> peer agent
 *                  [receiver: read, open, write ] <-net--
 *
 * Two threads, one per direction, each blocking in its own read and
 * write with one buffer of VMC_MIG_SEALED_MAX bytes: a read from QEMU is
 * sealed in place and written as one record; a record is opened in place
 * and written to QEMU. So one relay costs two threads and 0.5 MiB, and
 * nothing is allocated once it runs. The threads do not use the agent's
 * main loop: a migration stream runs at gigabytes a second, which a loop
 * shared with the agent's control traffic would only slow down.
 *
 * How each direction ends:
 * - clean: QEMU closes its side (the read returns 0): the sender writes
 *   the close record and shuts down net for writing. The close record
 *   arrives: the receiver shuts down plain for writing, so QEMU reads its
 *   end of stream. The relay is done-clean once both directions are.
 * - failed: a record that fails authentication, a length above the
 *   maximum, the peer's end of stream without a close record (cut short:
 *   never a clean end), an I/O error either side, or vmc_relay_abort().
 *   The first failure is kept with a one-line reason; both sockets are
 *   shut down both ways at once, so the other direction ends as well and
 *   QEMU sees its stream end (and fails the migration) rather than wait.
 *   A direction whose QEMU already closed still sends its close record:
 *   what it carried was complete.
 *
 * The relay never closes the descriptors it is given (the caller does,
 * after vmc_relay_free); it makes them blocking, sets TCP_NODELAY on net
 * (each record is written whole, so Nagle only delays a record's tail,
 * and QEMU's return path is request and answer) and blocks all signals
 * in its threads, so they go to the agent's.
 *
 * vmc_relay_wait, vmc_relay_abort and vmc_relay_free are called from one
 * thread (the agent's); the byte counters and vmc_relay_error from any.
 */
#ifndef VMC_RELAY_H
#define VMC_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "migrate_record.h"

struct vmc_relay;

struct vmc_relay_config {
	int plain_fd;             /* the agent's end of the socketpair to QEMU */
	int net_fd;               /* to the peer agent, already authenticated */
	struct vmc_mig_key tx;    /* seals what QEMU writes */
	struct vmc_mig_key rx;    /* opens what the peer sends */
	/* Most bytes read from QEMU per record, 1 to VMC_MIG_RECORD_MAX; 0: the maximum. */
	size_t read_max;
};

/*
 * Starts both threads. 0 and *out, or -EINVAL (config), -ENOMEM, -EIO
 * (libcrypto), or what pthread_create or fcntl failed with. The keys are
 * copied into the cipher contexts; the caller may wipe config.
 */
int vmc_relay_start(const struct vmc_relay_config *config, struct vmc_relay **out);

/*
 * Waits up to timeout_ms (negative: without a deadline) for both
 * directions to end. 0: both ended clean; -ETIMEDOUT: still running;
 * -EPROTO: the stream was damaged, forged or cut short; -EIO: a read or
 * write failed; -ECANCELED: vmc_relay_abort(). vmc_relay_error() then
 * says which and why. Once it has returned anything but -ETIMEDOUT, it
 * returns the same at once.
 */
int vmc_relay_wait(struct vmc_relay *r, int timeout_ms);
/* The one-line reason of the first failure; "" while there is none. */
const char *vmc_relay_error(struct vmc_relay *r);

/* Ends both directions now (a failure, -ECANCELED, unless one came first) and joins the threads. */
void vmc_relay_abort(struct vmc_relay *r);

/* Plaintext bytes carried so far: sealed and written to the peer, opened and written to QEMU. */
uint64_t vmc_relay_bytes_sent(const struct vmc_relay *r);
uint64_t vmc_relay_bytes_received(const struct vmc_relay *r);

/* Aborts the relay if it still runs, then frees it. NULL is fine. */
void vmc_relay_free(struct vmc_relay *r);

#endif
