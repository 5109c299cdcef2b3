/*
 * Strict JSON parsing for everything that comes from outside: a file, an
 * IPC request, a CPG message. json-c's convenience parser stops after the
 * first value and ignores what follows; here trailing bytes are an error,
 * so "two definitions in one file" cannot silently lose the second.
 */
#ifndef VMC_JSON_UTIL_H
#define VMC_JSON_UTIL_H

#include <stddef.h>
#include <json-c/json.h>

/*
 * Parses exactly one JSON value from text (trailing white space allowed).
 * Returns it, or NULL with a reason in err. A JSON null is refused too.
 */
json_object *vmc_json_parse(const char *text, char *err, size_t errlen);

#endif
