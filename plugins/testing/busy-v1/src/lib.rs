//! Test unit `busy` 1.0.0: fixed work per call (see `busy.rs`).

mod busy;
busy_unit!(1.0);
