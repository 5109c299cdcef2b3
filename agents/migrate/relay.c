/*
 * The relay's two threads (relay.h). Each owns its cipher state and its
 * buffer; what they share is under mu: the first failure and how many
 * directions have ended. The byte counters are atomics so progress can
 * be read at any time without taking the lock on every record.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "relay.h"

#define WHY_LEN 160
#define DIRECTIONS 2

struct vmc_relay {
	int plain_fd, net_fd;
	size_t read_max;
	struct vmc_mig_sealer sealer;   /* the sender's own */
	struct vmc_mig_opener opener;   /* the receiver's own */
	uint8_t *send_buf, *recv_buf;   /* VMC_MIG_SEALED_MAX each */
	pthread_t sender, receiver;
	int started;                    /* threads created (0 to 2) */
	bool joined;
	_Atomic uint64_t bytes_sent, bytes_received;
	/* Set before the sockets are shut down: a read that shutdown ends is not QEMU's close. */
	atomic_bool failed;
	pthread_mutex_t mu;
	pthread_cond_t ended_cv;        /* on CLOCK_MONOTONIC */
	int ended;                      /* directions whose thread returned, under mu */
	int error;                      /* the first failure, under mu */
	char why[WHY_LEN];
};

/* ---- ending ---- */

/* Keeps the first failure only: later ones are mostly the echo of the first one's shutdown. */
static void __attribute__((format(printf, 4, 0)))
failure_keep(struct vmc_relay *r, bool even_after_end, int rc, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&r->mu);
	if (r->error == 0 && (even_after_end || r->ended < DIRECTIONS)) {
		r->error = rc;
		vsnprintf(r->why, sizeof(r->why), fmt, ap);
	}
	pthread_mutex_unlock(&r->mu);
}

/* Both sockets shut both ways: both threads and QEMU stop. */
static void sockets_shut(struct vmc_relay *r)
{
	atomic_store(&r->failed, true);
	shutdown(r->net_fd, SHUT_RDWR);
	shutdown(r->plain_fd, SHUT_RDWR);
}

static void __attribute__((format(printf, 3, 4)))
relay_fail(struct vmc_relay *r, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	failure_keep(r, true, rc, fmt, ap);
	va_end(ap);
	sockets_shut(r);
}

/* As relay_fail, but a relay that already ended, clean or not, keeps its outcome. */
static void __attribute__((format(printf, 3, 4)))
relay_cancel(struct vmc_relay *r, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	failure_keep(r, false, rc, fmt, ap);
	va_end(ap);
	sockets_shut(r);
}

static void direction_end(struct vmc_relay *r)
{
	pthread_mutex_lock(&r->mu);
	r->ended++;
	pthread_cond_broadcast(&r->ended_cv);
	pthread_mutex_unlock(&r->mu);
}

/* ---- socket I/O: 0 or -errno, EINTR retried, never SIGPIPE ---- */

static int send_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Up to len bytes, as many as one read gives: the count, 0 at end of stream, or -errno. */
static ssize_t recv_some(int fd, uint8_t *p, size_t len)
{
	ssize_t n;

	do {
		n = recv(fd, p, len, 0);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Exactly len bytes: how many came before the end of stream (< len), or -errno. */
static ssize_t recv_full(int fd, uint8_t *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv_some(fd, p + got, len - got);

		if (n < 0) {
			return n;
		}
		if (n == 0) {
			break;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* ---- QEMU to the peer ---- */

/* One read from QEMU, sealed and sent: bytes carried, 0 when QEMU closed, or -1 (the relay failed). */
static ssize_t send_one_record(struct vmc_relay *r)
{
	uint8_t *buf = r->send_buf;
	ssize_t n = recv_some(r->plain_fd, buf + VMC_MIG_HEADER_LEN, r->read_max);
	size_t out_len;
	int rc;

	if (n <= 0) {
		if (n < 0) {
			relay_fail(r, -EIO, "reading from QEMU: %s", strerror((int)-n));
		}
		return n < 0 ? -1 : 0;
	}
	rc = vmc_mig_seal(&r->sealer, buf + VMC_MIG_HEADER_LEN, (size_t)n, buf, &out_len);
	if (rc != 0) {
		relay_fail(r, -EIO, "sealing a record: %s", strerror(-rc));
		return -1;
	}
	rc = send_all(r->net_fd, buf, out_len);
	if (rc != 0) {
		relay_fail(r, -EIO, "writing to the peer: %s", strerror(-rc));
		return -1;
	}
	return n;
}

static void send_close(struct vmc_relay *r)
{
	size_t out_len;
	int rc = vmc_mig_seal_close(&r->sealer, r->send_buf, &out_len);

	if (rc == 0) {
		rc = send_all(r->net_fd, r->send_buf, out_len);
	}
	if (rc != 0) {
		relay_fail(r, -EIO, "sending the close record: %s", strerror(-rc));
		return;
	}
	shutdown(r->net_fd, SHUT_WR);
}

static void *sender_run(void *arg)
{
	struct vmc_relay *r = arg;
	ssize_t n;

	for (;;) {
		n = send_one_record(r);
		if (n <= 0) {
			break;
		}
		atomic_fetch_add_explicit(&r->bytes_sent, (uint64_t)n, memory_order_relaxed);
	}
	/* QEMU's end, unless it was the shutdown of a failure: then no close, it was not all. */
	if (n == 0 && !atomic_load(&r->failed)) {
		send_close(r);
	}
	direction_end(r);
	return NULL;
}

/* ---- the peer to QEMU ---- */

/* Reads exactly len bytes of a record; 0, or -1 when the relay failed (end of stream included). */
static int recv_record_part(struct vmc_relay *r, uint8_t *p, size_t len, bool at_boundary)
{
	ssize_t got = recv_full(r->net_fd, p, len);

	if (got < 0) {
		relay_fail(r, -EIO, "reading from the peer: %s", strerror((int)-got));
		return -1;
	}
	if ((size_t)got == len) {
		return 0;
	}
	if (got == 0 && at_boundary) {
		relay_fail(r, -EPROTO, "the peer's stream ended without a close record (cut short)");
	} else {
		relay_fail(r, -EPROTO, "the peer's stream ended inside a record (cut short)");
	}
	return -1;
}

static void open_failed(struct vmc_relay *r, int rc)
{
	if (rc == -EMSGSIZE) {
		relay_fail(r, -EPROTO, "a record from the peer is longer than %zu bytes", VMC_MIG_RECORD_MAX);
	} else if (rc == -EBADMSG) {
		relay_fail(r, -EPROTO, "a record from the peer failed authentication (damaged or forged)");
	} else if (rc == -EIO) {
		relay_fail(r, -EIO, "libcrypto failed to open a record");
	} else {
		relay_fail(r, -EPROTO, "opening a record from the peer: %s", strerror(-rc));
	}
}

/* One record from the peer, opened and written to QEMU: bytes carried, 0 at the close record, or -1. */
static ssize_t recv_one_record(struct vmc_relay *r)
{
	uint8_t header[VMC_MIG_HEADER_LEN];
	size_t body_len, len;
	int rc;

	if (recv_record_part(r, header, sizeof(header), true) != 0) {
		return -1;
	}
	rc = vmc_mig_open_header(&r->opener, header, &body_len);
	if (rc == 0 && recv_record_part(r, r->recv_buf, body_len, false) != 0) {
		return -1;
	}
	if (rc == 0) {
		rc = vmc_mig_open_body(&r->opener, r->recv_buf, body_len, r->recv_buf, &len);
	}
	if (rc != 0) {
		open_failed(r, rc);
		return -1;
	}
	rc = len > 0 ? send_all(r->plain_fd, r->recv_buf, len) : 0;
	if (rc != 0) {
		relay_fail(r, -EIO, "writing to QEMU: %s", strerror(-rc));
		return -1;
	}
	return (ssize_t)len;
}

static void *receiver_run(void *arg)
{
	struct vmc_relay *r = arg;
	ssize_t n;

	for (;;) {
		n = recv_one_record(r);
		if (n <= 0) {
			break;
		}
		atomic_fetch_add_explicit(&r->bytes_received, (uint64_t)n, memory_order_relaxed);
	}
	if (n == 0) {
		shutdown(r->plain_fd, SHUT_WR);
	}
	direction_end(r);
	return NULL;
}

/* ---- setting up ---- */

static int fd_make_blocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		return -errno;
	}
	return 0;
}

static int fds_prepare(const struct vmc_relay_config *c)
{
	int one = 1;
	int rc = fd_make_blocking(c->plain_fd);

	if (rc == 0) {
		rc = fd_make_blocking(c->net_fd);
	}
	/* A socketpair in the tests has no TCP_NODELAY: nothing to turn off there. */
	(void)setsockopt(c->net_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return rc;
}

static int sync_init(struct vmc_relay *r)
{
	pthread_condattr_t attr;
	int rc = pthread_condattr_init(&attr);

	if (rc == 0) {
		rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	}
	if (rc == 0) {
		rc = pthread_cond_init(&r->ended_cv, &attr);
	}
	pthread_condattr_destroy(&attr);
	if (rc == 0) {
		rc = pthread_mutex_init(&r->mu, NULL);
	}
	return -rc;
}

static struct vmc_relay *relay_new(const struct vmc_relay_config *c)
{
	struct vmc_relay *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		return NULL;
	}
	r->plain_fd = c->plain_fd;
	r->net_fd = c->net_fd;
	r->read_max = c->read_max > 0 ? c->read_max : VMC_MIG_RECORD_MAX;
	r->send_buf = malloc(VMC_MIG_SEALED_MAX);
	r->recv_buf = malloc(VMC_MIG_SEALED_MAX);
	atomic_init(&r->bytes_sent, 0);
	atomic_init(&r->bytes_received, 0);
	atomic_init(&r->failed, false);
	if (r->send_buf == NULL || r->recv_buf == NULL || sync_init(r) != 0) {
		free(r->send_buf);
		free(r->recv_buf);
		free(r);
		return NULL;
	}
	return r;
}

/* Both threads, with every signal blocked in them (they inherit the mask). */
static int threads_start(struct vmc_relay *r)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&r->sender, NULL, sender_run, r);
	if (rc == 0) {
		r->started++;
		rc = pthread_create(&r->receiver, NULL, receiver_run, r);
	}
	if (rc == 0) {
		r->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}

static void relay_destroy(struct vmc_relay *r)
{
	vmc_mig_sealer_fini(&r->sealer);
	vmc_mig_opener_fini(&r->opener);
	pthread_cond_destroy(&r->ended_cv);
	pthread_mutex_destroy(&r->mu);
	free(r->send_buf);
	free(r->recv_buf);
	free(r);
}

static void threads_join(struct vmc_relay *r)
{
	if (r->joined) {
		return;
	}
	if (r->started > 0) {
		pthread_join(r->sender, NULL);
	}
	if (r->started > 1) {
		pthread_join(r->receiver, NULL);
	}
	r->joined = true;
}

int vmc_relay_start(const struct vmc_relay_config *c, struct vmc_relay **out)
{
	struct vmc_relay *r;
	int rc;

	if (c->plain_fd < 0 || c->net_fd < 0 || c->read_max > VMC_MIG_RECORD_MAX) {
		return -EINVAL;
	}
	rc = fds_prepare(c);
	if (rc != 0) {
		return rc;
	}
	r = relay_new(c);
	if (r == NULL) {
		return -ENOMEM;
	}
	rc = vmc_mig_sealer_init(&r->sealer, &c->tx);
	if (rc == 0) {
		rc = vmc_mig_opener_init(&r->opener, &c->rx);
	}
	if (rc == 0) {
		rc = threads_start(r);
	}
	if (rc != 0) {
		if (r->started > 0) {
			/* The sender did start: it must not run on. */
			relay_fail(r, rc, "starting the relay: %s", strerror(-rc));
			threads_join(r);
		}
		relay_destroy(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* ---- the caller's side ---- */

static struct timespec deadline_after(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* 0 once both directions ended, -ETIMEDOUT at the deadline. */
static int ended_wait(struct vmc_relay *r, int timeout_ms)
{
	struct timespec deadline = deadline_after(timeout_ms < 0 ? 0 : timeout_ms);
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	while (r->ended < DIRECTIONS && rc == 0) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&r->ended_cv, &r->mu);
		} else {
			rc = pthread_cond_timedwait(&r->ended_cv, &r->mu, &deadline);
		}
	}
	rc = r->ended < DIRECTIONS ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static int error_get(struct vmc_relay *r)
{
	int rc;

	pthread_mutex_lock(&r->mu);
	rc = r->error;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int vmc_relay_wait(struct vmc_relay *r, int timeout_ms)
{
	int rc = ended_wait(r, timeout_ms);

	if (rc != 0) {
		return rc;
	}
	threads_join(r);
	return error_get(r);
}

/* why is written once, before error: seen under the lock with an error, it no longer changes. */
const char *vmc_relay_error(struct vmc_relay *r)
{
	return error_get(r) != 0 ? r->why : "";
}

void vmc_relay_abort(struct vmc_relay *r)
{
	relay_cancel(r, -ECANCELED, "aborted");
	threads_join(r);
}

uint64_t vmc_relay_bytes_sent(const struct vmc_relay *r)
{
	return atomic_load_explicit(&r->bytes_sent, memory_order_relaxed);
}

uint64_t vmc_relay_bytes_received(const struct vmc_relay *r)
{
	return atomic_load_explicit(&r->bytes_received, memory_order_relaxed);
}

void vmc_relay_free(struct vmc_relay *r)
{
	if (r == NULL) {
		return;
	}
	if (!r->joined) {
		vmc_relay_abort(r);
	}
	relay_destroy(r);
}
