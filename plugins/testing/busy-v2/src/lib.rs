//! Test unit `busy` 2.0.0: the same code as 1.0.0 under another version.

#[path = "../../busy-v1/src/busy.rs"]
mod busy;
busy_unit!(1.0);
