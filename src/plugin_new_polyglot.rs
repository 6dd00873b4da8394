//! `kaizen plugin new KIND NAME --lang python|js|c`: the same starting
//! point as the Rust scaffold — a working plugin, its own test, a README
//! with the build commands — for the toolchains of `plugins/examples/`.
//! Each scaffold carries the WIT (embedded in this binary) in `wit/`.

use std::path::Path;

use crate::plugin_new::{Kind, kind_name as world};

fn write(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    crate::plugin_build::write_wit(dir)?;
    Ok(())
}

fn fill(template: &str, kind: Kind, name: &str) -> String {
    template.replace("__NAME__", name).replace("__WORLD__", world(kind)).replace("__FILE__", &name.replace('-', "_"))
}

/// Python (componentize-py): `app.py`, `test_app.py` (unittest against the
/// generated bindings, with the host stubbed), README.
pub fn python(dir: &Path, kind: Kind, name: &str) -> anyhow::Result<()> {
    let app = match kind {
        Kind::Detector => PY_DETECTOR,
        Kind::Recovery => PY_RECOVERY,
        Kind::Unit => PY_UNIT,
    };
    let test = match kind {
        Kind::Detector => PY_DETECTOR_TEST,
        Kind::Recovery => PY_RECOVERY_TEST,
        Kind::Unit => PY_UNIT_TEST,
    };
    let readme = "# __NAME__ — a Kaizen __WORLD__ in Python\n\n```sh\npip install componentize-py==0.25.1\ncomponentize-py -d wit -w kaizen:plugin/__WORLD__ bindings .   # the wit_world package (types for your editor and the test)\npython3 -m unittest test_app                                  # the plugin's own test, natively\ncomponentize-py -d wit -w kaizen:plugin/__WORLD__ componentize app -o __FILE__.wasm\nkaizen plugin check __FILE__.wasm\n```\n";
    write(
        dir,
        &[
            ("app.py", fill(app, kind, name)),
            ("test_app.py", fill(test, kind, name)),
            ("README.md", fill(readme, kind, name)),
            (".gitignore", "__pycache__/\nwit_world/\ncomponentize_py_*\npoll_loop.py\n*.wasm\n".into()),
        ],
    )
}

/// JavaScript (jco, QuickJS backend): the logic in `logic.js` (plain
/// JavaScript, tested with `node --test`), the world's exports in
/// `plugin.js`, bundled into the component by jco.
pub fn js(dir: &Path, kind: Kind, name: &str) -> anyhow::Result<()> {
    let (logic, plugin, test) = match kind {
        Kind::Detector => (JS_DETECTOR_LOGIC, JS_DETECTOR, JS_DETECTOR_TEST),
        Kind::Recovery => (JS_RECOVERY_LOGIC, JS_RECOVERY, JS_RECOVERY_TEST),
        Kind::Unit => (JS_UNIT_LOGIC, JS_UNIT, JS_UNIT_TEST),
    };
    let readme = "# __NAME__ — a Kaizen __WORLD__ in JavaScript\n\n```sh\nnpm install\nnpm test          # logic.js, natively with node --test\nnpm run build     # jco componentize (QuickJS backend) → __FILE__.wasm\nkaizen plugin check __FILE__.wasm\n```\n";
    write(
        dir,
        &[
            ("package.json", fill(JS_PACKAGE, kind, name)),
            ("logic.js", fill(logic, kind, name)),
            ("plugin.js", fill(plugin, kind, name)),
            ("logic.test.js", fill(test, kind, name)),
            ("README.md", fill(readme, kind, name)),
            (".gitignore", "node_modules/\n*.wasm\n".into()),
        ],
    )
}

/// C (clang + wasi-libc): `plugin.c` and a Makefile whose `test` target
/// builds the component and has the host check it.
pub fn c(dir: &Path, kind: Kind, name: &str) -> anyhow::Result<()> {
    let source = match kind {
        Kind::Detector => C_DETECTOR,
        Kind::Recovery => C_RECOVERY,
        Kind::Unit => C_UNIT,
    };
    let readme = "# __NAME__ — a Kaizen __WORLD__ in C\n\nNeeds clang, lld and wasi-libc (Debian: `apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32`) and `kaizen` on PATH (or `make KAIZEN=path/to/kaizen`).\n\n```sh\nmake        # kaizen plugin bindings → clang → kaizen plugin componentize → __FILE__.wasm\nmake test   # build, then the host checks world and self-description\n```\n";
    write(
        dir,
        &[
            ("plugin.c", fill(source, kind, name)),
            ("Makefile", fill(C_MAKEFILE, kind, name)),
            ("README.md", fill(readme, kind, name)),
            (".gitignore", "build/\n*.wasm\n".into()),
        ],
    )
}

const PY_DETECTOR: &str = r#""""Detector __NAME__: flags targets whose p95 latency is over a budget
(`budget_ms`, default 50, from the host's plugin configuration)."""

import wit_world
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="__NAME__", kind=types.PluginKind.DETECTOR, version="0.1.0",
                                description="p95 latency over a budget")

    def detect(self, input: types.DetectionInput) -> list[types.Finding]:
        budget = float(host.config("budget_ms") or 50)
        return [
            types.Finding(
                target=t.target, kind="__NAME__", severity=types.Severity.MEDIUM, confidence=0.8,
                summary=f"{t.target} p95 {t.current.latency.p95_ms:.1f} ms over a {budget} ms budget",
                evidence=[types.Evidence(key="p95_ms", value=str(t.current.latency.p95_ms))],
                expected_gain_pct=(1 - budget / t.current.latency.p95_ms) * 100, risk=types.Risk.LOW,
            )
            for t in input.targets
            if t.current.executions >= 20 and t.current.latency.p95_ms > budget
        ]
"#;

const PY_DETECTOR_TEST: &str = r#"import unittest

from wit_world.imports import host, types

host.config = lambda key: None  # natively there is no host: defaults apply
from app import WitWorld


def target(p95):
    latency = types.LatencyStats(p50_ms=1.0, p95_ms=p95, p99_ms=p95, mean_ms=1.0, stddev_ms=0.5)
    window = types.WindowStats(duration_secs=60.0, executions=100, failures=0, success_rate=1.0,
                               latency=latency, throughput=1.7, errors=[])
    return types.TargetStats(target="api", version="1.0.0", current=window, baseline=None)


class Test(unittest.TestCase):
    def test_fires_over_budget_only(self):
        slow = types.DetectionInput(now_ms=0, targets=[target(80.0)], metrics=[])
        fast = types.DetectionInput(now_ms=0, targets=[target(2.0)], metrics=[])
        self.assertEqual(len(WitWorld().detect(slow)), 1)
        self.assertEqual(WitWorld().detect(fast), [])
        self.assertEqual(WitWorld().describe().kind, types.PluginKind.DETECTOR)
"#;

const PY_RECOVERY: &str = r#""""Recovery strategy __NAME__: retries timeouts and dependency failures
after `delay_ms` (default 50), up to `max_attempts` (default 2), then passes."""

import wit_world
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="__NAME__", kind=types.PluginKind.RECOVERY, version="0.1.0",
                                description="Retry after a fixed delay")

    def handles(self) -> list[types.ErrorClass]:
        return [types.ErrorClass_Timeout(), types.ErrorClass_Dependency()]

    def decide(self, failure: types.Failure) -> types.RecoveryAction:
        if failure.attempt > int(host.config("max_attempts") or 2):
            return types.RecoveryAction_Pass()
        return types.RecoveryAction_Retry(int(host.config("delay_ms") or 50))
"#;

const PY_RECOVERY_TEST: &str = r#"import unittest

from wit_world.imports import host, types

host.config = lambda key: None  # natively there is no host: defaults apply
from app import WitWorld


def failure(attempt):
    return types.Failure(target="api", version="1.0.0", error_class=types.ErrorClass_Timeout(), message="slow",
                         attempt=attempt, elapsed_ms=10, remaining_ms=1000, recent=[])


class Test(unittest.TestCase):
    def test_retries_then_passes(self):
        self.assertEqual(WitWorld().decide(failure(1)), types.RecoveryAction_Retry(50))
        self.assertEqual(WitWorld().decide(failure(3)), types.RecoveryAction_Pass())
"#;

const PY_UNIT: &str = r#""""Unit __NAME__: greets by name. Request `{"name": "Ada"}`, answer
`{"greeting": "Hello, Ada!"}`; a request without a name is refused with the
`invalid-input` class (raise `Err(UnitError(...))` to return an error)."""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import types


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(name="__NAME__", kind=types.PluginKind.UNIT, version="0.1.0",
                                description="Greets by name")

    def invoke(self, context: types.CallContext, request: bytes) -> bytes:
        try:
            name = json.loads(request)["name"]
        except (ValueError, KeyError, TypeError) as e:
            raise Err(types.UnitError(error_class=types.ErrorClass_InvalidInput(), message=f"bad request: {e}"))
        return json.dumps({"greeting": f"Hello, {name}!"}).encode()
"#;

const PY_UNIT_TEST: &str = r#"import json
import unittest

from componentize_py_types import Err
from wit_world.imports import types

from app import WitWorld

CTX = types.CallContext(attempt=1, scope_pct=None, deadline_ms=1000)


class Test(unittest.TestCase):
    def test_greets_and_refuses_nameless_requests(self):
        out = WitWorld().invoke(CTX, json.dumps({"name": "Ada"}).encode())
        self.assertEqual(json.loads(out), {"greeting": "Hello, Ada!"})
        with self.assertRaises(Err) as e:
            WitWorld().invoke(CTX, b"{}")
        self.assertIsInstance(e.exception.value.error_class, types.ErrorClass_InvalidInput)
"#;

const JS_PACKAGE: &str = r#"{
  "name": "__NAME__",
  "private": true,
  "type": "module",
  "scripts": {
    "test": "node --test",
    "build": "jco componentize plugin.js --wit wit --world-name __WORLD__ --backend quickjs --backend-qjs-disable-async --bundle -o __FILE__.wasm"
  },
  "devDependencies": {
    "@bytecodealliance/jco": "1.35.0"
  },
  "overrides": {
    "@bytecodealliance/preview2-shim": "0.25.0"
  }
}
"#;

const JS_DETECTOR_LOGIC: &str = r#"// Findings for targets whose p95 latency is over `budgetMs`.
export function slowTargets(input, budgetMs) {
  return input.targets
    .filter((t) => t.current.executions >= 20n && t.current.latency.p95Ms > budgetMs)
    .map((t) => ({
      target: t.target,
      kind: '__NAME__',
      severity: 'medium',
      confidence: 0.8,
      summary: `${t.target} p95 ${t.current.latency.p95Ms.toFixed(1)} ms over a ${budgetMs} ms budget`,
      evidence: [{ key: 'p95_ms', value: String(t.current.latency.p95Ms) }],
      expectedGainPct: (1 - budgetMs / t.current.latency.p95Ms) * 100,
      risk: 'low',
    }));
}
"#;

const JS_DETECTOR: &str = r#"import { config } from 'kaizen:plugin/host@0.1.0';
import { slowTargets } from './logic.js';

export function describe() {
  return { name: '__NAME__', kind: 'detector', version: '0.1.0', description: 'p95 latency over a budget' };
}

export function detect(input) {
  return slowTargets(input, Number(config('budget_ms') ?? 50));
}
"#;

const JS_DETECTOR_TEST: &str = r#"import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slowTargets } from './logic.js';

const target = (p95Ms) => ({ target: 'api', current: { executions: 100n, latency: { p95Ms } } });

test('fires over budget only', () => {
  assert.equal(slowTargets({ targets: [target(80)] }, 50).length, 1);
  assert.equal(slowTargets({ targets: [target(2)] }, 50).length, 0);
});
"#;

const JS_RECOVERY_LOGIC: &str = r#"// Retry timeouts and dependency failures after `delayMs`, up to `maxAttempts`.
export function decideFor(failure, delayMs, maxAttempts) {
  const handled = ['timeout', 'dependency'].includes(failure.errorClass.tag);
  if (!handled || failure.attempt > maxAttempts) return { tag: 'pass' };
  return { tag: 'retry', val: BigInt(delayMs) };
}
"#;

const JS_RECOVERY: &str = r#"import { config } from 'kaizen:plugin/host@0.1.0';
import { decideFor } from './logic.js';

export function describe() {
  return { name: '__NAME__', kind: 'recovery', version: '0.1.0', description: 'Retry after a fixed delay' };
}

export function handles() {
  return [{ tag: 'timeout' }, { tag: 'dependency' }];
}

export function decide(failure) {
  return decideFor(failure, Number(config('delay_ms') ?? 50), Number(config('max_attempts') ?? 2));
}
"#;

const JS_RECOVERY_TEST: &str = r#"import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideFor } from './logic.js';

test('retries then passes', () => {
  assert.deepEqual(decideFor({ errorClass: { tag: 'timeout' }, attempt: 1 }, 50, 2), { tag: 'retry', val: 50n });
  assert.deepEqual(decideFor({ errorClass: { tag: 'timeout' }, attempt: 3 }, 50, 2), { tag: 'pass' });
});
"#;

const JS_UNIT_LOGIC: &str = r#"// Greets by name; throws `{errorClass, message}` (the result's err case).
export function greet(text) {
  let req;
  try {
    req = JSON.parse(text);
  } catch (e) {
    throw { errorClass: { tag: 'invalid-input' }, message: `request is not JSON: ${e.message}` };
  }
  if (typeof req?.name !== 'string') throw { errorClass: { tag: 'invalid-input' }, message: 'missing "name"' };
  return JSON.stringify({ greeting: `Hello, ${req.name}!` });
}
"#;

const JS_UNIT: &str = r#"import { greet } from './logic.js';

// QuickJS has no TextEncoder / TextDecoder: UTF-8 through URI escapes.
const utf8Decode = (bytes) => decodeURIComponent(escape(String.fromCharCode(...bytes)));
const utf8Encode = (text) => Uint8Array.from(unescape(encodeURIComponent(text)), (c) => c.charCodeAt(0));

export function describe() {
  return { name: '__NAME__', kind: 'unit', version: '0.1.0', description: 'Greets by name' };
}

export function invoke(context, request) {
  return utf8Encode(greet(utf8Decode(request)));
}
"#;

const JS_UNIT_TEST: &str = r#"import { test } from 'node:test';
import assert from 'node:assert/strict';
import { greet } from './logic.js';

test('greets and refuses nameless requests', () => {
  assert.deepEqual(JSON.parse(greet('{"name":"Ada"}')), { greeting: 'Hello, Ada!' });
  assert.throws(() => greet('{}'), (e) => e.errorClass.tag === 'invalid-input');
});
"#;

const C_MAKEFILE: &str = "# Builds __FILE__.wasm: bindings and component by kaizen, the core module by clang.\nKAIZEN ?= kaizen\nCC := clang\nCFLAGS := --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror -Ibuild\n\n__FILE__.wasm: build/core.wasm\n\t$(KAIZEN) plugin componentize build/core.wasm -o $@\n\nbuild/core.wasm: plugin.c build/__WORLD__.c\n\t$(CC) $(CFLAGS) -o $@ plugin.c build/__WORLD__.c build/__WORLD___component_type.o\n\nbuild/__WORLD__.c:\n\t$(KAIZEN) plugin bindings __WORLD__ --out build\n\ntest: __FILE__.wasm\n\t$(KAIZEN) plugin check __FILE__.wasm\n\nclean:\n\trm -rf build __FILE__.wasm\n\n.PHONY: test clean\n";

const C_DETECTOR: &str = r#"/* Detector __NAME__: flags targets whose p95 latency is over 50 ms. */
#include <stdio.h>
#include <stdlib.h>

#include "detector.h"

void exports_detector_describe(detector_plugin_info_t *ret) {
    detector_string_dup(&ret->name, "__NAME__");
    ret->kind = KAIZEN_PLUGIN_TYPES_PLUGIN_KIND_DETECTOR;
    detector_string_dup(&ret->version, "0.1.0");
    detector_string_dup(&ret->description, "p95 latency over a budget");
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
    }
    detector_detection_input_free(input);
}
"#;

const C_RECOVERY: &str = r#"/* Recovery strategy __NAME__: retries timeouts and dependency failures after
 * 50 ms, twice, then passes. */
#include <stdlib.h>

#include "recovery.h"

void exports_recovery_describe(recovery_plugin_info_t *ret) {
    recovery_string_dup(&ret->name, "__NAME__");
    ret->kind = KAIZEN_PLUGIN_TYPES_PLUGIN_KIND_RECOVERY;
    recovery_string_dup(&ret->version, "0.1.0");
    recovery_string_dup(&ret->description, "Retry after a fixed delay");
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
"#;

const C_UNIT: &str = r#"/* Unit __NAME__: answers "hello, " followed by the request; an empty
 * request is refused with the invalid-input class. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

void exports_unit_describe(unit_plugin_info_t *ret) {
    unit_string_dup(&ret->name, "__NAME__");
    ret->kind = KAIZEN_PLUGIN_TYPES_PLUGIN_KIND_UNIT;
    unit_string_dup(&ret->version, "0.1.0");
    unit_string_dup(&ret->description, "Says hello");
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
"#;
