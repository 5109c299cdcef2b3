/*
 * clusterctl's migration commands: move-vm (with its progress bar on a
 * terminal, or one JSON event per line with --json), migration status and
 * migration set. A move is asked of the cluster, which decides it in
 * order on every node (lib/migration.h); --wait then follows it in the
 * state until the VM runs on its target or stays where it was.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "migrate_proto.h"

#define POLL_MS 200
#define BAR_WIDTH 30

static int64_t jint(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	return v != NULL ? json_object_get_int64(v) : -1;
}

/* This move in `migration status`, or NULL (a new reference). */
static json_object *move_find(struct cli *cli, const char *id, int *rc)
{
	json_object *r = NULL, *found = NULL, *list;
	char err[1024];

	*rc = read_call(cli, VMC_IPC_MIGRATION_STATUS, NULL, &r, err, sizeof(err));
	if (*rc != 0) {
		*rc = fail(*rc, "%s", err);
		return NULL;
	}
	list = jget(r, "migrations");
	for (size_t i = 0; list != NULL && i < json_object_array_length(list); i++) {
		json_object *m = json_object_array_get_idx(list, i);
		if (strcmp(jstr(m, "id"), id) == 0) {
			found = json_object_get(m);
		}
	}
	json_object_put(r);
	return found;
}

static void bar_draw(json_object *m)
{
	json_object *p = jget(m, "progress");
	int64_t total = jint(p, "total"), remaining = jint(p, "remaining"), pass = jint(p, "pass");
	int64_t down = jint(p, "expected_downtime_ms");
	json_object *mbps = jget(p, "mbps");
	int pct = total > 0 && remaining >= 0 ? (int)(100 - remaining * 100 / total) : 0;
	char bar[BAR_WIDTH + 1];

	memset(bar, '.', BAR_WIDTH);
	memset(bar, '#', (size_t)(pct * BAR_WIDTH / 100));
	bar[BAR_WIDTH] = '\0';
	if (p == NULL || total <= 0 || remaining < 0) {
		fprintf(stdout, "\r%s: %-10s", jstr(m, "vm"), jstr(m, "phase"));
	} else {
		fprintf(stdout, "\r%s [%s] %3d%% %6.0f MiB/s %5lld MiB left  pass %lld  downtime ~%lld ms ", jstr(m, "vm"),
			bar, pct, mbps ? json_object_get_double(mbps) / 8.388608 : 0.0, (long long)(remaining >> 20),
			(long long)pass, (long long)down);
	}
	fflush(stdout);
}

/* The move is over: where the VM is says how it went. */
static int outcome(struct cli *cli, const char *vm, const char *target, int64_t t0, bool tty)
{
	json_object *args = name_args(vm), *r = NULL;
	char err[1024];
	int rc = read_call(cli, VMC_IPC_VM_SHOW, args, &r, err, sizeof(err));
	bool moved;

	json_object_put(args);
	if (tty) {
		fputc('\n', stdout);
	}
	if (rc != 0) {
		return fail(rc, "%s", err);
	}
	moved = strcmp(jstr(r, "owner"), target) == 0 || (target[0] == '\0' && strstr(jstr(r, "reason"), "moved"));
	if (cli->json) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "event", json_object_new_string(moved ? "done" : "failed"));
		json_object_object_add(e, "vm", json_object_new_string(vm));
		json_object_object_add(e, "owner", json_object_new_string(jstr(r, "owner")));
		json_object_object_add(e, "reason", json_object_new_string(jstr(r, "reason")));
		json_object_object_add(e, "elapsed_ms", json_object_new_int64(vmc_now_ms() - t0));
		puts(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
		json_object_put(e);
	} else if (moved) {
		printf("vm %s %s (%.1f s)\n", vm, jstr(r, "reason"), (double)(vmc_now_ms() - t0) / 1000);
	}
	rc = moved ? EXIT_DONE : fail(EXIT_REFUSED, "vm %s: %s", vm, jstr(r, "reason"));
	json_object_put(r);
	return rc;
}

static void progress_event(json_object *m)
{
	json_object *e = json_object_new_object(), *p = jget(m, "progress");

	json_object_object_add(e, "event", json_object_new_string("progress"));
	json_object_object_add(e, "vm", json_object_new_string(jstr(m, "vm")));
	json_object_object_add(e, "phase", json_object_new_string(jstr(m, "phase")));
	if (p != NULL) {
		json_object_object_add(e, "progress", json_object_get(p));
	}
	puts(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(e);
}

static int follow(struct cli *cli, const char *vm, const char *id, const char *target)
{
	int64_t t0 = vmc_now_ms(), deadline = t0 + (int64_t)cli->timeout_ms;
	bool tty = !cli->json && isatty(STDOUT_FILENO);
	char last_phase[16] = "";
	int rc;

	for (;;) {
		json_object *m = move_find(cli, id, &rc);
		if (m == NULL) {
			return rc != 0 ? rc : outcome(cli, vm, target, t0, tty);
		}
		if (tty) {
			bar_draw(m);
		} else if (cli->json) {
			progress_event(m);
		} else if (strcmp(jstr(m, "phase"), last_phase) != 0) {
			printf("vm %s: %s\n", vm, jstr(m, "phase"));
			fflush(stdout);
		}
		snprintf(last_phase, sizeof(last_phase), "%s", jstr(m, "phase"));
		json_object_put(m);
		if (vmc_now_ms() > deadline) {
			return fail(EXIT_TIMEOUT, "vm %s is still moving after %d s (it goes on: see 'clusterctl migration status')",
				    vm, cli->timeout_ms / 1000);
		}
		pause_ms(POLL_MS);
	}
}

int cmd_move_vm(struct cli *cli, int argc, char **argv)
{
	char id[VMC_MIGP_ID_LEN + 1];
	json_object *args, *r;
	int rc;

	if (cli->live && cli->quick) {
		return fail(EXIT_USAGE, "--live and --quick exclude each other");
	}
	if (!cli->by_pacemaker) {
		json_object *show_args = name_args(argv[0]), *g = NULL;
		rc = call(cli, VMC_IPC_VM_SHOW, show_args, &g);
		json_object_put(show_args);
		if (rc != 0) {
			return rc;
		}
		bool pacemaker = strcmp(jstr(jget(g, "definition"), "manager"), "pacemaker") == 0;
		json_object_put(g);
		if (pacemaker) {
			return pcmk_move_vm(cli, argv[0], argc > 1 ? argv[1] : NULL);
		}
	}
	if (vmc_migp_new_id(id) != 0) {
		return fail(EXIT_USAGE, "no random numbers from the kernel for a migration id");
	}
	args = name_args(argv[0]);
	if (argc > 1) {
		json_object_object_add(args, "node", json_object_new_string(argv[1]));
	}
	json_object_object_add(args, "id", json_object_new_string(id));
	json_object_object_add(args, "mode", json_object_new_string(cli->quick ? "quick" : "live"));
	if (cli->by_pacemaker) {
		json_object_object_add(args, "cause", json_object_new_string("pacemaker"));
	}
	rc = call(cli, VMC_IPC_VM_MOVE, args, &r);
	json_object_put(args);
	if (rc != 0) {
		return rc;
	}
	if (cli->json && !cli->wait) {
		json_object_object_add(r, "id", json_object_new_string(id));
		print_json(r);
	} else if (cli->json) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "event", json_object_new_string("asked"));
		json_object_object_add(e, "vm", json_object_new_string(argv[0]));
		json_object_object_add(e, "id", json_object_new_string(id));
		json_object_object_add(e, "detail", json_object_new_string(jstr(r, "detail")));
		puts(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
		json_object_put(e);
	} else {
		printf("%s (migration %s)\n", jstr(r, "detail"), id);
	}
	json_object_put(r);
	return cli->wait ? follow(cli, argv[0], id, argc > 1 ? argv[1] : "") : EXIT_DONE;
}

static void status_text(json_object *r)
{
	json_object *list = jget(r, "migrations");
	size_t n = list != NULL ? json_object_array_length(list) : 0;

	printf("migration network: %s; at most %s at once per node; %s\n",
	       strcmp(jstr(r, "network"), "") ? jstr(r, "network") : "(none: the corosync ring addresses)",
	       jstr(r, "max_parallel"), strcmp(jstr(r, "encrypt"), "true") == 0 ? "encrypted" : "NOT encrypted");
	if (n == 0) {
		printf("no migration in flight or queued\n");
		return;
	}
	printf("%-20s %-10s %-6s %-12s %-12s %s\n", "VM", "PHASE", "MODE", "FROM", "TO", "PROGRESS");
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(list, i), *p = jget(m, "progress");
		char prog[64] = "-";
		if (p != NULL && jint(p, "total") > 0) {
			snprintf(prog, sizeof(prog), "%lld%% (pass %lld)",
				 (long long)(100 - jint(p, "remaining") * 100 / jint(p, "total")), (long long)jint(p, "pass"));
		}
		printf("%-20s %-10s %-6s %-12s %-12s %s\n", jstr(m, "vm"), jstr(m, "phase"), jstr(m, "mode"),
		       jstr(m, "source"), jstr(m, "target"), prog);
	}
}

int cmd_migration_status(struct cli *cli, int argc, char **argv)
{
	json_object *r;
	int rc = call(cli, VMC_IPC_MIGRATION_STATUS, NULL, &r);

	(void)argc;
	(void)argv;
	if (rc != 0) {
		return rc;
	}
	if (cli->json) {
		print_json(r);
	} else {
		status_text(r);
	}
	json_object_put(r);
	return EXIT_DONE;
}

/* migration set KEY=VALUE: the cluster settings migration_KEY. */
int cmd_migration_set(struct cli *cli, int argc, char **argv)
{
	char **keyed = calloc((size_t)argc, sizeof(*keyed));
	json_object *args, *r;
	int bad, rc;

	if (keyed == NULL) {
		return fail(EXIT_USAGE, "out of memory");
	}
	for (int i = 0; i < argc; i++) {
		size_t len = strlen(argv[i]) + sizeof("migration_");
		keyed[i] = malloc(len);
		if (keyed[i] != NULL) {
			snprintf(keyed[i], len, "migration_%s", argv[i]);
		}
	}
	args = assignments_args(argc, keyed, &bad);
	rc = bad >= 0 ? fail(EXIT_USAGE, "'%s' is not KEY=VALUE (see 'clusterctl migration set --help')", argv[bad])
		      : call(cli, VMC_IPC_CLUSTER_SET, args, &r);
	json_object_put(args);
	for (int i = 0; i < argc; i++) {
		free(keyed[i]);
	}
	free(keyed);
	if (bad < 0 && rc == EXIT_DONE) {
		if (cli->json) {
			print_json(r);
		} else {
			printf("migration settings changed (config_version %s)\n", jstr(r, "config_version"));
		}
		json_object_put(r);
	}
	return rc;
}
