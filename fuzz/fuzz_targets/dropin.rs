//! Fuzzes the drop-in parser, the rule parser, the lint and the compiler with arbitrary bytes:
//! none of them may panic or hang, whatever a drop-in holds.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use unitarmor::compile;
use unitarmor::policy::dropin::{self, Entry};
use unitarmor::policy::specifiers::UnitName;
use unitarmor::policy::{lint, Class, Diagnostics, Mode, Policy, Rule};

fuzz_target!(|data: &[u8]| {
    let mut diags = Diagnostics::default();
    let file = dropin::parse(Path::new("/fuzz.conf"), data, &mut diags);
    let unit = UnitName::new("fuzz@instance.service");
    let rules: Vec<Rule> = file
        .entries
        .into_iter()
        .filter_map(|e| match e {
            Entry::Policy(text, src) => Rule::parse(&text, Some(&unit), src).ok(),
            _ => None,
        })
        .take(16)
        .collect();
    let policy = Policy { mode: Mode::Enforce, rules, configured: true };
    lint::lint(&policy, &mut diags);
    for d in &diags.0 {
        let _ = d.to_string();
    }
    if let Ok(tables) = compile::compile(&policy) {
        for class in [Class::Read, Class::Write, Class::Exec] {
            let _ = tables.decide(class, data);
        }
    }
});
