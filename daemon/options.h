/*
 * vmclusterd's settings. One table (options.c) drives the command line,
 * the config file and --help, so the three can't disagree.
 */
#ifndef VMCD_OPTIONS_H
#define VMCD_OPTIONS_H

#include <stdbool.h>
#include <limits.h>

#define VMCD_DEFAULT_CONFIG "/etc/vmcluster/vmcluster.conf"
#define VMCD_DEFAULT_STATE_DIR "/var/lib/vmcluster"
#define VMCD_DEFAULT_RUN_DIR "/run/vmcluster"
#define VMCD_DEFAULT_VM_PATHS "/var/lib/vmcluster/images:/srv"
#define VMCD_DEFAULT_WATCHDOG "/dev/watchdog"
#define VMCD_DEFAULT_CLUSTER_KEY "/etc/corosync/authkey"
#ifndef VMC_SBINDIR
#define VMC_SBINDIR "/usr/sbin"
#endif
#define VMCD_DEFAULT_MIGRATE_AGENT VMC_SBINDIR "/vmcluster-migrate"

struct vmcd_options {
	char config[PATH_MAX];
	char state_dir[PATH_MAX];
	char run_dir[PATH_MAX];
	char log_target[16];      /* syslog | stderr */
	bool foreground;
	bool debug;
	unsigned int corosync_wait_s; /* how long to wait for corosync at start */
	unsigned int vm_memory_mib;   /* memory this node offers VMs; 0: RAM less 1 GiB */
	unsigned int stop_timeout_s;  /* ACPI shutdown, then forced, after this long */
	char vm_paths[PATH_MAX];      /* directories a VM's files may lie in, ':'-separated */
	char watchdog_device[PATH_MAX];
	char cluster_key[PATH_MAX];   /* the key migration agents prove they share */
	char migrate_agent[PATH_MAX]; /* vmcluster-migrate */
};

/*
 * Fills opt from defaults, the config file, then the command line.
 * Returns 0, or 1 when the caller should exit 0 (--help, --version),
 * or -1 after printing one line that says what is wrong.
 */
int vmcd_options_parse(struct vmcd_options *opt, int argc, char **argv);

#endif
