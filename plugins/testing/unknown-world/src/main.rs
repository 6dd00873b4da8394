//! A plain WASI command: a real component, but of `wasi:cli/command`, not of
//! any `kaizen:plugin` world. The host must refuse it by name.
fn main() {
    println!("hello from a world Kaizen does not host");
}
