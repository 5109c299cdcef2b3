/*
 * Golden case files for the policy suites (local VM policy, fencing), in
 * the spirit of the placement cases (tests/placement): one small cluster per file, the
 * local facts, the decisions expected. This header reads the lines both
 * kinds share and builds a real vmc_state from them, through the same
 * JSON snapshot a daemon loads:
 *
 *   # what the case shows (comments and blank lines are ignored)
 *   me node1
 *   node node1 1 [mem=2048] [nofacts] [watchdog]
 *   vm web1 [state=online] [owner=node1] [attempt=2] [prio=high] [mem=256]
 *           [disk=PATH] [move=PHASE:TARGET:ID] [pref=NODE,NODE] [possible=NODE,...]
 *           [manager=pacemaker]
 *           [failback=never|immediate|HH-HH] [home=KIND:NODE:SINCE_S]
 *           [after=VM,VM] [after-timeout=S]   (start_after, start_after_timeout_s)
 *   members node1,node2          (the active members; default: every node)
 *   epoch 7
 *   record node3 attempts=1 [last_fencer=node1] [error=TEXT]
 *   volume csv1 /srv/csv1 [seen]  (seen: every node reports it healthy)
 *
 * Every other line is the suite's; a failure names the file and line.
 */
#ifndef VMC_CASE_FILE_H
#define VMC_CASE_FILE_H

#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image_locks.h"
#include "state.h"

#define CASE_NODES_MAX 16
#define CASE_VMS_MAX 32
#define CASE_FILES_MAX 128

struct case_node {
	char name[32];
	uint32_t id;
	uint32_t mem_mib;
	bool facts;
	bool watchdog;
};

struct case_vm {
	char name[64];
	char state[16];
	uint32_t owner;
	uint32_t attempt;
	char prio[16];
	uint32_t mem_mib;
	char disk[128];         /* one disk image, or empty */
	char mig_phase[16];     /* a move: queued, transfer or switchover; empty for none */
	uint32_t mig_target;
	char mig_id[40];
	char def_extra[256];    /* more definition fields, as JSON members */
	char home[128];         /* the "home" object's JSON, or empty */
};

struct case_volume {
	char name[32];
	char path[128];
	bool seen;              /* every node with facts reports it healthy */
};

struct case_record {
	uint32_t node, attempts, last_fencer;
	char error[96];
};

struct case_base {
	const char *path;
	unsigned int line;
	uint32_t me;            /* resolved by case_state() */
	char me_name[32];
	struct case_node nodes[CASE_NODES_MAX];
	size_t n_nodes;
	struct case_vm vms[CASE_VMS_MAX];
	size_t n_vms;
	uint32_t members[CASE_NODES_MAX];
	size_t n_members;
	bool members_set;
	uint64_t epoch;
	struct case_record records[CASE_NODES_MAX];
	size_t n_records;
	struct case_volume volumes[4];
	size_t n_volumes;
};

#define case_fail(c, ...) ck_abort_msg("%s:%u: %s", (c)->path, (c)->line, case_msg(__VA_ARGS__))

static inline const char *case_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *case_msg(const char *fmt, ...)
{
	static char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

static inline uint32_t case_node_id(struct case_base *c, const char *name)
{
	for (size_t i = 0; i < c->n_nodes; i++) {
		if (strcmp(c->nodes[i].name, name) == 0) {
			return c->nodes[i].id;
		}
	}
	case_fail(c, "unknown node '%s'", name);
	return 0;
}

static inline const char *case_node_name(const struct case_base *c, uint32_t id)
{
	for (size_t i = 0; i < c->n_nodes; i++) {
		if (c->nodes[i].id == id) {
			return c->nodes[i].name;
		}
	}
	return "-";
}

/* "a,b" into ids; returns how many. */
static inline size_t case_node_list(struct case_base *c, char *csv, uint32_t *ids, size_t max)
{
	char *save = NULL;
	size_t n = 0;

	for (char *t = strtok_r(csv, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) {
		ids[n++] = case_node_id(c, t);
	}
	return n;
}

/* key=value: the value when tok starts with key=, else NULL. */
static inline const char *case_kv(const char *tok, const char *key)
{
	size_t n = strlen(key);

	return strncmp(tok, key, n) == 0 && tok[n] == '=' ? tok + n + 1 : NULL;
}

static inline void case_parse_node(struct case_base *c, char *save)
{
	struct case_node *n = &c->nodes[c->n_nodes];
	char *name = strtok_r(NULL, " \t", &save), *id = strtok_r(NULL, " \t", &save);

	if (name == NULL || id == NULL || c->n_nodes == CASE_NODES_MAX) {
		case_fail(c, "node NAME ID [mem=MIB] [nofacts]");
	}
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->id = (uint32_t)atoi(id);
	n->mem_mib = 4096;
	n->facts = true;
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (case_kv(t, "mem")) {
			n->mem_mib = (uint32_t)atoi(case_kv(t, "mem"));
		} else if (strcmp(t, "nofacts") == 0) {
			n->facts = false;
		} else if (strcmp(t, "watchdog") == 0) {
			n->watchdog = true;
		} else {
			case_fail(c, "unknown node attribute '%s'", t);
		}
	}
	c->n_nodes++;
}

/* Appends ,"key":["a","b"] for the csv "a,b" to the JSON members in buf. */
static inline void case_json_list(char *buf, size_t size, const char *key, const char *csv)
{
	size_t l = strlen(buf);

	l += (size_t)snprintf(buf + l, size - l, ",\"%s\":[\"", key);
	for (const char *p = csv; *p != '\0' && l + 4 < size; p++) {
		l += (size_t)snprintf(buf + l, size - l, "%s", *p == ',' ? "\",\"" : (char[]){ *p, '\0' });
	}
	snprintf(buf + l, size - l, "\"]");
}

static inline void case_parse_vm(struct case_base *c, char *save)
{
	struct case_vm *v = &c->vms[c->n_vms];
	char *name = strtok_r(NULL, " \t", &save);

	if (name == NULL || c->n_vms == CASE_VMS_MAX) {
		case_fail(c, "vm NAME [state=S] [owner=NODE] [attempt=N] [prio=P] [mem=MIB]");
	}
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->state, sizeof(v->state), "offline");
	snprintf(v->prio, sizeof(v->prio), "medium");
	v->mem_mib = 256;
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (case_kv(t, "state")) {
			snprintf(v->state, sizeof(v->state), "%s", case_kv(t, "state"));
		} else if (case_kv(t, "owner")) {
			v->owner = case_node_id(c, case_kv(t, "owner"));
		} else if (case_kv(t, "attempt")) {
			v->attempt = (uint32_t)atoi(case_kv(t, "attempt"));
		} else if (case_kv(t, "prio")) {
			snprintf(v->prio, sizeof(v->prio), "%s", case_kv(t, "prio"));
		} else if (case_kv(t, "mem")) {
			v->mem_mib = (uint32_t)atoi(case_kv(t, "mem"));
		} else if (case_kv(t, "disk")) {
			snprintf(v->disk, sizeof(v->disk), "%s", case_kv(t, "disk"));
		} else if (case_kv(t, "move")) {
			/* move=PHASE:TARGET:ID */
			char buf[96], *phase, *target, *id, *sp = NULL;
			snprintf(buf, sizeof(buf), "%s", case_kv(t, "move"));
			phase = strtok_r(buf, ":", &sp);
			target = strtok_r(NULL, ":", &sp);
			id = strtok_r(NULL, ":", &sp);
			if (phase == NULL || target == NULL || id == NULL) {
				case_fail(c, "move=PHASE:TARGET:ID");
			}
			snprintf(v->mig_phase, sizeof(v->mig_phase), "%s", phase);
			v->mig_target = case_node_id(c, target);
			snprintf(v->mig_id, sizeof(v->mig_id), "%s", id);
		} else if (case_kv(t, "pref")) {
			case_json_list(v->def_extra, sizeof(v->def_extra), "preferred_owners", case_kv(t, "pref"));
		} else if (case_kv(t, "possible")) {
			case_json_list(v->def_extra, sizeof(v->def_extra), "possible_owners", case_kv(t, "possible"));
		} else if (case_kv(t, "manager")) {
			size_t l = strlen(v->def_extra);
			snprintf(v->def_extra + l, sizeof(v->def_extra) - l, ",\"manager\":\"%s\"", case_kv(t, "manager"));
		} else if (case_kv(t, "after")) {
			case_json_list(v->def_extra, sizeof(v->def_extra), "start_after", case_kv(t, "after"));
		} else if (case_kv(t, "after-timeout")) {
			size_t l = strlen(v->def_extra);
			snprintf(v->def_extra + l, sizeof(v->def_extra) - l, ",\"start_after_timeout_s\":%s",
				 case_kv(t, "after-timeout"));
		} else if (case_kv(t, "failback")) {
			const char *f = case_kv(t, "failback");
			size_t l = strlen(v->def_extra);
			snprintf(v->def_extra + l, sizeof(v->def_extra) - l, ",\"failback\":\"%s%s\"",
				 strchr(f, '-') ? "window " : "", f);
		} else if (case_kv(t, "home")) {
			char buf[96], *kind, *node, *since, *sp = NULL;
			snprintf(buf, sizeof(buf), "%s", case_kv(t, "home"));
			kind = strtok_r(buf, ":", &sp);
			node = strtok_r(NULL, ":", &sp);
			since = strtok_r(NULL, ":", &sp);
			if (kind == NULL || node == NULL || since == NULL) {
				case_fail(c, "home=KIND:NODE:SINCE_S");
			}
			snprintf(v->home, sizeof(v->home), ",\"home\":{\"kind\":\"%s\",\"node\":%u,\"since_s\":%s,"
				 "\"failed\":0}", kind, case_node_id(c, node), since);
		} else {
			case_fail(c, "unknown vm attribute '%s'", t);
		}
	}
	c->n_vms++;
}

static inline void case_parse_record(struct case_base *c, char *save)
{
	struct case_record *r = &c->records[c->n_records];
	char *node = strtok_r(NULL, " \t", &save);

	if (node == NULL || c->n_records == CASE_NODES_MAX) {
		case_fail(c, "record NODE attempts=N [last_fencer=NODE] [error=TEXT]");
	}
	memset(r, 0, sizeof(*r));
	r->node = case_node_id(c, node);
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (case_kv(t, "attempts")) {
			r->attempts = (uint32_t)atoi(case_kv(t, "attempts"));
		} else if (case_kv(t, "last_fencer")) {
			r->last_fencer = case_node_id(c, case_kv(t, "last_fencer"));
		} else if (case_kv(t, "error")) {
			snprintf(r->error, sizeof(r->error), "%s", case_kv(t, "error"));
		} else {
			case_fail(c, "unknown record attribute '%s'", t);
		}
	}
	c->n_records++;
}

/* A line every suite shares: true when it was one. */
static inline bool case_parse_base(struct case_base *c, const char *kw, char *save)
{
	char *arg;

	if (strcmp(kw, "node") == 0) {
		case_parse_node(c, save);
	} else if (strcmp(kw, "vm") == 0) {
		case_parse_vm(c, save);
	} else if (strcmp(kw, "record") == 0) {
		case_parse_record(c, save);
	} else if (strcmp(kw, "volume") == 0) {
		char *name = strtok_r(NULL, " \t", &save), *path = strtok_r(NULL, " \t", &save);
		if (name == NULL || path == NULL || c->n_volumes == 4) {
			case_fail(c, "volume NAME PATH (at most 4)");
		}
		snprintf(c->volumes[c->n_volumes].name, sizeof(c->volumes[0].name), "%s", name);
		snprintf(c->volumes[c->n_volumes].path, sizeof(c->volumes[0].path), "%s", path);
		arg = strtok_r(NULL, " \t", &save);
		c->volumes[c->n_volumes].seen = arg != NULL && strcmp(arg, "seen") == 0;
		c->n_volumes++;
	} else if (strcmp(kw, "me") == 0) {
		arg = strtok_r(NULL, " \t", &save);
		snprintf(c->me_name, sizeof(c->me_name), "%s", arg ? arg : "");
	} else if (strcmp(kw, "members") == 0) {
		arg = strtok_r(NULL, " \t", &save);
		c->n_members = arg ? case_node_list(c, arg, c->members, CASE_NODES_MAX) : 0;
		c->members_set = true;
	} else if (strcmp(kw, "epoch") == 0) {
		arg = strtok_r(NULL, " \t", &save);
		c->epoch = arg ? strtoull(arg, NULL, 10) : 0;
	} else {
		return false;
	}
	return true;
}

/* The state the lines describe, built as a snapshot and loaded like one. */
static inline struct vmc_state *case_state(struct case_base *c)
{
	char *json = calloc(1, 65536);
	size_t used = 0;
	struct vmc_state *s = NULL;
	char err[256];

	ck_assert_ptr_nonnull(json);
	if (c->me_name[0] == '\0') {
		case_fail(c, "no 'me' line");
	}
	c->me = case_node_id(c, c->me_name);
	if (!c->members_set) {
		for (size_t i = 0; i < c->n_nodes; i++) {
			c->members[i] = c->nodes[i].id;
		}
		c->n_members = c->n_nodes;
	}
	used += (size_t)snprintf(json + used, 65536 - used,
				 "{\"format\":1,\"epoch\":%llu,\"config_version\":10,\"nodes\":[",
				 (unsigned long long)c->epoch);
	for (size_t i = 0, k = 0; i < c->n_nodes; i++) {
		if (c->nodes[i].facts) {
			used += (size_t)snprintf(json + used, 65536 - used,
						 "%s{\"id\":%u,\"name\":\"%s\",\"mem_mib\":%u%s}", k++ ? "," : "",
						 c->nodes[i].id, c->nodes[i].name, c->nodes[i].mem_mib,
						 c->nodes[i].watchdog ? ",\"watchdog\":true" : "");
		}
	}
	used += (size_t)snprintf(json + used, 65536 - used, "],\"fencing\":[");
	for (size_t i = 0; i < c->n_records; i++) {
		used += (size_t)snprintf(json + used, 65536 - used,
					 "%s{\"node\":%u,\"attempts\":%u,\"last_fencer\":%u,\"last_error\":\"%s\"}",
					 i ? "," : "", c->records[i].node, c->records[i].attempts,
					 c->records[i].last_fencer, c->records[i].error);
	}
	used += (size_t)snprintf(json + used, 65536 - used, "],\"groups\":[");
	for (size_t i = 0; i < c->n_vms; i++) {
		const struct case_vm *v = &c->vms[i];
		bool wanted = strcmp(v->state, "offline") != 0 && strcmp(v->state, "stopping") != 0 &&
			      strcmp(v->state, "failed") != 0;
		char mig[192] = "";
		if (v->mig_phase[0] != '\0') {
			snprintf(mig, sizeof(mig),
				 ",\"migration\":{\"phase\":\"%s\",\"target\":%u,\"mode\":\"live\",\"id\":\"%.32s\","
				 "\"since_s\":0,\"seq\":1}",
				 v->mig_phase, v->mig_target, v->mig_id);
		}
		used += (size_t)snprintf(json + used, 65536 - used,
					 "%s{\"definition\":{\"name\":\"%s\",\"memory_mib\":%u,\"priority\":\"%s\","
					 "\"boot\":{\"kernel\":\"/k\"}%s%s%s%s},\"owner\":%u,\"state\":\"%s\","
					 "\"want_started\":%s,\"attempt\":%u,\"reason\":\"\",\"failures\":[]%s%s}",
					 i ? "," : "", v->name, v->mem_mib, v->prio, v->disk[0] ? ",\"disks\":[{\"path\":\"" : "",
					 v->disk, v->disk[0] ? "\"}]" : "", v->def_extra, v->owner, v->state,
					 wanted ? "true" : "false", v->attempt, mig, v->home);
	}
	used += (size_t)snprintf(json + used, 65536 - used, "]");
	for (size_t i = 0; i < c->n_volumes; i++) {
		used += (size_t)snprintf(json + used, 65536 - used,
					 "%s{\"name\":\"%s\",\"path\":\"%s\",\"coordinator\":0,\"preferred\":0,"
					 "\"seen\":[", i ? "," : ",\"volumes\":[", c->volumes[i].name, c->volumes[i].path);
		for (size_t k = 0, n = 0; c->volumes[i].seen && k < c->n_nodes; k++) {
			if (c->nodes[k].facts) {
				used += (size_t)snprintf(json + used, 65536 - used,
							 "%s{\"node\":%u,\"health\":\"ok\",\"errno\":0,\"since_s\":0,"
							 "\"detail\":\"\"}", n++ ? "," : "", c->nodes[k].id);
			}
		}
		used += (size_t)snprintf(json + used, 65536 - used, "],\"locks\":[]}");
	}
	snprintf(json + used, 65536 - used, "%s}", c->n_volumes ? "]" : "");
	if (vmc_state_from_string(json, &s, err, sizeof(err)) != 0) {
		case_fail(c, "the case's state does not load: %s", err);
	}
	/* The locks follow the groups, as after any applied change. */
	if (vmc_locks_reserve(s) != 0) {
		case_fail(c, "out of memory");
	}
	vmc_locks_reconcile(s);
	free(json);
	return s;
}

/* Feeds every line of path, without its newline, to line(ctx, text); b->line counts them. */
static inline void case_read(struct case_base *b, const char *path, void (*line)(void *ctx, char *text),
			     void *ctx)
{
	char text[512];
	FILE *f = fopen(path, "r");

	ck_assert_msg(f != NULL, "cannot open %s", path);
	b->path = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	while (fgets(text, sizeof(text), f) != NULL) {
		b->line++;
		text[strcspn(text, "\r\n")] = '\0';
		line(ctx, text);
	}
	fclose(f);
}

/* Every decision was expected (matched[k] for each of the n made). */
static inline void case_all_matched(const struct case_base *b, const bool *matched, size_t n,
				    size_t n_expects, const char *(*describe)(size_t k, void *ctx), void *ctx)
{
	ck_assert_msg(n_expects > 0, "%s: no expect lines", b->path);
	for (size_t k = 0; k < n; k++) {
		ck_assert_msg(matched[k], "%s: unexpected decision %s", b->path, describe(k, ctx));
	}
}

/*
 * The .case files of dir, sorted, into paths; returns how many. Runs in
 * main(), before any test: no check assertions here (a suite with no
 * cases fails its "enough cases" test instead).
 */
static inline size_t case_files(const char *dir, char paths[][512], size_t max)
{
	struct dirent **list = NULL;
	int n = scandir(dir, &list, NULL, alphasort);
	size_t k = 0;

	if (n < 0) {
		fprintf(stderr, "cannot read %s\n", dir);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(list[i]->d_name);
		if (len > 5 && strcmp(list[i]->d_name + len - 5, ".case") == 0 && k < max) {
			snprintf(paths[k++], 512, "%s/%s", dir, list[i]->d_name);
		}
		free(list[i]);
	}
	free(list);
	return k;
}

#endif
