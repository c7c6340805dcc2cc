//! Compiles the BPF programs in `bpf/` into a libbpf-rs skeleton (`$OUT_DIR/unitarmor.skel.rs`).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "bpf/unitarmor.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-Ibpf", "-Wall", "-Werror"])
        .build_and_generate(out.join("unitarmor.skel.rs"))
        .unwrap_or_else(|e| panic!("building {SRC}: {e:#}"));
    println!("cargo:rerun-if-changed=bpf");
}
