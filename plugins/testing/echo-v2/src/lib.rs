//! Test unit `echo` 2.0.0: the same source as echo-v1, another version.

#[path = "../../echo-v1/src/lib.rs"]
mod echo;
