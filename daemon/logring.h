/*
 * The in-memory ring of recent log events that `clusterctl dump` fetches
 * over IPC, as dlm_tool dump does: every event at every level, debug
 * included, with its time and level, whatever the log target (syslog may
 * be filtered to info). When the ring is full the oldest event goes.
 */
#ifndef VMCD_LOGRING_H
#define VMCD_LOGRING_H

#include <stddef.h>
#include <json-c/json.h>

#define VMCD_LOGRING_LINES 4096

/* Registers the ring as a libqb log target. 0 or -errno. */
int vmcd_logring_init(size_t lines);
/* {"events": ["TIME LEVEL: text", ...] oldest first, at most last of them, "dropped": N}. */
json_object *vmcd_logring_to_json(size_t last);
void vmcd_logring_fini(void);

#endif
