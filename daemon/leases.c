/*
 * Host leases (leases.h). The worker threads touch only their own job,
 * result and file descriptor, under their volume's mutex; everything
 * else belongs to the main loop. A worker tells the loop it finished by
 * a byte on one pipe the loop polls.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cpg.h"
#include "leases.h"
#include "lease_slot.h"
#include "lease_watch.h"
#include "log.h"
#include "nodes.h"
#include "volume_apply.h"

#define TICK_MS 100
#define REPORT_EVERY_MS 1000

struct lease_job {
	bool write;
	struct vmc_lease_slot slot;   /* what to write (counter raised past what is on disk) */
	bool write_header;            /* this node coordinates: write block 0 when it is empty */
	struct vmc_lease_header header;
	uint32_t max_id;              /* read blocks 0..max_id */
};

struct lease_result {
	uint64_t started_ms, done_ms; /* of the read of all slots */
	int read_err;
	int write_err;                /* 0 also when nothing was to be written */
	char why[160];
	uint64_t counter;             /* the counter written */
	bool direct;
	uint8_t *blocks;              /* (max_id + 1) blocks, aligned */
	uint32_t n_blocks;
};

struct lease_vol {
	char name[64];
	char path[VMC_VOLUME_PATH_MAX];
	/* shared with the worker, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool has_job, has_result, quit, detached;
	struct lease_job job;
	struct lease_result res;
	/* the worker's own */
	int fd;
	bool direct;
	uint8_t *one;                 /* one aligned block */
	/* the main loop's own */
	bool busy;
	uint64_t busy_ms;
	bool present;                 /* still in the state */
	bool direct_io;               /* what the last job found */
	uint64_t next_renewal_ms;
	uint64_t counter;
	struct vmc_lease_renewal renewal;
	int last_read_err;
	uint64_t last_read_ms;
	struct vmc_lease_watch seen[VMC_LEASE_SLOTS_MAX + 1];  /* every slot since this daemon started */
	/*
	 * A lost node's slot, watched from its loss: a slot unchanged for the
	 * lease timeout from any time on proves its owner dead or rid of the
	 * volume's VMs (timeouts.h), but counting from the loss makes a
	 * restart come no sooner than the lease timeout after the node went,
	 * whatever point of its renewal cycle it went at.
	 */
	struct vmc_lease_watch proof[VMC_LEASE_SLOTS_MAX + 1];
	bool proving[VMC_LEASE_SLOTS_MAX + 1];
	bool read_now;                /* a proof began: read at once */
	enum vmc_volume_health ticked; /* the health at the last tick: a hang shows by the clock */
	uint64_t reported_ms;
	struct lease_vol *next;
};

static struct lease_vol *vols;
static const struct vmcd_leases_hooks *lease_hooks;
static int notify_pipe[2] = { -1, -1 };
static qb_loop_timer_handle tick_timer;
static uint64_t incarnation;

/* ---- the worker ---- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int file_open(struct lease_vol *v, char *why, size_t len)
{
	char file[VMC_VOLUME_PATH_MAX + 32];

	if (v->fd >= 0) {
		return 0;
	}
	snprintf(file, sizeof(file), "%s/%s", v->path, VMC_LEASE_FILE_NAME);
	v->fd = open(file, O_RDWR | O_CREAT | O_DIRECT | O_DSYNC | O_CLOEXEC, 0600);
	v->direct = v->fd >= 0;
	if (v->fd < 0 && errno == EINVAL) {
		/* A file system without O_DIRECT (tmpfs, some FUSE ones): synchronous writes still. */
		v->fd = open(file, O_RDWR | O_CREAT | O_DSYNC | O_CLOEXEC, 0600);
	}
	if (v->fd < 0) {
		int err = errno;
		snprintf(why, len, "open of %s: %s", VMC_LEASE_FILE_NAME, strerror(err));
		return -err;
	}
	return 0;
}

/* pread/pwrite of whole blocks; a short read past the end of the file reads as zero. */
static int block_io(int fd, bool write, uint8_t *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write ? pwrite(fd, buf + done, len - done, off + (off_t)done)
				  : pread(fd, buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		if (n == 0) {
			if (write) {
				return -EIO;
			}
			memset(buf + done, 0, len - done);
			return 0;
		}
		done += (size_t)n;
	}
	return 0;
}

static void job_run(struct lease_vol *v, const struct lease_job *job, struct lease_result *res)
{
	uint8_t *one = v->one;
	struct vmc_lease_slot mine;
	int64_t off = vmc_lease_slot_offset(job->slot.node);
	char why[128];
	int rc;

	res->why[0] = '\0';
	res->write_err = 0;
	res->started_ms = mono_ms();
	rc = file_open(v, res->why, sizeof(res->why));
	if (rc == 0) {
		rc = block_io(v->fd, false, res->blocks, (size_t)res->n_blocks * VMC_LEASE_BLOCK, 0);
		if (rc != 0) {
			snprintf(res->why, sizeof(res->why), "read: %s", strerror(-rc));
		}
	}
	res->done_ms = mono_ms();
	res->read_err = rc;
	res->direct = v->direct;
	if (!job->write) {
		return;
	}
	if (rc != 0) {
		res->write_err = rc;
		return;
	}
	mine = job->slot;
	/* Past whatever this node wrote before (an earlier daemon, another incarnation). */
	if (off > 0 && (uint32_t)(off / VMC_LEASE_BLOCK) < res->n_blocks) {
		struct vmc_lease_slot old;
		if (vmc_lease_slot_decode(res->blocks + off, VMC_LEASE_BLOCK, &old, why, sizeof(why)) ==
			    VMC_LEASE_VALID &&
		    old.counter >= mine.counter) {
			mine.counter = old.counter + 1;
		}
	}
	if (job->write_header && vmc_lease_header_decode(res->blocks, VMC_LEASE_BLOCK, &(struct vmc_lease_header){ 0 },
							 why, sizeof(why)) == VMC_LEASE_EMPTY) {
		vmc_lease_header_encode(&job->header, one);
		rc = block_io(v->fd, true, one, VMC_LEASE_BLOCK, 0);
		if (rc != 0) {
			snprintf(res->why, sizeof(res->why), "write of the header: %s", strerror(-rc));
			res->write_err = rc;
			return;
		}
	}
	vmc_lease_slot_encode(&mine, one);
	rc = off > 0 ? block_io(v->fd, true, one, VMC_LEASE_BLOCK, off) : -ERANGE;
	if (rc != 0) {
		snprintf(res->why, sizeof(res->why), "write of slot %u: %s", mine.node, strerror(-rc));
		res->write_err = rc;
		return;
	}
	/* Read back: what the others will read, not what this node meant. */
	rc = block_io(v->fd, false, one, VMC_LEASE_BLOCK, off);
	if (rc == 0) {
		struct vmc_lease_slot back;
		if (vmc_lease_slot_decode(one, VMC_LEASE_BLOCK, &back, why, sizeof(why)) != VMC_LEASE_VALID ||
		    !vmc_lease_slot_same(&back, &mine)) {
			snprintf(res->why, sizeof(res->why), "read back of slot %u differs from what was written",
				 mine.node);
			rc = -EIO;
		}
	} else {
		snprintf(res->why, sizeof(res->why), "read back of slot %u: %s", mine.node, strerror(-rc));
	}
	res->write_err = rc;
	res->counter = mine.counter;
}

static void *worker(void *arg)
{
	struct lease_vol *v = arg;
	char byte = 'r';

	pthread_mutex_lock(&v->mu);
	for (;;) {
		struct lease_job job;
		while (!v->has_job && !v->quit) {
			pthread_cond_wait(&v->cv, &v->mu);
		}
		if (v->quit) {
			break;
		}
		job = v->job;
		v->has_job = false;
		pthread_mutex_unlock(&v->mu);
		job_run(v, &job, &v->res);
		pthread_mutex_lock(&v->mu);
		v->has_result = true;
		if (!v->quit && write(notify_pipe[1], &byte, 1) < 0) {
			/* the loop polls results at every tick too */
		}
	}
	pthread_mutex_unlock(&v->mu);
	if (v->fd >= 0) {
		close(v->fd);
	}
	/* A worker that hung through its volume's removal frees what it used itself. */
	if (v->detached) {
		free(v->res.blocks);
		free(v->one);
		free(v);
	}
	return NULL;
}

/* ---- the main loop ---- */

static struct lease_vol *vol_find(const char *name)
{
	for (struct lease_vol *v = vols; v != NULL; v = v->next) {
		if (strcmp(v->name, name) == 0) {
			return v;
		}
	}
	return NULL;
}

static uint32_t max_node_id(struct vmcd *d)
{
	uint32_t max = d->my_id;

	for (size_t i = 0; i < d->n_nodes; i++) {
		if (d->nodes[i].id > max) {
			max = d->nodes[i].id;
		}
	}
	return max > VMC_LEASE_SLOTS_MAX ? VMC_LEASE_SLOTS_MAX : max;
}

/*
 * This node's last successful renewal on a volume, kept in the run
 * directory (tmpfs: gone at reboot, kept across a daemon restart) on the
 * monotonic clock, which a restart does not reset: a restarted daemon
 * carries on the timeline where the last one left it, never from its own
 * start, or its watchdog pets could outlast what the others wait for.
 */
/* The kernel's id of this boot: a monotonic time means nothing in another one. */
static const char *boot_id(void)
{
	static char id[40];
	FILE *f;

	if (id[0] == '\0') {
		f = fopen("/proc/sys/kernel/random/boot_id", "re");
		if (f == NULL || fscanf(f, "%39s", id) != 1) {
			snprintf(id, sizeof(id), "unknown");
		}
		if (f != NULL) {
			fclose(f);
		}
	}
	return id;
}

static void renewal_path(const struct vmcd *d, const char *volume, char *out, size_t len)
{
	snprintf(out, len, "%s/lease-renewed.%s", d->opt.run_dir, volume);
}

static void renewal_save(const struct vmcd *d, const struct lease_vol *v)
{
	char path[PATH_MAX + 80], tmp[PATH_MAX + 96];
	FILE *f;

	renewal_path(d, v->name, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (f == NULL) {
		return;
	}
	fprintf(f, "%s %llu\n", boot_id(), (unsigned long long)v->renewal.ok_ms);
	if (fclose(f) == 0) {
		rename(tmp, path);
	}
}

/* The saved time, when this boot's clock wrote it; else now. */
static uint64_t renewal_load(const struct vmcd *d, const char *volume, uint64_t now)
{
	char path[PATH_MAX + 80], boot[64] = "";
	unsigned long long ms = 0;
	FILE *f;

	renewal_path(d, volume, path, sizeof(path));
	f = fopen(path, "re");
	if (f == NULL) {
		return now;
	}
	if (fscanf(f, "%63s %llu", boot, &ms) != 2 || strcmp(boot, boot_id()) != 0 || ms > now) {
		ms = now; /* another boot's clock, or unreadable */
	}
	fclose(f);
	return ms;
}

static struct lease_vol *vol_start(struct vmcd *d, const struct vmc_volume *sv)
{
	struct lease_vol *v = calloc(1, sizeof(*v));
	uint64_t now = vmc_now_ms();

	if (v == NULL || posix_memalign((void **)&v->res.blocks, VMC_LEASE_BLOCK,
					(size_t)(VMC_LEASE_SLOTS_MAX + 1) * VMC_LEASE_BLOCK) != 0 ||
	    posix_memalign((void **)&v->one, VMC_LEASE_BLOCK, VMC_LEASE_BLOCK) != 0) {
		if (v != NULL) {
			free(v->res.blocks);
		}
		free(v);
		return NULL;
	}
	snprintf(v->name, sizeof(v->name), "%s", sv->name);
	snprintf(v->path, sizeof(v->path), "%s", sv->path);
	v->fd = -1;
	/* The kill deadline runs from this node's last renewal, by this daemon or the one before. */
	v->renewal.ok_ms = renewal_load(d, sv->name, now);
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cv, NULL);
	if (pthread_create(&v->thread, NULL, worker, v) != 0) {
		free(v->res.blocks);
		free(v->one);
		free(v);
		return NULL;
	}
	{
		/* "lease:NAME" in ps and /proc/PID/task/TID/comm (bench/leases.sh counts its I/O) */
		char comm[16];
		snprintf(comm, sizeof(comm), "lease:%.9s", v->name);
		pthread_setname_np(v->thread, comm);
	}
	v->present = true;
	v->next = vols;
	vols = v;
	log_info("volume %s: renewing this node's lease in %s/%s every %u ms", v->name, v->path,
		 VMC_LEASE_FILE_NAME, d->timeouts.lease_renewal_ms);
	return v;
}

static void vol_stop(struct lease_vol *v)
{
	bool hung;

	pthread_mutex_lock(&v->mu);
	v->quit = true;
	hung = v->busy && !v->has_result;
	v->detached = hung;
	pthread_cond_signal(&v->cv);
	pthread_mutex_unlock(&v->mu);
	if (hung) {
		log_warn("volume %s: its lease I/O is still out; the thread is left to end on its own", v->name);
		pthread_detach(v->thread);
		return;
	}
	pthread_join(v->thread, NULL);
	pthread_mutex_destroy(&v->mu);
	pthread_cond_destroy(&v->cv);
	free(v->res.blocks);
	free(v->one);
	free(v);
}

static void job_post(struct vmcd *d, struct lease_vol *v, bool write, uint64_t now)
{
	const struct vmc_volume *sv = vmc_state_volume_find(d->replica.state, v->name);
	struct lease_job *j = &v->job;

	memset(j, 0, sizeof(*j));
	j->write = write && vmc_lease_slot_offset(d->my_id) > 0;
	j->max_id = max_node_id(d);
	j->slot.node = d->my_id;
	j->slot.counter = v->counter + 1;
	j->slot.incarnation = incarnation;
	j->slot.written_unix_ms = (uint64_t)time(NULL) * 1000;
	snprintf(j->slot.cluster, sizeof(j->slot.cluster), "%.31s", d->cluster_name);
	snprintf(j->slot.node_name, sizeof(j->slot.node_name), "%.47s", vmcd_node_name(d, d->my_id));
	j->write_header = write && sv != NULL && sv->coordinator == d->my_id;
	j->header = (struct vmc_lease_header){ .block_size = VMC_LEASE_BLOCK, .slots = VMC_LEASE_SLOTS_MAX };
	snprintf(j->header.cluster, sizeof(j->header.cluster), "%.31s", d->cluster_name);
	snprintf(j->header.volume, sizeof(j->header.volume), "%s", v->name);
	pthread_mutex_lock(&v->mu);
	v->res.n_blocks = j->max_id + 1;
	v->has_job = true;
	pthread_cond_signal(&v->cv);
	pthread_mutex_unlock(&v->mu);
	v->busy = true;
	v->busy_ms = now;
	if (j->write) {
		vmc_lease_renewal_started(&v->renewal, now);
	}
}

/* A finished job: what this node's renewal did, what every slot holds. */
static void result_take(struct vmcd *d, struct lease_vol *v)
{
	struct lease_result *r = &v->res;
	bool wrote;

	pthread_mutex_lock(&v->mu);
	if (!v->has_result) {
		pthread_mutex_unlock(&v->mu);
		return;
	}
	v->has_result = false;
	wrote = v->job.write;
	pthread_mutex_unlock(&v->mu);
	v->busy = false;
	v->direct_io = r->direct;
	v->last_read_err = r->read_err;
	if (r->read_err == 0) {
		v->last_read_ms = r->done_ms;
		for (uint32_t id = 1; id < r->n_blocks; id++) {
			const uint8_t *block = r->blocks + (size_t)id * VMC_LEASE_BLOCK;
			uint32_t changes = v->seen[id].changes;
			vmc_lease_watch_read(&v->seen[id], block, r->started_ms, r->done_ms);
			if (v->seen[id].changes != changes && v->seen[id].kind == VMC_LEASE_CORRUPT) {
				struct vmc_lease_slot ignored;
				char why[128];
				vmc_lease_slot_decode(block, VMC_LEASE_BLOCK, &ignored, why, sizeof(why));
				log_warn("volume %s: the lease slot of %s is damaged (%s): counted as not renewed "
					 "until its owner writes it again", v->name, vmcd_node_name(d, id), why);
			}
			if (v->proving[id]) {
				vmc_lease_watch_read(&v->proof[id], block, r->started_ms, r->done_ms);
			}
		}
	}
	if (wrote) {
		enum vmc_volume_health before = vmc_lease_renewal_health(&v->renewal, &d->timeouts, vmc_now_ms());
		vmc_lease_renewal_done(&v->renewal, v->renewal.in_flight_ms, r->write_err, r->why);
		if (r->write_err == 0) {
			v->counter = r->counter;
			renewal_save(d, v);
		}
		if (r->write_err != 0 && before != VMC_VOLUME_FAILING) {
			log_err("volume %s: lease renewal of node %s failed: %s", v->name, vmcd_node_name(d, d->my_id),
				r->why);
		} else if (r->write_err == 0 && before != VMC_VOLUME_OK && before != VMC_VOLUME_UNKNOWN) {
			log_notice("volume %s: lease of node %s renews again", v->name, vmcd_node_name(d, d->my_id));
		}
	} else if (r->read_err != 0) {
		log_warn("volume %s: reading the lease file failed: %s", v->name, r->why);
	}
}

static int notify_readable(int32_t fd, int32_t revents, void *data)
{
	struct vmcd *d = data;
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0) {
	}
	for (struct lease_vol *v = vols; v != NULL; v = v->next) {
		result_take(d, v);
	}
	lease_hooks->changed(d);
	return 0;
}

/* This node's health on v now: hung while an I/O is out too long, else what renewals say. */
static enum vmc_volume_health vol_health(struct vmcd *d, const struct lease_vol *v, uint64_t now)
{
	if (v->busy && now - v->busy_ms > d->timeouts.lease_io_ms) {
		return VMC_VOLUME_HUNG;
	}
	return vmc_lease_renewal_health(&v->renewal, &d->timeouts, now);
}

/* Does a watch of a lost node need a read now to confirm its expiry? */
static bool proof_read_due(struct vmcd *d, const struct lease_vol *v, uint64_t now)
{
	for (uint32_t id = 1; id <= VMC_LEASE_SLOTS_MAX; id++) {
		const struct vmc_lease_watch *w = &v->proof[id];
		if (v->proving[id] && w->have && !vmc_lease_watch_expired(w, &d->timeouts) &&
		    now >= w->seen_ms + d->timeouts.lease_timeout_ms) {
			return true;
		}
	}
	return false;
}

static void tick(void *data)
{
	struct vmcd *d = data;
	static uint32_t mask_before;
	uint64_t now = vmc_now_ms();
	bool changed = false;
	uint32_t mask;

	for (struct lease_vol *v = vols; v != NULL; v = v->next) {
		enum vmc_volume_health h;
		result_take(d, v);
		if (!v->busy && now >= v->next_renewal_ms) {
			/* Renew only while corosync says this partition is quorate; read always. */
			job_post(d, v, d->quorum_known && d->quorate, now);
			v->next_renewal_ms = now + d->timeouts.lease_renewal_ms;
		} else if (!v->busy && (v->read_now || proof_read_due(d, v, now))) {
			v->read_now = false;
			job_post(d, v, false, now);
		}
		h = vol_health(d, v, now);
		changed = changed || h != v->ticked;
		v->ticked = h;
	}
	/* The kill deadline passes with the clock, not with an event. */
	mask = vmcd_leases_lost_mask(d);
	if (changed || mask != mask_before) {
		mask_before = mask;
		lease_hooks->changed(d);
	}
	qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)TICK_MS * QB_TIME_NS_IN_MSEC, d, tick, &tick_timer);
}

int vmcd_leases_init(struct vmcd *d, const struct vmcd_leases_hooks *hooks)
{
	lease_hooks = hooks;
	if (getrandom(&incarnation, sizeof(incarnation), 0) != (ssize_t)sizeof(incarnation)) {
		incarnation = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	}
	if (pipe2(notify_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		return -errno;
	}
	qb_loop_poll_add(d->loop, QB_LOOP_MED, notify_pipe[0], POLLIN, d, notify_readable);
	/* The persisted state's volumes at once: the watchdog asks about them from its first pet. */
	vmcd_leases_reconcile(d);
	return qb_loop_timer_add(d->loop, QB_LOOP_MED, (uint64_t)TICK_MS * QB_TIME_NS_IN_MSEC, d, tick, &tick_timer);
}

void vmcd_leases_fini(struct vmcd *d)
{
	qb_loop_timer_del(d->loop, tick_timer);
	while (vols != NULL) {
		struct lease_vol *v = vols;
		vols = v->next;
		vol_stop(v);
	}
	if (notify_pipe[0] >= 0) {
		qb_loop_poll_del(d->loop, notify_pipe[0]);
		close(notify_pipe[0]);
		/* A detached worker may still write: its end stays open. */
		notify_pipe[0] = -1;
	}
}

static void health_report(struct vmcd *d, struct lease_vol *v, uint64_t now)
{
	const struct vmc_volume *sv = vmc_state_volume_find(d->replica.state, v->name);
	const struct vmc_volume_seen *mine = sv ? vmc_volume_seen_by(sv, d->my_id) : NULL;
	enum vmc_volume_health h = vol_health(d, v, now);
	int err = h == VMC_VOLUME_FAILING ? -v->renewal.last_err : 0;
	char detail[96];
	json_object *body;
	int64_t id;

	if (h == VMC_VOLUME_UNKNOWN || !vmc_replica_writable(&d->replica) ||
	    (mine != NULL && mine->health == h && mine->err == err) || now - v->reported_ms < REPORT_EVERY_MS) {
		return;
	}
	if (h == VMC_VOLUME_HUNG) {
		snprintf(detail, sizeof(detail), "lease I/O out for %llu s",
			 (unsigned long long)((now - v->busy_ms) / 1000));
	} else {
		snprintf(detail, sizeof(detail), "%.95s", h == VMC_VOLUME_FAILING ? v->renewal.last_why : "");
	}
	body = json_object_new_object();
	json_object_object_add(body, "name", json_object_new_string(v->name));
	json_object_object_add(body, "health", json_object_new_string(vmc_volume_health_to_str(h)));
	json_object_object_add(body, "errno", json_object_new_int(err < 0 || err > 4095 ? 0 : err));
	json_object_object_add(body, "detail", json_object_new_string(detail));
	json_object_object_add(body, "at_s", json_object_new_int64((int64_t)time(NULL)));
	id = vmcd_cpg_send_request(d, VMC_MSG_VOLUME_HEALTH, body);
	json_object_put(body);
	v->reported_ms = now;
	if (id < 0) {
		log_warn("volume %s: cannot report its health (%s): %s", v->name, vmc_volume_health_to_str(h),
			 strerror((int)-id));
	} else {
		log_info("volume %s: reporting it %s on %s%s%s", v->name, vmc_volume_health_to_str(h),
			 vmcd_node_name(d, d->my_id), detail[0] ? ": " : "", detail);
	}
}

void vmcd_leases_reconcile(struct vmcd *d)
{
	const struct vmc_state *s = d->replica.state;
	struct lease_vol **pp = &vols;
	uint64_t now = vmc_now_ms();

	for (struct lease_vol *v = vols; v != NULL; v = v->next) {
		v->present = false;
	}
	for (size_t i = 0; s != NULL && i < s->n_volumes; i++) {
		struct lease_vol *v = vol_find(s->volumes[i].name);
		if (v == NULL) {
			v = vol_start(d, &s->volumes[i]);
		}
		if (v != NULL) {
			v->present = true;
		}
	}
	while (*pp != NULL) {
		struct lease_vol *v = *pp;
		if (!v->present) {
			*pp = v->next;
			char path[PATH_MAX + 80];
			log_info("volume %s: no longer in the cluster: its lease is no longer renewed", v->name);
			renewal_path(d, v->name, path, sizeof(path));
			unlink(path);
			vol_stop(v);
			continue;
		}
		health_report(d, v, now);
		pp = &v->next;
	}
}

uint32_t vmcd_leases_overdue_mask(struct vmcd *d)
{
	const struct vmc_state *s = d->replica.state;
	uint64_t now = vmc_now_ms();
	uint32_t mask = 0;

	for (size_t i = 0; s != NULL && i < s->n_volumes && i < 32; i++) {
		const struct lease_vol *v = vol_find(s->volumes[i].name);
		if (v != NULL && vmc_lease_overdue(&d->timeouts, v->renewal.ok_ms, now)) {
			mask |= 1u << i;
		}
	}
	return mask;
}

uint32_t vmcd_leases_lost_mask(struct vmcd *d)
{
	const struct vmc_state *s = d->replica.state;
	uint64_t now = vmc_now_ms();
	uint32_t mask = 0;

	for (size_t i = 0; s != NULL && i < s->n_volumes && i < 32; i++) {
		const struct lease_vol *v = vol_find(s->volumes[i].name);
		if (v != NULL && vmc_lease_must_kill(&d->timeouts, v->renewal.ok_ms, now)) {
			mask |= 1u << i;
		}
	}
	return mask;
}

bool vmcd_leases_allow_pet(struct vmcd *d, const char *const *running, size_t n_running, char *why, size_t len)
{
	const struct vmc_state *s = d->replica.state;
	uint64_t now = vmc_now_ms();

	for (size_t k = 0; s != NULL && k < n_running; k++) {
		const struct vmc_group *g = vmc_state_group_find(s, running[k]);
		for (size_t i = 0; g != NULL && i < s->n_volumes; i++) {
			const struct lease_vol *v = vol_find(s->volumes[i].name);
			if (v != NULL && vmc_group_uses_volume(g->def, &s->volumes[i]) &&
			    !vmc_lease_may_pet(&d->timeouts, v->renewal.ok_ms, now)) {
				snprintf(why, len, "vm %s still runs and volume %s has not renewed for %llu ms", running[k],
					 v->name, (unsigned long long)(now - v->renewal.ok_ms));
				return false;
			}
		}
	}
	return true;
}

int vmcd_leases_proven(struct vmcd *d, uint32_t node, uint64_t *left_ms, char *why, size_t len)
{
	uint64_t now = vmc_now_ms(), left = 0;
	bool all = true;

	if (node == 0 || node > VMC_LEASE_SLOTS_MAX || vols == NULL) {
		snprintf(why, len, "node id %u has no lease slot on any volume", node);
		return -ENOENT;
	}
	for (struct lease_vol *v = vols; v != NULL; v = v->next) {
		struct vmc_lease_watch *w = &v->proof[node];
		if (!v->proving[node]) {
			vmc_lease_watch_begin(w, now);
			v->proving[node] = true;
			v->read_now = true;
			if (!v->busy) {
				v->read_now = false;
				job_post(d, v, false, now);
			}
		}
		if (vmc_lease_watch_expired(w, &d->timeouts)) {
			continue;
		}
		all = false;
		if ((v->busy && now - v->busy_ms > d->timeouts.lease_io_ms) || !w->have ||
		    (v->last_read_err != 0 && now - v->last_read_ms > d->timeouts.lease_timeout_ms)) {
			snprintf(why, len, "volume %s cannot be read here (%s)", v->name,
				 v->busy ? "its I/O hangs" : !w->have ? "no read of it yet" : strerror(-v->last_read_err));
			return -EIO;
		}
		if (vmc_lease_watch_remaining_ms(w, &d->timeouts, now) > left) {
			left = vmc_lease_watch_remaining_ms(w, &d->timeouts, now);
		}
	}
	*left_ms = all ? 0 : (left > 0 ? left : TICK_MS);
	return all ? 1 : 0;
}

void vmcd_leases_unwatch(struct vmcd *d, uint32_t node)
{
	(void)d;
	for (struct lease_vol *v = vols; node > 0 && node <= VMC_LEASE_SLOTS_MAX && v != NULL; v = v->next) {
		v->proving[node] = false;
	}
}

json_object *vmcd_leases_volume_json(struct vmcd *d, const char *volume)
{
	const struct lease_vol *v = vol_find(volume);
	uint64_t now = vmc_now_ms();
	json_object *o, *slots;

	if (v == NULL) {
		return NULL;
	}
	o = json_object_new_object();
	slots = json_object_new_array();
	json_object_object_add(o, "node", json_object_new_string(vmcd_node_name(d, d->my_id)));
	json_object_object_add(o, "health", json_object_new_string(vmc_volume_health_to_str(vol_health(d, v, now))));
	json_object_object_add(o, "direct_io", json_object_new_boolean(v->direct_io));
	json_object_object_add(o, "renewed_ms_ago",
			       v->renewal.ever_ok ? json_object_new_int64((int64_t)(now - v->renewal.ok_ms)) : NULL);
	json_object_object_add(o, "io_out_ms", v->busy ? json_object_new_int64((int64_t)(now - v->busy_ms)) : NULL);
	json_object_object_add(o, "counter", json_object_new_uint64(v->counter));
	for (size_t i = 0; i < d->n_nodes; i++) {
		uint32_t id = d->nodes[i].id;
		const struct vmc_lease_watch *w = id <= VMC_LEASE_SLOTS_MAX ? &v->seen[id] : NULL;
		json_object *e;
		if (w == NULL || !w->have) {
			continue;
		}
		e = json_object_new_object();
		json_object_object_add(e, "node", json_object_new_string(d->nodes[i].name));
		json_object_object_add(e, "slot", json_object_new_string(w->kind == VMC_LEASE_VALID ? "valid"
									 : w->kind == VMC_LEASE_EMPTY ? "empty"
												      : "corrupt"));
		json_object_object_add(e, "counter", json_object_new_uint64(w->value.counter));
		json_object_object_add(e, "changed_ms_ago", json_object_new_int64((int64_t)(now - w->seen_ms)));
		json_object_array_add(slots, e);
	}
	json_object_object_add(o, "slots", slots);
	return o;
}
