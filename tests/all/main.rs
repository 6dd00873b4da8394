//! End-to-end tests: real components built from source, a real host, real
//! files. One binary, one module per concern (as in wasmtime's tests/all).

mod api_errors;
mod author_tools;
mod bad_input;
mod bundled;
mod call_attempts;
mod candidate_queue;
mod change_windows;
mod common;
mod contract;
mod dashboard;
#[path = "../support/examples.rs"]
mod examples;
mod findings;
mod fleet;
mod guest_output;
mod health;
mod hostile;
mod hot_swap;
mod improvement_loop;
mod improvers;
mod instances;
mod judging;
mod kaizen_bin;
mod metric_rules;
mod nesting;
mod openapi_conformance;
mod operator_cli;
mod polyglot;
mod predictions;
mod presets;
mod proving;
mod recovery;
mod rollout_ownership;
mod scheduling;
mod sdks;
mod serve;
mod store;
mod supervision;
mod telemetry;
mod traffic_hours;
mod tuning;
mod versions;
mod watch_folder;
mod webhooks;
