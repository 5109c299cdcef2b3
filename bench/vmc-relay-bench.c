/*
 * vmc-relay-bench: how fast a migration stream goes through the
 * encrypted relay (agents/migrate/relay.c), against the same path
 * without encryption, on this machine over 127.0.0.1:
 *
 *   encrypted  QEMU A -> relay A (seal) ==TCP== relay B (open) -> QEMU B
 *   plain      QEMU A -> copy thread    ==TCP== copy thread    -> QEMU B
 *   seal/open  one thread sealing, then opening, records in memory: what
 *              the cipher alone allows on one core
 *
 * Both agents and both fake QEMUs run here, so the two relays share the
 * cores a real pair would have on two machines: the figures are a floor
 * for one relay per node. They are printed, never judged: timing on a
 * shared machine is no test.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate_record.h"
#include "relay.h"
#include "loopback.h"

#define MIB ((uint64_t)1024 * 1024)
#define SOURCE_BYTES (4 * MIB)
#define WAIT_MS 600000

struct bench {
	uint64_t bytes;
	size_t read_max;      /* the relays' and the copy threads' reads */
	size_t write_size;    /* the fake QEMU's writes */
	bool sweep;
	uint8_t *source;      /* SOURCE_BYTES of random data, written over and over */
};

struct measure {
	double wall_s;
	double cpu_s;         /* user + system, all threads */
	bool ok;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "vmc-relay-bench: %s: %s\n", what, strerror(errno));
	exit(2);
}

/* ---- sockets ---- */


/* ---- the fake QEMUs and the plain copy ---- */

struct stream_end {
	const struct bench *b;
	int fd;
	uint64_t bytes;       /* moved */
	bool ok;
	pthread_t thread;
};

/* The source QEMU: b->bytes from the random block, in writes of b->write_size. */
static void *feeder_run(void *arg)
{
	struct stream_end *e = arg;
	const struct bench *b = e->b;

	e->ok = true;
	while (e->bytes < b->bytes && e->ok) {
		uint64_t n = b->bytes - e->bytes < b->write_size ? b->bytes - e->bytes : b->write_size;
		size_t at = (size_t)(e->bytes % (SOURCE_BYTES - b->write_size));

		e->ok = send_all(e->fd, b->source + at, (size_t)n) == 0;
		e->bytes += n;
	}
	shutdown(e->fd, SHUT_WR);
	return NULL;
}

/* Reads to the end of stream; with to >= 0 writes it on (the plain copy), else drops it (QEMU B). */
static void *copy_run(struct stream_end *e, int to)
{
	uint8_t *buf = malloc(e->b->read_max);

	e->ok = buf != NULL;
	while (e->ok) {
		ssize_t n = recv(e->fd, buf, e->b->read_max, 0);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			e->ok = n == 0;
			break;
		}
		e->bytes += (uint64_t)n;
		e->ok = to < 0 || send_all(to, buf, (size_t)n) == 0;
	}
	if (to >= 0) {
		shutdown(to, SHUT_WR);
	}
	free(buf);
	return NULL;
}

static void *consumer_run(void *arg)
{
	return copy_run(arg, -1);
}

struct copy {
	struct stream_end e;
	int to;
};

static void *plain_copy_run(void *arg)
{
	struct copy *c = arg;

	return copy_run(&c->e, c->to);
}

static void thread_start(pthread_t *t, void *(*run)(void *), void *arg)
{
	if (pthread_create(t, NULL, run, arg) != 0) {
		die("pthread_create");
	}
}

/* ---- the runs ---- */

/* The two fake QEMUs on src and dst, timed from the first write to the consumer's end of stream. */
static struct measure qemus_run(const struct bench *b, int src, int dst, struct stream_end *consumer)
{
	struct stream_end feeder = { .b = b, .fd = src };
	struct measure m;
	double t0 = now_s(), c0 = cpu_s();

	*consumer = (struct stream_end){ .b = b, .fd = dst };
	thread_start(&consumer->thread, consumer_run, consumer);
	thread_start(&feeder.thread, feeder_run, &feeder);
	pthread_join(feeder.thread, NULL);
	pthread_join(consumer->thread, NULL);
	m.wall_s = now_s() - t0;
	m.cpu_s = cpu_s() - c0;
	m.ok = feeder.ok && consumer->ok && consumer->bytes == b->bytes;
	return m;
}

static struct vmc_mig_key key_make(uint8_t seed)
{
	struct vmc_mig_key k;

	memset(k.key, seed, sizeof(k.key));
	memset(k.salt, seed ^ 0x5a, sizeof(k.salt));
	return k;
}

static struct vmc_relay *relay_start(const struct bench *b, int plain, int net, uint8_t tx, uint8_t rx)
{
	struct vmc_relay_config c = { .plain_fd = plain, .net_fd = net, .read_max = b->read_max };
	struct vmc_relay *r;
	int rc;

	c.tx = key_make(tx);
	c.rx = key_make(rx);
	rc = vmc_relay_start(&c, &r);
	if (rc != 0) {
		fprintf(stderr, "vmc-relay-bench: vmc_relay_start: %s\n", strerror(-rc));
		exit(2);
	}
	return r;
}

static void fds_close(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		close(fds[i]);
	}
}

static struct measure encrypted_run(const struct bench *b)
{
	int src[2], dst[2], net[2];
	struct vmc_relay *ra, *rb;
	struct stream_end consumer;
	struct measure m;

	unix_pair(src);
	unix_pair(dst);
	tcp_pair(net);
	ra = relay_start(b, src[1], net[0], 1, 2);
	rb = relay_start(b, dst[1], net[1], 2, 1);
	/* QEMU B sends nothing back: its close record lets relay A end. */
	shutdown(dst[0], SHUT_WR);
	m = qemus_run(b, src[0], dst[0], &consumer);
	if (vmc_relay_wait(ra, WAIT_MS) != 0 || vmc_relay_wait(rb, WAIT_MS) != 0) {
		fprintf(stderr, "vmc-relay-bench: relays: '%s' / '%s'\n", vmc_relay_error(ra),
			vmc_relay_error(rb));
		m.ok = false;
	}
	vmc_relay_free(ra);
	vmc_relay_free(rb);
	fds_close(src, 2);
	fds_close(dst, 2);
	fds_close(net, 2);
	return m;
}

static struct measure plain_run(const struct bench *b)
{
	int src[2], dst[2], net[2];
	struct copy out, in;
	struct stream_end consumer;
	struct measure m;

	unix_pair(src);
	unix_pair(dst);
	tcp_pair(net);
	out = (struct copy){ .e = { .b = b, .fd = src[1] }, .to = net[0] };
	in = (struct copy){ .e = { .b = b, .fd = net[1] }, .to = dst[1] };
	thread_start(&out.e.thread, plain_copy_run, &out);
	thread_start(&in.e.thread, plain_copy_run, &in);
	m = qemus_run(b, src[0], dst[0], &consumer);
	pthread_join(out.e.thread, NULL);
	pthread_join(in.e.thread, NULL);
	m.ok = m.ok && out.e.ok && in.e.ok;
	fds_close(src, 2);
	fds_close(dst, 2);
	fds_close(net, 2);
	return m;
}

/* One thread, in memory: b->bytes sealed in records of read_max, then the same opened. */
static struct measure cipher_run(const struct bench *b, bool open_too)
{
	static uint8_t rec[VMC_MIG_SEALED_MAX];
	struct vmc_mig_key k = key_make(3);
	struct vmc_mig_sealer s;
	struct vmc_mig_opener o;
	struct measure m = { .ok = true };
	uint8_t *body = rec + VMC_MIG_HEADER_LEN;
	double t0;
	size_t n, body_len, got;

	vmc_mig_sealer_init(&s, &k);
	vmc_mig_opener_init(&o, &k);
	memcpy(body, b->source, b->read_max);
	t0 = now_s();
	for (uint64_t done = 0; done < b->bytes && m.ok; done += b->read_max) {
		m.ok = vmc_mig_seal(&s, body, b->read_max, rec, &n) == 0;
		if (open_too && m.ok) {
			m.ok = vmc_mig_open_header(&o, rec, &body_len) == 0 &&
			       vmc_mig_open_body(&o, body, body_len, body, &got) == 0;
		}
	}
	m.wall_s = now_s() - t0;
	m.cpu_s = m.wall_s;
	vmc_mig_sealer_fini(&s);
	vmc_mig_opener_fini(&o);
	return m;
}

static void report(const struct bench *b, const char *what, struct measure m)
{
	double mb_s = (double)b->bytes / m.wall_s / 1e6;

	printf("%-34s %7.1f MB/s %6.2f Gbit/s  %6.3f s, CPU %6.3f s (%3.0f%% of one core)%s\n", what, mb_s,
	       mb_s * 8 / 1000, m.wall_s, m.cpu_s, 100 * m.cpu_s / m.wall_s, m.ok ? "" : "  FAILED");
}

static void run_once(const struct bench *b)
{
	char what[64];

	snprintf(what, sizeof(what), "encrypted relays, reads %zu KiB", b->read_max / 1024);
	report(b, what, encrypted_run(b));
	snprintf(what, sizeof(what), "plain copy,       reads %zu KiB", b->read_max / 1024);
	report(b, what, plain_run(b));
}

static void run_all(struct bench *b)
{
	static const size_t sweep[] = { 16 * 1024, 64 * 1024, 128 * 1024, VMC_MIG_RECORD_MAX };

	printf("# %llu MiB each run, over 127.0.0.1, fake QEMU writes of %zu KiB, %ld cores\n",
	       (unsigned long long)(b->bytes / MIB), b->write_size / 1024, sysconf(_SC_NPROCESSORS_ONLN));
	report(b, "seal only, 1 thread, in memory", cipher_run(b, false));
	report(b, "seal + open, 1 thread, in memory", cipher_run(b, true));
	if (!b->sweep) {
		run_once(b);
		return;
	}
	for (size_t i = 0; i < sizeof(sweep) / sizeof(sweep[0]); i++) {
		b->read_max = sweep[i];
		run_once(b);
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vmc-relay-bench [--mib N] [--read-kib K] [--write-kib K] [--sweep]\n"
		"Moves N MiB (1024) through a pair of encrypted relays and through a plain copy\n"
		     "over 127.0.0.1 and prints the rates. --read-kib: the relays' reads (at most\n"
		     "%zu); --write-kib: the fake QEMU's writes (256); --sweep: reads of 16 KiB up.\n",
		VMC_MIG_RECORD_MAX / 1024);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mib", required_argument, NULL, 'n' },   { "read-kib", required_argument, NULL, 'r' },
		{ "write-kib", required_argument, NULL, 'w' }, { "sweep", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },        { NULL, 0, NULL, 0 },
	};
	struct bench b = { .bytes = 1024 * MIB, .read_max = VMC_MIG_RECORD_MAX, .write_size = 256 * 1024 };
	int c;

	while ((c = getopt_long(argc, argv, "n:r:w:sh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': b.bytes = strtoull(optarg, NULL, 10) * MIB; break;
		case 'r': b.read_max = strtoul(optarg, NULL, 10) * 1024; break;
		case 'w': b.write_size = strtoul(optarg, NULL, 10) * 1024; break;
		case 's': b.sweep = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (b.bytes == 0 || b.read_max == 0 || b.read_max > VMC_MIG_RECORD_MAX || b.write_size == 0 ||
	    b.write_size >= SOURCE_BYTES) {
		usage(stderr);
		return 2;
	}
	b.source = malloc(SOURCE_BYTES);
	if (b.source == NULL) {
		die("malloc");
	}
	for (size_t i = 0; i < SOURCE_BYTES; i++) {
		b.source[i] = (uint8_t)(random() >> 7);
	}
	run_all(&b);
	free(b.source);
	return 0;
}
