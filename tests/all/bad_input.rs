//! Bad modules of every kind are refused with one clear error naming the
//! file and the reason; nothing is registered and what serves keeps serving.

use kaizen_host::LoadReason;
use kaizen_plugins as guests;

use crate::common::{install, runtime};

fn assert_refused(bytes: &[u8], label: &str, expect: impl Fn(&LoadReason) -> bool, words: &str) {
    let (_dir, rt) = runtime();
    let serving = install(&rt, &guests::UNIT_CALCULATOR_V2);
    let slots_before = rt.slots().len();
    let err = rt.load(label, bytes).expect_err("must be refused");
    assert!(expect(&err.reason), "{label}: unexpected reason {:?}", err.reason);
    let text = err.to_string();
    assert!(text.starts_with(label), "error names the file: {text}");
    assert!(text.to_lowercase().contains(words), "error says why ({words}): {text}");
    assert_eq!(rt.slots().len(), slots_before, "nothing registered");
    assert_eq!(rt.slot("calculator").unwrap().current().id(), serving.id(), "serving version unchanged");
}

#[test]
fn text_file() {
    assert_refused(
        b"#!/bin/sh\necho not wasm\n",
        "script.wasm",
        |r| matches!(r, LoadReason::NotWasm),
        "not a webassembly",
    );
}

#[test]
fn empty_file() {
    assert_refused(b"", "empty.wasm", |r| matches!(r, LoadReason::Empty), "empty");
}

#[test]
fn core_module() {
    let core = wat::parse_str("(module (func (export \"run\")))").unwrap();
    assert_refused(&core, "core.wasm", |r| matches!(r, LoadReason::CoreModule), "not a component");
}

#[test]
fn truncated_component() {
    let bytes = guests::UNIT_CALCULATOR_V1.load().unwrap();
    let half = &bytes[..bytes.len() / 2];
    assert_refused(half, "truncated.wasm", |r| matches!(r, LoadReason::Invalid(_)), "invalid component");
}

#[test]
fn component_of_an_unknown_world() {
    let bytes = guests::TEST_UNKNOWN_WORLD.load().unwrap();
    assert_refused(&bytes, "command.wasm", |r| matches!(r, LoadReason::UnknownWorld { .. }), "wasi:cli/run");
}

#[test]
fn component_importing_what_the_host_lacks() {
    let bytes = guests::TEST_BAD_IMPORT.load().unwrap();
    assert_refused(&bytes, "exfil.wasm", |r| matches!(r, LoadReason::ForbiddenImport(_)), "test:bad-import/exfiltrate");
}

#[test]
fn oversized_module() {
    let (_dir, rt) = crate::common::runtime_with(|c| c.max_module_bytes = 1024);
    let bytes = guests::UNIT_CALCULATOR_V2.load().unwrap();
    let err = rt.load("big.wasm", &bytes).unwrap_err();
    assert!(matches!(err.reason, LoadReason::TooLarge { .. }));
    assert!(err.to_string().contains("1024-byte"), "{err}");
}

#[test]
fn wrong_kind_into_a_slot_is_refused() {
    let (_dir, rt) = runtime();
    install(&rt, &guests::UNIT_CALCULATOR_V2);
    // A detector cannot take over a unit's slot, even with a colliding name:
    // slot checks compare kind and name before anything changes.
    let det = rt.load("det", &guests::DETECTOR_ANOMALY.load().unwrap()).unwrap();
    let slot = rt.slot("calculator").unwrap();
    let before = slot.current().id().to_string();
    assert!(slot.swap(det).is_err());
    assert_eq!(slot.current().id(), before);
}
