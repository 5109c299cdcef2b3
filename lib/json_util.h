/*
 * Strict JSON parsing for everything that comes from outside: a file, an
 * IPC request, a CPG message. json-c's convenience parser stops after the
 * first value and ignores what follows; here trailing bytes are an error,
 * so "two definitions in one file" cannot silently lose the second.
 */
#ifndef VMC_JSON_UTIL_H
#define VMC_JSON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

/*
 * Parses exactly one JSON value from text (trailing white space allowed).
 * Returns it, or NULL with a reason in err. A JSON null is refused too.
 */
json_object *vmc_json_parse(const char *text, char *err, size_t errlen);

/*
 * The one set of getters for fields of a JSON object (a message body, IPC
 * arguments, a QMP reply): each is true, or non-NULL, only when the key
 * is there with exactly that type and range, so a caller never mistakes
 * "absent" or "wrong type" for a value. o may be NULL.
 */
const char *vmc_json_str(json_object *o, const char *key);
json_object *vmc_json_array(json_object *o, const char *key);
json_object *vmc_json_object(json_object *o, const char *key);
bool vmc_json_int64(json_object *o, const char *key, int64_t *out);
/* An integer in 0..UINT32_MAX */
bool vmc_json_u32(json_object *o, const char *key, uint32_t *out);
/* A non-negative integer */
bool vmc_json_u64(json_object *o, const char *key, uint64_t *out);
bool vmc_json_bool(json_object *o, const char *key, bool *out);

#endif
