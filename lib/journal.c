/*
 * Journal lines and their replay (see journal.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "json_util.h"
#include "replica.h"
#include "vmc_errors.h"

static char *line_from(json_object *o)
{
	const char *text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
	size_t len = text ? strlen(text) : 0;
	/* json-c cuts its output short when it runs out of memory: a torn line is no line. */
	char *line = len > 0 && text[len - 1] == '}' ? malloc(len + 2) : NULL;

	if (line != NULL) {
		memcpy(line, text, len);
		line[len] = '\n';
		line[len + 1] = '\0';
	}
	json_object_put(o);
	return line;
}

char *vmc_journal_line_change(const struct vmc_msg *m, uint64_t version_after)
{
	return vmc_journal_line_change_in_view(m, version_after, NULL, 0);
}

/* Adds key: value to o, or drops o (returns NULL) when value could not be made. */
static json_object *field_add(json_object *o, const char *key, json_object *value)
{
	if (o == NULL || value == NULL || json_object_object_add(o, key, value) != 0) {
		json_object_put(value);
		json_object_put(o);
		return NULL;
	}
	return o;
}

char *vmc_journal_line_change_in_view(const struct vmc_msg *m, uint64_t version_after,
				      const uint32_t *members, size_t n_members)
{
	json_object *o = json_object_new_object();
	json_object *view = json_object_new_array();

	/* Out of memory anywhere: no line, and the caller writes a snapshot instead. */
	for (size_t i = 0; view != NULL && i < n_members; i++) {
		json_object *id = json_object_new_int64(members[i]);
		if (id == NULL || json_object_array_add(view, id) != 0) {
			json_object_put(id);
			json_object_put(view);
			view = NULL;
		}
	}
	o = field_add(o, "members", view);
	o = field_add(o, "v", json_object_new_uint64(version_after));
	o = field_add(o, "type", json_object_new_int(m->type));
	/* The apply may depend on the protocol the change was written in. */
	o = field_add(o, "version", json_object_new_int(m->version ? m->version : 1));
	o = field_add(o, "sender", json_object_new_int64(m->sender));
	o = field_add(o, "request_id", json_object_new_uint64(m->request_id));
	o = field_add(o, "body", json_object_get(m->body));
	return o != NULL ? line_from(o) : NULL;
}

char *vmc_journal_line_epoch(uint64_t epoch, uint64_t version)
{
	json_object *o = json_object_new_object();

	o = field_add(o, "v", json_object_new_uint64(version));
	o = field_add(o, "epoch", json_object_new_uint64(epoch));
	return o != NULL ? line_from(o) : NULL;
}

static int replay_line(struct vmc_state *s, json_object *o, bool *applied, char *err,
		       size_t errlen)
{
	json_object *v, *epoch, *type, *sender, *rid, *body, *view;
	uint32_t members[VMC_NODES_MAX];
	struct vmc_apply_ctx ctx = { .members = members };
	struct vmc_msg m = { .version = VMC_PROTO_VERSION_MIN };
	char detail[400];
	uint64_t version;

	*applied = false;
	if (!json_object_object_get_ex(o, "v", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0) {
		snprintf(err, errlen, "no config_version");
		return -VMC_E_PROTOCOL;
	}
	version = json_object_get_uint64(v);
	if (json_object_object_get_ex(o, "epoch", &epoch)) {
		if (!json_object_is_type(epoch, json_type_int) || json_object_get_int64(epoch) < 0) {
			snprintf(err, errlen, "epoch is not a non-negative integer");
			return -VMC_E_PROTOCOL;
		}
		if (json_object_get_uint64(epoch) > s->epoch) {
			s->epoch = json_object_get_uint64(epoch);
			*applied = true;
		}
		return 0;
	}
	if (version <= s->config_version) {
		return 0; /* already in the snapshot */
	}
	if (!json_object_object_get_ex(o, "type", &type) ||
	    !json_object_object_get_ex(o, "sender", &sender) ||
	    !json_object_object_get_ex(o, "request_id", &rid) ||
	    !json_object_object_get_ex(o, "body", &body) || !json_object_is_type(body, json_type_object)) {
		snprintf(err, errlen, "a change without type, sender, request_id or body");
		return -VMC_E_PROTOCOL;
	}
	m.type = (uint16_t)json_object_get_int(type);
	/* Lines written before the version was recorded are version 1. */
	if (json_object_object_get_ex(o, "version", NULL)) {
		uint32_t version_of_line;
		if (!vmc_json_u32(o, "version", &version_of_line) || version_of_line < VMC_PROTO_VERSION_MIN ||
		    version_of_line > VMC_PROTO_VERSION_MAX) {
			snprintf(err, errlen, "a change in a protocol version this build does not speak");
			return -VMC_E_PROTOCOL;
		}
		m.version = (uint16_t)version_of_line;
	}
	m.sender = (uint32_t)json_object_get_int64(sender);
	m.request_id = json_object_get_uint64(rid);
	m.body = body;
	ctx.sender = m.sender;
	ctx.version = m.version;
	if (json_object_object_get_ex(o, "members", &view) && json_object_is_type(view, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(view) && i < VMC_NODES_MAX; i++) {
			members[i] = (uint32_t)json_object_get_int64(json_object_array_get_idx(view, i));
			ctx.n_members = i + 1;
		}
	}
	if (vmc_state_apply(s, &ctx, &m, detail, sizeof(detail)) != 0) {
		snprintf(err, errlen, "change no longer applies: %s", detail);
		return -VMC_E_PROTOCOL;
	}
	if (s->config_version != version) {
		snprintf(err, errlen, "change gives config_version %llu, journal says %llu",
			 (unsigned long long)s->config_version, (unsigned long long)version);
		return -VMC_E_PROTOCOL;
	}
	*applied = true;
	return 0;
}

int vmc_journal_replay(struct vmc_state *s, const char *text, size_t *applied, char *err,
		       size_t errlen)
{
	const char *line = text;
	unsigned int lineno = 0;

	*applied = 0;
	for (const char *nl = strchr(line, '\n'); nl != NULL; line = nl + 1, nl = strchr(line, '\n')) {
		char buf[640], why[128];
		json_object *o;
		bool done = false;
		char *copy;
		int rc;

		lineno++;
		copy = strndup(line, (size_t)(nl - line));
		if (copy == NULL) {
			return -ENOMEM;
		}
		o = vmc_json_parse(copy, why, sizeof(why));
		free(copy);
		if (o == NULL || !json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			snprintf(err, errlen, "journal line %u: not a JSON object", lineno);
			return -VMC_E_PROTOCOL;
		}
		rc = replay_line(s, o, &done, buf, sizeof(buf));
		json_object_put(o);
		if (rc != 0) {
			snprintf(err, errlen, "journal line %u: %s", lineno, buf);
			return rc;
		}
		*applied += done;
	}
	return 0;
}
