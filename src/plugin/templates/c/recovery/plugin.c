/* Recovery strategy __NAME__: retries timeouts and dependency failures after
 * 50 ms, twice, then passes. */
#include <stdlib.h>

#include "recovery.h"

void exports_recovery_describe(recovery_plugin_info_t *ret) {
    recovery_string_dup(&ret->name, "__NAME__");
    ret->kind = KAIZEN_PLUGIN_TYPES_PLUGIN_KIND_RECOVERY;
    recovery_string_dup(&ret->version, "0.1.0");
    recovery_string_dup(&ret->description, "Retry after a fixed delay");
    // No tunables, no capabilities beyond the default sandbox.
    ret->tunables.ptr = NULL;
    ret->tunables.len = 0;
    ret->capabilities.ptr = NULL;
    ret->capabilities.len = 0;
}

void exports_recovery_handles(recovery_list_error_class_t *ret) {
    ret->len = 2;
    ret->ptr = calloc(2, sizeof(kaizen_plugin_types_error_class_t));
    ret->ptr[0].tag = KAIZEN_PLUGIN_TYPES_ERROR_CLASS_TIMEOUT;
    ret->ptr[1].tag = KAIZEN_PLUGIN_TYPES_ERROR_CLASS_DEPENDENCY;
}

void exports_recovery_decide(recovery_failure_t *failure, recovery_recovery_action_t *ret) {
    uint8_t tag = failure->error_class.tag;
    int handled = tag == KAIZEN_PLUGIN_TYPES_ERROR_CLASS_TIMEOUT || tag == KAIZEN_PLUGIN_TYPES_ERROR_CLASS_DEPENDENCY;
    if (handled && failure->attempt <= 2) {
        ret->tag = KAIZEN_PLUGIN_TYPES_RECOVERY_ACTION_RETRY;
        ret->val.retry = 50;
    } else {
        ret->tag = KAIZEN_PLUGIN_TYPES_RECOVERY_ACTION_PASS;
    }
    recovery_failure_free(failure);
}
