/*
 * This node's facts (facts.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cpg.h"
#include "facts.h"
#include "log.h"
#include "host_caps.h"
#include "migrations.h"
#include "node_admin.h"
#include "nodes.h"

#define RESERVED_MIB 1024 /* for the host itself when the operator sets nothing */

/* Read once: a node's RAM does not change while the daemon runs. */
static uint32_t vm_memory_mib(const struct vmcd *d)
{
	static uint32_t from_ram;
	unsigned long long kib = 0;
	char line[128];
	FILE *f;

	if (d->opt.vm_memory_mib != 0) {
		return d->opt.vm_memory_mib;
	}
	if (from_ram != 0) {
		return from_ram;
	}
	f = fopen("/proc/meminfo", "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
			break;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	from_ram = kib / 1024 > RESERVED_MIB ? (uint32_t)(kib / 1024 - RESERVED_MIB) : 0;
	return from_ram;
}

/* The state has what this node can run (or this cluster's protocol has no room for it). */
static bool caps_announced(const struct vmcd *d, const struct vmc_node_facts *have)
{
	const struct vmcd_host_caps *c = vmcd_host_caps();

	return !VMC_PROTO_HAS_MIGRATION(d->replica.proto) ||
	       (strcmp(have->cpu_vendor, c->cpu_vendor) == 0 && strcmp(have->qemu_version, c->qemu_version) == 0 &&
		strcmp(have->accel, c->accel) == 0 && strcmp(have->cpu_models, c->cpu_models) == 0);
}

/* The cluster has this node as lost since it was fenced: saying its facts again says it is back. */
static bool lost_on_record(const struct vmcd *d)
{
	const struct vmc_node_admin *a = vmc_node_admin(d->replica.state, d->my_id);

	return VMC_PROTO_HAS_DRAIN(d->replica.proto) && a != NULL && a->lost;
}

void vmcd_facts_announce(struct vmcd *d)
{
	const struct vmc_node_facts *have = vmc_state_node(d->replica.state, d->my_id);
	const struct vmcd_node *self = vmcd_node_by_id(d, d->my_id);
	const char *name = self != NULL ? self->name : vmcd_node_name(d, d->my_id);
	uint32_t mem = vm_memory_mib(d);
	char addr[48] = "";
	json_object *body;

	if (VMC_PROTO_HAS_MIGRATION(d->replica.proto)) {
		vmcd_migration_local_addr(d, addr, sizeof(addr));
	}
	if (!vmc_replica_writable(&d->replica) ||
	    (have != NULL && have->mem_mib == mem && strcmp(have->name, name) == 0 &&
	     have->watchdog == (d->watchdog_armed && VMC_PROTO_HAS_VOLUMES(d->replica.proto)) &&
	     strcmp(have->migration_addr, addr) == 0 && caps_announced(d, have) &&
	     vmc_state_fencing(d->replica.state, d->my_id) == NULL && !lost_on_record(d) &&
	     (!VMC_PROTO_HAS_DRAIN(d->replica.proto) || have->incarnation == d->incarnation))) {
		return;
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(name));
	json_object_object_add(body, "mem_mib", json_object_new_int64(mem));
	if (d->watchdog_armed && VMC_PROTO_HAS_VOLUMES(d->replica.proto)) {
		json_object_object_add(body, "watchdog", json_object_new_boolean(true));
	}
	if (addr[0] != '\0') {
		json_object_object_add(body, "migration_addr", json_object_new_string(addr));
	}
	if (VMC_PROTO_HAS_MIGRATION(d->replica.proto)) {
		const struct vmcd_host_caps *c = vmcd_host_caps();
		json_object_object_add(body, "cpu_vendor", json_object_new_string(c->cpu_vendor));
		json_object_object_add(body, "qemu_version", json_object_new_string(c->qemu_version));
		json_object_object_add(body, "accel", json_object_new_string(c->accel));
		json_object_object_add(body, "cpu_models", json_object_new_string(c->cpu_models));
	}
	if (VMC_PROTO_HAS_DRAIN(d->replica.proto)) {
		json_object_object_add(body, "at_s", json_object_new_int64((int64_t)time(NULL)));
		json_object_object_add(body, "incarnation", json_object_new_uint64(d->incarnation));
	}
	if (vmcd_cpg_send_request(d, VMC_MSG_NODE_FACTS, body) < 0) {
		log_warn("node %s: cannot announce its facts", name);
	}
	json_object_put(body);
}
