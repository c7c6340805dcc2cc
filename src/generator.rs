//! `unitarmor-generator`: the systemd generator (daemon/sync_client.rs: `generator`), which
//! systemd runs and waits for inside every `daemon-reload`. A binary of its own, so that what
//! each reload starts loads nothing but this (not libbpf, libelf, tokio or zbus).

fn main() {
    // systemd passes its three output directories and nothing else.
    let dirs: Vec<_> = std::env::args_os()
        .skip(1)
        .take(3)
        .map(std::path::PathBuf::from)
        .collect();
    std::process::exit(unitarmor::daemon::sync::generator(&dirs));
}
