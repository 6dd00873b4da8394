//! Kaizen's host library.
//!
//! Layers, from the ground up (each may use only those below it):
//! `runtime` (engine, sandbox, slots, hot swap) and `config`; everything
//! else (store, telemetry, the loop, the API) builds on these.

pub mod audit;
pub mod config;
pub mod events;
pub mod findings;
pub mod fleet;
mod follow;
pub mod health;
pub mod host;
pub mod invoke;
pub mod judge;
#[path = "loop/mod.rs"]
pub mod r#loop;
pub mod metric_rules;
pub mod presets;
pub mod recovery;
pub mod runtime;
pub mod safety;
pub mod schedule;
pub mod settings;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod traffic;
pub mod wire;

pub use config::{Grants, RuntimeConfig, SandboxLimits};
pub use runtime::{CallError, LoadError, LoadReason, Plugin, Runtime, Slot};
