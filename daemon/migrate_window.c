/*
 * The adaptive migration window of this node (migrate_window.h).
 */
#include "config.h"

#include <string.h>

#include "clock.h"
#include "cpg.h"
#include "json_util.h"
#include "log.h"
#include "mig_window.h"
#include "migrate_window.h"
#include "migration.h"
#include "migrations.h"
#include "nodes.h"

#define RESEND_MS 1000
#define PAGE_BYTES 4096.0
#define MBPS_PER_MIB_S 8.388608

static struct vmc_mig_window window;
static bool window_ready;
static int64_t sent_ms;

/* The live moves out of this node that have said how fast they go. */
static size_t samples_collect(const struct vmcd *d, struct vmc_mig_sample *out, size_t max)
{
	json_object *progress = vmcd_migrations_progress();
	size_t n = 0;

	for (size_t i = 0; i < json_object_array_length(progress) && n < max; i++) {
		json_object *p = json_object_array_get_idx(progress, i), *mbps;
		const struct vmc_group *g = vmc_state_group_find(d->replica.state, vmc_json_str(p, "vm") ?: "");
		int64_t dirty = 0, pass = 0;
		if (g == NULL || g->mig.quick || g->mig.phase != VMC_MIG_TRANSFER ||
		    strcmp(vmc_json_str(p, "role") ?: "", "source") != 0 || !json_object_object_get_ex(p, "mbps", &mbps)) {
			continue;
		}
		vmc_json_int64(p, "dirty_pages_rate", &dirty);
		vmc_json_int64(p, "pass", &pass);
		out[n++] = (struct vmc_mig_sample){ .rate_mib_s = json_object_get_double(mbps) / MBPS_PER_MIB_S,
						    .dirty_mib_s = (double)dirty * PAGE_BYTES / (1024.0 * 1024.0),
						    .pass = pass };
	}
	json_object_put(progress);
	return n;
}

void vmcd_migrate_window_update(struct vmcd *d)
{
	const struct vmc_state *s = d->replica.state;
	const struct vmc_node_facts *me = vmc_state_node(s, d->my_id);
	struct vmc_mig_sample samples[VMC_MIGRATION_MAX_PARALLEL_MAX];
	uint32_t cap = s->settings.migration_max_parallel;
	int64_t now = vmc_now_ms();
	json_object *body;
	size_t n;

	if (!s->settings.migration_adaptive || !VMC_PROTO_HAS_DRAIN(d->replica.proto) ||
	    !vmc_replica_writable(&d->replica) || me == NULL) {
		return;
	}
	if (!window_ready) {
		vmc_mig_window_init(&window, cap);
		window_ready = true;
	}
	/* It runs after every event: the agents' progress is read only while moves go out. */
	n = vmc_migrations_in_flight(s, d->my_id) > 0 ? samples_collect(d, samples, VMC_MIGRATION_MAX_PARALLEL_MAX) : 0;
	if (vmc_mig_window_update(&window, samples, n, cap, now)) {
		log_notice("node %s: live migrations out of it at once: %u now (%s)", vmcd_node_name(d, d->my_id),
			   window.window, window.why);
	}
	/* A node that said nothing yet is at the start: no message for that. */
	if ((me->mig_window != 0 ? me->mig_window : VMC_MIG_WINDOW_START) == window.window || now - sent_ms < RESEND_MS) {
		return;
	}
	body = json_object_new_object();
	json_object_object_add(body, "window", json_object_new_int64(window.window));
	if (vmcd_cpg_send_request(d, VMC_MSG_MIGRATE_WINDOW, body) >= 0) {
		sent_ms = now;
	}
	json_object_put(body);
}
