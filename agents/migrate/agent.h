/*
 * vmcluster-migrate: the two roles (send.c, listen.c) and their options.
 */
#ifndef VMCM_AGENT_H
#define VMCM_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#include "migrate_proto.h"

struct send_opts {
	const char *vm;
	const char *qmp;            /* the source QEMU's migration QMP socket */
	char peer[64];              /* the destination agent */
	int peer_port;
	const char *bind;           /* our address on the migration network, or NULL */
	char id[VMC_MIGP_ID_LEN + 1];
	uint8_t key[VMC_MIGP_KEY_LEN];
	bool encrypt;
	uint32_t bandwidth_mib;     /* 0: unlimited */
	uint32_t downtime_ms;
	uint32_t timeout_s;
	bool wait_continue;         /* at pre-switchover, wait for "continue" on stdin (the daemon's lock handover) */
	json_object *definition;    /* sent in the OFFER */
	const char *source;         /* this node's name */
};

struct listen_opts {
	char addr[64];
	int port;
	uint8_t key[VMC_MIGP_KEY_LEN];
	/* standalone: one migration expected, its QEMU already waiting */
	const char *expect_id;
	const char *expect_vm;
	const char *expect_qmp;
	bool daemon_control;        /* expectations come as JSON lines on stdin */
};

struct quick_opts {
	const char *id;
	const char *qmp;            /* the QEMU's migration QMP socket */
	const char *file;           /* the state file, on one of the VM's volumes */
	uint32_t timeout_s;
};

/* Quick migration (quick.c): pause and save; load; remove the file. 0 done, 1 failed. */
int save_run(const struct quick_opts *o);
int restore_run(const struct quick_opts *o);
int remove_run(const char *file);

/* Exit status: 0 received by the destination, 1 failed (source still runs, or the daemon decides). */
int send_run(const struct send_opts *o);
/* Serves until stdin closes (daemon mode) or the one expected migration ends (standalone). */
int listen_run(const struct listen_opts *o);

#endif
