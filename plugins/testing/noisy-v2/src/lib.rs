//! Test unit `noisy` 2.0.0: the same source as noisy-v1, another version.

#[path = "../../noisy-v1/src/lib.rs"]
mod noisy;
