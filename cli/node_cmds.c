/*
 * clusterctl's node drain and node resume. The cluster decides a drain on
 * every node alike (lib/drain.h); --wait follows the node's mode in
 * `node list` until it reads paused (every VM left) or drain-failed (it
 * names each VM that could not and why), with a progress bar on a
 * terminal and one JSON event per line with --json.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"

#define POLL_MS 300
#define BAR_WIDTH 24

/* The node's entry in `node list` (a new reference), or NULL with an exit code in *rc and why in err. */
static json_object *node_entry(struct cli *cli, const char *name, int *rc, char *err, size_t errlen)
{
	json_object *r, *found = NULL, *nodes;

	*rc = read_call(cli, VMC_IPC_NODE_LIST, NULL, &r, err, errlen);
	if (*rc != 0) {
		return NULL;
	}
	nodes = jget(r, "nodes");
	for (size_t i = 0; nodes != NULL && i < json_object_array_length(nodes); i++) {
		json_object *n = json_object_array_get_idx(nodes, i);
		if (strcmp(jstr(n, "name"), name) == 0) {
			found = json_object_get(n);
		}
	}
	json_object_put(r);
	if (found == NULL) {
		*rc = EXIT_REFUSED;
		snprintf(err, errlen, "node %s is not in the node list any more", name);
	}
	return found;
}

/* "web3 live to node2" for the first VM that moves, "" when none does. */
static void moving_one(json_object *drain, char *buf, size_t len)
{
	json_object *vms = jget(drain, "vms");

	buf[0] = '\0';
	for (size_t i = 0; vms != NULL && i < json_object_array_length(vms); i++) {
		json_object *v = json_object_array_get_idx(vms, i);
		if (json_object_get_boolean(jget(v, "moving"))) {
			snprintf(buf, len, "%s %s to %s", jstr(v, "vm"), jstr(v, "mode"), jstr(v, "target"));
			return;
		}
	}
}

static void drain_progress(struct cli *cli, const char *node, json_object *n, int64_t total, bool tty)
{
	json_object *drain = jget(n, "drain");
	int64_t left = drain ? json_object_get_int64(jget(drain, "left")) : 0;
	char moving[160], bar[BAR_WIDTH + 1];
	int done = total > 0 ? (int)((total - left) * BAR_WIDTH / total) : BAR_WIDTH;

	moving_one(drain, moving, sizeof(moving));
	if (cli->json) {
		json_object *e = json_object_new_object();
		json_object_object_add(e, "event", json_object_new_string("progress"));
		json_object_object_add(e, "node", json_object_new_string(node));
		json_object_object_add(e, "mode", json_object_new_string(jstr(n, "mode")));
		json_object_object_add(e, "left", json_object_new_int64(left));
		if (drain != NULL) {
			json_object_object_add(e, "vms", json_object_get(jget(drain, "vms")));
		}
		puts(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
		json_object_put(e);
	} else if (tty) {
		memset(bar, '.', BAR_WIDTH);
		memset(bar, '#', (size_t)(done < 0 ? 0 : done));
		bar[BAR_WIDTH] = '\0';
		printf("\r\033[Kdraining %s [%s] %lld of %lld VMs left%s%s", node, bar, (long long)left,
		       (long long)total, moving[0] ? ", moving " : "", moving);
	}
	fflush(stdout);
}

/* drain-failed: one line per VM that could not leave, and why. */
static int drain_failed(struct cli *cli, const char *node, json_object *n)
{
	json_object *vms = jget(jget(n, "drain"), "vms");

	if (!cli->json) {
		for (size_t i = 0; vms != NULL && i < json_object_array_length(vms); i++) {
			json_object *v = json_object_array_get_idx(vms, i);
			fprintf(stderr, "  vm %s: %s\n", jstr(v, "vm"), jstr(v, "why"));
		}
	}
	return fail(EXIT_REFUSED, "node %s: drain failed, %zu VMs could not leave (fix what is said above, then "
		    "'clusterctl node drain %s' again, or with --force)", node,
		    vms ? json_object_array_length(vms) : 0, node);
}

static int drain_follow(struct cli *cli, const char *node)
{
	int64_t t0 = vmc_now_ms(), deadline = t0 + (int64_t)cli->timeout_ms, total = -1;
	bool tty = !cli->json && isatty(STDOUT_FILENO);
	int rc;

	for (;;) {
		char err[1024];
		json_object *n = node_entry(cli, node, &rc, err, sizeof(err));
		const char *mode;
		if (n == NULL) {
			return fail(rc, "%s", err);
		}
		mode = jstr(n, "mode");
		if (total < 0) {
			total = jget(n, "drain") ? json_object_get_int64(jget(jget(n, "drain"), "left")) : 0;
		}
		drain_progress(cli, node, n, total, tty);
		if (strcmp(mode, "draining") != 0) {
			if (tty) {
				fputc('\n', stdout);
			}
			rc = strcmp(mode, "paused") == 0 ? EXIT_DONE
			     : strcmp(mode, "drain-failed") == 0 ? drain_failed(cli, node, n)
								  : fail(EXIT_REFUSED, "node %s is %s: the drain ended", node, mode);
			if (rc == EXIT_DONE && !cli->json) {
				printf("node %s paused: every VM has left (%.1f s)\n", node, (double)(vmc_now_ms() - t0) / 1000);
			}
			json_object_put(n);
			return rc;
		}
		json_object_put(n);
		if (vmc_now_ms() > deadline) {
			if (tty) {
				fputc('\n', stdout);
			}
			return fail(EXIT_TIMEOUT, "node %s is still draining after %d s (it goes on: see 'clusterctl node list')",
				    node, cli->timeout_ms / 1000);
		}
		pause_ms(POLL_MS);
	}
}

static void answer_print(struct cli *cli, json_object *r)
{
	if (cli->json && !cli->wait) {
		print_json(r);
	} else if (!cli->json) {
		printf("%s\n", jstr(r, "detail"));
	}
}

int cmd_node_drain(struct cli *cli, int argc, char **argv)
{
	json_object *args = json_object_new_object(), *r;
	int rc;

	(void)argc;
	json_object_object_add(args, "node", json_object_new_string(argv[0]));
	json_object_object_add(args, "force", json_object_new_boolean(cli->force));
	if (cli->target != NULL) {
		json_object_object_add(args, "target", json_object_new_string(cli->target));
	}
	rc = call(cli, VMC_IPC_NODE_DRAIN, args, &r);
	json_object_put(args);
	if (rc != 0) {
		return rc;
	}
	answer_print(cli, r);
	json_object_put(r);
	return cli->wait ? drain_follow(cli, argv[0]) : EXIT_DONE;
}

/*
 * --wait for a shutdown: the drain as above, then until the node's daemon
 * has gone (it exits once paused). Followed on the node itself, its
 * daemon going away after paused is the end.
 */
static int shutdown_follow(struct cli *cli, const char *node)
{
	int64_t deadline = vmc_now_ms() + (int64_t)cli->timeout_ms;
	bool paused = false;
	int rc;

	for (;;) {
		char err[1024];
		json_object *n = node_entry(cli, node, &rc, err, sizeof(err));
		if (n == NULL) {
			/* Followed on the node itself: its daemon going away once paused is the end. */
			if (paused && rc == EXIT_NO_DAEMON) {
				printf("node %s: every VM has left; its vmclusterd exited\n", node);
				return EXIT_DONE;
			}
			return fail(rc, "%s", err);
		}
		paused = strcmp(jstr(n, "mode"), "paused") == 0;
		if (strcmp(jstr(n, "mode"), "drain-failed") == 0) {
			rc = drain_failed(cli, node, n);
			json_object_put(n);
			return rc;
		}
		if (paused && strcmp(jstr(n, "state"), "up") != 0) {
			printf("node %s: every VM has left; its vmclusterd exited\n", node);
			json_object_put(n);
			return EXIT_DONE;
		}
		json_object_put(n);
		if (vmc_now_ms() > deadline) {
			return fail(EXIT_TIMEOUT, "node %s is still shutting down after %d s (see 'clusterctl node list')", node,
				    cli->timeout_ms / 1000);
		}
		pause_ms(POLL_MS);
	}
}

int cmd_node_shutdown(struct cli *cli, int argc, char **argv)
{
	json_object *args = json_object_new_object(), *r;
	char self[64];
	int rc;

	if (argc > 0) {
		json_object_object_add(args, "node", json_object_new_string(argv[0]));
	}
	rc = call(cli, VMC_IPC_NODE_SHUTDOWN, args, &r);
	json_object_put(args);
	if (rc != 0) {
		return rc;
	}
	answer_print(cli, r);
	json_object_put(r);
	if (!cli->wait) {
		return EXIT_DONE;
	}
	if (argc == 0) {
		rc = call(cli, VMC_IPC_STATUS, NULL, &r);
		if (rc != 0) {
			return rc;
		}
		snprintf(self, sizeof(self), "%s", jstr(r, "node_name"));
		json_object_put(r);
	}
	return shutdown_follow(cli, argc > 0 ? argv[0] : self);
}

/* Moves of the node's drained VMs back to it still queued or in flight. */
static int moves_home(struct cli *cli, const char *node, int *rc)
{
	json_object *r, *list;
	char err[1024];
	int n = 0;

	*rc = read_call(cli, VMC_IPC_MIGRATION_STATUS, NULL, &r, err, sizeof(err));
	if (*rc != 0) {
		*rc = fail(*rc, "%s", err);
		return -1;
	}
	list = jget(r, "migrations");
	for (size_t i = 0; list != NULL && i < json_object_array_length(list); i++) {
		n += strcmp(jstr(json_object_array_get_idx(list, i), "target"), node) == 0;
	}
	json_object_put(r);
	return n;
}

int cmd_node_resume(struct cli *cli, int argc, char **argv)
{
	json_object *args = json_object_new_object(), *r;
	int64_t t0 = vmc_now_ms(), deadline = t0 + (int64_t)cli->timeout_ms;
	int rc, n;

	(void)argc;
	json_object_object_add(args, "node", json_object_new_string(argv[0]));
	if (cli->failback != NULL) {
		json_object_object_add(args, "failback", json_object_new_string(cli->failback));
	}
	rc = call(cli, VMC_IPC_NODE_RESUME, args, &r);
	json_object_put(args);
	if (rc != 0) {
		return rc;
	}
	answer_print(cli, r);
	json_object_put(r);
	/* --wait: until the moves back to it are over. */
	while (cli->wait && (n = moves_home(cli, argv[0], &rc)) != 0) {
		if (n < 0) {
			return rc;
		}
		if (vmc_now_ms() > deadline) {
			return fail(EXIT_TIMEOUT, "%d moves back to %s are still going after %d s (see 'clusterctl "
				    "migration status')", n, argv[0], cli->timeout_ms / 1000);
		}
		pause_ms(POLL_MS);
	}
	if (cli->wait && !cli->json) {
		printf("node %s: the moves back are over (%.1f s)\n", argv[0], (double)(vmc_now_ms() - t0) / 1000);
	}
	return EXIT_DONE;
}
