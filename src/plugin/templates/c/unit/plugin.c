/* Unit __NAME__: answers "hello, " followed by the request; an empty
 * request is refused with the invalid-input class. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

void exports_unit_describe(unit_plugin_info_t *ret) {
    unit_string_dup(&ret->name, "__NAME__");
    ret->kind = KAIZEN_PLUGIN_TYPES_PLUGIN_KIND_UNIT;
    unit_string_dup(&ret->version, "0.1.0");
    unit_string_dup(&ret->description, "Says hello");
    // No tunables, no capabilities beyond the default sandbox.
    ret->tunables.ptr = NULL;
    ret->tunables.len = 0;
    ret->capabilities.ptr = NULL;
    ret->capabilities.len = 0;
}

bool exports_unit_invoke(unit_call_context_t *context, unit_list_u8_t *request, unit_list_u8_t *ret,
                         unit_unit_error_t *err) {
    (void)context;
    if (request->len == 0) {
        err->error_class.tag = KAIZEN_PLUGIN_TYPES_ERROR_CLASS_INVALID_INPUT;
        unit_string_dup(&err->message, "empty request");
        unit_list_u8_free(request);
        return false;
    }
    const char *prefix = "hello, ";
    size_t n = strlen(prefix);
    ret->len = n + request->len;
    ret->ptr = malloc(ret->len);
    memcpy(ret->ptr, prefix, n);
    memcpy(ret->ptr + n, request->ptr, request->len);
    unit_list_u8_free(request);
    return true;
}
