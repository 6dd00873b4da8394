//! Guests that loop, balloon, recurse or trap cost one failed call each,
//! classified, and never the host: the next call on a good plugin works.

use std::time::{Duration, Instant};

use kaizen_host::SandboxLimits;
use kaizen_host::runtime::blocking::block_on;
use kaizen_host::runtime::types::ErrorClass;
use kaizen_plugins as guests;

use crate::common::{ctx, install, json, runtime_with};

fn setup() -> (tempfile::TempDir, std::sync::Arc<kaizen_host::Runtime>) {
    runtime_with(|c| {
        c.plugin_limits.insert(
            "hostile".into(),
            SandboxLimits { deadline: Duration::from_millis(200), memory_bytes: 32 << 20, ..Default::default() },
        );
    })
}

fn good_call_still_works(rt: &kaizen_host::Runtime) {
    let out =
        block_on(rt.call_unit("calculator", &ctx(), &json(serde_json::json!({"op": "add", "a": 1, "b": 1})))).unwrap();
    assert_eq!(out.output, br#"{"result":2}"#);
}

#[test]
fn infinite_loop_times_out_at_the_deadline() {
    let (_dir, rt) = setup();
    install(&rt, &guests::UNIT_CALCULATOR_V2);
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    let started = Instant::now();
    let err = block_on(hostile.invoke(&ctx(), b"loop")).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.class, ErrorClass::Timeout, "{err}");
    assert!(err.message.contains("200 ms"), "{err}");
    // Interrupted at the deadline, not left running: generous slack for a
    // loaded CI machine, but far below "forever".
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "{took:?}");
    good_call_still_works(&rt);
    // The hostile plugin itself answers its next (benign) call.
    assert_eq!(block_on(hostile.invoke(&ctx(), b"hi")).unwrap(), b"hi");
}

#[test]
fn memory_growth_is_a_memory_error() {
    let (_dir, rt) = setup();
    install(&rt, &guests::UNIT_CALCULATOR_V2);
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    let err = block_on(hostile.invoke(&ctx(), b"balloon")).unwrap_err();
    assert_eq!(err.class, ErrorClass::Memory, "{err}");
    assert!(err.message.contains(&(32u64 << 20).to_string()), "{err}");
    good_call_still_works(&rt);
    assert_eq!(block_on(hostile.invoke(&ctx(), b"ok")).unwrap(), b"ok");
}

#[test]
fn deep_recursion_is_a_trap() {
    let (_dir, rt) = setup();
    install(&rt, &guests::UNIT_CALCULATOR_V2);
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    let err = block_on(hostile.invoke(&ctx(), b"recurse")).unwrap_err();
    // Either the wasm stack limit (a stack-overflow trap) or the guest's own
    // shadow stack running into its data: a trap, never a host crash.
    assert!(matches!(err.class, ErrorClass::Trap(_)), "{err}");
    good_call_still_works(&rt);
}

/// `[runtime.limits] stack_bytes` is the wasm stack a call may use: the
/// same recursion overflows the default 1 MiB and fits in 64 MiB.
#[test]
fn the_wasm_stack_is_as_large_as_configured() {
    let (_dir, rt) = setup();
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    assert_eq!(block_on(hostile.invoke(&ctx(), b"depth:1000")).unwrap(), b"1000");
    let err = block_on(hostile.invoke(&ctx(), b"depth:200000")).unwrap_err();
    let ErrorClass::Trap(cause) = &err.class else { panic!("expected a trap, got {err}") };
    assert!(cause.contains("stack"), "a stack overflow: {cause}");

    let (_dir, rt) = crate::common::runtime_with(|c| c.limits.stack_bytes = 64 << 20);
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    assert_eq!(block_on(hostile.invoke(&ctx(), b"depth:200000")).unwrap(), b"200000");
}

#[test]
fn a_stack_size_out_of_range_is_refused_at_start() {
    for bytes in [1024, 1 << 30] {
        let err = crate::kaizen_bin::refused(&format!("[runtime.limits]\nstack_bytes = {bytes}\n"), &[]);
        assert!(
            err.contains(&format!("`runtime.limits.stack_bytes` = {bytes}: must be between 65536 and 67108864")),
            "{err}"
        );
    }
    let err = crate::kaizen_bin::refused("[runtime.plugin_limits.calculator]\nstack_bytes = 4096\n", &[]);
    assert!(err.contains("`runtime.plugin_limits.calculator.stack_bytes` = 4096"), "{err}");
}

#[test]
fn a_panicking_guest_is_a_trap_with_its_message() {
    let (_dir, rt) = setup();
    install(&rt, &guests::UNIT_CALCULATOR_V2);
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    let err = block_on(hostile.invoke(&ctx(), b"trap")).unwrap_err();
    let ErrorClass::Trap(cause) = &err.class else { panic!("expected a trap, got {err}") };
    assert!(cause.contains("hostile guest asked to trap"), "{cause}");
    good_call_still_works(&rt);
}

/// A unit may fill its memory cap with an answer; the host keeps at most
/// the unit's output limit and fails the call with its own class beyond it.
#[test]
fn an_answer_over_the_output_limit_fails_with_its_own_class() {
    let (_dir, rt) = setup();
    install(&rt, &guests::UNIT_CALCULATOR_V2);
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    let err = block_on(hostile.invoke(&ctx(), b"flood")).unwrap_err();
    assert_eq!(err.class, ErrorClass::Other("output-too-large".into()), "{err}");
    assert!(err.message.contains("16777216 bytes") && err.message.contains("max_output_bytes"), "{err}");
    good_call_still_works(&rt);

    let (_dir, rt) = runtime_with(|c| {
        c.plugin_limits.insert("hostile".into(), SandboxLimits { max_output_bytes: 32 << 20, ..Default::default() });
    });
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    assert_eq!(block_on(hostile.invoke(&ctx(), b"flood")).unwrap().len(), 16 << 20, "a raised limit lets it through");
}

#[test]
fn warm_instances_are_recreated_after_a_trap() {
    let (_dir, rt) = setup();
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    hostile.set_warm(true);
    assert_eq!(block_on(hostile.invoke(&ctx(), b"a")).unwrap(), b"a");
    assert_eq!(hostile.warm_count(), 1);
    assert!(block_on(hostile.invoke(&ctx(), b"trap")).is_err());
    // The trapped instance was dropped (it cannot be entered again); the
    // next call gets a fresh one and succeeds.
    assert_eq!(hostile.warm_count(), 0);
    assert_eq!(block_on(hostile.invoke(&ctx(), b"b")).unwrap(), b"b");
    assert_eq!(hostile.warm_count(), 1);
}

#[test]
fn fuel_budget_stops_a_loop_too() {
    let (_dir, rt) = runtime_with(|c| {
        c.plugin_limits.insert(
            "hostile".into(),
            SandboxLimits {
                deadline: Duration::from_secs(30),
                memory_bytes: 32 << 20,
                fuel: Some(50_000_000),
                ..Default::default()
            },
        );
    });
    let hostile = install(&rt, &guests::TEST_HOSTILE);
    let err = block_on(hostile.invoke(&ctx(), b"loop")).unwrap_err();
    assert_eq!(err.class, ErrorClass::Timeout);
    assert!(err.message.contains("fuel"), "{err}");
    assert_eq!(block_on(hostile.invoke(&ctx(), b"x")).unwrap(), b"x");
}
