//! The `roster` binary.
fn main() {}
