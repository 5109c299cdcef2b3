/*
 * vmcluster-migrate: moves a running QEMU VM to another host (send on the
 * source, listen on the destination), authenticated with the cluster key.
 * vmclusterd spawns both; an operator can run them by hand between two
 * hosts (vmcluster-migrate(8)).
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "agent.h"
#include "conn.h"
#include "json_util.h"

static const char usage[] =
	"Usage: vmcluster-migrate send --vm NAME --qmp SOCKET --to ADDR:PORT --id ID\n"
	"                              --definition FILE [OPTIONS]\n"
	"       vmcluster-migrate listen --listen ADDR:PORT [--expect ID --vm NAME --qmp SOCKET]\n"
	"       vmcluster-migrate save|restore --qmp SOCKET --file PATH [--id ID]\n"
	"       vmcluster-migrate remove --file PATH\n"
	"       vmcluster-migrate new-id\n"
	"\n"
	"Moves a running QEMU VM to another host: 'listen' on the destination (its\n"
	"QEMU started with -incoming defer), 'send' on the source. Both sides prove\n"
	"they hold the cluster key; nothing unauthenticated reaches a QEMU. Progress\n"
	"is printed on stdout as JSON lines, errors on stderr. Quick migration: 'save'\n"
	"pauses the VM and writes its state to a file on a volume both hosts see,\n"
	"'restore' loads it into a QEMU waiting with -incoming defer (and removes it).\n"
	"\n"
	"Options:\n"
	"  --key-file FILE    the cluster key (default /etc/corosync/authkey)\n"
	"  --from ADDR        send: connect from this address of the migration network\n"
	"  --no-encrypt       send: plaintext stream, for a trusted dedicated network\n"
	"  --bandwidth MIB    send: MiB/s at most (default: unlimited)\n"
	"  --downtime MS      send: the pause QEMU may plan for (default 300)\n"
	"  --timeout S        send: cancel if not converged by then (default 600)\n"
	"  --source NAME      send: this host's name, for the destination's log\n"
	"  --wait-continue    send: at pre-switchover wait for 'continue' on stdin\n"
	"                     (vmclusterd hands the disk locks over meanwhile)\n"
	"  --daemon           run for vmclusterd: die with it; listen reads its\n"
	"                     expectations on stdin\n"
	"  -h, --help         this text\n";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmcluster-migrate: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

static long number(const char *opt, const char *v, long max)
{
	char *end;
	long x = strtol(v, &end, 10);

	if (*end != '\0' || x < 0 || x > max) {
		fprintf(stderr, "vmcluster-migrate: %s '%s' is not a number from 0 to %ld\n", opt, v, max);
		exit(2);
	}
	return x;
}

static json_object *definition_load(const char *path)
{
	json_object *def = json_object_from_file(path);

	if (def == NULL || !json_object_is_type(def, json_type_object) || vmc_json_str(def, "name") == NULL) {
		die("--definition %s: not a VM definition (a JSON object with a name)", path);
	}
	return def;
}

static void keyed(const char *key_file, uint8_t key[VMC_MIGP_KEY_LEN])
{
	char err[256];

	if (key_load(key_file, key, err, sizeof(err)) != 0) {
		die("%s (give --key-file)", err);
	}
}

enum { O_KEY = 256, O_FROM, O_NOENC, O_BW, O_DOWN, O_TIMEOUT, O_SOURCE, O_WAIT, O_DAEMON, O_DEF, O_EXPECT, O_FILE };

static const struct option longopts[] = {
	{ "vm", required_argument, NULL, 'v' },        { "qmp", required_argument, NULL, 'q' },
	{ "to", required_argument, NULL, 't' },        { "id", required_argument, NULL, 'i' },
	{ "listen", required_argument, NULL, 'l' },    { "key-file", required_argument, NULL, O_KEY },
	{ "from", required_argument, NULL, O_FROM },   { "no-encrypt", no_argument, NULL, O_NOENC },
	{ "bandwidth", required_argument, NULL, O_BW }, { "downtime", required_argument, NULL, O_DOWN },
	{ "timeout", required_argument, NULL, O_TIMEOUT }, { "source", required_argument, NULL, O_SOURCE },
	{ "wait-continue", no_argument, NULL, O_WAIT }, { "daemon", no_argument, NULL, O_DAEMON },
	{ "definition", required_argument, NULL, O_DEF }, { "expect", required_argument, NULL, O_EXPECT },
	{ "file", required_argument, NULL, O_FILE },
	{ "help", no_argument, NULL, 'h' },            { NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	struct send_opts s = { .encrypt = true, .downtime_ms = 300, .timeout_s = 600, .source = "?" };
	struct listen_opts l = { 0 };
	const char *key_file = "/etc/corosync/authkey", *to = NULL, *listen = NULL, *id = NULL, *def = NULL;
	const char *vm = NULL, *qmp = NULL, *file = NULL;
	bool daemon = false;
	int c;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "new-id") == 0) {
		char fresh[VMC_MIGP_ID_LEN + 1];
		if (vmc_migp_new_id(fresh) != 0) {
			die("%s", "no random numbers from the kernel");
		}
		printf("%s\n", fresh);
		return 0;
	}
	while ((c = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'v': vm = optarg; break;
		case 'q': qmp = optarg; break;
		case 't': to = optarg; break;
		case 'i': id = optarg; break;
		case O_EXPECT: id = optarg; break;
		case 'l': listen = optarg; break;
		case O_KEY: key_file = optarg; break;
		case O_FROM: s.bind = optarg; break;
		case O_NOENC: s.encrypt = false; break;
		case O_BW: s.bandwidth_mib = (uint32_t)number("--bandwidth", optarg, 1000000); break;
		case O_DOWN: s.downtime_ms = (uint32_t)number("--downtime", optarg, 60000); break;
		case O_TIMEOUT: s.timeout_s = (uint32_t)number("--timeout", optarg, 86400); break;
		case O_SOURCE: s.source = optarg; break;
		case O_WAIT: s.wait_continue = true; break;
		case O_DAEMON: daemon = true; break;
		case O_DEF: def = optarg; break;
		case O_FILE: file = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fprintf(stderr, "vmcluster-migrate: see --help\n"); return 2;
		}
	}
	if (optind + 1 < argc) {
		die("unexpected argument '%s' (see --help)", argv[optind + 1]);
	}
	signal(SIGPIPE, SIG_IGN);
	if (daemon) {
		/* vmclusterd decides what happens to a migration: without it, this one ends. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1) {
			return 1;
		}
	}
	if (id != NULL && !vmc_migp_id_valid(id)) {
		die("migration id '%s' is not 32 lowercase hex digits (vmcluster-migrate new-id makes one)", id);
	}
	if (strcmp(argv[1], "send") == 0) {
		if (vm == NULL || qmp == NULL || to == NULL || id == NULL || def == NULL) {
			die("%s", "send needs --vm, --qmp, --to, --id and --definition (see --help)");
		}
		if (net_parse_hostport(to, s.peer, sizeof(s.peer), &s.peer_port) != 0) {
			die("--to '%s' is not ADDR:PORT", to);
		}
		s.vm = vm;
		s.qmp = qmp;
		snprintf(s.id, sizeof(s.id), "%s", id);
		s.definition = definition_load(def);
		keyed(key_file, s.key);
		c = send_run(&s);
		json_object_put(s.definition);
		return c;
	}
	if (strcmp(argv[1], "save") == 0 || strcmp(argv[1], "restore") == 0) {
		struct quick_opts q = { .id = id, .qmp = qmp, .file = file, .timeout_s = s.timeout_s };
		if (qmp == NULL || file == NULL) {
			die("%s needs --qmp and --file (see --help)", argv[1]);
		}
		return strcmp(argv[1], "save") == 0 ? save_run(&q) : restore_run(&q);
	}
	if (strcmp(argv[1], "remove") == 0) {
		if (file == NULL) {
			die("%s", "remove needs --file");
		}
		return remove_run(file);
	}
	if (strcmp(argv[1], "listen") == 0) {
		if (listen == NULL || net_parse_hostport(listen, l.addr, sizeof(l.addr), &l.port) != 0) {
			die("%s", "listen needs --listen ADDR:PORT (an address of the migration network)");
		}
		if (!daemon && (id == NULL || vm == NULL || qmp == NULL)) {
			die("%s", "listen by hand needs --expect ID --vm NAME --qmp SOCKET (the waiting QEMU)");
		}
		l.expect_id = daemon ? NULL : id;
		l.expect_vm = vm;
		l.expect_qmp = qmp;
		l.daemon_control = daemon;
		keyed(key_file, l.key);
		return listen_run(&l);
	}
	die("unknown command '%s' (send, listen, save, restore, remove or new-id; see --help)", argv[1]);
}
