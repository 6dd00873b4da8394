//! Test unit `hostile` 0.2.0: the same source as test-hostile, another version.

#[path = "../../hostile/src/lib.rs"]
mod hostile;
