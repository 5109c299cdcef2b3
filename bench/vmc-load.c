/*
 * vmc-load: drives change requests through the local vmclusterd, pipelined
 * over one IPC connection, and prints what happened. Used by the
 * benchmarks (throughput) and by the stress test (10,000 changes while
 * nodes die and return).
 *
 * Each request is an add of a fresh group, a `set` of memory on a group
 * this run added, or a remove of one. A request the cluster did not apply
 * because membership changed or quorum was missing is retried, since it
 * was applied nowhere.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "group_def.h"
#include "vmc_errors.h"

struct load {
	const char *prefix;
	unsigned int count;      /* changes to get applied */
	unsigned int window;     /* requests in flight */
	unsigned int timeout_s;
	bool adds_only;
	unsigned int memory_mib;
	unsigned int rate;       /* changes sent per second at most; 0: as fast as it goes */
	/* progress */
	unsigned int applied, refused, retried, raced, next_name;
	unsigned int *names;     /* suffixes of groups this run added and not removed */
	unsigned int n_names;
	uint64_t rng;
};

struct inflight {
	bool used;
	enum vmc_ipc_cmd cmd;
	json_object *args;
	unsigned int name; /* for adds: the suffix added */
	double retry_at;   /* > 0: refused for now, send again then */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned int rnd(struct load *l, unsigned int n)
{
	l->rng = l->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned int)((l->rng >> 33) % n);
}

static json_object *make_add(struct load *l, unsigned int suffix)
{
	json_object *args = json_object_new_object();
	char def[512];

	snprintf(def, sizeof(def),
		 "{\"name\":\"%s-%u\",\"memory_mib\":%u,\"vcpus\":1,"
		 "\"boot\":{\"kernel\":\"/var/lib/vmcluster/guest/vmlinuz\",\"cmdline\":\"console=ttyS0\"},"
		 "\"priority\":\"medium\"}",
		 l->prefix, suffix, l->memory_mib);
	json_object_object_add(args, "definition", json_tokener_parse(def));
	return args;
}

/* Picks the next request. Sets and removes target groups this run added. */
static enum vmc_ipc_cmd next_request(struct load *l, struct inflight *f)
{
	unsigned int roll = rnd(l, 10);
	char name[96], kv[64];

	if (l->adds_only || l->n_names == 0 || roll < 5) {
		f->name = ++l->next_name;
		f->args = make_add(l, f->name);
		return VMC_IPC_VM_ADD;
	}
	unsigned int i = rnd(l, l->n_names);
	snprintf(name, sizeof(name), "%s-%u", l->prefix, l->names[i]);
	f->args = json_object_new_object();
	json_object_object_add(f->args, "name", json_object_new_string(name));
	if (roll < 8) {
		json_object *set = json_object_new_array();
		snprintf(kv, sizeof(kv), "memory_mib=%u", 64 + 64 * rnd(l, 4));
		json_object_array_add(set, json_object_new_string(kv));
		json_object_object_add(f->args, "set", set);
		return VMC_IPC_VM_SET;
	}
	/* Forget it now so no other request in flight targets it. */
	l->names[i] = l->names[--l->n_names];
	return VMC_IPC_VM_REMOVE;
}

static void note_applied(struct load *l, struct inflight *f)
{
	l->applied++;
	if (f->cmd == VMC_IPC_VM_ADD) {
		l->names[l->n_names++] = f->name;
	}
}

static int send_slot(struct vmc_client *c, struct inflight *f, unsigned int slot)
{
	json_object_object_add(f->args, "tag", json_object_new_int64(slot));
	return vmc_client_send(c, f->cmd, f->args);
}

static int run(struct load *l)
{
	struct inflight *slots = calloc(l->window, sizeof(*slots));
	struct vmc_client *c = NULL;
	double start = now_s(), deadline = start + l->timeout_s;
	unsigned int in_flight = 0;
	double sent = 0;
	int rc = vmc_client_connect(&c, VMC_IPC_SMALL_MSG);

	l->names = calloc(l->count + 1, sizeof(*l->names));
	if (rc != 0 || slots == NULL || l->names == NULL) {
		fprintf(stderr, "vmc-load: cannot reach vmclusterd: %s\n", strerror(-rc));
		return 3;
	}
	while (l->applied + l->raced < l->count || in_flight > 0) {
		for (unsigned int s = 0; s < l->window; s++) {
			if (slots[s].used && slots[s].retry_at > 0 && now_s() >= slots[s].retry_at) {
				slots[s].retry_at = 0;
				send_slot(c, &slots[s], s);
			}
		}
		for (unsigned int s = 0; s < l->window && l->applied + l->raced + in_flight < l->count; s++) {
			if (l->rate > 0 && sent >= (now_s() - start) * l->rate) {
				break; /* paced: a steady stream rather than a burst */
			}
			if (!slots[s].used) {
				sent++;
				slots[s].used = true;
				slots[s].cmd = next_request(l, &slots[s]);
				if (send_slot(c, &slots[s], s) != 0) {
					fprintf(stderr, "vmc-load: lost the daemon\n");
					return 3;
				}
				in_flight++;
			}
		}
		json_object *res = NULL, *tag;
		int verdict = 0;
		rc = vmc_client_recv(c, 5, &res, &verdict);
		if (rc == -ETIMEDOUT || rc == -EAGAIN) {
			if (now_s() > deadline) {
				fprintf(stderr, "vmc-load: gave up after %u s with %u applied\n", l->timeout_s,
					l->applied);
				return 6;
			}
			continue;
		}
		if (rc != 0 || !json_object_object_get_ex(res, "tag", &tag)) {
			fprintf(stderr, "vmc-load: lost the daemon: %s\n", strerror(-rc));
			return 3;
		}
		struct inflight *f = &slots[json_object_get_int(tag) % l->window];
		if (verdict == -VMC_E_RETRY || verdict == -VMC_E_NO_QUORUM) {
			/* Nothing was applied; ask again shortly rather than spin. */
			l->retried++;
			f->retry_at = now_s() + (verdict == -VMC_E_NO_QUORUM ? 0.1 : 0.01);
		} else {
			if (verdict == 0) {
				note_applied(l, f);
			} else if (verdict == -VMC_E_NOT_FOUND && f->cmd != VMC_IPC_VM_ADD) {
				/* a retried set overtaken by the remove of its group */
				l->raced++;
			} else {
				fprintf(stderr, "vmc-load: refused: %s\n",
					json_object_get_string(json_object_object_get(res, "error")));
				l->refused++;
			}
			json_object_put(f->args);
			f->used = false;
			in_flight--;
		}
		json_object_put(res);
	}
	double elapsed = now_s() - start;
	printf("vmc-load: %u applied, %u refused, %u retried, %u raced in %.2f s: %.0f changes/s\n",
	       l->applied, l->refused, l->retried, l->raced, elapsed,
	       l->applied / (elapsed > 0 ? elapsed : 1));
	vmc_client_close(c);
	free(slots);
	free(l->names);
	return l->refused == 0 ? 0 : 1;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: vmc-load [--count N] [--window W] [--prefix NAME] [--adds-only]\n"
		     "                [--memory-mib M] [--timeout SECONDS] [--seed S] [--rate PER_S]\n"
		     "Sends change requests through the local vmclusterd until N are applied.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'n' },   { "window", required_argument, NULL, 'w' },
		{ "prefix", required_argument, NULL, 'p' },  { "adds-only", no_argument, NULL, 'a' },
		{ "memory-mib", required_argument, NULL, 'm' }, { "timeout", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },    { "help", no_argument, NULL, 'h' },
		{ "rate", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct load l = { .prefix = "load", .count = 1000, .window = 16, .timeout_s = 600,
			  .memory_mib = 64, .rng = 1 };
	int c;

	while ((c = getopt_long(argc, argv, "n:w:p:am:t:s:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': l.count = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'w': l.window = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'p': l.prefix = optarg; break;
		case 'a': l.adds_only = true; break;
		case 'm': l.memory_mib = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 't': l.timeout_s = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 's': l.rng = strtoull(optarg, NULL, 10); break;
		case 'r': l.rate = (unsigned int)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (l.count == 0 || l.window == 0 || l.window > 1024 || !vmc_valid_name(l.prefix)) {
		fprintf(stderr, "vmc-load: --count and --window (1-1024) must be positive, --prefix a valid name\n");
		return 2;
	}
	return run(&l);
}
