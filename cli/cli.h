/*
 * What clusterctl's commands share (clusterctl.c has the table and these
 * helpers; a noun with many commands has a file of its own, like
 * migrate_cmds.c).
 */
#ifndef VMC_CLI_H
#define VMC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "client.h"

enum exit_code {
	EXIT_DONE = 0,
	EXIT_REFUSED = 1,
	EXIT_USAGE = 2,
	EXIT_NO_DAEMON = 3,
	EXIT_NO_QUORUM = 4,
	EXIT_DENIED = 5,
	EXIT_TIMEOUT = 6,
	EXIT_UNKNOWN = 7,
};

struct cli {
	bool json;
	bool wait;        /* --wait: until the VM is online (start) or offline (stop) */
	bool start;       /* vm add --start */
	bool live;        /* move-vm --live */
	bool quick;       /* move-vm --quick */
	bool force;       /* node drain --force */
	const char *target;   /* node drain --target NODE */
	const char *failback; /* node resume --failback MODE */
	const char *node;     /* vm start|stop --node NODE: there only (what pacemaker's agent asks) */
	bool by_pacemaker;    /* move-vm --by-pacemaker: the agent carries out pacemaker's move */
	int timeout_ms;
	size_t max_msg;
	struct vmc_client *client;
};

struct command {
	const char *noun;
	const char *verb; /* NULL: the noun alone */
	int min_args;
	int max_args;     /* -1: any number */
	const char *args;
	const char *help;
	int (*run)(struct cli *cli, int argc, char **argv);
	bool large_reply; /* listings: start with a larger IPC buffer */
	const char *details; /* more for the command's own --help */
};

/* The exit code for a daemon's -VMC_E_* answer. */
int exit_for(int rc);
/* One line on stderr ("clusterctl: ..."); returns code. */
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One IPC call with the --timeout deadline (a change answered "retry" is retried). EXIT_DONE or an exit code. */
int call(struct cli *cli, enum vmc_ipc_cmd cmd, json_object *args, json_object **result);
/*
 * One read while following something (--wait): bounded at a few seconds,
 * never retried. 0, or an exit code with the error in err.
 */
int read_call(struct cli *cli, enum vmc_ipc_cmd cmd, json_object *args, json_object **result, char *err,
	      size_t errlen);
/* Between two reads of a --wait. */
void pause_ms(int ms);
void print_json(json_object *o);
/* A field as text, "-" when absent; an object field. */
const char *jstr(json_object *o, const char *key);
json_object *jget(json_object *o, const char *key);
/* {"name": name} */
json_object *name_args(const char *name);
/* {"set": [KEY=VALUE...]}; *bad is the index of one that is not KEY=VALUE, or -1. */
json_object *assignments_args(int argc, char **argv, int *bad);

int cmd_move_vm(struct cli *cli, int argc, char **argv);
/* Pacemaker's view added to the daemon's answers (pacemaker_cmds.c); json: no line on stderr. */
void pcmk_annotate_vm_list(json_object *r, bool json);
void pcmk_annotate_vm_show(json_object *r, bool json);
void pcmk_annotate_nodes(json_object *nodes);
/* The "pacemaker" line of a VM pacemaker manages, if it has one. */
void pcmk_vm_text(json_object *vm, const char *prefix);
/* move-vm of a group pacemaker manages: through a location constraint. */
int pcmk_move_vm(struct cli *cli, const char *vm, const char *node);
int cmd_migration_status(struct cli *cli, int argc, char **argv);
int cmd_migration_set(struct cli *cli, int argc, char **argv);
int cmd_node_drain(struct cli *cli, int argc, char **argv);
int cmd_node_resume(struct cli *cli, int argc, char **argv);
int cmd_node_shutdown(struct cli *cli, int argc, char **argv);

#endif
