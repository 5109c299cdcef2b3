/*
 * vmc-watchdog: the test harness's watchdog for one test node, run
 * outside the node. The node's vmclusterd opens FIFO as its watchdog
 * device and writes a byte to pet it; 'V' disarms it, as the magic close
 * of a Linux watchdog does. Once armed, when TIMEOUT_MS pass without a
 * pet it powers the node off from outside, as a hardware watchdog resets
 * a machine: every process in the node's network or mount namespace is
 * SIGKILLed (a stopped or frozen one too) until none is left. Then it
 * waits, disarmed, for the node's next daemon.
 *
 *   vmc-watchdog FIFO TIMEOUT_MS NETNS_FILE MNTNS_FILE
 *
 * One line per event on standard output, with the wall-clock time in ms
 * ("1764630000123 expired ..."), for the tests' timelines. SIGTERM ends it.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t ms(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void event(const char *fmt, ...)
{
	va_list ap;

	printf("%llu ", (unsigned long long)ms(CLOCK_REALTIME));
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* The inode of the namespace a /proc/PID/ns/X link or a bound ns file names. */
static ino_t ns_inode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* One pass: SIGKILL every process in either namespace; how many were found. */
static size_t kill_pass(ino_t net, ino_t mnt)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	size_t found = 0;
	pid_t self = getpid();

	while (proc != NULL && (e = readdir(proc)) != NULL) {
		char path[64];
		pid_t pid = (pid_t)atoi(e->d_name);
		if (pid <= 1 || pid == self) {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
		if (ns_inode(path) != net) {
			snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
			if (ns_inode(path) != mnt) {
				continue;
			}
		}
		if (kill(pid, SIGKILL) == 0) {
			found++;
		}
	}
	if (proc != NULL) {
		closedir(proc);
	}
	return found;
}

static void power_off(const char *netns, const char *mntns)
{
	ino_t net = ns_inode(netns), mnt = ns_inode(mntns);
	uint64_t until = ms(CLOCK_MONOTONIC) + 10000;
	size_t killed = 0, n;

	if (net == 0 && mnt == 0) {
		return;
	}
	while ((n = kill_pass(net, mnt)) > 0 && ms(CLOCK_MONOTONIC) < until) {
		killed += n;
		usleep(20000);
	}
	event("powered %s off (%zu kills)", netns, killed);
}

int main(int argc, char **argv)
{
	char buf[256];
	bool armed = false;
	uint64_t last = 0, timeout;
	int fd;

	if (argc != 5) {
		fprintf(stderr, "usage: vmc-watchdog FIFO TIMEOUT_MS NETNS_FILE MNTNS_FILE\n");
		return 2;
	}
	timeout = strtoull(argv[2], NULL, 10);
	if (mkfifo(argv[1], 0600) != 0 && errno != EEXIST) {
		fprintf(stderr, "vmc-watchdog: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* Read and write: the FIFO never reports an end while the daemon is away. */
	fd = open(argv[1], O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "vmc-watchdog: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	event("watching %s, timeout %llu ms", argv[1], (unsigned long long)timeout);
	while (!stop) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now;
		if (poll(&p, 1, 50) > 0) {
			ssize_t n = read(fd, buf, sizeof(buf));
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] == 'V') {
					if (armed) {
						event("disarmed");
					}
					armed = false;
				} else {
					if (!armed) {
						event("armed");
					}
					armed = true;
					last = ms(CLOCK_MONOTONIC);
				}
			}
		}
		now = ms(CLOCK_MONOTONIC);
		if (armed && now - last >= timeout) {
			event("expired: %s not petted for %llu ms", argv[1], (unsigned long long)(now - last));
			power_off(argv[3], argv[4]);
			armed = false;
		}
	}
	close(fd);
	return 0;
}
