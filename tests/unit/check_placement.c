/*
 * Golden tests of the placement policy (lib/placement.c), the way pacemaker
 * tests its scheduler: each tests/placement/NAME.case file is a small
 * cluster, one event, and the decisions expected, in order.
 *
 *   # what the case shows
 *   node node1 1 mem=2048 [down] [paused] [failing=csv1,csv2]
 *   vm web1 mem=512 [prio=high] [owner=node1] [preferred=node1,node2]
 *          [possible=node1,node2] [anti=web] [stopped] [pacemaker]
 *          [on=csv1,csv2]      (the volumes its disks lie on)
 *   lost node1[,node2]          (plan the recovery of these nodes' groups)
 *   place web1 [exclude=node2]  (or: where would web1 start)
 *   expect web1 start node2     (or: expect web1 no-node / expect web1 leave)
 *
 * Every case runs as one check test; a failure names the file and line.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"
#include "check_run.h"

#define CASE_DIR TEST_DATA_DIR "/../../placement"
#define MAX_NODES 16
#define MAX_VMS 64
#define MAX_CASES 256

struct pcase {
	char path[512];
	struct vmc_place_node nodes[MAX_NODES];
	char node_names[MAX_NODES][32];
	size_t n_nodes;
	struct vmc_place_group groups[MAX_VMS];
	size_t n_groups;
	struct vmc_place_decision got[MAX_VMS];
	size_t n_got;
	size_t n_expect_checked;
	bool evaluated;
	char volumes[32][32]; /* volume names, by the bit they get */
	size_t n_volumes;
};

/* The bits of a comma-separated list of volume names, each given one on first sight. */
static uint32_t volume_bits(struct pcase *c, const char *list)
{
	char copy[256], *save = NULL;
	uint32_t bits = 0;

	snprintf(copy, sizeof(copy), "%s", list);
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < c->n_volumes && strcmp(c->volumes[i], t) != 0) {
			i++;
		}
		if (i == c->n_volumes) {
			ck_assert_uint_lt(c->n_volumes, 32);
			snprintf(c->volumes[c->n_volumes++], sizeof(c->volumes[0]), "%s", t);
		}
		bits |= 1u << i;
	}
	return bits;
}

static char case_paths[MAX_CASES][512];
static size_t n_cases;

static uint32_t node_id(struct pcase *c, const char *name, unsigned int line)
{
	for (size_t i = 0; i < c->n_nodes; i++) {
		if (strcmp(c->nodes[i].name, name) == 0) {
			return c->nodes[i].id;
		}
	}
	ck_abort_msg("%s:%u: unknown node '%s'", c->path, line, name);
	return 0;
}

static const char *node_name(struct pcase *c, uint32_t id)
{
	for (size_t i = 0; i < c->n_nodes; i++) {
		if (c->nodes[i].id == id) {
			return c->nodes[i].name;
		}
	}
	return "-";
}

static struct vmc_place_group *group_named(struct pcase *c, const char *name, unsigned int line)
{
	for (size_t i = 0; i < c->n_groups; i++) {
		if (strcmp(c->groups[i].def->name, name) == 0) {
			return &c->groups[i];
		}
	}
	ck_abort_msg("%s:%u: unknown vm '%s'", c->path, line, name);
	return NULL;
}

/* "a,b" -> "\"a\",\"b\"" */
static void json_list(const char *csv, char *out, size_t len)
{
	char copy[256], *save = NULL;
	size_t used = 0;

	snprintf(copy, sizeof(copy), "%s", csv);
	out[0] = '\0';
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		used += (size_t)snprintf(out + used, len - used, "%s\"%s\"", used ? "," : "", t);
	}
}

static void parse_node(struct pcase *c, char *rest, unsigned int line)
{
	struct vmc_place_node *n = &c->nodes[c->n_nodes];
	char *save = NULL;
	char *name = strtok_r(rest, " \t", &save);
	char *id = strtok_r(NULL, " \t", &save);

	ck_assert_msg(name && id && c->n_nodes < MAX_NODES, "%s:%u: node NAME ID ...", c->path, line);
	snprintf(c->node_names[c->n_nodes], sizeof(c->node_names[0]), "%s", name);
	n->name = c->node_names[c->n_nodes];
	n->id = (uint32_t)atoi(id);
	n->up = true;
	n->active = true;
	n->mem_mib = 4096;
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (strncmp(t, "mem=", 4) == 0) {
			n->mem_mib = (uint32_t)atoi(t + 4);
		} else if (strcmp(t, "down") == 0) {
			n->up = false;
		} else if (strcmp(t, "paused") == 0 || strcmp(t, "draining") == 0) {
			n->active = false;
		} else if (strncmp(t, "failing=", 8) == 0) {
			n->bad_volumes |= volume_bits(c, t + 8);
		} else {
			ck_abort_msg("%s:%u: unknown node attribute '%s'", c->path, line, t);
		}
	}
	c->n_nodes++;
}

static void parse_vm(struct pcase *c, char *rest, unsigned int line)
{
	struct vmc_place_group *g = &c->groups[c->n_groups];
	char json[2048], pref[256] = "", poss[256] = "", anti[256] = "", prio[32] = "medium";
	char err[256], *save = NULL, *name = strtok_r(rest, " \t", &save);
	const char *manager = "vmcluster";
	unsigned int mem = 256;

	ck_assert_msg(name && c->n_groups < MAX_VMS, "%s:%u: vm NAME ...", c->path, line);
	g->wanted = true;
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (strncmp(t, "mem=", 4) == 0) {
			mem = (unsigned int)atoi(t + 4);
		} else if (strncmp(t, "prio=", 5) == 0) {
			snprintf(prio, sizeof(prio), "%s", t + 5);
		} else if (strncmp(t, "owner=", 6) == 0) {
			g->owner = node_id(c, t + 6, line);
		} else if (strncmp(t, "preferred=", 10) == 0) {
			json_list(t + 10, pref, sizeof(pref));
		} else if (strncmp(t, "possible=", 9) == 0) {
			json_list(t + 9, poss, sizeof(poss));
		} else if (strncmp(t, "anti=", 5) == 0) {
			json_list(t + 5, anti, sizeof(anti));
		} else if (strcmp(t, "stopped") == 0) {
			g->wanted = false;
		} else if (strcmp(t, "pacemaker") == 0) {
			manager = "pacemaker";
		} else if (strncmp(t, "on=", 3) == 0) {
			g->volumes |= volume_bits(c, t + 3);
		} else {
			ck_abort_msg("%s:%u: unknown vm attribute '%s'", c->path, line, t);
		}
	}
	snprintf(json, sizeof(json),
		 "{\"name\":\"%s\",\"memory_mib\":%u,\"boot\":{\"kernel\":\"/k\"},\"priority\":\"%s\","
		 "\"preferred_owners\":[%s],\"possible_owners\":[%s],\"anti_affinity\":[%s],\"manager\":\"%s\"}",
		 name, mem, prio, pref, poss, anti, manager);
	ck_assert_msg(vmc_group_def_from_string(json, (struct vmc_group_def **)&g->def, err, sizeof(err)) == 0,
		      "%s:%u: %s", c->path, line, err);
	c->n_groups++;
}

static void run_lost(struct pcase *c, char *rest, unsigned int line)
{
	uint32_t lost[MAX_NODES];
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(rest, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		lost[n++] = node_id(c, t, line);
	}
	struct vmc_place_view v = { c->nodes, c->n_nodes, c->groups, c->n_groups };
	c->n_got = vmc_plan_recovery(&v, lost, n, c->got);
	c->evaluated = true;
}

static void run_place(struct pcase *c, char *rest, unsigned int line)
{
	char *save = NULL, *name = strtok_r(rest, " \t", &save), *opt = strtok_r(NULL, " \t", &save);
	uint32_t exclude = 0;
	struct vmc_place_decision *d = &c->got[0];

	if (opt != NULL && strncmp(opt, "exclude=", 8) == 0) {
		exclude = node_id(c, opt + 8, line);
	}
	struct vmc_place_view v = { c->nodes, c->n_nodes, c->groups, c->n_groups };
	memset(d, 0, sizeof(*d));
	d->group = group_named(c, name, line);
	d->verdict = vmc_place_group(&v, d->group, exclude, &d->node, d->why, sizeof(d->why));
	c->n_got = 1;
	c->evaluated = true;
}

static void check_expect(struct pcase *c, char *rest, unsigned int line)
{
	char *save = NULL, *vm = strtok_r(rest, " \t", &save), *verdict = strtok_r(NULL, " \t", &save);
	char *node = strtok_r(NULL, " \t", &save);
	size_t k = c->n_expect_checked++;

	ck_assert_msg(c->evaluated, "%s:%u: expect before lost/place", c->path, line);
	ck_assert_msg(vm && verdict, "%s:%u: expect VM start NODE | no-node | leave", c->path, line);
	ck_assert_msg(k < c->n_got, "%s:%u: expected a decision for %s, got only %zu decisions", c->path,
		      line, vm, c->n_got);
	const struct vmc_place_decision *d = &c->got[k];
	ck_assert_msg(strcmp(d->group->def->name, vm) == 0,
		      "%s:%u: decision %zu is for %s, expected %s (recovery order)", c->path, line, k + 1,
		      d->group->def->name, vm);
	ck_assert_msg(strcmp(vmc_place_verdict_to_str(d->verdict), verdict) == 0,
		      "%s:%u: %s: got %s %s (%s), expected %s", c->path, line, vm,
		      vmc_place_verdict_to_str(d->verdict), node_name(c, d->node), d->why, verdict);
	if (d->verdict == VMC_PLACE_START) {
		ck_assert_msg(node && strcmp(node_name(c, d->node), node) == 0,
			      "%s:%u: %s: started on %s (%s), expected %s", c->path, line, vm,
			      node_name(c, d->node), d->why, node ? node : "?");
	}
}

static void case_run(const char *path)
{
	static struct pcase c;
	char text[256];
	unsigned int line = 0;
	FILE *f = fopen(path, "r");

	ck_assert_msg(f != NULL, "cannot open %s", path);
	memset(&c, 0, sizeof(c));
	snprintf(c.path, sizeof(c.path), "%s", strrchr(path, '/') + 1);
	while (fgets(text, sizeof(text), f) != NULL) {
		char *p = text, *word, *rest;
		line++;
		text[strcspn(text, "\r\n")] = '\0';
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		if (*p == '#' || *p == '\0') {
			continue;
		}
		word = p;
		rest = p + strcspn(p, " \t");
		if (*rest != '\0') {
			*rest++ = '\0';
		}
		if (strcmp(word, "node") == 0) {
			parse_node(&c, rest, line);
		} else if (strcmp(word, "vm") == 0) {
			parse_vm(&c, rest, line);
		} else if (strcmp(word, "lost") == 0) {
			run_lost(&c, rest, line);
		} else if (strcmp(word, "place") == 0) {
			run_place(&c, rest, line);
		} else if (strcmp(word, "expect") == 0) {
			check_expect(&c, rest, line);
		} else {
			ck_abort_msg("%s:%u: unknown line '%s'", c.path, line, word);
		}
	}
	fclose(f);
	ck_assert_msg(c.n_expect_checked > 0, "%s: no expect lines", c.path);
	ck_assert_msg(c.n_expect_checked == c.n_got, "%s: %zu decisions, but %zu expect lines", c.path,
		      c.n_got, c.n_expect_checked);
	for (size_t i = 0; i < c.n_groups; i++) {
		vmc_group_def_free((struct vmc_group_def *)c.groups[i].def);
	}
}

START_TEST(test_placement_case)
{
	case_run(case_paths[_i]);
}
END_TEST

START_TEST(test_enough_cases)
{
	ck_assert_uint_ge(n_cases, 8);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void cases_find(void)
{
	DIR *dir = opendir(CASE_DIR);
	struct dirent *e;

	while (dir != NULL && (e = readdir(dir)) != NULL && n_cases < MAX_CASES) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".case") == 0) {
			snprintf(case_paths[n_cases++], sizeof(case_paths[0]), "%s/%s", CASE_DIR, e->d_name);
		}
	}
	if (dir != NULL) {
		closedir(dir);
	}
	qsort(case_paths, n_cases, sizeof(case_paths[0]), cmp_str);
}

int main(void)
{
	Suite *s = suite_create("placement");
	TCase *tc = tcase_create("golden");

	cases_find();
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_enough_cases);
	tcase_add_loop_test(tc, test_placement_case, 0, (int)n_cases);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
