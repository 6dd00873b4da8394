//! Kaizen's host library.
//!
//! Layers, from the ground up (each may use only those below it):
//! `runtime` (engine, sandbox, slots, hot swap) and `config`; everything
//! else (store, telemetry, the loop, the API) builds on these.

pub mod config;
pub mod invoke;
pub mod judge;
pub mod runtime;
pub mod store;
pub mod telemetry;

pub use config::{Grants, RuntimeConfig, SandboxLimits};
pub use runtime::{CallError, LoadError, LoadReason, Plugin, Runtime, Slot};
