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
