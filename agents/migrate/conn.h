/*
 * The agent's connections: TCP to and from the peer agent (only on the
 * addresses the operator chose), the handshake engine (lib/migrate_proto.h)
 * run over a blocking socket with a deadline on every read, the cluster
 * key, and the JSON lines the agent reports on stdout.
 */
#ifndef VMCM_CONN_H
#define VMCM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "migrate_proto.h"

/* Every read of a handshake must complete within this (a peer that stalls is dropped). */
#define VMCM_READ_DEADLINE_MS 5000

/* A listening socket bound to addr:port (an IPv4 literal, never a wildcard). fd, or -1 with err. */
int net_listen(const char *addr, int port, char *err, size_t errlen);
/* A connected TCP socket to addr:port within timeout_ms (from bind_addr when not NULL). fd, or -1 with errno. */
int net_connect(const char *addr, int port, const char *bind_addr, int timeout_ms, char *err, size_t errlen);
/* TCP_NODELAY, keepalive and a 10 s user timeout: a silent peer ends the connection. */
void net_tune(int fd);
/* "ADDR:PORT" split; 0 or -1. */
int net_parse_hostport(const char *s, char *addr, size_t len, int *port);

/*
 * Drives c over fd until it has an event for the caller: writes what it
 * queued, reads at most what it wants, each read within
 * VMCM_READ_DEADLINE_MS and all before deadline_ms (vmc_now_ms clock).
 * EOF or a missed deadline fail c. ev is the event.
 */
void migp_pump(int fd, struct vmc_migp *c, int64_t deadline_ms, struct vmc_migp_event *ev);
/* Writes what c queued (an ERROR before closing, say), within 1 s. */
void migp_flush(int fd, struct vmc_migp *c);

/* The cluster key file (corosync's authkey) into K. 0, or -1 with err. */
int key_load(const char *path, uint8_t key[VMC_MIGP_KEY_LEN], char *err, size_t errlen);

/* One JSON line on stdout (thread-safe); o is consumed. */
void report(json_object *o);
/* {"event": event, ...}: a new object to add fields to before report(). */
json_object *report_new(const char *event, const char *id);
/* A line on stderr with the time, for the operator (thread-safe). */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
