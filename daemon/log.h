/*
 * Logging policy (through libqb: syslog, or stderr with -f):
 *   LOG_ERR     an operator must look at it (lost corosync, cannot persist)
 *   LOG_WARNING something was refused or dropped that a peer or client sent
 *   LOG_NOTICE  membership, quorum and sync events; every applied change
 *   LOG_INFO    client requests refused before reaching the cluster
 *   LOG_DEBUG   protocol detail
 * One event per line, naming the VM and node it concerns.
 */
#ifndef VMCD_LOG_H
#define VMCD_LOG_H

#include <syslog.h>
#include <qb/qblog.h>

#define log_err(fmt, ...) qb_log(LOG_ERR, fmt, ##__VA_ARGS__)
#define log_warn(fmt, ...) qb_log(LOG_WARNING, fmt, ##__VA_ARGS__)
#define log_notice(fmt, ...) qb_log(LOG_NOTICE, fmt, ##__VA_ARGS__)
#define log_info(fmt, ...) qb_log(LOG_INFO, fmt, ##__VA_ARGS__)
#define log_debug(fmt, ...) qb_log(LOG_DEBUG, fmt, ##__VA_ARGS__)

#endif
