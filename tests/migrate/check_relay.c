/*
 * The encrypted migration relay (agents/migrate/relay.c), end to end on
 * loopback TCP (127.0.0.1 only). Each fake QEMU is a thread on its end of
 * a socketpair, as the agent gives a real one:
 *
 *   stream    QEMU A --64 MiB--> relay A ==TCP== relay B --> QEMU B, and
 *             1 MiB back the other way at the same time: both arrive
 *             identical, both relays end clean, the counters agree; an
 *             abort after the end changes nothing
 *   cut       a peer that sends a good record and then closes TCP
 *             without the close record: -EPROTO "cut short", QEMU gets
 *             the good record and then its end of stream, never a hang
 *   cut-body  a peer that closes inside a record: -EPROTO, QEMU gets
 *             nothing of it
 *   flip      one byte flipped on the wire between the relays: the
 *             receiving relay fails -EPROTO "failed authentication",
 *             its QEMU gets only what came before the bad record; once
 *             its agent closes the connection, the sending relay, still
 *             writing, fails too
 *   too-long  a header announcing 4 GiB: refused at once, without
 *             waiting for a body that never comes
 *   abort     an idle relay: wait times out, abort ends it -ECANCELED,
 *             QEMU sees its end of stream
 *
 * Exits 0 when every check passed. A watchdog (SIGALRM) ends a hung run.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate_record.h"
#include "relay.h"
#include "loopback.h"

#define MIB ((size_t)1024 * 1024)
#define STREAM_BYTES (64 * MIB)
#define BACK_BYTES (1 * MIB)
/* Far more than the sockets buffer, so the sender is still writing when the receiver fails. */
#define FLIP_STREAM_BYTES (32 * MIB)
#define FLIP_AT (MIB + 7)
#define WAIT_MS 20000
#define WATCHDOG_S 300
#define CHUNK_MAX (300 * 1024)

static int failures;

static bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok) {
		failures++;
	}
	return ok;
}

static void die(const char *what)
{
	fprintf(stderr, "check_relay: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* ---- data, keys, sockets ---- */

/* The main thread's generator; each pump has its own. */
static uint64_t rng_state;

static uint64_t xorshift(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static uint64_t rng_next(void)
{
	return xorshift(&rng_state);
}

static uint8_t *random_bytes(size_t len)
{
	uint8_t *p = malloc(len);

	if (p == NULL) {
		die("malloc");
	}
	for (size_t i = 0; i < len; i++) {
		p[i] = (uint8_t)(rng_next() >> 32);
	}
	return p;
}

static struct vmc_mig_key key_random(void)
{
	struct vmc_mig_key k;

	for (size_t i = 0; i < sizeof(k.key); i++) {
		k.key[i] = (uint8_t)rng_next();
	}
	for (size_t i = 0; i < sizeof(k.salt); i++) {
		k.salt[i] = (uint8_t)rng_next();
	}
	return k;
}


/* ---- fake QEMUs: a pump writes, a sink reads ---- */

struct pump {
	int fd;
	const uint8_t *data;
	size_t len;
	uint64_t rng;
	int err;
	pthread_t thread;
};

/* Writes in chunks of random sizes (some above a record), then ends its side of the stream. */
static void *pump_run(void *arg)
{
	struct pump *p = arg;
	size_t at = 0;

	while (at < p->len && p->err == 0) {
		size_t n = 1 + (size_t)(xorshift(&p->rng) % CHUNK_MAX);

		n = n < p->len - at ? n : p->len - at;
		p->err = send_all(p->fd, p->data + at, n);
		at += n;
	}
	shutdown(p->fd, SHUT_WR);
	return NULL;
}

struct sink {
	int fd;
	uint8_t *buf;
	size_t cap;
	size_t got;
	int err;          /* of the read that ended it; 0 at end of stream */
	pthread_t thread;
};

static void *sink_run(void *arg)
{
	struct sink *s = arg;

	for (;;) {
		uint8_t spill[4096];
		uint8_t *to = s->got < s->cap ? s->buf + s->got : spill;
		size_t room = s->got < s->cap ? s->cap - s->got : sizeof(spill);
		ssize_t n = recv(s->fd, to, room, 0);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			s->err = n < 0 ? errno : 0;
			return NULL;
		}
		s->got += (size_t)n;
	}
}

static void pump_start(struct pump *p, int fd, const uint8_t *data, size_t len)
{
	*p = (struct pump){ .fd = fd, .data = data, .len = len, .rng = rng_next() | 1 };
	if (pthread_create(&p->thread, NULL, pump_run, p) != 0) {
		die("pthread_create");
	}
}

static void sink_start(struct sink *s, int fd, size_t cap)
{
	*s = (struct sink){ .fd = fd, .buf = malloc(cap > 0 ? cap : 1), .cap = cap };
	if (s->buf == NULL || pthread_create(&s->thread, NULL, sink_run, s) != 0) {
		die("sink start");
	}
}

/* Does QEMU's end see its end of stream (or a reset) within timeout_ms, after what it may read? */
static bool qemu_sees_end(int fd, int timeout_ms)
{
	uint8_t buf[65536];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (;;) {
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) <= 0) {
			return false;
		}
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0) {
			return n == 0 || errno != EAGAIN;
		}
	}
}

/* ---- relays ---- */

struct side {
	int qemu_fd;      /* the fake QEMU's end of the socketpair */
	int agent_fd;     /* the relay's end */
	int net_fd;
	struct vmc_relay *relay;
};

static void side_start(struct side *s, int net_fd, const struct vmc_mig_key *tx, const struct vmc_mig_key *rx)
{
	int pair[2];
	struct vmc_relay_config c = { .net_fd = net_fd, .tx = *tx, .rx = *rx };
	int rc;

	unix_pair(pair);
	s->qemu_fd = pair[0];
	s->agent_fd = pair[1];
	s->net_fd = net_fd;
	c.plain_fd = s->agent_fd;
	rc = vmc_relay_start(&c, &s->relay);
	if (rc != 0) {
		fprintf(stderr, "check_relay: vmc_relay_start: %s\n", strerror(-rc));
		exit(2);
	}
}

static void side_end(struct side *s)
{
	vmc_relay_free(s->relay);
	close(s->qemu_fd);
	close(s->agent_fd);
	close(s->net_fd);
}

/* ---- steps ---- */

static void counters_check(struct vmc_relay *a, struct vmc_relay *b, uint64_t a_to_b, uint64_t b_to_a)
{
	unsigned long long a_sent = vmc_relay_bytes_sent(a), b_got = vmc_relay_bytes_received(b);
	unsigned long long b_sent = vmc_relay_bytes_sent(b), a_got = vmc_relay_bytes_received(a);

	check(a_sent == a_to_b && b_got == a_to_b && b_sent == b_to_a && a_got == b_to_a,
	      "counters: A sent %llu, B received %llu, B sent %llu, A received %llu", a_sent, b_got, b_sent,
	      a_got);
}

static bool step_stream(void)
{
	struct vmc_mig_key ab = key_random(), ba = key_random();
	uint8_t *fwd = random_bytes(STREAM_BYTES), *back = random_bytes(BACK_BYTES);
	struct side a, b;
	struct pump pa, pb;
	struct sink sa, sb;
	int net[2], ra, rb;

	tcp_pair(net);
	side_start(&a, net[0], &ab, &ba);
	side_start(&b, net[1], &ba, &ab);
	sink_start(&sb, b.qemu_fd, STREAM_BYTES);
	sink_start(&sa, a.qemu_fd, BACK_BYTES);
	pump_start(&pa, a.qemu_fd, fwd, STREAM_BYTES);
	pump_start(&pb, b.qemu_fd, back, BACK_BYTES);
	ra = vmc_relay_wait(a.relay, WAIT_MS);
	rb = vmc_relay_wait(b.relay, WAIT_MS);
	pthread_join(pa.thread, NULL);
	pthread_join(pb.thread, NULL);
	pthread_join(sa.thread, NULL);
	pthread_join(sb.thread, NULL);
	check(ra == 0 && rb == 0, "both relays end clean: A %d '%s', B %d '%s'", ra, vmc_relay_error(a.relay),
	      rb, vmc_relay_error(b.relay));
	check(sb.got == STREAM_BYTES && sb.err == 0 && memcmp(sb.buf, fwd, STREAM_BYTES) == 0,
	      "64 MiB A to B arrive identical, then the end of stream (%zu bytes, err %d)", sb.got, sb.err);
	check(sa.got == BACK_BYTES && sa.err == 0 && memcmp(sa.buf, back, BACK_BYTES) == 0,
	      "1 MiB B to A at the same time arrive identical (%zu bytes)", sa.got);
	counters_check(a.relay, b.relay, STREAM_BYTES, BACK_BYTES);
	vmc_relay_abort(a.relay);
	ra = vmc_relay_wait(a.relay, 0);
	check(ra == 0 && vmc_relay_error(a.relay)[0] == '\0', "an abort after a clean end keeps it clean: %d",
	      ra);
	side_end(&a);
	side_end(&b);
	free(fwd);
	free(back);
	free(sa.buf);
	free(sb.buf);
	return failures == 0;
}

/*
 * A relay whose peer is this test: peer_fd is the other end of its TCP
 * connection; peer_seal seals what the relay will open.
 */
struct lone {
	struct side side;
	int peer_fd;
	struct vmc_mig_sealer peer_seal;
	uint8_t record[VMC_MIG_SEALED_MAX];
};

static void lone_start(struct lone *l)
{
	struct vmc_mig_key tx = key_random(), rx = key_random();
	int net[2];

	tcp_pair(net);
	l->peer_fd = net[1];
	side_start(&l->side, net[0], &tx, &rx);
	if (vmc_mig_sealer_init(&l->peer_seal, &rx) != 0) {
		die("sealer");
	}
}

static void lone_end(struct lone *l)
{
	vmc_mig_sealer_fini(&l->peer_seal);
	side_end(&l->side);
	close(l->peer_fd);
}

/* The relay's outcome within WAIT_MS: rc and whether its reason holds want. */
static bool relay_failed_with(struct vmc_relay *r, int want_rc, const char *want_why, const char *what)
{
	int rc = vmc_relay_wait(r, WAIT_MS);

	return check(rc == want_rc && strstr(vmc_relay_error(r), want_why) != NULL, "%s: %d (want %d), '%s'",
		     what, rc, want_rc, vmc_relay_error(r));
}

static bool step_cut(void)
{
	static struct lone l;
	size_t n;
	uint8_t got[16];
	ssize_t r;

	lone_start(&l);
	vmc_mig_seal(&l.peer_seal, "hello", 5, l.record, &n);
	send_all(l.peer_fd, l.record, n);
	close(l.peer_fd);
	l.peer_fd = -1;
	relay_failed_with(l.side.relay, -EPROTO, "without a close record",
			  "TCP closed without the close record");
	r = recv(l.side.qemu_fd, got, sizeof(got), 0);
	check(r == 5 && memcmp(got, "hello", 5) == 0, "QEMU got the good record first (%zd bytes)", r);
	check(qemu_sees_end(l.side.qemu_fd, WAIT_MS), "then QEMU sees its end of stream");
	lone_end(&l);
	return failures == 0;
}

static bool step_cut_body(void)
{
	static struct lone l;
	size_t n;

	lone_start(&l);
	vmc_mig_seal(&l.peer_seal, "0123456789", 10, l.record, &n);
	send_all(l.peer_fd, l.record, n - 3);
	shutdown(l.peer_fd, SHUT_WR);
	relay_failed_with(l.side.relay, -EPROTO, "inside a record", "TCP closed inside a record");
	check(qemu_sees_end(l.side.qemu_fd, WAIT_MS) && vmc_relay_bytes_received(l.side.relay) == 0,
	      "QEMU sees its end of stream and nothing of the cut record");
	lone_end(&l);
	return failures == 0;
}

static bool step_too_long(void)
{
	static struct lone l;
	static const uint8_t header[4] = { 0xff, 0xff, 0xff, 0xff };

	lone_start(&l);
	send_all(l.peer_fd, header, sizeof(header));
	relay_failed_with(l.side.relay, -EPROTO, "longer than", "a 4 GiB header, TCP left open");
	lone_end(&l);
	return failures == 0;
}

static bool step_abort(void)
{
	static struct lone l;
	int rc;

	lone_start(&l);
	rc = vmc_relay_wait(l.side.relay, 100);
	check(rc == -ETIMEDOUT, "an idle relay is still running after 100 ms: %d", rc);
	vmc_relay_abort(l.side.relay);
	rc = vmc_relay_wait(l.side.relay, 0);
	check(rc == -ECANCELED && strcmp(vmc_relay_error(l.side.relay), "aborted") == 0, "abort: %d '%s'", rc,
	      vmc_relay_error(l.side.relay));
	check(qemu_sees_end(l.side.qemu_fd, WAIT_MS), "QEMU sees its end of stream after the abort");
	lone_end(&l);
	return failures == 0;
}

/* ---- flip: a middle box between the relays that damages one byte ---- */

struct forward {
	int fd[2];          /* TCP to relay A, to relay B; the forwarder closes them */
	uint64_t flip_at;   /* offset in the stream A to B */
	pthread_t thread;
};

/* One read from `from` to `to`: 0, 1 at its end of stream, -1 when either failed. */
static int forward_some(int from, int to, uint64_t *at, uint64_t flip_at)
{
	uint8_t buf[65536];
	ssize_t n = recv(from, buf, sizeof(buf), 0);

	if (n <= 0) {
		return n == 0 ? 1 : -1;
	}
	if (flip_at >= *at && flip_at < *at + (uint64_t)n) {
		buf[flip_at - *at] ^= 0x01;
	}
	*at += (uint64_t)n;
	return send_all(to, buf, (size_t)n) == 0 ? 0 : -1;
}

/* A reset, as when an agent closes a connection that still holds data. */
static void connection_reset(int fd)
{
	struct linger now = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
	close(fd);
}

/*
 * Both ways, as one connection would: an end of stream is passed on as
 * one; a failure either way resets both sides.
 */
static void *forward_run(void *arg)
{
	struct forward *f = arg;
	struct pollfd pfd[2] = { { .fd = f->fd[0], .events = POLLIN }, { .fd = f->fd[1], .events = POLLIN } };
	uint64_t at[2] = { 0, 0 };
	int rc = 0;

	while (rc >= 0 && (pfd[0].fd >= 0 || pfd[1].fd >= 0)) {
		if (poll(pfd, 2, -1) < 0) {
			continue;
		}
		for (int i = 0; i < 2 && rc >= 0; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0) {
				continue;
			}
			rc = forward_some(f->fd[i], f->fd[!i], &at[i], i == 0 ? f->flip_at : UINT64_MAX);
			if (rc == 1) {
				shutdown(f->fd[!i], SHUT_WR);
				pfd[i].fd = -1;
			}
		}
	}
	connection_reset(f->fd[0]);
	connection_reset(f->fd[1]);
	return NULL;
}

static void forward_start(struct forward *f, int to_a, int to_b, uint64_t flip_at)
{
	*f = (struct forward){ .fd = { to_a, to_b }, .flip_at = flip_at };
	if (pthread_create(&f->thread, NULL, forward_run, f) != 0) {
		die("pthread_create");
	}
}

static bool step_flip(void)
{
	struct vmc_mig_key ab = key_random(), ba = key_random();
	uint8_t *fwd = random_bytes(FLIP_STREAM_BYTES);
	struct side a, b;
	struct forward box;
	struct pump pa;
	struct sink sb, sa;
	int net_a[2], net_b[2], ra;

	tcp_pair(net_a);
	tcp_pair(net_b);
	side_start(&a, net_a[0], &ab, &ba);
	side_start(&b, net_b[0], &ba, &ab);
	forward_start(&box, net_a[1], net_b[1], FLIP_AT);
	sink_start(&sb, b.qemu_fd, FLIP_STREAM_BYTES);
	sink_start(&sa, a.qemu_fd, 0);
	shutdown(b.qemu_fd, SHUT_WR);
	pump_start(&pa, a.qemu_fd, fwd, FLIP_STREAM_BYTES);
	relay_failed_with(b.relay, -EPROTO, "failed authentication",
			  "a byte flipped on the wire, at the receiver");
	pthread_join(sb.thread, NULL);
	check(sb.got < FLIP_AT && memcmp(sb.buf, fwd, sb.got) == 0,
	      "QEMU B got only the %zu bytes before the bad record, intact", sb.got);
	/* agent B gives up: its connection goes, with what it still held */
	side_end(&b);
	ra = vmc_relay_wait(a.relay, WAIT_MS);
	check(ra == -EIO || ra == -EPROTO, "the sender's relay fails too: %d '%s'", ra,
	      vmc_relay_error(a.relay));
	pthread_join(pa.thread, NULL);
	pthread_join(sa.thread, NULL);
	pthread_join(box.thread, NULL);
	side_end(&a);
	free(fwd);
	free(sb.buf);
	free(sa.buf);
	return failures == 0;
}

static const struct {
	const char *name;
	bool (*run)(void);
} steps[] = {
	{ "stream", step_stream }, { "cut", step_cut },         { "cut-body", step_cut_body },
	{ "flip", step_flip },     { "too-long", step_too_long }, { "abort", step_abort },
};

int main(void)
{
	rng_state = (uint64_t)time(NULL) * 2654435761u | 1;
	printf("# seed %llu\n", (unsigned long long)rng_state);
	alarm(WATCHDOG_S);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct timespec t0, t1;
		bool ok;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		printf("# step %s\n", steps[i].name);
		ok = steps[i].run();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("# step %s: %s in %lld ms\n", steps[i].name, ok ? "done" : "FAILED",
		       (long long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
	}
	printf("%s: %d failure%s\n", failures == 0 ? "PASS" : "FAIL", failures, failures == 1 ? "" : "s");
	return failures == 0 ? 0 : 1;
}
