//! End-to-end tests: real components built from source, a real host, real
//! files. One binary, one module per concern (as in wasmtime's tests/all).

mod bad_input;
mod bundled;
mod common;
mod hostile;
mod hot_swap;
mod improvement_loop;
mod judge_trials;
mod store;
mod telemetry;
