//! The `unitarmor` command: parses the command line and runs one subcommand.

use clap::Parser;

use unitarmor::cli::{self, Cli, Command};
use unitarmor::{daemon, journal, kernel};

fn main() {
    let cli = Cli::parse();
    let daemon = matches!(cli.command, Command::Daemon { .. });
    journal::init(daemon);
    let result = match cli.command {
        Command::Daemon { sub_cgroups } => daemon_runtime()
            .and_then(|rt| rt.block_on(daemon::run(sub_cgroups)))
            .map(|()| 0),
        Command::Check {
            policy,
            against_journal: true,
            since,
        } => cli::check_against_journal(&policy, since.as_deref()),
        Command::Check { policy, .. } => cli::check(&policy),
        Command::Show(args) => cli::show(&args),
        Command::Status {
            unit,
            json,
            usage,
            rules,
        } => runtime().and_then(|rt| rt.block_on(cli::status(unit.as_deref(), json, usage, rules))),
        Command::Analyze { unit, json } => {
            runtime().and_then(|rt| rt.block_on(cli::analyze(unit.as_deref(), json)))
        }
        Command::Logs {
            unit,
            follow,
            since,
            audit,
            json,
        } => cli::logs(unit.as_deref(), follow, since.as_deref(), audit, json),
        Command::Learn(args) => cli::learn(&args),
        Command::Suggest(args) => cli::suggest(&args),
        Command::GenerateDocs { dir } => cli::generate_docs(&dir),
        Command::Sync { user_manager } => Ok(daemon::sync::sync_command(user_manager)),
        Command::Disarm => kernel::disarm().map(|removed| {
            if removed {
                println!("removed {}", kernel::PIN_DIR);
            } else {
                println!("nothing pinned under {}", kernel::PIN_DIR);
            }
            if kernel::wait_unloaded(std::time::Duration::from_secs(20)) {
                println!("no unitarmor program is loaded: enforcement has stopped");
                0
            } else {
                println!(
                    "unitarmor programs are still loaded; enforcement stops once no unitarmor \
                     daemon runs (systemctl stop unitarmor)"
                );
                1
            }
        }),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("unitarmor: {e:#}");
            let code = if e.is::<daemon::Unsupported>() {
                daemon::Unsupported::EXIT_CODE
            } else {
                1
            };
            std::process::exit(code);
        }
    }
}

/// The daemon's runtime: its main loop runs on the calling thread, and one worker serves the
/// bus (the API, systemd's signals) meanwhile, so that `unitarmor status` answers while a pass
/// over a thousand units' files or a big policy's compile holds the main loop.
fn daemon_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One malloc arena for both threads: glibc gives a second thread an arena of its own,
    // which held some 3 MiB more with 1,000 armored units (thousand.sh), for a worker that
    // allocates little.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; no other thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
