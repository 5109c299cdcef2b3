/*
 * vmc-workload: the program the test guest runs as its PID 1 (the
 * initramfs /init execs it). Tests and benchmarks read its serial output:
 *
 *   vmc-guest ready buffer_mib=32 dirty_mib_s=8 counter_start=0
 *   vmc-counter 0                       one line every 100 ms, +1 each
 *   vmc-counter 1
 *   vmc-dirty 8.0 MiB/s target 8 buffer 32 MiB     every 5 s, when dirtying
 *
 * A counter that goes down (back to counter_start) means the guest was
 * reset; a gap in time between two counter lines is the time the guest did
 * not run (a migration's downtime, say).
 *
 * It holds a buffer of buffer_mib MiB, filled once with pseudo-random data
 * before "ready", and overwrites dirty_mib_s MiB of it per second, page by
 * page round the buffer, in 10 ms slots so the dirtying is spread evenly.
 * The data is random (xorshift) because QEMU sends zero pages almost for
 * free: zero-filled dirtying would measure nothing.
 *
 * Timeline of one second: 100 slots of 10 ms; every slot dirties its share
 * of pages, every 10th slot also prints a counter line. A slot that comes
 * late (the VM was paused, or TCG is slow) is not made up for: the missed
 * slots are skipped, so the dirty rate reported drops instead of bursting.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

#define SLOT_NS		(10 * 1000 * 1000LL)	/* dirtying granularity */
#define SLOTS_PER_S	100
#define SLOTS_PER_LINE	10			/* a counter line each 100 ms */
#define REPORT_NS	5000000000LL		/* a vmc-dirty line each 5 s */
#define PAGE_BYTES	4096
#define PAGES_PER_MIB	(1024 * 1024 / PAGE_BYTES)
#define MAX_MIB		65536u
#define MEM_MARGIN_MIB	8	/* left to the kernel when clamping the buffer */

struct workload {
	unsigned int buffer_mib;
	unsigned int dirty_mib_s;
	uint64_t counter;
	uint64_t *buffer;
	size_t buffer_pages;
	size_t next_page;	/* the next page to overwrite, round the buffer */
	uint64_t rng;
	/* pages owed, in hundredths: each slot adds dirty_mib_s * 256 */
	uint64_t owed_centipages;
	uint64_t pages_since_report;
	int64_t report_start_ns;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One write(2) per line: a reader never sees half a line from us. */
static void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (len < 0) {
		return;
	}
	if ((size_t)len > sizeof(line) - 2) {
		len = sizeof(line) - 2;
	}
	line[len++] = '\n';
	if (write(STDOUT_FILENO, line, len) < 0) {
		/* nowhere to report it: the console is all we have */
	}
}

/* As PID 1, exiting would panic the kernel: power the VM off instead. */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("vmc-guest error: %s", msg);
	if (getpid() == 1) {
		reboot(RB_POWER_OFF);
	}
	exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until_ns(int64_t when_ns)
{
	struct timespec ts = {
		.tv_sec = when_ns / 1000000000LL,
		.tv_nsec = when_ns % 1000000000LL,
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
		;
	}
}

static uint64_t xorshift64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static void page_fill_random(struct workload *w, size_t page)
{
	uint64_t *p = w->buffer + page * (PAGE_BYTES / sizeof(uint64_t));
	size_t i;

	for (i = 0; i < PAGE_BYTES / sizeof(uint64_t); i++) {
		p[i] = xorshift64(&w->rng);
	}
}

static unsigned int parse_mib(const char *name, const char *arg)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' ||
	    v > MAX_MIB) {
		die("bad %s '%s': want 0..%u", name, arg, MAX_MIB);
	}
	return (unsigned int)v;
}

static uint64_t parse_counter(const char *arg)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-') {
		die("bad counter_start '%s'", arg);
	}
	return v;
}

/* MemAvailable in MiB, or 0 if /proc is not there to tell. */
static unsigned int mem_available_mib(void)
{
	unsigned long long kib = 0;
	char line[128];
	FILE *f;

	f = fopen("/proc/meminfo", "r");
	if (f == NULL) {
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
			break;
		}
	}
	fclose(f);
	return (unsigned int)(kib / 1024);
}

/*
 * A buffer larger than the guest's memory would end in the OOM killer,
 * which cannot kill PID 1 and so panics: shrink it and say so.
 */
static void buffer_setup(struct workload *w)
{
	unsigned int avail_mib = mem_available_mib();
	size_t bytes, page;

	if (avail_mib != 0 && w->buffer_mib + MEM_MARGIN_MIB > avail_mib) {
		unsigned int fit = avail_mib > MEM_MARGIN_MIB ?
				   avail_mib - MEM_MARGIN_MIB : 0;

		say("vmc-guest buffer clamped from %u to %u MiB "
		    "(MemAvailable %u MiB)", w->buffer_mib, fit, avail_mib);
		w->buffer_mib = fit;
	}
	w->buffer_pages = (size_t)w->buffer_mib * PAGES_PER_MIB;
	if (w->buffer_pages == 0) {
		return;
	}
	bytes = w->buffer_pages * PAGE_BYTES;
	w->buffer = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->buffer == MAP_FAILED) {
		die("cannot map a %u MiB buffer: %s", w->buffer_mib,
		    strerror(errno));
	}
	for (page = 0; page < w->buffer_pages; page++) {
		page_fill_random(w, page);
	}
}

/* Overwrite this slot's share of pages, round the buffer. */
static void slot_dirty(struct workload *w)
{
	if (w->buffer_pages == 0 || w->dirty_mib_s == 0) {
		return;
	}
	w->owed_centipages += (uint64_t)w->dirty_mib_s * PAGES_PER_MIB;
	while (w->owed_centipages >= SLOTS_PER_S) {
		w->owed_centipages -= SLOTS_PER_S;
		page_fill_random(w, w->next_page);
		w->next_page = (w->next_page + 1) % w->buffer_pages;
		w->pages_since_report++;
	}
}

static void dirty_report(struct workload *w, int64_t t_ns)
{
	int64_t elapsed_ns = t_ns - w->report_start_ns;
	uint64_t tenths;

	if (w->dirty_mib_s == 0 || w->buffer_pages == 0 || elapsed_ns <= 0) {
		return;
	}
	/* MiB/s with one decimal: pages * 10 * 1e9 / (ns * pages per MiB) */
	tenths = (uint64_t)((double)w->pages_since_report * 10.0 * 1e9 /
			    ((double)elapsed_ns * PAGES_PER_MIB) + 0.5);
	say("vmc-dirty %" PRIu64 ".%" PRIu64 " MiB/s target %u buffer %u MiB",
	    tenths / 10, tenths % 10, w->dirty_mib_s, w->buffer_mib);
	w->pages_since_report = 0;
	w->report_start_ns = t_ns;
}

static void usage(void)
{
	say("usage: vmc-workload [--buffer-mib N] [--dirty-mib-s N] "
	    "[--counter-start N]");
}

static void options_parse(struct workload *w, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "buffer-mib", required_argument, NULL, 'b' },
		{ "dirty-mib-s", required_argument, NULL, 'd' },
		{ "counter-start", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "b:d:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			w->buffer_mib = parse_mib("buffer_mib", optarg);
			break;
		case 'd':
			w->dirty_mib_s = parse_mib("dirty_mib_s", optarg);
			break;
		case 'c':
			w->counter = parse_counter(optarg);
			break;
		case 'h':
			usage();
			exit(0);
		default:
			usage();
			die("bad arguments");
		}
	}
	if (optind != argc) {
		die("unexpected argument '%s'", argv[optind]);
	}
}

int main(int argc, char **argv)
{
	struct workload w = {
		.buffer_mib = 32,
		.dirty_mib_s = 0,
		.counter = 0,
	};
	int64_t start_ns, slot_ns, t_ns;
	uint64_t counter_start, slot = 0, next_line_slot = 0;

	options_parse(&w, argc, argv);
	counter_start = w.counter;
	w.rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)now_ns() ^
		((uint64_t)getpid() << 32);
	if (w.rng == 0) {
		w.rng = 1;
	}
	buffer_setup(&w);

	say("vmc-guest ready buffer_mib=%u dirty_mib_s=%u counter_start=%" PRIu64,
	    w.buffer_mib, w.dirty_mib_s, counter_start);
	start_ns = now_ns();
	w.report_start_ns = start_ns;
	for (;;) {
		if (slot >= next_line_slot) {
			/* one line even if several were due: the count is of lines */
			say("vmc-counter %" PRIu64, w.counter++);
			next_line_slot = (slot / SLOTS_PER_LINE + 1) * SLOTS_PER_LINE;
		}
		slot_dirty(&w);
		t_ns = now_ns();
		if (t_ns - w.report_start_ns >= REPORT_NS) {
			dirty_report(&w, t_ns);
		}

		slot++;
		slot_ns = start_ns + (int64_t)slot * SLOT_NS;
		if (t_ns < slot_ns) {
			sleep_until_ns(slot_ns);
		} else {
			/* late: skip the missed slots, keep the 10 ms grid */
			slot = (uint64_t)((t_ns - start_ns) / SLOT_NS);
		}
	}
}
