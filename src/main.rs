mod compile;
mod kernel;
mod policy;
fn main() {}
