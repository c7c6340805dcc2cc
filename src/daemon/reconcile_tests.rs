use super::*;

fn never() -> bool {
    panic!("asked needlessly")
}

#[test]
fn only_instances_of_armored_templates_are_forgotten() {
    // A unit of its own, or an instance of a template that is not armored (armored by a
    // drop-in of its own): its expected entry is its only binding at creation.
    assert_eq!(unload_action(false, true, never, never), Unload::Keep);
    assert_eq!(unload_action(false, false, never, never), Unload::Keep);
    // Running under the template's policy: only the record goes.
    assert_eq!(unload_action(true, false, never, never), Unload::Forget);
}

#[test]
fn a_slot_of_its_own_is_freed_when_nothing_needs_it() {
    assert_eq!(unload_action(true, true, || false, || false), Unload::Free);
    // A drop-in of its own on disk: armored ahead of its next start.
    assert_eq!(unload_action(true, true, || true, never), Unload::Forget);
    // A cgroup still bound to it.
    assert_eq!(unload_action(true, true, || false, || true), Unload::Forget);
}
