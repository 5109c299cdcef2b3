/*
 * Golden outputs of the read views (lib/views.h), like pacemaker's
 * cts/cli: each tests/views/NAME.case describes what a daemon knows
 * (case_file.h has the shared lines) and which view to render; the JSON
 * it gives must equal tests/views/NAME.json. VMC_VIEWS_WRITE=1 writes
 * the .json files instead (then read them before committing them).
 *
 *   view node1,node2,node3       (the CPG view; default: the active members)
 *   corosync node1,node2         (default: the view)
 *   quorate yes|no               (default yes)
 *   phase hello|state|done       (default done)
 *   now S                        (wall clock, seconds)
 *   stale S                      (this copy may lag since S, wall clock; default current)
 *   wait KIND [node=N] [vm=V] [method=M] [attempt=A] [fencer=N] [age=MS] [left=MS] [detail=TEXT_WITH_UNDERSCORES]
 *   render status | nodes | vms | show VM
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case_file.h"
#include "json_util.h"
#include "views.h"
#include "check_run.h"

#define CASE_DIR TEST_DATA_DIR "/../../views"

struct vcase {
	struct case_base b;
	uint32_t view[CASE_NODES_MAX];
	size_t n_view;
	bool view_set;
	uint32_t cs[CASE_NODES_MAX];
	size_t n_cs;
	bool cs_set;
	bool quorate;
	char phase[16];
	uint64_t now_s;
	uint64_t stale_s;
	struct vmc_wait waits[16];
	size_t n_waits;
	char render[16];
	char show[64];
};

static char case_paths[CASE_FILES_MAX][512];
static size_t n_cases;

static void parse_wait(struct vcase *c, char *save)
{
	struct vmc_wait *w = &c->waits[c->n_waits];
	char *kind = strtok_r(NULL, " \t", &save);
	const char *v;

	if (kind == NULL || c->n_waits == 16) {
		case_fail(&c->b, "wait KIND [key=value...]");
	}
	memset(w, 0, sizeof(*w));
	snprintf(w->kind, sizeof(w->kind), "%s", kind);
	w->age_ms = w->left_ms = -1;
	for (char *t = strtok_r(NULL, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if ((v = case_kv(t, "node")) != NULL) {
			w->node = case_node_id(&c->b, v);
		} else if ((v = case_kv(t, "fencer")) != NULL) {
			w->fencer = case_node_id(&c->b, v);
		} else if ((v = case_kv(t, "vm")) != NULL) {
			snprintf(w->vm, sizeof(w->vm), "%s", v);
		} else if ((v = case_kv(t, "method")) != NULL) {
			snprintf(w->method, sizeof(w->method), "%s", v);
		} else if ((v = case_kv(t, "attempt")) != NULL) {
			w->attempt = atoll(v);
		} else if ((v = case_kv(t, "age")) != NULL) {
			w->age_ms = atoll(v);
		} else if ((v = case_kv(t, "left")) != NULL) {
			w->left_ms = atoll(v);
		} else if ((v = case_kv(t, "detail")) != NULL) {
			snprintf(w->detail, sizeof(w->detail), "%s", v);
			for (char *p = w->detail; *p; p++) {
				*p = *p == '_' ? ' ' : *p;
			}
		} else {
			case_fail(&c->b, "unknown wait attribute '%s'", t);
		}
	}
	c->n_waits++;
}

static void parse_line(void *ctx, char *text)
{
	struct vcase *c = ctx;
	char *save = NULL, *kw = strtok_r(text, " \t", &save), *v;

	if (kw == NULL || kw[0] == '#' || case_parse_base(&c->b, kw, save)) {
		return;
	}
	if (strcmp(kw, "wait") == 0) {
		parse_wait(c, save);
		return;
	}
	v = strtok_r(NULL, " \t", &save);
	if (strcmp(kw, "view") == 0) {
		c->n_view = v ? case_node_list(&c->b, v, c->view, CASE_NODES_MAX) : 0;
		c->view_set = true;
	} else if (strcmp(kw, "corosync") == 0) {
		c->n_cs = v ? case_node_list(&c->b, v, c->cs, CASE_NODES_MAX) : 0;
		c->cs_set = true;
	} else if (strcmp(kw, "quorate") == 0) {
		c->quorate = v != NULL && strcmp(v, "yes") == 0;
	} else if (strcmp(kw, "phase") == 0) {
		snprintf(c->phase, sizeof(c->phase), "%s", v ? v : "");
	} else if (strcmp(kw, "now") == 0) {
		c->now_s = v ? strtoull(v, NULL, 10) : 0;
	} else if (strcmp(kw, "stale") == 0) {
		c->stale_s = v ? strtoull(v, NULL, 10) : 0;
	} else if (strcmp(kw, "render") == 0) {
		snprintf(c->render, sizeof(c->render), "%s", v ? v : "");
		v = strtok_r(NULL, " \t", &save);
		snprintf(c->show, sizeof(c->show), "%s", v ? v : "");
	} else {
		case_fail(&c->b, "unknown line '%s'", kw);
	}
}

static json_object *render(struct vcase *c, struct vmc_state *s)
{
	struct vmc_view_node nodes[CASE_NODES_MAX];
	char addrs[CASE_NODES_MAX][24];
	struct vmc_view_input in = {
		.state = s,
		.my_id = c->b.me,
		.cluster_name = "vmctest",
		.nodes = nodes,
		.n_nodes = c->b.n_nodes,
		.view = c->view_set ? c->view : c->b.members,
		.n_view = c->view_set ? c->n_view : c->b.n_members,
		.active = c->b.members,
		.n_active = c->b.n_members,
		.quorate = c->quorate,
		.accepting_changes = c->quorate && strcmp(c->phase, "done") == 0,
		.sync_phase = c->phase,
		.protocol = 2,
		.expected_votes = (uint32_t)c->b.n_nodes,
		.total_votes = (uint32_t)(c->cs_set ? c->n_cs : c->b.n_members),
		.digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		.warning = vmc_settings_warning(&s->settings),
		.waits = c->waits,
		.n_waits = c->n_waits,
		.now_s = c->now_s,
		.stale_since_s = c->stale_s,
	};

	in.corosync = c->cs_set ? c->cs : in.view;
	in.n_corosync = c->cs_set ? c->n_cs : in.n_view;
	for (size_t i = 0; i < c->b.n_nodes; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "198.51.100.%u", 10 + c->b.nodes[i].id);
		nodes[i] = (struct vmc_view_node){ c->b.nodes[i].id, c->b.nodes[i].name, addrs[i], 1 };
	}
	if (strcmp(c->render, "status") == 0) {
		return vmc_view_status(&in);
	}
	if (strcmp(c->render, "nodes") == 0) {
		return vmc_view_node_list(&in);
	}
	if (strcmp(c->render, "vms") == 0) {
		return vmc_view_vm_list(&in);
	}
	if (strcmp(c->render, "show") == 0 && vmc_state_group_find(s, c->show) != NULL) {
		return vmc_view_vm_show(&in, vmc_state_group_find(s, c->show));
	}
	case_fail(&c->b, "render status | nodes | vms | show VM (got '%s %s')", c->render, c->show);
	return NULL;
}

static json_object *golden_read(const char *path)
{
	FILE *f = fopen(path, "r");
	static char text[65536];
	size_t n;
	char err[128];

	ck_assert_msg(f != NULL, "no golden output %s (VMC_VIEWS_WRITE=1 writes it)", path);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	json_object *o = vmc_json_parse(text, err, sizeof(err));
	ck_assert_msg(o != NULL, "%s: %s", path, err);
	return o;
}

static void case_run(const char *path)
{
	static struct vcase c;
	struct vmc_state *s;
	json_object *got, *want;
	char golden[520];
	const char *text;

	memset(&c, 0, sizeof(c));
	c.quorate = true;
	snprintf(c.phase, sizeof(c.phase), "done");
	c.now_s = 1800000000;
	case_read(&c.b, path, parse_line, &c);
	s = case_state(&c.b);
	got = render(&c, s);
	snprintf(golden, sizeof(golden), "%.*s.json", (int)(strlen(path) - 5), path);
	text = json_object_to_json_string_ext(got, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
	if (getenv("VMC_VIEWS_WRITE") != NULL) {
		FILE *f = fopen(golden, "w");
		ck_assert_ptr_nonnull(f);
		fprintf(f, "%s\n", text);
		fclose(f);
	}
	want = golden_read(golden);
	ck_assert_msg(json_object_equal(got, want), "%s: the view differs from %s:\n%s", c.b.path, golden, text);
	json_object_put(got);
	json_object_put(want);
	vmc_state_free(s);
}

START_TEST(test_view_case)
{
	case_run(case_paths[_i]);
}
END_TEST

START_TEST(test_enough_cases)
{
	ck_assert_uint_ge(n_cases, 6);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("views");
	TCase *tc = tcase_create("golden");

	n_cases = case_files(CASE_DIR, case_paths, CASE_FILES_MAX);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_enough_cases);
	tcase_add_loop_test(tc, test_view_case, 0, (int)n_cases);
	suite_add_tcase(s, tc);
	return check_suite_run(s);
}
