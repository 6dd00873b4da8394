//! Kaizen as a service: `kaizen serve` assembled from the host library —
//! configuration, tokens, the HTTP API (with its OpenAPI document, event
//! stream, Prometheus metrics and dashboard), the watch folder and webhook
//! notifications. Data flows one way: calls and telemetry come in through
//! the API, the host records them, the loop and the safety controller act,
//! and what they did flows out as events to the stream, the webhooks and the
//! dashboard.

pub mod api;
pub mod config;
pub mod error;
pub mod serve;
pub mod tokens;
pub mod views;
pub mod watch;
pub mod webhooks;

pub use config::ServeConfig;
pub use serve::Service;
