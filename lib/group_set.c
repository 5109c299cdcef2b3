/*
 * `clusterctl vm set VM KEY=VALUE...`: the assignments are applied to the
 * canonical JSON of the current definition and the result goes through the
 * same validation as a new definition, so a change can never produce a
 * group that `vm add` would have refused.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group_def.h"
#include "json_util.h"

enum value_kind {
	VALUE_INT,
	VALUE_STRING,
	VALUE_OPTIONAL_STRING, /* an empty value removes the key */
	VALUE_LIST,
	VALUE_JSON,
};

struct settable_key {
	const char *key;
	const char *parent; /* nested object, or NULL for top level */
	const char *member;
	enum value_kind kind;
};

static const struct settable_key settable_keys[] = {
	{ "memory_mib", NULL, "memory_mib", VALUE_INT },
	{ "vcpus", NULL, "vcpus", VALUE_INT },
	{ "cpu", NULL, "cpu", VALUE_OPTIONAL_STRING },
	{ "priority", NULL, "priority", VALUE_STRING },
	{ "failback", NULL, "failback", VALUE_STRING },
	{ "manager", NULL, "manager", VALUE_STRING },
	{ "preferred_owners", NULL, "preferred_owners", VALUE_LIST },
	{ "possible_owners", NULL, "possible_owners", VALUE_LIST },
	{ "anti_affinity", NULL, "anti_affinity", VALUE_LIST },
	{ "start_after", NULL, "start_after", VALUE_LIST },
	{ "start_after_timeout_s", NULL, "start_after_timeout_s", VALUE_INT },
	{ "disks", NULL, "disks", VALUE_JSON },
	{ "nics", NULL, "nics", VALUE_JSON },
	{ "failover.max_failures", "failover", "max_failures", VALUE_INT },
	{ "failover.period_s", "failover", "period_s", VALUE_INT },
	{ "boot.kernel", "boot", "kernel", VALUE_STRING },
	{ "boot.initrd", "boot", "initrd", VALUE_OPTIONAL_STRING },
	{ "boot.cmdline", "boot", "cmdline", VALUE_OPTIONAL_STRING },
};

static const struct settable_key *settable_key_find(const char *key)
{
	for (size_t i = 0; i < sizeof(settable_keys) / sizeof(settable_keys[0]); i++) {
		if (strcmp(settable_keys[i].key, key) == 0) {
			return &settable_keys[i];
		}
	}
	return NULL;
}

/* "a, b,c" -> ["a","b","c"]; "" -> []; an empty entry ("a,,b") is an error. */
static int list_value(const struct settable_key *k, const char *value, json_object **out,
		      char *err, size_t errlen)
{
	json_object *a = json_object_new_array();
	const char *p = value;

	while (*value != '\0') {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *b = p;
		while (b < end && *b == ' ') {
			b++;
		}
		while (end > b && end[-1] == ' ') {
			end--;
		}
		if (end == b) {
			json_object_put(a);
			snprintf(err, errlen, "field '%s': empty entry in '%s'", k->key, value);
			return -EINVAL;
		}
		json_object_array_add(a, json_object_new_string_len(b, (int)(end - b)));
		if (comma == NULL) {
			break;
		}
		p = comma + 1;
	}
	*out = a;
	return 0;
}

static int value_to_json(const struct settable_key *k, const char *value, json_object **out,
			 char *err, size_t errlen)
{
	char *end = NULL;
	long long x;

	switch (k->kind) {
	case VALUE_INT:
		errno = 0;
		x = strtoll(value, &end, 10);
		if (!(isdigit((unsigned char)value[0]) || (value[0] == '-' && isdigit((unsigned char)value[1]))) ||
		    *end != '\0' || errno != 0) {
			snprintf(err, errlen, "field '%s': '%s' is not an integer", k->key, value);
			return -EINVAL;
		}
		*out = json_object_new_int64(x);
		return 0;
	case VALUE_STRING:
	case VALUE_OPTIONAL_STRING:
		*out = json_object_new_string(value);
		return 0;
	case VALUE_LIST:
		return list_value(k, value, out, err, errlen);
	case VALUE_JSON: {
		char why[128];
		*out = vmc_json_parse(value, why, sizeof(why));
		if (*out == NULL) {
			snprintf(err, errlen, "field '%s': %s", k->key, why);
			return -EINVAL;
		}
		return 0;
	}
	}
	return -EINVAL;
}

static int assignment_apply(json_object *def, const char *assignment, char *err, size_t errlen)
{
	const char *eq = strchr(assignment, '=');
	char key[64];
	const struct settable_key *k;
	json_object *target = def;
	json_object *value = NULL;
	int rc;

	if (eq == NULL || eq == assignment || (size_t)(eq - assignment) >= sizeof(key)) {
		snprintf(err, errlen, "'%s' is not KEY=VALUE", assignment);
		return -EINVAL;
	}
	memcpy(key, assignment, (size_t)(eq - assignment));
	key[eq - assignment] = '\0';
	if (strcmp(key, "name") == 0) {
		snprintf(err, errlen, "field 'name': cannot be changed; remove the VM and add it again");
		return -EINVAL;
	}
	k = settable_key_find(key);
	if (k == NULL) {
		snprintf(err, errlen,
			 "field '%s': unknown key (settable: memory_mib, vcpus, cpu, priority, failback, manager, preferred_owners, possible_owners, anti_affinity, start_after, start_after_timeout_s, disks, nics, failover.max_failures, failover.period_s, boot.kernel, boot.initrd, boot.cmdline)",
			 key);
		return -EINVAL;
	}
	if (k->parent != NULL && !json_object_object_get_ex(def, k->parent, &target)) {
		if (k->kind == VALUE_OPTIONAL_STRING && eq[1] == '\0') {
			return 0; /* removing from a section that is not there */
		}
		target = json_object_new_object();
		json_object_object_add(def, k->parent, target);
	}
	if (k->kind == VALUE_OPTIONAL_STRING && eq[1] == '\0') {
		json_object_object_del(target, k->member);
		return 0;
	}
	rc = value_to_json(k, eq + 1, &value, err, errlen);
	if (rc == 0) {
		json_object_object_add(target, k->member, value);
	}
	return rc;
}

int vmc_group_def_set(const struct vmc_group_def *def, const char *const *assignments, size_t n,
		      struct vmc_group_def **out, char *err, size_t errlen)
{
	json_object *j = vmc_group_def_to_json(def);
	int rc = 0;

	if (n == 0) {
		snprintf(err, errlen, "nothing to set: give at least one KEY=VALUE");
		rc = -EINVAL;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (assignments[i] == NULL) {
			snprintf(err, errlen, "assignment %zu is not a KEY=VALUE string", i + 1);
			rc = -EINVAL;
		}
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = assignment_apply(j, assignments[i], err, errlen);
	}
	if (rc == 0) {
		rc = vmc_group_def_from_json(j, out, err, errlen);
	}
	json_object_put(j);
	return rc;
}
