/*
 * vmc-vm-watch: samples every test node's QEMUs, every INTERVAL_MS, and
 * records each moment a VM runs on two nodes at once: the one thing
 * failover must never do. One pass over /proc per sample: a QEMU is a
 * process whose argv[0] ends in qemu-system-x86_64, its VM the "-name"
 * argument up to the first comma, its node the one whose network
 * namespace it is in.
 *
 *   vmc-vm-watch INTERVAL_MS OUTFILE NETNS_FILE...
 *
 * OUTFILE gets "TIME_MS VM node-a node-b" for every sample with a VM on
 * more than one node, and "samples N" when SIGTERM ends it.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NODES_MAX 16
#define VMS_MAX 256

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

struct seen {
	char name[64];
	unsigned int nodes; /* bit i: on node i */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The VM name of a QEMU's argv, or 0 when pid is no QEMU. */
static int qemu_name(pid_t pid, char *name, size_t len)
{
	char path[64], buf[8192];
	ssize_t n;
	int fd;
	size_t at = 0;
	int take = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return 0;
	}
	buf[n] = '\0';
	if (strstr(buf, "qemu-system-x86_64") == NULL || strlen(buf) < strlen("qemu-system-x86_64")) {
		return 0;
	}
	while (at < (size_t)n) {
		const char *arg = buf + at;
		if (take) {
			size_t k = strcspn(arg, ",");
			snprintf(name, len, "%.*s", (int)(k < len ? k : len - 1), arg);
			return 1;
		}
		take = strcmp(arg, "-name") == 0;
		at += strlen(arg) + 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	ino_t nets[NODES_MAX];
	size_t n_nodes = 0;
	unsigned long samples = 0;
	long interval;
	FILE *out;

	if (argc < 4) {
		fprintf(stderr, "usage: vmc-vm-watch INTERVAL_MS OUTFILE NETNS_FILE...\n");
		return 2;
	}
	interval = strtol(argv[1], NULL, 10);
	out = fopen(argv[2], "a");
	if (out == NULL) {
		fprintf(stderr, "vmc-vm-watch: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	for (int i = 3; i < argc && n_nodes < NODES_MAX; i++) {
		struct stat st;
		nets[n_nodes++] = stat(argv[i], &st) == 0 ? st.st_ino : 0;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	while (!stop) {
		struct seen vms[VMS_MAX];
		size_t n_vms = 0;
		DIR *proc = opendir("/proc");
		struct dirent *e;
		while (proc != NULL && (e = readdir(proc)) != NULL) {
			pid_t pid = (pid_t)atoi(e->d_name);
			char name[64], path[64];
			struct stat st;
			size_t node, k;
			if (pid <= 1 || !qemu_name(pid, name, sizeof(name))) {
				continue;
			}
			snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
			if (stat(path, &st) != 0) {
				continue;
			}
			for (node = 0; node < n_nodes && nets[node] != st.st_ino; node++) {
			}
			if (node == n_nodes) {
				continue;
			}
			for (k = 0; k < n_vms && strcmp(vms[k].name, name) != 0; k++) {
			}
			if (k == n_vms && n_vms < VMS_MAX) {
				snprintf(vms[n_vms].name, sizeof(vms[0].name), "%s", name);
				vms[n_vms++].nodes = 0;
			}
			if (k < n_vms) {
				vms[k].nodes |= 1u << node;
			}
		}
		if (proc != NULL) {
			closedir(proc);
		}
		for (size_t k = 0; k < n_vms; k++) {
			if ((vms[k].nodes & (vms[k].nodes - 1)) != 0) {
				fprintf(out, "%llu %s", (unsigned long long)now_ms(), vms[k].name);
				for (size_t node = 0; node < n_nodes; node++) {
					if (vms[k].nodes & (1u << node)) {
						fprintf(out, " node%zu", node + 1);
					}
				}
				fputc('\n', out);
				fflush(out);
			}
		}
		samples++;
		usleep((useconds_t)interval * 1000);
	}
	fprintf(out, "samples %lu\n", samples);
	fclose(out);
	return 0;
}
