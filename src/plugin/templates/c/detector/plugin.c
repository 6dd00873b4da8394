/* Detector __NAME__: flags targets whose p95 latency is over 50 ms. */
#include <stdio.h>
#include <stdlib.h>

#include "detector.h"

void exports_detector_describe(detector_plugin_info_t *ret) {
    detector_string_dup(&ret->name, "__NAME__");
    ret->kind = KAIZEN_PLUGIN_TYPES_PLUGIN_KIND_DETECTOR;
    detector_string_dup(&ret->version, "0.1.0");
    detector_string_dup(&ret->description, "p95 latency over a budget");
    // No tunables, no capabilities beyond the default sandbox.
    ret->tunables.ptr = NULL;
    ret->tunables.len = 0;
    ret->capabilities.ptr = NULL;
    ret->capabilities.len = 0;
}

void exports_detector_detect(detector_detection_input_t *input, detector_list_finding_t *ret) {
    const double budget = 50.0;
    ret->len = 0;
    ret->ptr = calloc(input->targets.len + 1, sizeof(kaizen_plugin_types_finding_t));
    for (size_t i = 0; i < input->targets.len; i++) {
        kaizen_plugin_types_target_stats_t *t = &input->targets.ptr[i];
        if (t->current.executions < 20 || t->current.latency.p95_ms <= budget) continue;
        kaizen_plugin_types_finding_t *f = &ret->ptr[ret->len++];
        detector_string_dup_n(&f->target, (const char *)t->target.ptr, t->target.len);
        detector_string_dup(&f->kind, "__NAME__");
        f->severity = KAIZEN_PLUGIN_TYPES_SEVERITY_MEDIUM;
        f->confidence = 0.8;
        char summary[160];
        snprintf(summary, sizeof summary, "p95 %.1f ms over a %.0f ms budget", t->current.latency.p95_ms, budget);
        detector_string_dup(&f->summary, summary);
        f->expected_gain_pct = (1.0 - budget / t->current.latency.p95_ms) * 100.0;
        f->risk = KAIZEN_PLUGIN_TYPES_RISK_LOW;
        f->category = KAIZEN_PLUGIN_TYPES_CATEGORY_PERFORMANCE;
    }
    detector_detection_input_free(input);
}
