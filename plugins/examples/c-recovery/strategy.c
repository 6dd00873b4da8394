/*
 * Kaizen recovery strategy in C: "jittered retry" for dependency failures
 * and timeouts. Retries after base_ms * 2^(attempt-1) (base_ms from the
 * plugin's configuration, default 100), while that fits in the caller's
 * remaining time; a dependency that keeps failing (attempt > max_attempts,
 * default 3) opens the circuit for 5 s instead; anything else passes.
 *
 * Built with Debian's clang and wasi-libc against the bindings
 * `kaizen plugin bindings recovery` writes; see README.md.
 */
#include <stdlib.h>
#include <string.h>

#include "recovery.h"

static uint64_t setting(const char *key, uint64_t fallback) {
    recovery_string_t k, v;
    recovery_string_set(&k, key);
    uint64_t out = fallback;
    if (kaizen_plugin_host_config(&k, &v)) {
        char buf[32];
        size_t n = v.len < sizeof buf - 1 ? v.len : sizeof buf - 1;
        memcpy(buf, v.ptr, n);
        buf[n] = 0;
        char *end;
        unsigned long long parsed = strtoull(buf, &end, 10);
        if (end != buf) out = parsed;
        recovery_string_free(&v);
    }
    return out;
}

static void set_string(recovery_string_t *s, const char *text) {
    recovery_string_dup(s, text);
}

void exports_recovery_describe(recovery_plugin_info_t *ret) {
    set_string(&ret->name, "jittered-retry");
    ret->kind = KAIZEN_PLUGIN_TYPES_PLUGIN_KIND_RECOVERY;
    set_string(&ret->version, "1.0.0");
    set_string(&ret->description, "Exponential retry within the deadline, then open the circuit (C)");
}

void exports_recovery_handles(recovery_list_error_class_t *ret) {
    ret->len = 2;
    ret->ptr = calloc(2, sizeof(kaizen_plugin_types_error_class_t));
    ret->ptr[0].tag = KAIZEN_PLUGIN_TYPES_ERROR_CLASS_DEPENDENCY;
    ret->ptr[1].tag = KAIZEN_PLUGIN_TYPES_ERROR_CLASS_TIMEOUT;
}

void exports_recovery_decide(recovery_failure_t *failure, recovery_recovery_action_t *ret) {
    uint8_t tag = failure->error_class.tag;
    if (tag != KAIZEN_PLUGIN_TYPES_ERROR_CLASS_DEPENDENCY && tag != KAIZEN_PLUGIN_TYPES_ERROR_CLASS_TIMEOUT) {
        ret->tag = KAIZEN_PLUGIN_TYPES_RECOVERY_ACTION_PASS;
    } else if (failure->attempt > setting("max_attempts", 3)) {
        ret->tag = KAIZEN_PLUGIN_TYPES_RECOVERY_ACTION_OPEN_CIRCUIT;
        ret->val.open_circuit = 5000;
    } else {
        uint64_t delay = setting("base_ms", 100) << (failure->attempt - 1);
        if (delay < failure->remaining_ms) {
            ret->tag = KAIZEN_PLUGIN_TYPES_RECOVERY_ACTION_RETRY;
            ret->val.retry = delay;
        } else {
            ret->tag = KAIZEN_PLUGIN_TYPES_RECOVERY_ACTION_GIVE_UP;
            set_string(&ret->val.give_up, "the next retry would miss the caller's deadline");
        }
    }
    recovery_failure_free(failure);
}
