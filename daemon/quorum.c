/*
 * votequorum (quorum.h): corosync's one word on quorum. The daemon refuses
 * change requests early on a node without quorum, and a node that loses
 * it stops its VMs. What votequorum says (quorate, ring id, quorum,
 * qdevice votes) also goes into every hello, where the replica
 * (lib/replica.h) makes a view primary only when every member says
 * quorate on the same ring: two_node, wait_for_all, last_man_standing and
 * qdevice clusters behave as corosync decides.
 */
#include "config.h"

#include <errno.h>
#include <corosync/votequorum.h>

#include "log.h"
#include "quorum.h"

static votequorum_handle_t vq_handle;
static int32_t vq_fd = -1;
static const struct vmcd_quorum_hooks *quorum_hooks;

static void quorum_refresh_info(struct vmcd *d)
{
	struct votequorum_info info;

	if (votequorum_getinfo(vq_handle, d->my_id, &info) == CS_OK) {
		d->vq_expected_votes = info.node_expected_votes;
		d->vq_total_votes = info.total_votes;
		d->vq.quorum = info.quorum;
		/* Only what a living quorum device casts now counts. */
		d->vq.qdevice_votes = info.flags & VOTEQUORUM_INFO_QDEVICE_CAST_VOTE ? info.qdevice_votes : 0;
	}
}

static void quorum_notify(votequorum_handle_t h, uint64_t context, uint32_t quorate,
			  uint32_t n_nodes, votequorum_node_t nodes[])
{
	struct vmcd *d = NULL;

	votequorum_context_get(h, (void **)&d);
	if (d == NULL) {
		return;
	}
	if ((bool)quorate != d->quorate) {
		log_notice("quorum %s: %u nodes in corosync membership",
			   quorate ? "gained" : "lost", n_nodes);
	}
	d->quorate = quorate;
	d->quorum_known = true;
	d->vq.known = true;
	d->vq.quorate = quorate;
	d->n_cs_members = 0;
	for (uint32_t i = 0; i < n_nodes && d->n_cs_members < VMC_NODES_MAX; i++) {
		if (nodes[i].state == VOTEQUORUM_NODESTATE_MEMBER) {
			d->cs_members[d->n_cs_members++] = nodes[i].nodeid;
		}
	}
	quorum_refresh_info(d);
	quorum_hooks->changed(d); /* a lost quorum stops this node's VMs at once */
}

/* The ring id: which corosync membership the quorum verdict is about. */
static void nodelist_notify(votequorum_handle_t h, uint64_t context, votequorum_ring_id_t ring_id,
			    uint32_t n_nodes, uint32_t nodes[])
{
	struct vmcd *d = NULL;

	votequorum_context_get(h, (void **)&d);
	if (d == NULL) {
		return;
	}
	d->vq.ring_node = ring_id.nodeid;
	d->vq.ring_seq = ring_id.seq;
	quorum_refresh_info(d);
	quorum_hooks->changed(d);
}

/* The nodelist was reloaded (corosync-cfgtool -R) or votes changed. */
static void expected_votes_notify(votequorum_handle_t h, uint64_t context, uint32_t expected_votes)
{
	struct vmcd *d = NULL;

	votequorum_context_get(h, (void **)&d);
	if (d == NULL) {
		return;
	}
	log_notice("corosync's expected votes are now %u", expected_votes);
	quorum_refresh_info(d);
	quorum_hooks->changed(d);
}

static int quorum_dispatch(int32_t fd, int32_t revents, void *data)
{
	struct vmcd *d = data;
	cs_error_t err = votequorum_dispatch(vq_handle, CS_DISPATCH_ALL);

	if (err != CS_OK && err != CS_ERR_TRY_AGAIN) {
		log_err("lost the connection to corosync's votequorum (error %d): stopping", err);
		quorum_hooks->lost(d);
		return -1;
	}
	return 0;
}

int vmcd_quorum_init(struct vmcd *d, const struct vmcd_quorum_hooks *hooks)
{
	votequorum_callbacks_t cb = { .votequorum_quorum_notify_fn = quorum_notify,
				      .votequorum_nodelist_notify_fn = nodelist_notify,
				      .votequorum_expectedvotes_notify_fn = expected_votes_notify };
	cs_error_t err = votequorum_initialize(&vq_handle, &cb);

	if (err != CS_OK) {
		log_err("cannot connect to votequorum (error %d): is corosync running with "
			"provider corosync_votequorum?", err);
		return -ENOTCONN;
	}
	quorum_hooks = hooks;
	votequorum_context_set(vq_handle, d);
	err = votequorum_trackstart(vq_handle, 0, CS_TRACK_CHANGES | CS_TRACK_CURRENT);
	if (err != CS_OK) {
		log_err("votequorum_trackstart failed (error %d)", err);
		return -EIO;
	}
	votequorum_fd_get(vq_handle, &vq_fd);
	quorum_refresh_info(d);
	return qb_loop_poll_add(d->loop, QB_LOOP_HIGH, vq_fd, POLLIN | POLLPRI, d, quorum_dispatch);
}

void vmcd_quorum_fini(struct vmcd *d)
{
	if (vq_fd >= 0) {
		qb_loop_poll_del(d->loop, vq_fd);
		vq_fd = -1;
	}
	votequorum_finalize(vq_handle);
}
