//! Test unit `busy` 3.0.0: 20 % more work per call than 1.0.0, a
//! regression the judge must catch.

#[path = "../../busy-v1/src/busy.rs"]
mod busy;
busy_unit!(1.2);
