/*
 * vmc-vm-watch: samples every test node's QEMUs, every INTERVAL_MS, and
 * records each moment a VM runs on two nodes at once: the one thing
 * failover must never do. One pass over /proc per sample: a QEMU is a
 * process whose argv[0] ends in qemu-system-x86_64, its VM the "-name"
 * argument up to the first comma, its node the one whose network
 * namespace it is in (NETNS_FILE i is node i, matched by inode, so two
 * nodes need two namespaces).
 *
 *   vmc-vm-watch [-r] INTERVAL_MS OUTFILE NETNS_FILE...
 *
 * OUTFILE gets "TIME_MS VM node-a node-b" for every sample with a VM on
 * more than one node, and "samples N" when SIGTERM ends it.
 *
 * -r, for migrations. Live migration has two QEMUs of one VM by design:
 * the destination waits paused (-incoming defer -S) and the source pauses
 * once it has sent its last pages. What must never happen is the guest
 * *running* on two nodes, so with -r a QEMU counts in a sample only when
 * its vCPU threads ran during it: the sum, over its threads named
 * "CPU n/TCG" or "CPU n/KVM" ("ALL CPUs/TCG" with tcg,thread=single), of
 * the first field of /proc/PID/task/TID/schedstat (ns on CPU) grew since
 * the previous sample of that process by more than RAN_NS_MIN, and only
 * from its SETTLE_SAMPLES+1-th sample on: QEMU sets itself up on its vCPU
 * threads at first, paused or not. A paused QEMU's vCPU threads wait on a
 * condition variable and do not run; they wake only for work queued to
 * the vCPU (a TLB flush, a KVM register sync when the migration completes
 * or loads), a blip below RAN_NS_MIN that the next rule absorbs too.
 *
 * The handover (the source's last instructions and the destination's
 * first, both within the migration's downtime: tens of ms) can fall into
 * one sample, in which both ran. A VM really running twice runs on both
 * for longer, so -r records a line only for the second and later of
 * consecutive samples with the VM running on two nodes: whatever lasts
 * less than two samples goes unrecorded here. The tests catch that with
 * the guest's counter (one value every 100 ms on its console): two guests
 * running at once, however briefly, both print values the other printed,
 * a handover never does. The last line is then "samples N
 * one-sample-overlaps M", M the times a VM ran on two nodes in a single
 * sample only.
 *
 * QEMU names its threads only with "-name ...,debug-threads=on". A QEMU
 * started without it cannot be judged, so with -r it counts as running in
 * every sample (as without -r: a migration then shows as two-node lines
 * rather than passing unseen), and OUTFILE gets, once per such process,
 * "TIME_MS VM node-a pid PID: vCPU threads unnamed (...), counted as
 * running".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NODES_MAX 16
#define VMS_MAX 256
#define QEMUS_MAX 1024
#define QEMU_ARGV0 "qemu-system-x86_64"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* What a QEMU's argv says. */
struct qemu_info {
	char name[64];
	bool named_threads; /* -name ...,debug-threads=on */
};

/* A VM in this sample. */
struct seen {
	char name[64];
	unsigned int nodes; /* bit i: on node i (with -r: ran on node i) */
};

/* -r: a QEMU of a sample, to compare the next sample with. */
struct qemu_seen {
	pid_t pid;
	uint64_t vcpu_ns;
	unsigned samples; /* in how many samples it was seen */
	bool noted; /* its unnamed threads were written to OUTFILE */
};

/*
 * A QEMU's own setup (TCG's code buffer, the vCPU's creation) runs on its
 * vCPU thread in its first few hundred ms, paused (-S) or not; and a
 * paused vCPU wakes for queued work for a fraction of a ms. Neither is
 * the guest: a running test guest, idle, takes 1.4 ms a sample at least.
 */
#define SETTLE_SAMPLES 4
#define RAN_NS_MIN 500000

/* -r: a VM that ran on two nodes in a sample, and in how many samples in a row. */
struct twice {
	char name[64];
	unsigned long samples;
};

/* [cur] is being filled by this sample, [!cur] holds the previous one. */
struct watch {
	FILE *out;
	bool running_only;
	ino_t nets[NODES_MAX];
	size_t n_nodes;
	int cur;
	struct qemu_seen qemus[2][QEMUS_MAX];
	size_t n_qemus[2];
	struct twice twice[2][VMS_MAX];
	size_t n_twice[2];
	unsigned long samples;
	unsigned long overlaps_once;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads at most len - 1 bytes of path, NUL-terminated: their count, or -1. */
static ssize_t file_read(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0) {
		return -1;
	}
	buf[n] = '\0';
	return n;
}

/* Whether the -name argument opts sets debug-threads to a true value. */
static bool name_opt_debug_threads(const char *opts)
{
	static const char *const yes[] = { "on", "yes", "true", "y" };
	const char *key = "debug-threads=";
	bool on = false;

	for (const char *at = opts; at != NULL; at = strchr(at, ',')) {
		at += *at == ',';
		if (strncmp(at, key, strlen(key)) == 0) {
			const char *val = at + strlen(key);
			size_t len = strcspn(val, ",");
			on = false;
			for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
				on |= len == strlen(yes[i]) && strncmp(val, yes[i], len) == 0;
			}
		}
	}
	return on;
}

/* The VM name (and thread naming) of a QEMU's argv; 0 when pid is no QEMU. */
static int qemu_read(pid_t pid, struct qemu_info *q)
{
	char path[64], buf[8192];
	ssize_t n;
	size_t at = 0;
	bool take = false, named = false;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = file_read(path, buf, sizeof(buf));
	if (n <= 0) {
		return 0;
	}
	if (strstr(buf, QEMU_ARGV0) == NULL || strlen(buf) < strlen(QEMU_ARGV0)) {
		return 0;
	}
	q->named_threads = false;
	while (at < (size_t)n) {
		const char *arg = buf + at;
		if (take) {
			size_t k = strcspn(arg, ",");
			if (!named) {
				snprintf(q->name, sizeof(q->name), "%.*s",
					 (int)(k < sizeof(q->name) ? k : sizeof(q->name) - 1), arg);
			}
			named = true;
			/* QEMU merges every -name; the last debug-threads wins. */
			if (strstr(arg, "debug-threads=") != NULL) {
				q->named_threads = name_opt_debug_threads(arg);
			}
		}
		take = strcmp(arg, "-name") == 0;
		at += strlen(arg) + 1;
	}
	return named;
}

/* Whether a thread's comm names a vCPU thread. */
static bool comm_is_vcpu(const char *comm)
{
	return strncmp(comm, "CPU ", 4) == 0 || strncmp(comm, "ALL CPUs/", 9) == 0;
}

/* *ns = the ns on CPU of pid's vCPU threads; -1 when pid has gone. */
static int vcpu_ns_read(pid_t pid, uint64_t *ns)
{
	char path[96], buf[128];
	struct dirent *e;
	DIR *tasks;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	tasks = opendir(path);
	if (tasks == NULL) {
		return -1;
	}
	*ns = 0;
	while ((e = readdir(tasks)) != NULL) {
		int tid = atoi(e->d_name);
		if (tid <= 0) {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, tid);
		if (file_read(path, buf, sizeof(buf)) <= 0 || !comm_is_vcpu(buf)) {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, tid);
		if (file_read(path, buf, sizeof(buf)) > 0) {
			*ns += strtoull(buf, NULL, 10);
		}
	}
	closedir(tasks);
	return 0;
}

static const struct qemu_seen *qemu_before(const struct watch *w, pid_t pid)
{
	int prev = !w->cur;

	for (size_t i = 0; i < w->n_qemus[prev]; i++) {
		if (w->qemus[prev][i].pid == pid) {
			return &w->qemus[prev][i];
		}
	}
	return NULL;
}

/* -r: whether QEMU pid (VM q->name, on node) ran since its previous sample. */
static bool qemu_ran(struct watch *w, pid_t pid, const struct qemu_info *q, size_t node)
{
	const struct qemu_seen *before = qemu_before(w, pid);
	struct qemu_seen *now;
	uint64_t ns;

	if (w->n_qemus[w->cur] == QEMUS_MAX) {
		return true; /* beyond what can be followed: counted, never missed */
	}
	now = &w->qemus[w->cur][w->n_qemus[w->cur]];
	now->pid = pid;
	now->vcpu_ns = 0;
	now->samples = before != NULL ? before->samples + 1 : 1;
	now->noted = before != NULL && before->noted;
	if (!q->named_threads) {
		if (!now->noted) {
			fprintf(w->out,
				"%llu %s node%zu pid %d: vCPU threads unnamed (no -name "
				"debug-threads=on), counted as running\n",
				(unsigned long long)now_ms(), q->name, node + 1, (int)pid);
			fflush(w->out);
			now->noted = true;
		}
		w->n_qemus[w->cur]++;
		return true;
	}
	if (vcpu_ns_read(pid, &ns) != 0) {
		return false; /* it has just ended */
	}
	now->vcpu_ns = ns;
	w->n_qemus[w->cur]++;
	return before != NULL && now->samples > SETTLE_SAMPLES && ns > before->vcpu_ns + RAN_NS_MIN;
}

/* The node whose network namespace pid is in, or w->n_nodes for none. */
static size_t pid_node(const struct watch *w, pid_t pid)
{
	char path[64];
	struct stat st;
	size_t node;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &st) != 0) {
		return w->n_nodes;
	}
	for (node = 0; node < w->n_nodes && w->nets[node] != st.st_ino; node++) {
	}
	return node;
}

/* vms[] gets VM name, and node in its nodes when on. */
static void vm_mark(struct seen *vms, size_t *n_vms, const char *name, size_t node, bool on)
{
	size_t k;

	for (k = 0; k < *n_vms && strcmp(vms[k].name, name) != 0; k++) {
	}
	if (k == *n_vms && *n_vms < VMS_MAX) {
		snprintf(vms[*n_vms].name, sizeof(vms[0].name), "%s", name);
		vms[(*n_vms)++].nodes = 0;
	}
	if (k < *n_vms && on) {
		vms[k].nodes |= 1u << node;
	}
}

/* One pass over /proc: the VMs of the nodes' QEMUs, into vms[]. */
static size_t sample_vms(struct watch *w, struct seen *vms)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	size_t n_vms = 0;

	w->n_qemus[w->cur] = 0;
	while (proc != NULL && (e = readdir(proc)) != NULL) {
		pid_t pid = (pid_t)atoi(e->d_name);
		struct qemu_info q;
		size_t node;
		if (pid <= 1 || !qemu_read(pid, &q)) {
			continue;
		}
		node = pid_node(w, pid);
		if (node == w->n_nodes) {
			continue;
		}
		vm_mark(vms, &n_vms, q.name, node, !w->running_only || qemu_ran(w, pid, &q, node));
	}
	if (proc != NULL) {
		closedir(proc);
	}
	return n_vms;
}

static bool on_two_nodes(const struct seen *vm)
{
	return (vm->nodes & (vm->nodes - 1)) != 0;
}

static void line_write(struct watch *w, const struct seen *vm)
{
	fprintf(w->out, "%llu %s", (unsigned long long)now_ms(), vm->name);
	for (size_t node = 0; node < w->n_nodes; node++) {
		if (vm->nodes & (1u << node)) {
			fprintf(w->out, " node%zu", node + 1);
		}
	}
	fputc('\n', w->out);
	fflush(w->out);
}

/* How many samples in a row VM name had run on two nodes in list, 0 for none. */
static unsigned long twice_samples(const struct twice *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i].name, name) == 0) {
			return list[i].samples;
		}
	}
	return 0;
}

/* -r: a line for each VM that ran on two nodes in this sample and the one before. */
static void record_twice(struct watch *w, const struct seen *vms, size_t n_vms)
{
	const struct twice *before = w->twice[!w->cur];
	size_t n_before = w->n_twice[!w->cur];
	struct twice *now = w->twice[w->cur];
	size_t n_now = 0;

	for (size_t k = 0; k < n_vms; k++) {
		if (!on_two_nodes(&vms[k])) {
			continue;
		}
		memcpy(now[n_now].name, vms[k].name, sizeof(now[0].name));
		now[n_now].samples = twice_samples(before, n_before, vms[k].name) + 1;
		if (now[n_now++].samples >= 2) {
			line_write(w, &vms[k]);
		}
	}
	w->n_twice[w->cur] = n_now;
	for (size_t i = 0; i < n_before; i++) {
		if (before[i].samples == 1 && twice_samples(now, n_now, before[i].name) == 0) {
			w->overlaps_once++;
		}
	}
}

static void sample(struct watch *w)
{
	struct seen vms[VMS_MAX];
	size_t n_vms = sample_vms(w, vms);

	if (w->running_only) {
		record_twice(w, vms, n_vms);
	} else {
		for (size_t k = 0; k < n_vms; k++) {
			if (on_two_nodes(&vms[k])) {
				line_write(w, &vms[k]);
			}
		}
	}
	w->cur = !w->cur;
	w->samples++;
}

static void samples_write(struct watch *w)
{
	if (!w->running_only) {
		fprintf(w->out, "samples %lu\n", w->samples);
		return;
	}
	/* A run still open after the last sample and one sample long so far. */
	for (size_t i = 0; i < w->n_twice[!w->cur]; i++) {
		w->overlaps_once += w->twice[!w->cur][i].samples == 1;
	}
	fprintf(w->out, "samples %lu one-sample-overlaps %lu\n", w->samples, w->overlaps_once);
}

static struct watch watch;

int main(int argc, char **argv)
{
	struct watch *w = &watch;
	bool usage = false;
	long interval_ms;
	int opt;

	while ((opt = getopt(argc, argv, "+r")) != -1) {
		w->running_only |= opt == 'r';
		usage |= opt != 'r';
	}
	if (usage || argc - optind < 3) {
		fprintf(stderr, "usage: vmc-vm-watch [-r] INTERVAL_MS OUTFILE NETNS_FILE...\n");
		return 2;
	}
	interval_ms = strtol(argv[optind], NULL, 10);
	w->out = fopen(argv[optind + 1], "a");
	if (w->out == NULL) {
		fprintf(stderr, "vmc-vm-watch: %s: %s\n", argv[optind + 1], strerror(errno));
		return 1;
	}
	for (int i = optind + 2; i < argc && w->n_nodes < NODES_MAX; i++) {
		struct stat st;
		w->nets[w->n_nodes++] = stat(argv[i], &st) == 0 ? st.st_ino : 0;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	while (!stop) {
		sample(w);
		usleep((useconds_t)interval_ms * 1000);
	}
	samples_write(w);
	fclose(w->out);
	return 0;
}
