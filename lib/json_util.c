#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "json_util.h"

json_object *vmc_json_parse(const char *text, char *err, size_t errlen)
{
	struct json_tokener *tok = json_tokener_new();
	size_t len = strlen(text);
	enum json_tokener_error jerr;
	json_object *o;
	size_t end;

	if (tok == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* No comments, single quotes or trailing commas: JSON as written in RFC 8259. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* Including the NUL tells the tokener the text is complete ("null", "12"). */
	o = json_tokener_parse_ex(tok, text, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		json_object_put(o);
		snprintf(err, errlen, "not valid JSON: %s",
			 jerr == json_tokener_continue ? "it ends too early" : json_tokener_error_desc(jerr));
		return NULL;
	}
	if (o == NULL) {
		snprintf(err, errlen, "JSON null where a value is needed");
		return NULL;
	}
	while (end < len && isspace((unsigned char)text[end])) {
		end++;
	}
	if (end < len) {
		json_object_put(o);
		snprintf(err, errlen, "not valid JSON: unexpected text after the end at byte %zu", end);
		return NULL;
	}
	return o;
}

static json_object *field(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type)) {
		return NULL;
	}
	return v;
}

const char *vmc_json_str(json_object *o, const char *key)
{
	json_object *v = field(o, key, json_type_string);

	return v ? json_object_get_string(v) : NULL;
}

json_object *vmc_json_array(json_object *o, const char *key)
{
	return field(o, key, json_type_array);
}

json_object *vmc_json_object(json_object *o, const char *key)
{
	return field(o, key, json_type_object);
}

bool vmc_json_int64(json_object *o, const char *key, int64_t *out)
{
	json_object *v = field(o, key, json_type_int);

	if (v == NULL) {
		return false;
	}
	*out = json_object_get_int64(v);
	return true;
}

bool vmc_json_u32(json_object *o, const char *key, uint32_t *out)
{
	int64_t v;

	if (!vmc_json_int64(o, key, &v) || v < 0 || v > UINT32_MAX) {
		return false;
	}
	*out = (uint32_t)v;
	return true;
}

bool vmc_json_u64(json_object *o, const char *key, uint64_t *out)
{
	json_object *v = field(o, key, json_type_int);

	/* json-c keeps integers above INT64_MAX as unsigned: get_int64 would clamp them. */
	if (v == NULL || json_object_get_int64(v) < 0) {
		return false;
	}
	*out = json_object_get_uint64(v);
	return true;
}

bool vmc_json_bool(json_object *o, const char *key, bool *out)
{
	json_object *v = field(o, key, json_type_boolean);

	if (v == NULL) {
		return false;
	}
	*out = json_object_get_boolean(v);
	return true;
}
