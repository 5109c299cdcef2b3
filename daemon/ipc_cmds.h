/*
 * The commands clusterctl (and the OCF agent) send over IPC: reads answered
 * from the views (lib/views.h), changes checked here and multicast. The
 * table goes to vmcd_ipc_init().
 */
#ifndef VMCD_IPC_CMDS_H
#define VMCD_IPC_CMDS_H

#include <stddef.h>

#include "ipc.h"

const struct vmcd_ipc_command *vmcd_ipc_commands(size_t *n);

#endif
