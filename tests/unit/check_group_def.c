/*
 * Unit tests for VM group definitions: parsing and validation
 * (lib/group_def.c) and `clusterctl vm set` (lib/group_set.c).
 *
 * The broken definitions live in data/invalid/, one defect per file, with
 * data/invalid/EXPECTED naming, for each file, a substring its one-line
 * error must contain (the same files feed the cluster tests through
 * `clusterctl vm add FILE`, so they stay realistic definitions).
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_def.h"
#include "check_run.h"

#define TEST_TIMEOUT_S 30
#define ERR_LEN 1024
#define EXPECTED_MAX 128

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define VALID_DIR TEST_DATA_DIR "/valid"
#define INVALID_DIR TEST_DATA_DIR "/invalid"

/*
 * The canonical JSON of valid/minimal.json: every default spelled out,
 * '/' escaped as json-c writes it.
 */
static const char minimal_canonical[] =
	"{\"name\":\"web1\",\"memory_mib\":512,\"vcpus\":1,"
	"\"boot\":{\"kernel\":\"\\/var\\/lib\\/vmcluster\\/guest\\/vmlinuz\"},"
	"\"disks\":[],\"nics\":[],\"preferred_owners\":[],\"possible_owners\":[],"
	"\"anti_affinity\":[],\"priority\":\"medium\","
	"\"failover\":{\"max_failures\":3,\"period_s\":21600},"
	"\"failback\":\"never\",\"manager\":\"vmcluster\"}";

struct expected_refusal {
	char file[256];
	char substring[256];
};

/* Read once in main(), before the forks; one loop iteration per entry. */
static struct expected_refusal expected[EXPECTED_MAX];
static size_t n_expected;

/* Stands for "not written" in *out after a refusal. */
static struct vmc_group_def untouched_marker;
#define UNTOUCHED (&untouched_marker)

static char *file_read(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long len;

	ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	ck_assert_int_ge(len, 0);
	rewind(f);
	text = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)len, f), (size_t)len);
	text[len] = '\0';
	fclose(f);
	return text;
}

/* Parse a data file; returns the rc and leaves the error in err. */
static int def_from_file(const char *path, struct vmc_group_def **out, char *err, size_t errlen)
{
	char *text = file_read(path);
	int rc;

	err[0] = '\0';
	rc = vmc_group_def_from_string(text, out, err, errlen);
	free(text);
	return rc;
}

static struct vmc_group_def *def_load_valid(const char *file)
{
	char path[512];
	char err[ERR_LEN];
	struct vmc_group_def *def = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", VALID_DIR, file);
	rc = def_from_file(path, &def, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s refused (rc %d): %s", file, rc, err);
	ck_assert_ptr_nonnull(def);
	return def;
}

static struct vmc_group_def *def_parse(const char *text)
{
	char err[ERR_LEN];
	struct vmc_group_def *def = NULL;
	int rc = vmc_group_def_from_string(text, &def, err, sizeof(err));

	ck_assert_msg(rc == 0, "refused (rc %d): %s\n%s", rc, err, text);
	return def;
}

/* Canonical JSON text of def, malloc()ed. */
static char *def_canonical(const struct vmc_group_def *def)
{
	json_object *j = vmc_group_def_to_json(def);
	char *text;

	ck_assert_ptr_nonnull(j);
	text = strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	json_object_put(j);
	ck_assert_ptr_nonnull(text);
	return text;
}

static void assert_refusal(int rc, const char *err, const char *field_text, const char *what)
{
	ck_assert_msg(rc == -EINVAL, "%s: expected -EINVAL, got %d (%s)", what, rc, err);
	ck_assert_msg(err[0] != '\0', "%s: empty error string", what);
	ck_assert_msg(strchr(err, '\n') == NULL, "%s: error is not one line: '%s'", what, err);
	ck_assert_msg(strstr(err, field_text) != NULL, "%s: error '%s' does not contain \"%s\"",
		      what, err, field_text);
}

/* ---- valid definitions ---- */

START_TEST(test_minimal_parses_with_defaults)
{
	struct vmc_group_def *def = def_load_valid("minimal.json");

	ck_assert_str_eq(def->name, "web1");
	ck_assert_uint_eq(def->memory_mib, 512);
	ck_assert(def->has_boot);
	ck_assert_str_eq(def->kernel, "/var/lib/vmcluster/guest/vmlinuz");
	ck_assert_ptr_null(def->initrd);
	ck_assert_ptr_null(def->cmdline);
	ck_assert_uint_eq(def->vcpus, 1);
	ck_assert_int_eq(def->priority, VMC_PRIORITY_MEDIUM);
	ck_assert_uint_eq(def->failover_max_failures, 3);
	ck_assert_uint_eq(def->failover_period_s, 21600);
	ck_assert_int_eq(def->failback, VMC_FAILBACK_NEVER);
	ck_assert_int_eq(def->manager, VMC_MANAGER_VMCLUSTER);
	ck_assert_uint_eq(def->n_disks, 0);
	ck_assert_uint_eq(def->n_nics, 0);
	ck_assert_uint_eq(def->preferred_owners.n, 0);
	ck_assert_uint_eq(def->possible_owners.n, 0);
	ck_assert_uint_eq(def->anti_affinity.n, 0);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_minimal_canonical_json_is_golden)
{
	struct vmc_group_def *def = def_load_valid("minimal.json");
	char *text = def_canonical(def);

	ck_assert_str_eq(text, minimal_canonical);
	free(text);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_full_parses_every_field)
{
	struct vmc_group_def *def = def_load_valid("full.json");
	char fb[32];

	ck_assert_str_eq(def->name, "db-primary.prod_1");
	ck_assert_uint_eq(def->memory_mib, 4096);
	ck_assert_uint_eq(def->vcpus, 4);
	ck_assert(def->has_boot);
	ck_assert_str_eq(def->kernel, "/var/lib/vmcluster/guest/vmlinuz");
	ck_assert_str_eq(def->initrd, "/var/lib/vmcluster/guest/initrd.img");
	ck_assert_str_eq(def->cmdline, "console=ttyS0 root=/dev/vda rw");

	ck_assert_uint_eq(def->n_disks, 3);
	ck_assert_str_eq(def->disks[0].path, "/srv/csv1/db-primary/root.qcow2");
	ck_assert_str_eq(def->disks[0].format, "qcow2");
	ck_assert_str_eq(def->disks[1].path, "/srv/csv1/db-primary/data.img");
	ck_assert_str_eq(def->disks[1].format, "raw");
	ck_assert_str_eq(def->disks[2].path, "/srv/csv1/db-primary/scratch.img");
	ck_assert_str_eq(def->disks[2].format, "raw"); /* the default format */

	ck_assert_uint_eq(def->n_nics, 2);
	ck_assert_str_eq(def->nics[0].bridge, "br0");
	ck_assert_str_eq(def->nics[0].mac, "52:54:00:12:34:56");
	ck_assert_str_eq(def->nics[1].bridge, "br-storage");
	ck_assert_ptr_null(def->nics[1].mac);

	/* preferred_owners keeps the operator's order: it is a ranking */
	ck_assert_uint_eq(def->preferred_owners.n, 2);
	ck_assert_str_eq(def->preferred_owners.v[0], "node2");
	ck_assert_str_eq(def->preferred_owners.v[1], "node1");
	ck_assert_uint_eq(def->possible_owners.n, 3);
	ck_assert(vmc_strlist_contains(&def->possible_owners, "node3"));
	ck_assert_uint_eq(def->anti_affinity.n, 2);
	ck_assert_str_eq(def->anti_affinity.v[0], "db");
	ck_assert_str_eq(def->anti_affinity.v[1], "prod");

	ck_assert_int_eq(def->priority, VMC_PRIORITY_HIGH);
	ck_assert_uint_eq(def->failover_max_failures, 5);
	ck_assert_uint_eq(def->failover_period_s, 3600);
	ck_assert_int_eq(def->failback, VMC_FAILBACK_WINDOW);
	ck_assert_uint_eq(def->failback_start_min, 60);
	ck_assert_uint_eq(def->failback_end_min, 300);
	ck_assert_str_eq(vmc_failback_to_str(def, fb, sizeof(fb)), "window 01-05");
	ck_assert_int_eq(def->manager, VMC_MANAGER_PACEMAKER);
	vmc_group_def_free(def);
}
END_TEST

/* A window may give minutes; it prints back as it was given, hours alone when it has none. */
START_TEST(test_failback_window_with_minutes)
{
	struct vmc_group_def *def = NULL;
	char err[256], fb[32];

	ck_assert_int_eq(vmc_group_def_from_string("{\"name\":\"w\",\"memory_mib\":64,\"boot\":{\"kernel\":\"/k\"},"
						   "\"failback\":\"window 22:30-04\"}", &def, err, sizeof(err)), 0);
	ck_assert_uint_eq(def->failback_start_min, 22 * 60 + 30);
	ck_assert_uint_eq(def->failback_end_min, 4 * 60);
	ck_assert_str_eq(vmc_failback_to_str(def, fb, sizeof(fb)), "window 22:30-04:00");
	vmc_group_def_free(def);
}
END_TEST

static const char *const valid_files[] = { "minimal.json", "full.json" };

START_TEST(test_valid_canonical_json_round_trips)
{
	struct vmc_group_def *def = def_load_valid(valid_files[_i]);
	struct vmc_group_def *again;
	char *first = def_canonical(def);
	char *second;

	again = def_parse(first);
	second = def_canonical(again);
	ck_assert_str_eq(second, first);
	free(first);
	free(second);
	vmc_group_def_free(again);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_valid_copy_has_equal_canonical_json)
{
	struct vmc_group_def *def = def_load_valid(valid_files[_i]);
	struct vmc_group_def *copy = vmc_group_def_copy(def);
	char *a, *b;

	ck_assert_ptr_nonnull(copy);
	ck_assert_ptr_ne(copy, def);
	ck_assert_ptr_ne(copy->name, def->name);
	a = def_canonical(def);
	b = def_canonical(copy);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	vmc_group_def_free(copy);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_disk_only_definition_needs_no_boot)
{
	struct vmc_group_def *def = def_parse(
		"{\"name\":\"db1\",\"memory_mib\":1024,"
		"\"disks\":[{\"path\":\"/srv/csv1/db1/root.qcow2\",\"format\":\"qcow2\"}]}");
	char *text;

	ck_assert(!def->has_boot);
	ck_assert_ptr_null(def->kernel);
	text = def_canonical(def);
	ck_assert_ptr_null(strstr(text, "\"boot\""));
	free(text);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_limits_are_inclusive)
{
	struct vmc_group_def *def = def_parse(
		"{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk\","
		"\"memory_mib\":16,\"vcpus\":256,\"boot\":{\"kernel\":\"/k\"},"
		"\"nics\":[{\"bridge\":\"abcdefghijklmno\"}],"
		"\"failover\":{\"max_failures\":0,\"period_s\":604800},"
		"\"failback\":\"window 23-00\"}");

	ck_assert_uint_eq(strlen(def->name), VMC_NAME_MAX);
	ck_assert_uint_eq(def->memory_mib, VMC_MEMORY_MIB_MIN);
	ck_assert_uint_eq(def->vcpus, VMC_VCPUS_MAX);
	ck_assert_uint_eq(def->failover_max_failures, 0);
	ck_assert_uint_eq(def->failover_period_s, VMC_FAILOVER_PERIOD_S_MAX);
	ck_assert_uint_eq(def->failback_start_min, 23 * 60);
	ck_assert_uint_eq(def->failback_end_min, 0);
	vmc_group_def_free(def);

	def = def_parse("{\"name\":\"big\",\"memory_mib\":1048576,\"boot\":{\"kernel\":\"/k\"}}");
	ck_assert_uint_eq(def->memory_mib, VMC_MEMORY_MIB_MAX);
	vmc_group_def_free(def);
}
END_TEST

/* One past each limit; test_limits_are_inclusive has the limits themselves. */
static const struct {
	const char *json;
	const char *field_text;
} beyond_limits[] = {
	{ "{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl\","
	  "\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"}}",
	  "field 'name'" },
	{ "{\"name\":\"web1\",\"memory_mib\":15,\"boot\":{\"kernel\":\"/k\"}}",
	  "field 'memory_mib'" },
	{ "{\"name\":\"web1\",\"memory_mib\":1048577,\"boot\":{\"kernel\":\"/k\"}}",
	  "field 'memory_mib'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"vcpus\":257,\"boot\":{\"kernel\":\"/k\"}}",
	  "field 'vcpus'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"nics\":[{\"bridge\":\"abcdefghijklmnop\"}]}",
	  "field 'nics[0].bridge'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"failover\":{\"max_failures\":1001}}",
	  "field 'failover.max_failures'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"failover\":{\"period_s\":604801}}",
	  "field 'failover.period_s'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"failback\":\"window 24-03\"}",
	  "field 'failback'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"failback\":\"window 03-24\"}",
	  "field 'failback'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"failback\":\"window 3-4\"}",
	  "field 'failback'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"failback\":\"window 03:60-04\"}",
	  "field 'failback'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"failback\":\"window 03:5-04\"}",
	  "field 'failback'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"failback\":\"window 03:30-03:30\"}",
	  "field 'failback'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"failback\":\"window 03:30-04:00x\"}",
	  "field 'failback'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"nics\":[{\"bridge\":\"br0\",\"mac\":\"00:00:00:00:00:00\"}]}",
	  "field 'nics[0].mac'" },
};

START_TEST(test_just_beyond_limits_is_refused)
{
	struct vmc_group_def *def = UNTOUCHED;
	char err[ERR_LEN] = "";
	int rc = vmc_group_def_from_string(beyond_limits[_i].json, &def, err, sizeof(err));

	assert_refusal(rc, err, beyond_limits[_i].field_text, beyond_limits[_i].json);
	ck_assert_ptr_eq(def, UNTOUCHED);
}
END_TEST

START_TEST(test_valid_name_rules)
{
	ck_assert(vmc_valid_name("web1"));
	ck_assert(vmc_valid_name("1web"));
	ck_assert(vmc_valid_name("a.b-c_d"));
	ck_assert(!vmc_valid_name(""));
	ck_assert(!vmc_valid_name("-web"));
	ck_assert(!vmc_valid_name(".web"));
	ck_assert(!vmc_valid_name("web 1"));
	ck_assert(!vmc_valid_name("web/1"));
	ck_assert(!vmc_valid_name("wéb"));
}
END_TEST

/* ---- invalid definitions (data/invalid) ---- */

static void expected_load(void)
{
	FILE *f = fopen(INVALID_DIR "/EXPECTED", "r");
	char line[sizeof(expected[0].file)];

	if (f == NULL) {
		fprintf(stderr, "cannot open %s/EXPECTED: %s\n", INVALID_DIR, strerror(errno));
		exit(EXIT_FAILURE);
	}
	while (fgets(line, sizeof(line), f) != NULL && n_expected < EXPECTED_MAX) {
		char *tab = strchr(line, '\t');
		char *nl = strchr(line, '\n');

		if (nl != NULL) {
			*nl = '\0';
		}
		if (line[0] == '\0' || tab == NULL) {
			continue;
		}
		*tab = '\0';
		snprintf(expected[n_expected].file, sizeof(expected[0].file), "%s", line);
		snprintf(expected[n_expected].substring, sizeof(expected[0].substring), "%s", tab + 1);
		n_expected++;
	}
	fclose(f);
}

static const struct expected_refusal *expected_find(const char *file)
{
	for (size_t i = 0; i < n_expected; i++) {
		if (strcmp(expected[i].file, file) == 0) {
			return &expected[i];
		}
	}
	return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

START_TEST(test_invalid_dir_matches_expected)
{
	DIR *dir = opendir(INVALID_DIR);
	struct dirent *de;
	size_t n_files = 0;

	ck_assert_msg(dir != NULL, "cannot open %s", INVALID_DIR);
	ck_assert_uint_ge(n_expected, 20);
	while ((de = readdir(dir)) != NULL) {
		if (!ends_with(de->d_name, ".json")) {
			continue;
		}
		n_files++;
		ck_assert_msg(expected_find(de->d_name) != NULL, "%s has no line in EXPECTED",
			      de->d_name);
	}
	closedir(dir);
	for (size_t i = 0; i < n_expected; i++) {
		ck_assert_msg(ends_with(expected[i].file, ".json"), "EXPECTED line %zu: '%s'", i + 1,
			      expected[i].file);
		ck_assert_msg(expected[i].substring[0] != '\0', "EXPECTED: %s has no substring",
			      expected[i].file);
		ck_assert_msg(expected_find(expected[i].file) == &expected[i],
			      "EXPECTED lists %s twice", expected[i].file);
	}
	ck_assert_uint_eq(n_files, n_expected);
}
END_TEST

START_TEST(test_invalid_file_is_refused_naming_the_field)
{
	const struct expected_refusal *x = &expected[_i];
	struct vmc_group_def *def = UNTOUCHED;
	char path[512];
	char err[ERR_LEN];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", INVALID_DIR, x->file);
	rc = def_from_file(path, &def, err, sizeof(err));
	assert_refusal(rc, err, x->substring, x->file);
	ck_assert_msg(def == UNTOUCHED, "%s: *out written on refusal", x->file);
}
END_TEST

START_TEST(test_refusal_with_tiny_error_buffer_is_safe)
{
	struct vmc_group_def *def = UNTOUCHED;
	char err[8];
	int rc;

	memset(err, 'x', sizeof(err));
	rc = vmc_group_def_from_string("{\"name\":\"web1\",\"memory_mib\":512,\"vcpus\":0,"
				       "\"boot\":{\"kernel\":\"/k\"}}",
				       &def, err, sizeof(err));
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_ptr_eq(def, UNTOUCHED);
	ck_assert_ptr_nonnull(memchr(err, '\0', sizeof(err)));
	ck_assert_str_eq(err, "field '");
}
END_TEST

START_TEST(test_nul_inside_string_is_refused)
{
	struct vmc_group_def *def = UNTOUCHED;
	char err[ERR_LEN];
	int rc;

	rc = vmc_group_def_from_string("{\"name\":\"web1\",\"memory_mib\":512,"
				       "\"boot\":{\"kernel\":\"/k\\u0000/x\"}}",
				       &def, err, sizeof(err));
	assert_refusal(rc, err, "field 'boot.kernel'", "NUL in boot.kernel");
	ck_assert_ptr_eq(def, UNTOUCHED);
}
END_TEST

#define MINIMAL_DEF "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"}}"

/* Text after the definition: once silently dropped (a second VM lost). */
static const char *const after_definition[] = {
	" {\"name\":\"web2\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"}}",
	"x",
	"}",
	",",
	"\n\n[]",
};

START_TEST(test_text_after_the_definition_is_refused)
{
	struct vmc_group_def *def = UNTOUCHED;
	char err[ERR_LEN] = "";
	char *text = NULL;
	int rc;

	ck_assert_int_gt(asprintf(&text, "%s%s", MINIMAL_DEF, after_definition[_i]), 0);
	rc = vmc_group_def_from_string(text, &def, err, sizeof(err));
	assert_refusal(rc, err, "JSON", text);
	ck_assert_ptr_eq(def, UNTOUCHED);
	free(text);
}
END_TEST

START_TEST(test_white_space_after_the_definition_is_fine)
{
	struct vmc_group_def *def = def_parse(MINIMAL_DEF " \n\t\r\n");

	ck_assert_str_eq(def->name, "web1");
	vmc_group_def_free(def);
}
END_TEST

/* A file holding only null: the reason must say null, not "success". */
static const char *const null_texts[] = { "null", "null\n", " null" };

START_TEST(test_json_null_is_refused_saying_null)
{
	struct vmc_group_def *def = UNTOUCHED;
	char err[ERR_LEN] = "";
	int rc = vmc_group_def_from_string(null_texts[_i], &def, err, sizeof(err));

	assert_refusal(rc, err, "null", null_texts[_i]);
	ck_assert_msg(strstr(err, "success") == NULL, "reason '%s'", err);
	ck_assert_ptr_eq(def, UNTOUCHED);
}
END_TEST

/* A NUL inside a name would let "web1\0-evil" pass as "web1". */
static const struct {
	const char *json;
	const char *field_text;
} nul_in_names[] = {
	{ "{\"name\":\"web1\\u0000-evil\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"}}",
	  "field 'name'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"possible_owners\":[\"node1\\u0000x\"]}",
	  "field 'possible_owners'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"preferred_owners\":[\"node1\\u0000\"]}",
	  "field 'preferred_owners'" },
	{ "{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	  "\"anti_affinity\":[\"db\",\"web\\u0000db\"]}",
	  "field 'anti_affinity'" },
};

START_TEST(test_nul_inside_a_name_is_refused)
{
	struct vmc_group_def *def = UNTOUCHED;
	char err[ERR_LEN] = "";
	int rc = vmc_group_def_from_string(nul_in_names[_i].json, &def, err, sizeof(err));

	assert_refusal(rc, err, nul_in_names[_i].field_text, nul_in_names[_i].json);
	ck_assert_ptr_eq(def, UNTOUCHED);
}
END_TEST

/* Two NICs of one VM with one MAC: the second is named. */
static const char *const duplicate_macs[] = {
	"{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	"\"nics\":[{\"bridge\":\"br0\",\"mac\":\"52:54:00:12:34:56\"},"
	"{\"bridge\":\"br1\",\"mac\":\"52:54:00:12:34:56\"}]}",
	/* MAC addresses ignore case */
	"{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	"\"nics\":[{\"bridge\":\"br0\",\"mac\":\"52:54:00:ab:cd:ef\"},"
	"{\"bridge\":\"br1\",\"mac\":\"52:54:00:AB:CD:EF\"}]}",
	/* a NIC without a MAC between them changes nothing */
	"{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
	"\"nics\":[{\"bridge\":\"br0\",\"mac\":\"52:54:00:12:34:56\"},{\"bridge\":\"br2\"},"
	"{\"bridge\":\"br1\",\"mac\":\"52:54:00:12:34:56\"}]}",
};

START_TEST(test_duplicate_mac_in_one_definition_is_refused)
{
	struct vmc_group_def *def = UNTOUCHED;
	char err[ERR_LEN] = "";
	int rc = vmc_group_def_from_string(duplicate_macs[_i], &def, err, sizeof(err));

	assert_refusal(rc, err, _i == 2 ? "field 'nics[2].mac'" : "field 'nics[1].mac'",
		       duplicate_macs[_i]);
	ck_assert_ptr_eq(def, UNTOUCHED);
}
END_TEST

START_TEST(test_nics_without_mac_are_not_duplicates)
{
	struct vmc_group_def *def = def_parse(
		"{\"name\":\"web1\",\"memory_mib\":512,\"boot\":{\"kernel\":\"/k\"},"
		"\"nics\":[{\"bridge\":\"br0\"},{\"bridge\":\"br1\"},"
		"{\"bridge\":\"br2\",\"mac\":\"52:54:00:12:34:56\"}]}");

	ck_assert_uint_eq(def->n_nics, 3);
	ck_assert_ptr_null(def->nics[0].mac);
	ck_assert_ptr_null(def->nics[1].mac);
	vmc_group_def_free(def);
}
END_TEST

/* ---- vm set ---- */

static int def_set(const struct vmc_group_def *def, const char *const *assignments, size_t n,
		   struct vmc_group_def **out, char *err)
{
	err[0] = '\0';
	return vmc_group_def_set(def, assignments, n, out, err, ERR_LEN);
}

/* Apply the assignments, which must succeed. */
static struct vmc_group_def *def_set_ok(const struct vmc_group_def *def,
					const char *const *assignments, size_t n)
{
	struct vmc_group_def *out = NULL;
	char err[ERR_LEN];
	int rc = def_set(def, assignments, n, &out, err);

	ck_assert_msg(rc == 0, "set %s refused (rc %d): %s", assignments[0], rc, err);
	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_ne(out, def);
	return out;
}

START_TEST(test_set_integer_keys)
{
	static const char *const set[] = { "memory_mib=2048", "vcpus=8",
					   "failover.max_failures=0", "failover.period_s=60" };
	struct vmc_group_def *def = def_load_valid("minimal.json");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));

	ck_assert_uint_eq(out->memory_mib, 2048);
	ck_assert_uint_eq(out->vcpus, 8);
	ck_assert_uint_eq(out->failover_max_failures, 0);
	ck_assert_uint_eq(out->failover_period_s, 60);
	ck_assert_str_eq(out->name, "web1");
	ck_assert_str_eq(out->kernel, def->kernel);
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_string_keys)
{
	static const char *const set[] = { "priority=no-auto-start", "failback=window 22-06",
					   "manager=pacemaker", "boot.kernel=/boot/vmlinuz-6.1" };
	struct vmc_group_def *def = def_load_valid("minimal.json");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));

	ck_assert_int_eq(out->priority, VMC_PRIORITY_NO_AUTO_START);
	ck_assert_int_eq(out->failback, VMC_FAILBACK_WINDOW);
	ck_assert_uint_eq(out->failback_start_min, 22 * 60);
	ck_assert_uint_eq(out->failback_end_min, 6 * 60);
	ck_assert_int_eq(out->manager, VMC_MANAGER_PACEMAKER);
	ck_assert_str_eq(out->kernel, "/boot/vmlinuz-6.1");
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_list_keys)
{
	static const char *const set[] = { "possible_owners=node1,node2,node3",
					   "preferred_owners=node3,node1", "anti_affinity=web" };
	static const char *const clear[] = { "anti_affinity=", "preferred_owners=" };
	struct vmc_group_def *def = def_load_valid("minimal.json");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));
	struct vmc_group_def *cleared;

	ck_assert_uint_eq(out->possible_owners.n, 3);
	ck_assert_str_eq(out->possible_owners.v[2], "node3");
	ck_assert_uint_eq(out->preferred_owners.n, 2);
	ck_assert_str_eq(out->preferred_owners.v[0], "node3");
	ck_assert_str_eq(out->preferred_owners.v[1], "node1");
	ck_assert_uint_eq(out->anti_affinity.n, 1);
	ck_assert_str_eq(out->anti_affinity.v[0], "web");

	/* an empty list value empties the list */
	cleared = def_set_ok(out, clear, ARRAY_LEN(clear));
	ck_assert_uint_eq(cleared->anti_affinity.n, 0);
	ck_assert_uint_eq(cleared->preferred_owners.n, 0);
	ck_assert_uint_eq(cleared->possible_owners.n, 3);
	vmc_group_def_free(cleared);
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_optional_string_keys)
{
	static const char *const set[] = { "boot.initrd=/var/lib/vmcluster/guest/initrd-2.img",
					   "boot.cmdline=console=ttyS0 quiet" };
	struct vmc_group_def *def = def_load_valid("minimal.json");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));

	ck_assert_str_eq(out->initrd, "/var/lib/vmcluster/guest/initrd-2.img");
	/* only the first '=' separates key and value */
	ck_assert_str_eq(out->cmdline, "console=ttyS0 quiet");
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_empty_value_removes_initrd)
{
	static const char *const set[] = { "boot.initrd=" };
	static const char *const set_cmdline[] = { "boot.cmdline=" };
	struct vmc_group_def *def = def_load_valid("full.json");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));
	struct vmc_group_def *out2;
	char *text = def_canonical(out);

	ck_assert_ptr_nonnull(def->initrd);
	ck_assert_ptr_null(out->initrd);
	ck_assert_ptr_null(strstr(text, "initrd"));
	ck_assert_str_eq(out->kernel, def->kernel);
	ck_assert_str_eq(out->cmdline, def->cmdline);

	out2 = def_set_ok(out, set_cmdline, ARRAY_LEN(set_cmdline));
	ck_assert_ptr_null(out2->cmdline);
	ck_assert_str_eq(out2->kernel, def->kernel);
	free(text);
	vmc_group_def_free(out2);
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_json_keys)
{
	static const char *const set[] = {
		"disks=[{\"path\":\"/srv/csv2/web1/root.img\"}]",
		"nics=[{\"bridge\":\"br1\",\"mac\":\"52:54:00:aa:bb:cc\"}]",
	};
	struct vmc_group_def *def = def_load_valid("full.json");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));

	ck_assert_uint_eq(out->n_disks, 1);
	ck_assert_str_eq(out->disks[0].path, "/srv/csv2/web1/root.img");
	ck_assert_str_eq(out->disks[0].format, "raw");
	ck_assert_uint_eq(out->n_nics, 1);
	ck_assert_str_eq(out->nics[0].mac, "52:54:00:aa:bb:cc");
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_list_entries_are_trimmed)
{
	static const char *const set[] = { "possible_owners=node1, node2 ,  node3",
					   "preferred_owners= node3,node1 " };
	struct vmc_group_def *def = def_load_valid("minimal.json");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));

	ck_assert_uint_eq(out->possible_owners.n, 3);
	ck_assert_str_eq(out->possible_owners.v[0], "node1");
	ck_assert_str_eq(out->possible_owners.v[1], "node2");
	ck_assert_str_eq(out->possible_owners.v[2], "node3");
	ck_assert_uint_eq(out->preferred_owners.n, 2);
	ck_assert_str_eq(out->preferred_owners.v[0], "node3");
	ck_assert_str_eq(out->preferred_owners.v[1], "node1");
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_removing_initrd_without_boot_is_a_no_op)
{
	static const char *const set[] = { "boot.initrd=", "boot.cmdline=" };
	struct vmc_group_def *def = def_parse(
		"{\"name\":\"db1\",\"memory_mib\":1024,"
		"\"disks\":[{\"path\":\"/srv/csv1/db1/root.qcow2\",\"format\":\"qcow2\"}]}");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));
	char *before = def_canonical(def);
	char *after = def_canonical(out);

	ck_assert(!out->has_boot);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_json_null_is_refused_saying_null)
{
	static const char *const set[] = { "disks=null" };
	struct vmc_group_def *def = def_load_valid("minimal.json");
	struct vmc_group_def *out = UNTOUCHED;
	char err[ERR_LEN];
	int rc = def_set(def, set, ARRAY_LEN(set), &out, err);

	assert_refusal(rc, err, "field 'disks'", set[0]);
	ck_assert_msg(strstr(err, "null") != NULL, "reason '%s' does not say null", err);
	ck_assert_ptr_eq(out, UNTOUCHED);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_later_assignment_wins)
{
	static const char *const set[] = { "vcpus=2", "vcpus=3" };
	struct vmc_group_def *def = def_load_valid("minimal.json");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));

	ck_assert_uint_eq(out->vcpus, 3);
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_same_value_changes_nothing)
{
	static const char *const set[] = { "vcpus=4" };
	struct vmc_group_def *def = def_load_valid("full.json");
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));
	char *before = def_canonical(def);
	char *after = def_canonical(out);

	/* setting a field to the value it has changes nothing at all */
	ck_assert_uint_eq(def->vcpus, 4);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

struct set_refusal {
	const char *file;         /* valid/ definition to start from */
	const char *assignments[3];
	const char *error_text;   /* the error must contain it */
};

static const struct set_refusal set_refusals[] = {
	{ "minimal.json", { "name=web2" }, "field 'name': cannot be changed" },
	{ "minimal.json", { "cpus=2" }, "field 'cpus'" },
	{ "minimal.json", { "boot.append=quiet" }, "field 'boot.append'" },
	{ "minimal.json", { "failover.retries=1" }, "field 'failover.retries'" },
	{ "minimal.json", { "vcpus=two" }, "field 'vcpus'" },
	{ "minimal.json", { "vcpus=" }, "field 'vcpus'" },
	/* 0 would be a valid max_failures: the empty value must not read as 0 */
	{ "minimal.json", { "failover.max_failures=" }, "field 'failover.max_failures'" },
	{ "minimal.json", { "failover.max_failures=3x" }, "field 'failover.max_failures'" },
	{ "minimal.json", { "memory_mib=512MiB" }, "field 'memory_mib'" },
	{ "minimal.json", { "memory_mib=1.5" }, "field 'memory_mib'" },
	{ "minimal.json", { "memory_mib=99999999999999999999" }, "field 'memory_mib'" },
	{ "minimal.json", { "vcpus=0" }, "field 'vcpus'" },
	{ "minimal.json", { "vcpus=257" }, "field 'vcpus'" },
	{ "minimal.json", { "memory_mib=8" }, "field 'memory_mib'" },
	{ "minimal.json", { "memory_mib=-512" }, "field 'memory_mib'" },
	{ "minimal.json", { "failover.period_s=0" }, "field 'failover.period_s'" },
	{ "minimal.json", { "priority=urgent" }, "field 'priority'" },
	{ "minimal.json", { "failback=window 07-07" }, "field 'failback'" },
	{ "minimal.json", { "manager=" }, "field 'manager'" },
	{ "minimal.json", { "boot.kernel=vmlinuz" }, "field 'boot.kernel'" },
	{ "minimal.json", { "boot.kernel=" }, "field 'boot.kernel'" },
	{ "minimal.json", { "boot.initrd=initrd.img" }, "field 'boot.initrd'" },
	{ "minimal.json", { "anti_affinity=web,web" }, "field 'anti_affinity'" },
	{ "minimal.json", { "disks=[{\"path\":" }, "field 'disks'" },
	{ "minimal.json", { "nics=[{\"bridge\":\"br0\",\"mac\":\"ff:ff:ff:ff:ff:ff\"}]" },
	  "field 'nics[0].mac'" },
	{ "full.json", { "preferred_owners=node9" }, "field 'preferred_owners'" },
	/* dropping a preferred owner from possible_owners breaks the pair */
	{ "full.json", { "possible_owners=node1,node3" }, "field 'preferred_owners'" },
	{ "full.json", { "possible_owners=node1", "preferred_owners=node1,node2" },
	  "field 'preferred_owners'" },
	/* an assignment that is fine alone does not save a later bad one */
	{ "full.json", { "vcpus=8", "memory_mib=0" }, "field 'memory_mib'" },
	{ "full.json", { "vcpus=8", "name=db2" }, "field 'name': cannot be changed" },
	/* an integer is digits, with nothing around them */
	{ "minimal.json", { "vcpus=+4" }, "field 'vcpus'" },
	{ "minimal.json", { "vcpus= 4" }, "field 'vcpus'" },
	{ "minimal.json", { "vcpus=4 " }, "field 'vcpus'" },
	{ "minimal.json", { "memory_mib=0x200" }, "field 'memory_mib'" },
	/* text after the JSON value */
	{ "minimal.json", { "disks=[{\"path\":\"/srv/csv1/a.img\"}]junk" }, "field 'disks'" },
	{ "minimal.json", { "nics=[] []" }, "field 'nics'" },
	/* an empty entry in a list is a typo, not a name */
	{ "minimal.json", { "possible_owners=a,,b" }, "field 'possible_owners'" },
	{ "minimal.json", { "possible_owners=node1," }, "field 'possible_owners'" },
	{ "minimal.json", { "anti_affinity= , " }, "field 'anti_affinity'" },
	{ "minimal.json", { "preferred_owners=,node1" }, "field 'preferred_owners'" },
	{ "minimal.json",
	  { "nics=[{\"bridge\":\"br0\",\"mac\":\"52:54:00:12:34:56\"},"
	    "{\"bridge\":\"br1\",\"mac\":\"52:54:00:12:34:56\"}]" },
	  "field 'nics[1].mac'" },
	{ "minimal.json", { "vcpus" }, "not KEY=VALUE" },
	{ "minimal.json", { "=4" }, "not KEY=VALUE" },
};

static size_t assignments_count(const char *const *a, size_t max)
{
	size_t n = 0;

	while (n < max && a[n] != NULL) {
		n++;
	}
	return n;
}

START_TEST(test_set_refused_naming_the_field)
{
	const struct set_refusal *x = &set_refusals[_i];
	struct vmc_group_def *def = def_load_valid(x->file);
	struct vmc_group_def *out = UNTOUCHED;
	char *before = def_canonical(def);
	char *after;
	char err[ERR_LEN];
	int rc;

	rc = def_set(def, x->assignments, assignments_count(x->assignments, 3), &out, err);
	assert_refusal(rc, err, x->error_text, x->assignments[0]);
	ck_assert_msg(out == UNTOUCHED, "%s: *out written on refusal", x->assignments[0]);

	/* the original definition is never modified */
	after = def_canonical(def);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_nothing_is_refused)
{
	struct vmc_group_def *def = def_load_valid("minimal.json");
	struct vmc_group_def *out = UNTOUCHED;
	char err[ERR_LEN];
	int rc = def_set(def, NULL, 0, &out, err);

	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_str_ne(err, "");
	ck_assert_ptr_eq(out, UNTOUCHED);
	vmc_group_def_free(def);
}
END_TEST

START_TEST(test_set_success_leaves_original_alone)
{
	static const char *const set[] = { "memory_mib=8192", "boot.initrd=",
					   "possible_owners=node1,node2", "failback=immediate" };
	struct vmc_group_def *def = def_load_valid("full.json");
	char *before = def_canonical(def);
	struct vmc_group_def *out = def_set_ok(def, set, ARRAY_LEN(set));
	char *after = def_canonical(def);

	ck_assert_str_eq(after, before);
	ck_assert_uint_eq(out->memory_mib, 8192);
	ck_assert_int_eq(out->failback, VMC_FAILBACK_IMMEDIATE);
	free(before);
	free(after);
	vmc_group_def_free(out);
	vmc_group_def_free(def);
}
END_TEST

static TCase *tcase_make(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, TEST_TIMEOUT_S);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *group_def_suite(void)
{
	Suite *s = suite_create("group_def");
	TCase *tc;

	tc = tcase_make(s, "valid");
	tcase_add_test(tc, test_minimal_parses_with_defaults);
	tcase_add_test(tc, test_minimal_canonical_json_is_golden);
	tcase_add_test(tc, test_full_parses_every_field);
	tcase_add_test(tc, test_failback_window_with_minutes);
	tcase_add_loop_test(tc, test_valid_canonical_json_round_trips, 0, ARRAY_LEN(valid_files));
	tcase_add_loop_test(tc, test_valid_copy_has_equal_canonical_json, 0, ARRAY_LEN(valid_files));
	tcase_add_test(tc, test_disk_only_definition_needs_no_boot);
	tcase_add_test(tc, test_limits_are_inclusive);
	tcase_add_loop_test(tc, test_just_beyond_limits_is_refused, 0, (int)ARRAY_LEN(beyond_limits));
	tcase_add_test(tc, test_valid_name_rules);

	tc = tcase_make(s, "invalid");
	tcase_add_test(tc, test_invalid_dir_matches_expected);
	tcase_add_loop_test(tc, test_invalid_file_is_refused_naming_the_field, 0, (int)n_expected);
	tcase_add_test(tc, test_refusal_with_tiny_error_buffer_is_safe);
	tcase_add_test(tc, test_nul_inside_string_is_refused);
	tcase_add_loop_test(tc, test_text_after_the_definition_is_refused, 0,
			    (int)ARRAY_LEN(after_definition));
	tcase_add_test(tc, test_white_space_after_the_definition_is_fine);
	tcase_add_loop_test(tc, test_json_null_is_refused_saying_null, 0, (int)ARRAY_LEN(null_texts));
	tcase_add_loop_test(tc, test_nul_inside_a_name_is_refused, 0, (int)ARRAY_LEN(nul_in_names));
	tcase_add_loop_test(tc, test_duplicate_mac_in_one_definition_is_refused, 0,
			    (int)ARRAY_LEN(duplicate_macs));
	tcase_add_test(tc, test_nics_without_mac_are_not_duplicates);

	tc = tcase_make(s, "set");
	tcase_add_test(tc, test_set_integer_keys);
	tcase_add_test(tc, test_set_string_keys);
	tcase_add_test(tc, test_set_list_keys);
	tcase_add_test(tc, test_set_optional_string_keys);
	tcase_add_test(tc, test_set_empty_value_removes_initrd);
	tcase_add_test(tc, test_set_json_keys);
	tcase_add_test(tc, test_set_list_entries_are_trimmed);
	tcase_add_test(tc, test_set_removing_initrd_without_boot_is_a_no_op);
	tcase_add_test(tc, test_set_json_null_is_refused_saying_null);
	tcase_add_test(tc, test_set_later_assignment_wins);
	tcase_add_test(tc, test_set_same_value_changes_nothing);
	tcase_add_loop_test(tc, test_set_refused_naming_the_field, 0, (int)ARRAY_LEN(set_refusals));
	tcase_add_test(tc, test_set_nothing_is_refused);
	tcase_add_test(tc, test_set_success_leaves_original_alone);
	return s;
}

int main(void)
{

	expected_load();
	return check_suite_run(group_def_suite());
}
