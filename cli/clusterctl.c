/*
 * clusterctl: the operator's tool. It talks to the local vmclusterd over
 * libqb IPC (lib/client.c); every change goes through the cluster and is
 * answered with the verdict every node reached.
 *
 * Exit codes (clusterctl(8)): 0 done; 1 refused by the cluster (exists,
 * not found, busy); 2 bad usage or invalid input; 3 no daemon; 4 no
 * quorum; 5 permission denied; 6 timed out (nothing was applied); 7 the
 * outcome of a change is unknown (it may or may not be applied).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "clock.h"
#include "group_def.h"
#include "vmc_errors.h"
#include "cli.h"

static const struct command commands[];
static int start_or_stop(struct cli *cli, const char *name, bool start);

int exit_for(int rc)
{
	switch (-rc) {
	case 0:
		return EXIT_DONE;
	case VMC_E_NO_QUORUM:
		return EXIT_NO_QUORUM;
	case VMC_E_INVALID:
	case VMC_E_PROTOCOL:
	case VMC_E_VERSION:
		return EXIT_USAGE;
	case VMC_E_DENIED:
	case EACCES:
		return EXIT_DENIED;
	case ETIMEDOUT:
		return EXIT_TIMEOUT;
	case VMC_E_UNKNOWN:
		return EXIT_UNKNOWN;
	case ENOTCONN:
	case ECONNRESET:
	case ENOTSOCK:
	case EPIPE:
	case VMC_E_NOT_READY:
		return EXIT_NO_DAEMON;
	default:
		return EXIT_REFUSED;
	}
}

int fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("clusterctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static int connect_daemon(struct cli *cli)
{
	int rc = vmc_client_connect(&cli->client, cli->max_msg);

	if (rc == -EACCES) {
		return fail(EXIT_DENIED, "permission denied: clusterctl needs root or membership of group %s",
			    VMC_IPC_GROUP);
	}
	if (rc != 0) {
		return fail(EXIT_NO_DAEMON, "cannot reach vmclusterd on this node: is it running? "
					    "(start it with 'vmclusterd')");
	}
	return 0;
}

static bool is_change(enum vmc_ipc_cmd cmd)
{
	return cmd != VMC_IPC_STATUS && cmd != VMC_IPC_NODE_LIST && cmd != VMC_IPC_VM_LIST &&
	       cmd != VMC_IPC_VM_SHOW && cmd != VMC_IPC_CLUSTER_SHOW && cmd != VMC_IPC_DUMP &&
	       cmd != VMC_IPC_VOLUME_LIST && cmd != VMC_IPC_VOLUME_SHOW && cmd != VMC_IPC_MIGRATION_STATUS;
}

/*
 * One call; a change the cluster says was not applied (a membership
 * change came first) is retried until the timeout. A change whose answer
 * does not come in time may have been applied or not: say so.
 */
#define READ_MS 5000

int read_call(struct cli *cli, enum vmc_ipc_cmd cmd, json_object *args, json_object **result, char *err,
	      size_t errlen)
{
	int rc;

	*result = NULL;
	rc = vmc_client_call(cli->client, cmd, args, READ_MS, result, err, errlen);
	if (rc != 0) {
		json_object_put(*result);
		*result = NULL;
	}
	return exit_for(rc);
}

void pause_ms(int ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&t, NULL);
}

int call(struct cli *cli, enum vmc_ipc_cmd cmd, json_object *args, json_object **result)
{
	long long deadline = vmc_now_ms() + cli->timeout_ms;
	char err[2048];
	int rc = connect_daemon(cli);

	if (rc != 0) {
		return rc;
	}
	for (;;) {
		long long left = deadline - vmc_now_ms();
		*result = NULL;
		rc = vmc_client_call(cli->client, cmd, args, left > 0 ? (int)left : 1, result, err,
				     sizeof(err));
		if (rc == -EMSGSIZE && cli->max_msg < VMC_IPC_MAX_MSG) {
			/* A big cluster: ask again over a connection with the largest buffer. */
			json_object_put(*result);
			vmc_client_close(cli->client);
			cli->client = NULL;
			cli->max_msg = VMC_IPC_MAX_MSG;
			rc = connect_daemon(cli);
			if (rc != 0) {
				return rc;
			}
			continue;
		}
		if (rc != -VMC_E_RETRY || vmc_now_ms() >= deadline) {
			break;
		}
		json_object_put(*result);
		struct timespec pause = { 0, 100 * 1000 * 1000 };
		nanosleep(&pause, NULL);
	}
	if (rc == -VMC_E_RETRY) {
		json_object_put(*result);
		*result = NULL;
		return fail(EXIT_TIMEOUT, "not applied: cluster membership kept changing for %d s (%s); "
					  "try again (or raise --timeout)", cli->timeout_ms / 1000, err);
	}
	/* No answer at all (no result): the daemon's own -ETIMEDOUT refusals say what timed out. */
	if (rc == -ETIMEDOUT && *result == NULL && is_change(cmd)) {
		json_object_put(*result);
		*result = NULL;
		return fail(EXIT_UNKNOWN, "outcome unknown: no answer within %d s; the change may or may not "
					  "be applied (see 'clusterctl vm list' once the cluster has quorum)",
			    cli->timeout_ms / 1000);
	}
	if (rc != 0) {
		json_object_put(*result);
		*result = NULL;
		return fail(exit_for(rc), "%s", err);
	}
	return EXIT_DONE;
}

void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		return "-";
	}
	return json_object_get_string(v);
}

json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

/* After the mode: what a drain waits for, or until when a quarantine lasts; the VMs stuck, one a line. */
static void node_mode_detail(json_object *n)
{
	json_object *drain = jget(n, "drain"), *vms = jget(drain, "vms");
	const char *mode = jstr(n, "mode");

	if (strcmp(mode, "quarantined") == 0) {
		time_t until = (time_t)json_object_get_int64(jget(n, "quarantined_until_s"));
		struct tm tm;
		char when[32] = "?";
		if (gmtime_r(&until, &tm) != NULL) {
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
		}
		printf(" until %s (lost %s times within an hour)", when, jstr(n, "recent_losses"));
	}
	if (drain == NULL) {
		return;
	}
	printf(" (%s VMs left, %s moving)", jstr(drain, "left"), jstr(drain, "moving"));
	for (size_t i = 0; vms != NULL && i < json_object_array_length(vms); i++) {
		json_object *v = json_object_array_get_idx(vms, i);
		if (!json_object_get_boolean(jget(v, "moving"))) {
			printf("\n    vm %s: %s", jstr(v, "vm"), jstr(v, "why"));
		}
	}
}

static void print_nodes_table(json_object *nodes)
{
	printf("%-16s %5s  %-24s %-11s %4s %15s  %s\n", "NODE", "ID", "ADDRESS", "STATE", "VMS",
	       "MEMORY USED", "MODE");
	for (size_t i = 0; i < json_object_array_length(nodes); i++) {
		json_object *n = json_object_array_get_idx(nodes, i);
		char mem[32];
		snprintf(mem, sizeof(mem), "%s/%s MiB", jstr(n, "used_memory_mib"), jstr(n, "vm_memory_mib"));
		printf("%-16s %5s  %-24s %-11s %4s %15s  %s", jstr(n, "name"), jstr(n, "id"), jstr(n, "address"),
		       jstr(n, "state"), jstr(n, "vms"), mem, jstr(n, "mode"));
		node_mode_detail(n);
		if (json_object_get_boolean(jget(jget(n, "pacemaker"), "standby"))) {
			printf(" (standby in pacemaker)");
		}
		putchar('\n');
	}
}

/* Off a quorate view, what a read shows is this node's last copy: say so first. */
static void print_stale(json_object *r)
{
	if (json_object_get_boolean(jget(r, "stale"))) {
		printf("STALE: this node is not in a quorate partition; what follows is its last copy of the "
		       "cluster's state, which may lag (since %s)\n\n",
		       jget(r, "stale_since") ? jstr(r, "stale_since") : "start-up");
	}
}

/* What the daemon waits for, one line each ("fencing node3 (agent, attempt 2, 12 s)"). */
static void print_waits(json_object *waits)
{
	size_t n = waits ? json_object_array_length(waits) : 0;

	printf("Waiting:%s\n", n == 0 ? " nothing" : "");
	for (size_t i = 0; i < n; i++) {
		printf("  %s\n", jstr(json_object_array_get_idx(waits, i), "text"));
	}
}

/* One line on moves: how many, and over which network (a dedicated one is production practice). */
static void print_moves(struct cli *cli)
{
	json_object *m = NULL, *list;
	char err[256];
	size_t flight = 0, queued = 0;

	if (vmc_client_call(cli->client, VMC_IPC_MIGRATION_STATUS, NULL, 5000, &m, err, sizeof(err)) != 0) {
		json_object_put(m);
		return;
	}
	list = jget(m, "migrations");
	for (size_t i = 0; list != NULL && i < json_object_array_length(list); i++) {
		if (strcmp(jstr(json_object_array_get_idx(list, i), "phase"), "queued") == 0) {
			queued++;
		} else {
			flight++;
		}
	}
	printf("Moves:   %zu in flight, %zu queued; %s over %s%s\n", flight, queued,
	       strcmp(jstr(m, "encrypt"), "true") == 0 ? "encrypted" : "NOT encrypted",
	       jstr(m, "network")[0] ? jstr(m, "network") : "the corosync ring addresses",
	       jstr(m, "network")[0] ? "" : " (no migration network: clusterctl migration set network=CIDR)");
	json_object_put(m);
}

static int cmd_status(struct cli *cli, int argc, char **argv)
{
	json_object *r;
	int rc = call(cli, VMC_IPC_STATUS, NULL, &r);

	if (rc != 0) {
		return rc;
	}
	json_object *warnings = jget(r, "warnings");

	/* Warnings go to stderr as well, so a script that reads --json still shows them. */
	for (size_t i = 0; warnings && i < json_object_array_length(warnings); i++) {
		fprintf(stderr, "clusterctl: warning: %s\n",
			json_object_get_string(json_object_array_get_idx(warnings, i)));
	}
	if (cli->json) {
		print_json(r);
	} else {
		print_stale(r);
		printf("Cluster %s, this node %s (id %s)\n", jstr(r, "cluster_name"), jstr(r, "node_name"),
		       jstr(r, "node_id"));
		printf("Quorum:  %s (%s of %s expected votes); changes %s\n",
		       json_object_get_boolean(jget(r, "quorate")) ? "yes" : "NO", jstr(r, "total_votes"),
		       jstr(r, "expected_votes"),
		       json_object_get_boolean(jget(r, "accepting_changes")) ? "accepted" : "REFUSED");
		printf("State:   config_version %s, digest %s, sync %s\n", jstr(r, "config_version"),
		       jstr(r, "state_digest"), jstr(r, "sync"));
		printf("VMs:     %s\nFencing: %s\n", jstr(r, "vms"),
		       jget(r, "fencing_by") ? jstr(r, "fencing_by") : jstr(r, "fence_method"));
		print_moves(cli);
		print_waits(jget(r, "waits"));
		putchar('\n');
		print_nodes_table(jget(r, "nodes"));
	}
	json_object_put(r);
	return EXIT_DONE;
}

static int cmd_node_list(struct cli *cli, int argc, char **argv)
{
	json_object *r;
	int rc = call(cli, VMC_IPC_NODE_LIST, NULL, &r);

	if (rc != 0) {
		return rc;
	}
	pcmk_annotate_nodes(jget(r, "nodes"));
	if (cli->json) {
		print_json(jget(r, "nodes"));
	} else {
		print_nodes_table(jget(r, "nodes"));
	}
	json_object_put(r);
	return EXIT_DONE;
}

static char *file_slurp(const char *path, int *err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	size_t n;

	if (f == NULL) {
		*err = errno;
		return NULL;
	}
	buf = malloc(1 << 20);
	if (buf != NULL) {
		n = fread(buf, 1, (1 << 20) - 1, f);
		len = n;
		buf[len] = '\0';
		if (!feof(f)) {
			*err = EFBIG;
			free(buf);
			buf = NULL;
		}
	}
	if (f != stdin) {
		fclose(f);
	}
	return buf;
}

static int cmd_vm_add(struct cli *cli, int argc, char **argv)
{
	struct vmc_group_def *def = NULL;
	json_object *args, *r, *definition;
	char err[1024];
	int e = 0, rc;
	char *text = file_slurp(argv[0], &e);

	if (text == NULL) {
		return fail(EXIT_USAGE, "cannot read %s: %s", argv[0], strerror(e ? e : ENOMEM));
	}
	if (strlen(text) == 0) {
		free(text);
		return fail(EXIT_USAGE, "%s: the file is empty; it should hold a VM definition (JSON)", argv[0]);
	}
	rc = vmc_group_def_from_string(text, &def, err, sizeof(err));
	if (rc != 0) {
		free(text);
		return fail(EXIT_USAGE, "%s: %s", argv[0], err);
	}
	definition = json_tokener_parse(text);
	free(text);
	args = json_object_new_object();
	json_object_object_add(args, "definition", definition);
	rc = call(cli, VMC_IPC_VM_ADD, args, &r);
	json_object_put(args);
	if (rc == 0) {
		if (!cli->json) {
			printf("vm %s added (config_version %s)\n", def->name, jstr(r, "config_version"));
		} else {
			print_json(r);
		}
		json_object_put(r);
		if (cli->start) {
			rc = start_or_stop(cli, def->name, true);
		}
	}
	vmc_group_def_free(def);
	return rc;
}

/*
 * A read: the daemon's answer as JSON with --json, else its STALE header
 * (off a quorate view) and text(r). args (may be NULL) is consumed.
 */
static int show(struct cli *cli, enum vmc_ipc_cmd cmd, json_object *args, void (*text)(json_object *r))
{
	json_object *r;
	int rc = call(cli, cmd, args, &r);

	json_object_put(args);
	if (rc != 0) {
		return rc;
	}
	/* What pacemaker says of the groups it manages (nothing is asked of it when there are none). */
	if (cmd == VMC_IPC_VM_LIST) {
		pcmk_annotate_vm_list(r, cli->json);
	} else if (cmd == VMC_IPC_VM_SHOW) {
		pcmk_annotate_vm_show(r, cli->json);
	}
	if (cli->json) {
		print_json(r);
	} else {
		print_stale(r);
		text(r);
	}
	json_object_put(r);
	return EXIT_DONE;
}

/* What vm list prints. */
static void vm_list_text(json_object *r)
{
	json_object *vms = jget(r, "vms");

	printf("%-24s %-16s %-10s %-13s %8s  %s\n", "NAME", "OWNER", "STATE", "PRIORITY",
	       "MEMORY", "PREFERRED");
	for (size_t i = 0; i < json_object_array_length(vms); i++) {
		json_object *v = json_object_array_get_idx(vms, i);
		json_object *pref = jget(v, "preferred_owners");
		char owners[256] = "";
		for (size_t j = 0; pref && j < json_object_array_length(pref); j++) {
			strncat(owners, j ? "," : "", sizeof(owners) - strlen(owners) - 1);
			strncat(owners, json_object_get_string(json_object_array_get_idx(pref, j)),
				sizeof(owners) - strlen(owners) - 1);
		}
		printf("%-24s %-16s %-10s %-13s %5sMiB  %s\n", jstr(v, "name"), jstr(v, "owner"),
		       jstr(v, "state"), jstr(v, "priority"), jstr(v, "memory_mib"),
		       owners[0] ? owners : "-");
	}
	for (size_t i = 0; i < json_object_array_length(vms); i++) {
		json_object *v = json_object_array_get_idx(vms, i);
		char prefix[96];
		snprintf(prefix, sizeof(prefix), "%s: ", jstr(v, "name"));
		pcmk_vm_text(v, prefix);
	}
}

static int cmd_vm_list(struct cli *cli, int argc, char **argv)
{
	return show(cli, VMC_IPC_VM_LIST, NULL, vm_list_text);
}

json_object *name_args(const char *name)
{
	json_object *args = json_object_new_object();

	json_object_object_add(args, "name", json_object_new_string(name));
	return args;
}

/* What vm show prints. */
static void vm_show_text(json_object *r)
{
	if (jget(r, "owner_lost") != NULL) {
		printf("Unknown:    %s (the cluster last knew it %s)\n", jstr(r, "owner_lost"),
		       jstr(r, "cluster_state"));
	}
	printf("Name:       %s\nOwner:      %s\nState:      %s\nReason:     %s\n", jstr(r, "name"), jstr(r, "owner"),
	       jstr(r, "state"), jstr(r, "reason")[0] ? jstr(r, "reason") : "-");
	if (jget(r, "migration") != NULL) {
		json_object *m = jget(r, "migration");
		printf("Moving:     %s to %s, %s (migration %s)\n", jstr(m, "mode"), jstr(m, "target"), jstr(m, "phase"),
		       jstr(m, "id"));
	}
	if (jget(r, "failback") != NULL) {
		printf("Failback:   %s\n", jstr(jget(r, "failback"), "text"));
	}
	if (jget(r, "failed_on") != NULL) {
		printf("Failed on:  %s\n", jstr(r, "failed_on"));
	}
	pcmk_vm_text(r, "Pacemaker:  ");
	printf("Failures:   %s recent\nPriority:   %s\nWanted:     %s\nDefinition:\n%s\n", jstr(r, "recent_failures"),
	       jstr(r, "priority"), json_object_get_boolean(jget(r, "want_started")) ? "started" : "stopped",
	       json_object_to_json_string_ext(jget(r, "definition"),
					      JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int cmd_vm_show(struct cli *cli, int argc, char **argv)
{
	return show(cli, VMC_IPC_VM_SHOW, name_args(argv[0]), vm_show_text);
}

static int cmd_vm_remove(struct cli *cli, int argc, char **argv)
{
	json_object *args = name_args(argv[0]);
	json_object *r;
	int rc = call(cli, VMC_IPC_VM_REMOVE, args, &r);

	json_object_put(args);
	if (rc == 0) {
		if (!cli->json) {
			printf("vm %s removed (config_version %s)\n", argv[0], jstr(r, "config_version"));
		} else {
			print_json(r);
		}
		json_object_put(r);
	}
	return rc;
}

json_object *assignments_args(int argc, char **argv, int *bad)
{
	json_object *args = json_object_new_object();
	json_object *set = json_object_new_array();

	*bad = -1;
	for (int i = 0; i < argc; i++) {
		if (strchr(argv[i], '=') == NULL || argv[i][0] == '=') {
			*bad = i;
		}
		json_object_array_add(set, json_object_new_string(argv[i]));
	}
	json_object_object_add(args, "set", set);
	return args;
}

static int cmd_vm_set(struct cli *cli, int argc, char **argv)
{
	int bad;
	json_object *args = assignments_args(argc - 1, argv + 1, &bad);
	json_object *r;
	int rc;

	if (bad >= 0) {
		json_object_put(args);
		return fail(EXIT_USAGE, "'%s' is not KEY=VALUE (see 'clusterctl vm set --help')",
			    argv[bad + 1]);
	}
	json_object_object_add(args, "name", json_object_new_string(argv[0]));
	rc = call(cli, VMC_IPC_VM_SET, args, &r);
	json_object_put(args);
	if (rc == 0) {
		if (!cli->json) {
			printf("vm %s changed (config_version %s)\n", argv[0], jstr(r, "config_version"));
		} else {
			print_json(r);
		}
		json_object_put(r);
	}
	return rc;
}

static int cmd_cluster_show(struct cli *cli, int argc, char **argv)
{
	json_object *r;
	int rc = call(cli, VMC_IPC_CLUSTER_SHOW, NULL, &r);

	if (rc != 0) {
		return rc;
	}
	if (cli->json) {
		print_json(r);
	} else {
		json_object_object_foreach(r, key, val) {
			printf("%-16s %s\n", key, json_object_get_string(val)[0] ? json_object_get_string(val) : "-");
		}
	}
	json_object_put(r);
	return EXIT_DONE;
}

static int cmd_cluster_set(struct cli *cli, int argc, char **argv)
{
	int bad;
	json_object *args = assignments_args(argc, argv, &bad);
	json_object *r;
	int rc;

	if (bad >= 0) {
		json_object_put(args);
		return fail(EXIT_USAGE, "'%s' is not KEY=VALUE (see 'clusterctl cluster set --help')",
			    argv[bad]);
	}
	rc = call(cli, VMC_IPC_CLUSTER_SET, args, &r);
	json_object_put(args);
	if (rc == 0) {
		if (cli->json) {
			print_json(r);
		} else {
			printf("cluster settings changed (config_version %s)\n", jstr(r, "config_version"));
		}
		json_object_put(r);
	}
	return rc;
}

/*
 * --wait: follow the VM until it reaches `want` (or failed), printing each
 * state it passes through, within the --timeout deadline.
 */
static int wait_for_state(struct cli *cli, const char *name, const char *want)
{
	long long deadline = vmc_now_ms() + cli->timeout_ms;
	char last[32] = "";

	for (;;) {
		json_object *args = name_args(name), *r = NULL;
		char err[1024];
		int rc = vmc_client_call(cli->client, VMC_IPC_VM_SHOW, args, 5000, &r, err, sizeof(err));
		const char *st;
		bool gone_from_node = false;

		json_object_put(args);
		if (rc != 0) {
			json_object_put(r);
			return fail(exit_for(rc), "%s", err);
		}
		st = jstr(r, "state");
		/* Stopped there is enough when the stop was for one node: it may run on (or fail) elsewhere. */
		if (cli->node != NULL && strcmp(want, "offline") == 0 && strcmp(jstr(r, "owner"), cli->node) != 0 &&
		    strcmp(jstr(r, "failed_on"), cli->node) != 0) {
			st = "offline";
			gone_from_node = true;
		}
		if (gone_from_node && !cli->json) {
			printf("vm %s: not running on %s\n", name, cli->node);
		} else if (strcmp(st, last) != 0 && !cli->json) {
			printf("vm %s: %s%s%s\n", name, st, strcmp(jstr(r, "owner"), "-") ? " on " : "",
			       strcmp(jstr(r, "owner"), "-") ? jstr(r, "owner") : "");
			snprintf(last, sizeof(last), "%s", st);
		}
		if (strcmp(st, want) == 0) {
			if (cli->json) {
				print_json(r);
			}
			json_object_put(r);
			return EXIT_DONE;
		}
		if (strcmp(st, "failed") == 0) {
			rc = fail(EXIT_REFUSED, "vm %s failed: %s", name, jstr(r, "reason"));
			json_object_put(r);
			return rc;
		}
		json_object_put(r);
		if (vmc_now_ms() >= deadline) {
			return fail(EXIT_TIMEOUT, "vm %s is still %s after %d s (see 'clusterctl vm show %s')",
				    name, st, cli->timeout_ms / 1000, name);
		}
		struct timespec pause = { 0, 200 * 1000 * 1000 };
		nanosleep(&pause, NULL);
	}
}

static int start_or_stop(struct cli *cli, const char *name, bool start)
{
	json_object *args = name_args(name);
	json_object *r;
	int rc;

	if (cli->node != NULL) {
		json_object_object_add(args, "node", json_object_new_string(cli->node));
	}
	rc = call(cli, start ? VMC_IPC_VM_START : VMC_IPC_VM_STOP, args, &r);
	json_object_put(args);
	if (rc != 0) {
		return rc;
	}
	if (!cli->json && cli->node != NULL) {
		printf("%s (config_version %s)\n", jstr(r, "detail"), jstr(r, "config_version"));
	} else if (!cli->json) {
		printf("vm %s %s (config_version %s)\n", name, start ? "starting" : "stopping",
		       jstr(r, "config_version"));
	} else if (!cli->wait) {
		print_json(r);
	}
	json_object_put(r);
	return cli->wait ? wait_for_state(cli, name, start ? "online" : "offline") : EXIT_DONE;
}

static int cmd_vm_start(struct cli *cli, int argc, char **argv)
{
	return start_or_stop(cli, argv[0], true);
}

static int cmd_vm_stop(struct cli *cli, int argc, char **argv)
{
	return start_or_stop(cli, argv[0], false);
}

static int cmd_node_confirm_fenced(struct cli *cli, int argc, char **argv)
{
	json_object *args = json_object_new_object(), *r;
	int rc;

	json_object_object_add(args, "node", json_object_new_string(argv[0]));
	rc = call(cli, VMC_IPC_NODE_CONFIRM_FENCED, args, &r);
	json_object_put(args);
	if (rc != 0) {
		return rc;
	}
	if (cli->json) {
		print_json(r);
	} else {
		printf("node %s confirmed fenced: its VMs restart elsewhere\n", argv[0]);
	}
	json_object_put(r);
	return EXIT_DONE;
}

static int cmd_dump(struct cli *cli, int argc, char **argv)
{
	json_object *r, *events;
	int rc = call(cli, VMC_IPC_DUMP, NULL, &r);

	if (rc != 0) {
		return rc;
	}
	events = jget(r, "events");
	if (cli->json) {
		print_json(r);
	} else {
		for (size_t i = 0; events && i < json_object_array_length(events); i++) {
			puts(json_object_get_string(json_object_array_get_idx(events, i)));
		}
	}
	json_object_put(r);
	return EXIT_DONE;
}

/* ---- volumes ---- */

/* A change about one volume: what the daemon said, one line. */
static int volume_change(struct cli *cli, enum vmc_ipc_cmd cmd, json_object *args, const char *done)
{
	json_object *r;
	int rc = call(cli, cmd, args, &r);

	json_object_put(args);
	if (rc != 0) {
		return rc;
	}
	if (cli->json) {
		print_json(r);
	} else {
		printf("%s (config_version %s)\n", done, jstr(r, "config_version"));
	}
	json_object_put(r);
	return EXIT_DONE;
}

static int cmd_volume_add(struct cli *cli, int argc, char **argv)
{
	json_object *args = name_args(argv[0]);
	char done[600];

	json_object_object_add(args, "path", json_object_new_string(argv[1]));
	snprintf(done, sizeof(done), "volume %s added at %s", argv[0], argv[1]);
	return volume_change(cli, VMC_IPC_VOLUME_ADD, args, done);
}

static int cmd_volume_remove(struct cli *cli, int argc, char **argv)
{
	char done[128];

	snprintf(done, sizeof(done), "volume %s removed", argv[0]);
	return volume_change(cli, VMC_IPC_VOLUME_REMOVE, name_args(argv[0]), done);
}

static int cmd_volume_move(struct cli *cli, int argc, char **argv)
{
	json_object *args = name_args(argv[0]);
	char done[160];

	json_object_object_add(args, "node", json_object_new_string(argv[1]));
	snprintf(done, sizeof(done), "volume %s: coordinator %s", argv[0], argv[1]);
	return volume_change(cli, VMC_IPC_VOLUME_MOVE, args, done);
}

/* What volume list prints. */
static void volume_list_text(json_object *r)
{
	json_object *vols = jget(r, "volumes");

	printf("%-20s %-16s %5s %6s %10s  %s\n", "NAME", "COORDINATOR", "VMS", "LOCKS", "HEALTHY", "PATH");
	for (size_t i = 0; i < json_object_array_length(vols); i++) {
		json_object *v = json_object_array_get_idx(vols, i);
		char healthy[32];
		snprintf(healthy, sizeof(healthy), "%s of %s", jstr(v, "healthy_on"), jstr(v, "reported_by"));
		printf("%-20s %-16s %5s %6s %10s  %s\n", jstr(v, "name"),
		       jget(v, "coordinator") ? jstr(v, "coordinator") : "-", jstr(v, "vms"), jstr(v, "locks"),
		       healthy, jstr(v, "path"));
	}
}

static int cmd_volume_list(struct cli *cli, int argc, char **argv)
{
	return show(cli, VMC_IPC_VOLUME_LIST, NULL, volume_list_text);
}

/* What volume show prints. */
static void volume_show_text(json_object *r)
{
	json_object *seen, *locks;

	printf("Name:        %s\nPath:        %s\nCoordinator: %s%s%s%s\nVMs:         %s\n", jstr(r, "name"),
	       jstr(r, "path"), jget(r, "coordinator") ? jstr(r, "coordinator") : "none",
	       jget(r, "preferred_coordinator") ? " (chosen: " : "",
	       jget(r, "preferred_coordinator") ? jstr(r, "preferred_coordinator") : "",
	       jget(r, "preferred_coordinator") ? ")" : "", jstr(r, "vms"));
	seen = jget(r, "seen");
	printf("Health:\n");
	for (size_t i = 0; seen && i < json_object_array_length(seen); i++) {
		json_object *e = json_object_array_get_idx(seen, i);
		time_t since = (time_t)json_object_get_int64(jget(e, "since_s"));
		char when[32] = "";
		struct tm tm;
		/* Since when, by the reporter's clock: for the operator's eyes only. */
		if (strcmp(jstr(e, "health"), "ok") != 0 && since > 0 && gmtime_r(&since, &tm) != NULL) {
			strftime(when, sizeof(when), " (since %Y-%m-%dT%H:%M:%SZ)", &tm);
		}
		printf("  %-16s %-8s %s%s\n", jstr(e, "node"), jstr(e, "health"), jstr(e, "detail"), when);
	}
	if (seen == NULL || json_object_array_length(seen) == 0) {
		printf("  (no node has reported on it yet)\n");
	}
	if (jget(r, "from_here") != NULL) {
		json_object *h = jget(r, "from_here"), *slots = jget(h, "slots");
		printf("Leases, as %s reads them (its own: %s, renewed %s ms ago%s):\n", jstr(h, "node"),
		       jstr(h, "health"), jget(h, "renewed_ms_ago") ? jstr(h, "renewed_ms_ago") : "never",
		       json_object_get_boolean(jget(h, "direct_io")) ? ", direct I/O" : "");
		for (size_t i = 0; slots && i < json_object_array_length(slots); i++) {
			json_object *e = json_object_array_get_idx(slots, i);
			printf("  %-16s slot %-8s counter %-8s changed %s ms ago\n", jstr(e, "node"), jstr(e, "slot"),
			       jstr(e, "counter"), jstr(e, "changed_ms_ago"));
		}
	}
	locks = jget(r, "image_locks");
	printf("Image locks:\n");
	for (size_t i = 0; locks && i < json_object_array_length(locks); i++) {
		json_object *l = json_object_array_get_idx(locks, i);
		printf("  %-40s vm %-20s on %s\n", jstr(l, "image"), jstr(l, "vm"), jstr(l, "node"));
	}
	if (locks == NULL || json_object_array_length(locks) == 0) {
		printf("  (none)\n");
	}
}

static int cmd_volume_show(struct cli *cli, int argc, char **argv)
{
	return show(cli, VMC_IPC_VOLUME_SHOW, name_args(argv[0]), volume_show_text);
}

static const struct command commands[] = {
	{ "status", NULL, 0, 0, "", "show quorum, nodes, the state, and what the daemon waits for",
	  cmd_status },
	{ "node", "list", 0, 0, "", "list the cluster's nodes and whether each is up", cmd_node_list },
	{ "node", "confirm-fenced", 1, 1, "NODE",
	  "tell the cluster NODE is powered off when its fence device cannot (root only)",
	  cmd_node_confirm_fenced, false,
	  "Use it only when you have made sure NODE is off (its fence device died with it, say):\n"
	  "the cluster then restarts NODE's VMs elsewhere without further proof, and if NODE\n"
	  "still runs them, they run twice and their disks are corrupted. Refused while NODE is\n"
	  "a member of the cluster (its daemon or its corosync answers). Logged on every node." },
	{ "node", "drain", 1, 1, "NODE [--wait] [--force] [--target NODE]",
	  "move every VM off NODE live and keep new ones off it (for maintenance)", cmd_node_drain, true,
	  "NODE stops taking VMs, and each VM on it moves live where placement puts it (or to\n"
	  "--target), high priority first, within the migration limits. NODE reads draining\n"
	  "while VMs are left, paused once none is, or drain-failed when some cannot leave:\n"
	  "node list names each with the reason (no node can take it, its live migration\n"
	  "failed twice). --force moves what live migration cannot by quick migration (a\n"
	  "pause while its memory goes through its volume). --wait follows the drain (a\n"
	  "progress bar on a terminal) until it ends; --timeout bounds the wait.\n"
	  "The cluster remembers where each VM came from: 'node resume' can bring them back." },
	{ "node", "resume", 1, 1, "NODE [--failback none|immediate|policy] [--wait]",
	  "let NODE take VMs again after a drain or a quarantine", cmd_node_resume, true,
	  "--failback immediate moves every VM the drain took away back to NODE live now;\n"
	  "policy (the default) leaves each to its own failback setting (never, immediate,\n"
	  "or window HH-HH); none forgets where they came from. --wait waits for the moves\n"
	  "back to end. A quarantined node takes VMs again at once." },
	{ "node", "shutdown", 0, 1, "[NODE] [--wait]",
	  "empty NODE (this node by default) as shutdown_policy says, then stop its vmclusterd", cmd_node_shutdown,
	  true,
	  "What a host shutdown does (the systemd unit's stop runs it; a restart does not):\n"
	  "shutdown_policy migrate (the default) drains NODE, with --force's fallbacks; stop\n"
	  "stops each VM and starts it on another node. Once NODE is paused its vmclusterd\n"
	  "exits. Started again, NODE takes VMs again and what left follows each VM's\n"
	  "failback policy. --wait follows it until the daemon has gone." },
	{ "dump", NULL, 0, 0, "", "print the daemon's recent log events, debug included (from memory)",
	  cmd_dump, true },
	{ "cluster", "show", 0, 0, "", "show the cluster-wide settings", cmd_cluster_show },
	{ "cluster", "set", 1, -1, "KEY=VALUE...",
	  "change cluster-wide settings (clusterctl cluster set --help lists the keys)", cmd_cluster_set,
	  false,
	  "KEY is one of:\n"
	  "  fence_method     agent | pacemaker | lease | none: how a lost node is proven dead before its\n"
	  "                   VMs are restarted elsewhere (none must be chosen explicitly, and\n"
	  "                   status warns about it on every call)\n"
	  "  fence_agent      absolute path of a fence-agents-style executable (for agent)\n"
	  "  fence_timeout_s  how long a fencing attempt may take, 1-3600 (default 60)\n"
	  "  accel            auto | kvm | tcg: how QEMU runs VMs (auto probes that KVM works)\n"
	  "  lease_io_timeout_s  1-60 (default 10): the host leases' I/O timeout; renewals every\n"
	  "                   2x, VMs on a volume killed after 6x without one, expiry after 14x\n"
	  "  migration_*      the migration settings: see 'clusterctl migration set --help'\n"
	  "  failback_delay_s 0-86400 (default 60): a node back from a failure takes its VMs back\n"
	  "                   only after this long (a flapping node pulls nothing back and forth)\n"
	  "  quarantine_threshold  0-8 (default 3): losses within an hour that quarantine a node\n"
	  "                   (it takes no VMs); 0 never quarantines\n"
	  "  quarantine_duration_s (default 7200): how long, unless 'node resume' ends it\n"
	  "  timezone         the zone failback windows are in (default UTC; e.g. Europe/Berlin)\n"
	  "  shutdown_policy  migrate | stop | freeze (default migrate): what a host shutdown does\n"
	  "                   with its VMs: drain them live, stop them for a restart elsewhere, or\n"
	  "                   leave them for the node to restart when it is back\n"
	  "Example: clusterctl cluster set fence_method=agent fence_agent=/usr/sbin/fence_ipmilan" },
	{ "vm", "add", 1, 1, "FILE [--start [--wait]]",
	  "add the VM group defined in FILE (JSON; - for stdin), and start it with --start", cmd_vm_add },
	{ "vm", "list", 0, 0, "", "list VM groups with owner, state and priority", cmd_vm_list, true },
	{ "vm", "show", 1, 1, "VM", "show one VM group, with its definition", cmd_vm_show },
	{ "vm", "start", 1, 1, "VM [--node NODE] [--wait]",
	  "start a VM group where placement puts it (or on NODE); --wait until online",
	  cmd_vm_start, false,
	  "--node NODE starts it there, if NODE passes the same rules placement applies (a\n"
	  "possible owner, memory, healthy volumes, free image locks). A group whose manager\n"
	  "is pacemaker starts only that way: pacemaker's agent, ocf:vmcluster:VMGroup, names\n"
	  "the node; operators start it with 'crm resource start' or 'pcs resource enable'." },
	{ "vm", "stop", 1, 1, "VM [--node NODE] [--wait]",
	  "stop a VM group (ACPI shutdown, forced after the daemon's stop timeout); --wait until offline",
	  cmd_vm_stop, false,
	  "--node NODE stops it only if it runs (or failed) there, and succeeds doing nothing\n"
	  "otherwise: what pacemaker's agent asks for. A group whose manager is pacemaker\n"
	  "stops only that way (operators use 'crm resource stop' or 'pcs resource disable')." },
	{ "vm", "remove", 1, 1, "VM", "remove a stopped VM group", cmd_vm_remove },
	{ "vm", "set", 2, -1, "VM KEY=VALUE...",
	  "change fields of a VM's definition (clusterctl vm set --help lists the keys)",
	  cmd_vm_set, false,
	  "KEY is one of: memory_mib, vcpus, cpu, priority, failback, manager,\n"
	  "  preferred_owners, possible_owners, anti_affinity, start_after (comma-separated lists),\n"
	  "  start_after_timeout_s,\n"
	  "  disks, nics (JSON arrays), failover.max_failures, failover.period_s,\n"
	  "  boot.kernel, boot.initrd, boot.cmdline (an empty value removes initrd or cmdline).\n"
	  "The result is validated like a new definition; 'name' cannot change.\n"
	  "Example: clusterctl vm set web1 memory_mib=512 priority=high preferred_owners=node2,node1" },
	{ "volume", "add", 2, 2, "NAME PATH",
	  "register PATH, a directory every node mounts, as the cluster shared volume NAME", cmd_volume_add,
	  false,
	  "PATH is resolved on this node (it must exist, be a directory, and be writable) and\n"
	  "must not lie inside another volume. Once a cluster has a volume, every VM disk must\n"
	  "lie on one, or be marked \"local\": true in the VM's definition.\n"
	  "Example: clusterctl volume add csv1 /srv/csv1" },
	{ "volume", "list", 0, 0, "", "list the volumes with coordinator, VMs, locks and health", cmd_volume_list,
	  true },
	{ "volume", "show", 1, 1, "NAME", "show one volume: its health on each node and its image locks",
	  cmd_volume_show, true },
	{ "volume", "remove", 1, 1, "NAME", "unregister a volume that no VM's disk lies on", cmd_volume_remove },
	{ "volume", "move", 2, 2, "NAME NODE", "make NODE the volume's coordinator (it must see it healthy)",
	  cmd_volume_move },
	{ "move-vm", NULL, 1, 2, "VM [NODE] [--live|--quick] [--wait] [--by-pacemaker]",
	  "move a running VM to NODE (or where placement puts it) without stopping it", cmd_move_vm, false,
	  "Live by default: the VM keeps running while its memory is copied, then pauses for\n"
	  "milliseconds while the last pages, its devices and its disk locks go over. Refused\n"
	  "up front when NODE is down, not a possible owner, short of memory, lacks a healthy\n"
	  "volume the VM uses, or the VM is moving already. On any failure before the switch\n"
	  "the VM keeps running where it was. More than migration max_parallel moves at once\n"
	  "from or to a node wait in a queue, high priority first. --wait follows the move\n"
	  "(a progress bar on a terminal, one JSON event per line with --json) until it ends.\n"
	  "--by-pacemaker is what ocf:vmcluster:VMGroup's migrate_to uses: it carries out a\n"
	  "move pacemaker decided for a group pacemaker manages." },
	{ "migration", "status", 0, 0, "", "list the migrations in flight and queued, with their progress",
	  cmd_migration_status, true },
	{ "migration", "set", 1, -1, "KEY=VALUE...", "change the migration settings (network, limits, encryption)",
	  cmd_migration_set, false,
	  "KEY is one of:\n"
	  "  network        IPv4 CIDR the agents listen and connect in (a dedicated network is\n"
	  "                 production practice); empty: the corosync ring addresses\n"
	  "  port           the agents' TCP port (default 7794)\n"
	  "  max_parallel   live migrations at once into a node, and the cap of the adaptive\n"
	  "                 limit out of it, 1-16 (default 2)\n"
	  "  adaptive       on | off (default on): how many go out of a node at once follows\n"
	  "                 what its migrations show (room on the link, all converging), up to\n"
	  "                 max_parallel; off: max_parallel, fixed\n"
	  "  bandwidth_mib  MiB/s per migration, 0 for as fast as the link goes (default 0)\n"
	  "  downtime_ms    the pause QEMU may plan for at the switch (default 300)\n"
	  "  timeout_s      cancel a migration that has not converged by then (default 600)\n"
	  "  encrypt        on | off (default on): AES-256-GCM between the agents; off only on a\n"
	  "                 trusted dedicated network (root only)\n"
	  "  no_incoming    nodes that take no migration in, comma-separated (default none)\n"
	  "  no_outgoing    nodes that send no migration out, comma-separated (default none)\n"
	  "Example: clusterctl migration set network=198.51.100.0/24 max_parallel=4" },
	{ NULL, NULL, 0, 0, NULL, NULL, NULL },
};

static void usage(FILE *out, const char *noun)
{
	fprintf(out, "Usage: clusterctl [--json] [--timeout SECONDS] COMMAND [ARGS]\n");
	if (noun == NULL) {
		fprintf(out, "Manage a vmcluster failover cluster of QEMU/KVM VMs through the local vmclusterd.\n");
	}
	fprintf(out, "\nCommands:\n");
	for (const struct command *c = commands; c->noun; c++) {
		char left[64];
		if (noun != NULL && strcmp(noun, c->noun) != 0) {
			continue;
		}
		snprintf(left, sizeof(left), "%s%s%s%s%s", c->noun, c->verb ? " " : "",
			 c->verb ? c->verb : "", c->args[0] ? " " : "", c->args);
		fprintf(out, "  %-30s %s\n", left, c->help);
	}
	fprintf(out, "\nOptions:\n"
		     "  --json             machine-readable output (before or after the command)\n"
		     "  --timeout SECONDS  how long to wait for the cluster (default 30)\n"
		     "  -h, --help         show help (for a command: clusterctl vm --help)\n"
		     "  -V, --version      show the version\n"
		     "\nExit status: 0 done, 1 refused by the cluster, 2 bad usage or input,\n"
		     "3 no daemon, 4 no quorum, 5 permission denied, 6 timed out (nothing applied),\n"
		     "7 outcome unknown (a change may or may not be applied).\n"
		     "See clusterctl(8).\n");
}

static void command_usage(FILE *out, const struct command *c)
{
	fprintf(out, "Usage: clusterctl [--json] [--timeout SECONDS] %s%s%s%s%s\n  %s\n", c->noun,
		c->verb ? " " : "", c->verb ? c->verb : "", c->args[0] ? " " : "", c->args, c->help);
	if (c->details != NULL) {
		fprintf(out, "\n%s\n", c->details);
	}
}

static const struct command *command_find(const char *noun, const char *verb, bool *noun_known)
{
	*noun_known = false;
	for (const struct command *c = commands; c->noun; c++) {
		if (strcmp(c->noun, noun) != 0) {
			continue;
		}
		*noun_known = true;
		if (c->verb == NULL || (verb != NULL && strcmp(c->verb, verb) == 0)) {
			return c;
		}
	}
	return NULL;
}

/* Pulls global options out of argv wherever they stand; keeps the rest in order. */
static int options_extract(struct cli *cli, int *argc, char **argv, bool *help)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			cli->json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			*help = true;
		} else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			printf("clusterctl %s\n", PACKAGE_VERSION);
			exit(EXIT_DONE);
		} else if (strcmp(argv[i], "--timeout") == 0 || strncmp(argv[i], "--timeout=", 10) == 0) {
			const char *v = argv[i][9] == '=' ? argv[i] + 10 : (i + 1 < *argc ? argv[++i] : "");
			char *end;
			long s = strtol(v, &end, 10);
			if (*v == '\0' || *end != '\0' || s < 1 || s > 3600) {
				return fail(EXIT_USAGE, "--timeout takes a number of seconds from 1 to 3600, not '%s'", v);
			}
			cli->timeout_ms = (int)s * 1000;
		} else if (strcmp(argv[i], "--wait") == 0) {
			cli->wait = true;
		} else if (strcmp(argv[i], "--start") == 0) {
			cli->start = true;
		} else if (strcmp(argv[i], "--live") == 0) {
			cli->live = true;
		} else if (strcmp(argv[i], "--quick") == 0) {
			cli->quick = true;
		} else if (strcmp(argv[i], "--force") == 0) {
			cli->force = true;
		} else if (strcmp(argv[i], "--by-pacemaker") == 0) {
			cli->by_pacemaker = true;
		} else if (strcmp(argv[i], "--target") == 0 || strcmp(argv[i], "--failback") == 0 ||
			   strcmp(argv[i], "--node") == 0) {
			if (i + 1 >= *argc) {
				return fail(EXIT_USAGE, "%s needs a value", argv[i]);
			}
			if (strcmp(argv[i], "--target") == 0) {
				cli->target = argv[++i];
			} else if (strcmp(argv[i], "--node") == 0) {
				cli->node = argv[++i];
			} else {
				cli->failback = argv[++i];
			}
		} else if (strcmp(argv[i], "--") == 0) {
			while (++i < *argc) {
				argv[out++] = argv[i];
			}
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return fail(EXIT_USAGE, "unknown option '%s' (see 'clusterctl --help')", argv[i]);
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli = { .json = false, .timeout_ms = 30000 };
	const struct command *c;
	bool help = false, noun_known;
	int nargs, rc;

	rc = options_extract(&cli, &argc, argv, &help);
	if (rc != 0) {
		return rc;
	}
	if (argc < 2 || strcmp(argv[1], "help") == 0) {
		usage(help || argc >= 2 ? stdout : stderr, NULL);
		return help || argc >= 2 ? EXIT_DONE : EXIT_USAGE;
	}
	c = command_find(argv[1], argc > 2 ? argv[2] : NULL, &noun_known);
	if (c == NULL) {
		if (help && noun_known) {
			usage(stdout, argv[1]);
			return EXIT_DONE;
		}
		if (!noun_known) {
			return fail(EXIT_USAGE, "unknown command '%s' (see 'clusterctl --help')", argv[1]);
		}
		return argc > 2 ? fail(EXIT_USAGE, "unknown command '%s %s' (see 'clusterctl %s --help')",
				       argv[1], argv[2], argv[1])
				: fail(EXIT_USAGE, "'%s' needs a subcommand (see 'clusterctl %s --help')",
				       argv[1], argv[1]);
	}
	if (help) {
		command_usage(stdout, c);
		return EXIT_DONE;
	}
	if (cli.wait && cli.start == false && strcmp(c->verb ? c->verb : "", "add") == 0) {
		return fail(EXIT_USAGE, "'vm add --wait' needs --start (there is nothing to wait for)");
	}
	if ((cli.wait && strstr(c->args, "--wait") == NULL) || (cli.start && strstr(c->args, "--start") == NULL)) {
		return fail(EXIT_USAGE, "'%s %s' takes no %s (see 'clusterctl %s %s --help')", c->noun,
			    c->verb ? c->verb : "", cli.wait ? "--wait" : "--start", c->noun, c->verb ? c->verb : "");
	}
	if ((cli.live || cli.quick) && strstr(c->args, "--live") == NULL) {
		return fail(EXIT_USAGE, "'%s%s%s' takes no %s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "",
			    cli.live ? "--live" : "--quick");
	}
	if ((cli.force && strstr(c->args, "--force") == NULL) || (cli.target && strstr(c->args, "--target") == NULL) ||
	    (cli.failback && strstr(c->args, "--failback") == NULL) || (cli.node && strstr(c->args, "--node") == NULL) ||
	    (cli.by_pacemaker && strstr(c->args, "--by-pacemaker") == NULL)) {
		return fail(EXIT_USAGE, "'%s%s%s' takes no %s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "",
			    cli.force ? "--force" : cli.target ? "--target" : cli.failback ? "--failback"
			    : cli.node ? "--node" : "--by-pacemaker");
	}
	nargs = argc - (c->verb ? 3 : 2);
	if (nargs < c->min_args || (c->max_args >= 0 && nargs > c->max_args)) {
		return fail(EXIT_USAGE, "wrong number of arguments: usage is 'clusterctl %s%s%s%s%s'",
			    c->noun, c->verb ? " " : "", c->verb ? c->verb : "", c->args[0] ? " " : "",
			    c->args);
	}
	cli.max_msg = c->large_reply ? VMC_IPC_LIST_MSG : VMC_IPC_SMALL_MSG;
	rc = c->run(&cli, nargs, argv + (c->verb ? 3 : 2));
	vmc_client_close(cli.client);
	return rc;
}
