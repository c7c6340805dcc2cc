//! The compiler's benchmark, on the host: how long a policy of N rules takes to compile and how
//! large its kernel tables are, for N from 10 to 10,000 (the benchmark issue's range). Each
//! policy is the shape the benchmark's guest units use: ten ordinary rules with `*`, `?` and
//! `**` globs, then `deny read /opt/nothing/K/**` up to N. Each size is compiled five times
//! and the median reported, with rules per second, accepting DFA states and packed cells; a policy the
//! compiler refuses is reported with the time the refusal took.
//!
//! Usage: `cargo run --release --example compile_bench [SIZES...]`.

use std::time::{Duration, Instant};

use unitarmor::compile;
use unitarmor::policy::{Policy, Rule, Source};

const ORDINARY: [&str; 10] = [
    "deny read /etc/shadow /etc/gshadow",
    "deny write /etc/ /usr/ /boot/",
    "allow exec /usr/bin/* /usr/lib/x86_64-linux-gnu/**",
    "audit read /srv/www/**",
    "deny read /home/*/.ssh/**",
    "deny write /var/log/*.log?",
    "allow read /usr/ /etc/ /srv/ /opt/ /var/lib/app/ /proc/ /sys/ /dev/",
    "deny read /var/lib/app/secret-?/**",
    "deny exec /tmp/** /dev/shm/**",
    "allow write /var/lib/app/ /run/app/ /tmp/ /dev/null",
];

fn policy(n: usize) -> Policy {
    let lines = ORDINARY
        .iter()
        .map(|r| r.to_string())
        .chain((ORDINARY.len()..n).map(|k| format!("deny read /opt/nothing/{k}/**")))
        .take(n);
    Policy {
        rules: lines
            .enumerate()
            .map(|(i, text)| {
                Rule::parse(&text, None, Source::new("/bench.conf", i + 1)).expect("rule parses")
            })
            .collect(),
        configured: true,
        ..Default::default()
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes are numbers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1, 10, 100, 1_000, 4_000, 10_000]
    } else {
        sizes
    };
    let t = Instant::now();
    let shared = compile::protections();
    println!(
        "implicit protections (one table shared by every policy): {} accepting, {} cells, \
         compiled once in {:.1} ms",
        shared.accept.len(),
        shared.cells.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "{:>7} {:>11} {:>13} {:>9} {:>10}  result",
        "rules", "median ms", "rules/s", "accepting", "cells"
    );
    for n in sizes {
        let p = policy(n);
        let mut times = Vec::new();
        let mut outcome = None;
        for _ in 0..5 {
            let t = Instant::now();
            let r = compile::compile_for(&p, Some("/system.slice/bench.service"));
            times.push(t.elapsed());
            outcome = Some(r);
        }
        times.sort();
        let median: Duration = times[times.len() / 2];
        let rate = n as f64 / median.as_secs_f64();
        match outcome.expect("compiled at least once") {
            Ok(t) => println!(
                "{n:>7} {:>11.1} {rate:>13.0} {:>9} {:>10}  ok",
                median.as_secs_f64() * 1e3,
                t.accept.len(),
                t.cells.len()
            ),
            Err(e) => println!(
                "{n:>7} {:>11.1} {rate:>13.0} {:>9} {:>10}  refused: {e}",
                median.as_secs_f64() * 1e3,
                "-",
                "-"
            ),
        }
    }
}
