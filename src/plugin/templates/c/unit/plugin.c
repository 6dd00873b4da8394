/* Unit __NAME__: greets by name. Request `{"name": "Ada"}`, answer
 * `{"greeting": "Hello, Ada!"}`; a request that is not such an object, or is
 * nested deeper than 128 levels, is refused with the invalid-input class.
 *
 * Ownership (the generated bindings' rules): what an export returns through
 * `ret` / `err` must be malloc'd, because the bindings' post-return frees it
 * after the host has copied it (`unit_string_dup` copies into malloc'd
 * memory; `unit_string_set` to a literal would be freed and trap). The
 * request is the export's to free. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kaizen_json.h"
#include "unit.h"

void exports_unit_describe(unit_plugin_info_t *ret) {
    unit_string_dup(&ret->name, "__NAME__");
    ret->kind = KAIZEN_PLUGIN_TYPES_PLUGIN_KIND_UNIT;
    unit_string_dup(&ret->version, "0.1.0");
    unit_string_dup(&ret->description, "Greets by name");
    // No tunables, no capabilities beyond the default sandbox.
    ret->tunables.ptr = NULL;
    ret->tunables.len = 0;
    ret->capabilities.ptr = NULL;
    ret->capabilities.len = 0;
}

/* Fill `err` with the invalid-input class and `message` (copied). */
static bool refuse(unit_unit_error_t *err, const char *message) {
    err->error_class.tag = KAIZEN_PLUGIN_TYPES_ERROR_CLASS_INVALID_INPUT;
    unit_string_dup(&err->message, message);
    return false;
}

static bool greet(const char *text, size_t len, unit_list_u8_t *ret, unit_unit_error_t *err) {
    if (kaizen_json_too_deep(text, len, KAIZEN_JSON_MAX_DEPTH)) {
        return refuse(err, "JSON request nested deeper than 128 levels");
    }
    int count = 0;
    jsmntok_t *t = kaizen_json_parse(text, len, &count);
    if (t == NULL) return refuse(err, "request is not JSON");
    int name = kaizen_json_get(text, t, count, 0, "name");
    if (name < 0 || t[name].type != JSMN_STRING) {
        free(t);
        return refuse(err, "expected {\"name\": \"...\"}");
    }
    int name_len = t[name].end - t[name].start;
    size_t size = (size_t)name_len + 32;
    char *out = malloc(size); /* freed by the bindings after the call */
    int n = snprintf(out, size, "{\"greeting\":\"Hello, %.*s!\"}", name_len, text + t[name].start);
    free(t);
    ret->ptr = (uint8_t *)out;
    ret->len = (size_t)n;
    return true;
}

bool exports_unit_invoke(unit_call_context_t *context, unit_list_u8_t *request, unit_list_u8_t *ret,
                         unit_unit_error_t *err) {
    (void)context;
    bool ok = greet((const char *)request->ptr, request->len, ret, err);
    unit_list_u8_free(request);
    return ok;
}
