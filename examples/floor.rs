//! The benchmark's floor (tests/bench): loads a BPF object of empty programs (`return 0`)
//! on the hooks unitarmor uses, attaches every one the running kernel has, prints how many,
//! and holds them until stdin closes. What these cost is the least any BPF LSM on those hooks
//! can cost; unitarmor's overhead for unarmored processes is reported against it.
//!
//! Usage: `floor OBJECT.bpf.o` (tests/bench/run generates and compiles the object).

use std::io::Read;

use anyhow::{Context, Result};
use libbpf_rs::btf::Btf;
use libbpf_rs::ObjectBuilder;

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: floor OBJECT.bpf.o")?;
    let btf = Btf::from_vmlinux().context("reading the kernel's BTF")?;
    let mut open = ObjectBuilder::default()
        .open_file(&path)
        .with_context(|| format!("opening {path}"))?;
    let mut skipped = Vec::new();
    for mut prog in open.progs_mut() {
        // "lsm/NAME" needs bpf_lsm_NAME; "fentry/F", "fexit/F" need F; tracepoints are kept.
        let section = prog.section().to_string_lossy().into_owned();
        let needs = match section.split_once('/') {
            Some(("lsm", hook)) => Some(format!("bpf_lsm_{hook}")),
            Some(("fentry" | "fexit", func)) => Some(func.to_string()),
            _ => None,
        };
        if let Some(func) = needs {
            if btf
                .type_by_name::<libbpf_rs::btf::types::Func>(&func)
                .is_none()
            {
                prog.set_autoload(false);
                skipped.push(section);
            }
        }
    }
    let obj = open.load().context("loading the empty programs")?;
    let mut links = Vec::new();
    for prog in obj.progs_mut() {
        if !prog.autoload() {
            continue;
        }
        let section = prog.section().to_string_lossy().into_owned();
        links.push(
            prog.attach()
                .with_context(|| format!("attaching {section}"))?,
        );
    }
    println!(
        "floor: {} empty programs attached{}",
        links.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" (not on this kernel: {})", skipped.join(", "))
        }
    );
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink).ok();
    drop(links);
    Ok(())
}
