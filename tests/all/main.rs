//! End-to-end tests: real components built from source, a real host, real
//! files. One binary, one module per concern (as in wasmtime's tests/all).

mod bad_input;
mod bundled;
mod common;
mod health;
mod hostile;
mod hot_swap;
mod improvement_loop;
mod judge_trials;
mod recovery;
mod store;
mod telemetry;
