/*
 * Option table for vmclusterd: command line, config file, --help.
 *
 * The config file (vmcluster.conf(5)) holds "key = value" lines; '#'
 * starts a comment. A key given on the command line wins over the file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

enum opt_kind { OPT_PATH, OPT_FLAG, OPT_WORD, OPT_UINT };

struct opt_def {
	const char *name;  /* long option and config key */
	int short_opt;
	enum opt_kind kind;
	size_t offset;
	size_t size;
	const char *def;
	const char *arg;
	const char *help;
	bool in_file;      /* may appear in vmcluster.conf */
	unsigned long max; /* OPT_UINT: largest value */
};

#define FIELD(f) offsetof(struct vmcd_options, f), sizeof(((struct vmcd_options *)0)->f)

static const struct opt_def opt_defs[] = {
	{ "config", 'c', OPT_PATH, FIELD(config), VMCD_DEFAULT_CONFIG, "FILE",
	  "read settings from FILE (the default file may be absent; a named one must exist)", false },
	{ "state-dir", 's', OPT_PATH, FIELD(state_dir), VMCD_DEFAULT_STATE_DIR, "DIR",
	  "where the applied cluster state is persisted", true },
	{ "run-dir", 'r', OPT_PATH, FIELD(run_dir), VMCD_DEFAULT_RUN_DIR, "DIR",
	  "pid file and runtime files", true },
	{ "log-target", 'l', OPT_WORD, FIELD(log_target), "syslog", "syslog|stderr",
	  "where logs go (-f implies stderr)", true },
	{ "corosync-wait", 'w', OPT_UINT, FIELD(corosync_wait_s), "60", "SECONDS",
	  "how long to wait for corosync at start before giving up", true, 86400 },
	{ "vm-memory", 'm', OPT_UINT, FIELD(vm_memory_mib), "0", "MIB",
	  "memory this node offers to VMs (0: its RAM less 1 GiB)", true, 64 * 1024 * 1024 },
	{ "vm-paths", 'p', OPT_PATH, FIELD(vm_paths), VMCD_DEFAULT_VM_PATHS, "DIR[:DIR...]",
	  "the directories a VM's kernel, initrd and disks may lie in (QEMU opens them as root)", true },
	{ "stop-timeout", 't', OPT_UINT, FIELD(stop_timeout_s), "60", "SECONDS",
	  "how long a VM gets to shut down (ACPI) before it is stopped by force", true, 86400 },
	{ "watchdog-device", 'W', OPT_PATH, FIELD(watchdog_device), VMCD_DEFAULT_WATCHDOG, "DEVICE",
	  "the watchdog that resets this node when its leases may lapse (opened once the cluster has a "
	  "volume; absent: no lease fencing)", true },
	{ "cluster-key", 'k', OPT_PATH, FIELD(cluster_key), VMCD_DEFAULT_CLUSTER_KEY, "FILE",
	  "the key migration agents authenticate each other with (corosync's)", true },
	{ "migrate-agent", 'M', OPT_PATH, FIELD(migrate_agent), VMCD_DEFAULT_MIGRATE_AGENT, "PATH",
	  "the migration agent this daemon runs for live and quick migrations", true },
	{ "foreground", 'f', OPT_FLAG, FIELD(foreground), "no", NULL,
	  "stay in the foreground and log to stderr", false },
	{ "debug", 'd', OPT_FLAG, FIELD(debug), "no", NULL, "log debug messages", true },
};

#define N_OPTS (sizeof(opt_defs) / sizeof(opt_defs[0]))

static void usage(FILE *out)
{
	fprintf(out, "Usage: vmclusterd [OPTION]...\n"
		     "The vmcluster daemon: keeps this node's copy of the cluster state in step\n"
		     "with the other nodes through corosync, and serves clusterctl.\n\nOptions:\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *o = &opt_defs[i];
		char left[64];
		snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_opt, o->name, o->arg ? "=" : "",
			 o->arg ? o->arg : "");
		fprintf(out, "  %-32s %s", left, o->help);
		if (o->kind != OPT_FLAG) {
			fprintf(out, " (default: %s)", o->def);
		}
		fputc('\n', out);
	}
	fprintf(out, "  %-32s %s\n  %-32s %s\n\nSee vmclusterd(8) and vmcluster.conf(5).\n",
		"-h, --help", "show this help and exit", "-V, --version", "show the version and exit");
}

static int opt_set(struct vmcd_options *opt, const struct opt_def *o, const char *value,
		   const char *where)
{
	char *field = (char *)opt + o->offset;
	char *end;
	unsigned long x;

	switch (o->kind) {
	case OPT_PATH:
	case OPT_WORD:
		if (strlen(value) >= o->size || *value == '\0') {
			fprintf(stderr, "vmclusterd: %svalue for '%s' is empty or too long\n", where, o->name);
			return -1;
		}
		if (o->kind == OPT_WORD && strcmp(o->name, "log-target") == 0 &&
		    strcmp(value, "syslog") != 0 && strcmp(value, "stderr") != 0) {
			fprintf(stderr, "vmclusterd: %s'%s' must be syslog or stderr, not '%s'\n", where,
				o->name, value);
			return -1;
		}
		if (o->kind == OPT_PATH && value[0] != '/') {
			fprintf(stderr, "vmclusterd: %s'%s' must be an absolute path, not '%s'\n", where,
				o->name, value);
			return -1;
		}
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case OPT_FLAG:
		if (strcmp(value, "yes") == 0 || strcmp(value, "1") == 0) {
			*(bool *)field = true;
		} else if (strcmp(value, "no") == 0 || strcmp(value, "0") == 0) {
			*(bool *)field = false;
		} else {
			fprintf(stderr, "vmclusterd: %s'%s' must be yes, no, 1 or 0, not '%s'\n", where,
				o->name, value);
			return -1;
		}
		return 0;
	case OPT_UINT:
		errno = 0;
		x = strtoul(value, &end, 10);
		if (*value == '\0' || *end != '\0' || errno != 0 || x > o->max) {
			fprintf(stderr, "vmclusterd: %s'%s' must be a number from 0 to %lu, not '%s'\n",
				where, o->name, o->max, value);
			return -1;
		}
		*(unsigned int *)field = (unsigned int)x;
		return 0;
	}
	return -1;
}

static const struct opt_def *opt_find(const char *name)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		if (strcmp(opt_defs[i].name, name) == 0) {
			return &opt_defs[i];
		}
	}
	return NULL;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t') {
		s++;
	}
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r')) {
		*--end = '\0';
	}
	return s;
}

static int config_file_read(struct vmcd_options *opt, const char *path, bool explicit)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	unsigned int lineno = 0;

	if (f == NULL) {
		if (errno == ENOENT && !explicit) {
			return 0;
		}
		fprintf(stderr, "vmclusterd: cannot read config file %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char where[PATH_MAX + 32];
		char *hash = strchr(line, '#');
		char *eq, *key, *value;
		const struct opt_def *o;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			fprintf(stderr, "vmclusterd: %s:%u: line longer than %zu characters\n", path,
				lineno, sizeof(line) - 2);
			fclose(f);
			return -1;
		}
		if (hash != NULL) {
			*hash = '\0';
		}
		key = trim(line);
		if (*key == '\0') {
			continue;
		}
		snprintf(where, sizeof(where), "%s:%u: ", path, lineno);
		eq = strchr(key, '=');
		if (eq == NULL) {
			fprintf(stderr, "vmclusterd: %sexpected 'key = value'\n", where);
			fclose(f);
			return -1;
		}
		*eq = '\0';
		value = trim(eq + 1);
		key = trim(key);
		o = opt_find(key);
		if (o == NULL || !o->in_file) {
			fprintf(stderr, "vmclusterd: %sunknown setting '%s' (see vmcluster.conf(5))\n",
				where, key);
			fclose(f);
			return -1;
		}
		if (opt_set(opt, o, value, where) != 0) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static void build_getopt(struct option *longopts, char *shortopts)
{
	size_t k = 0;

	for (size_t i = 0; i < N_OPTS; i++) {
		longopts[i].name = opt_defs[i].name;
		longopts[i].has_arg = opt_defs[i].kind == OPT_FLAG ? no_argument : required_argument;
		longopts[i].flag = NULL;
		longopts[i].val = opt_defs[i].short_opt;
		shortopts[k++] = (char)opt_defs[i].short_opt;
		if (opt_defs[i].kind != OPT_FLAG) {
			shortopts[k++] = ':';
		}
	}
	longopts[N_OPTS] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[N_OPTS + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	longopts[N_OPTS + 2] = (struct option){ NULL, 0, NULL, 0 };
	memcpy(shortopts + k, "hV", 3);
}

static const struct opt_def *opt_by_short(int c)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		if (opt_defs[i].short_opt == c) {
			return &opt_defs[i];
		}
	}
	return NULL;
}

int vmcd_options_parse(struct vmcd_options *opt, int argc, char **argv)
{
	struct option longopts[N_OPTS + 3];
	char shortopts[2 * N_OPTS + 3];
	bool explicit_config = false;
	int c;

	memset(opt, 0, sizeof(*opt));
	for (size_t i = 0; i < N_OPTS; i++) {
		if (opt_set(opt, &opt_defs[i], opt_defs[i].def, "") != 0) {
			return -1;
		}
	}
	build_getopt(longopts, shortopts);
	/* First pass: only --config, --help, --version, so the file is read before overrides. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == 'V') {
			printf("vmclusterd %s\n", PACKAGE_VERSION);
			return 1;
		}
		if (c == 'c') {
			explicit_config = true;
			if (opt_set(opt, opt_find("config"), optarg, "") != 0) {
				return -1;
			}
		}
	}
	if (config_file_read(opt, opt->config, explicit_config) != 0) {
		return -1;
	}
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct opt_def *o = opt_by_short(c);
		if (c == '?' || o == NULL) {
			fprintf(stderr, "vmclusterd: see 'vmclusterd --help'\n");
			return -1;
		}
		if (opt_set(opt, o, o->kind == OPT_FLAG ? "yes" : optarg, "") != 0) {
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vmclusterd: unexpected argument '%s'; see 'vmclusterd --help'\n",
			argv[optind]);
		return -1;
	}
	if (opt->foreground) {
		memcpy(opt->log_target, "stderr", 7);
	} else if (strcmp(opt->log_target, "stderr") == 0) {
		fprintf(stderr, "vmclusterd: log-target stderr needs --foreground (-f): a detached "
				"daemon has no stderr\n");
		return -1;
	}
	return 0;
}
