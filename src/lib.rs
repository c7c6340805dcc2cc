//! unitarmor: confines systemd services with BPF LSM programs, configured from unit drop-ins.
//!
//! The data flow is the module structure: drop-in text ([`policy`]) -> compiled kernel tables
//! ([`compile`]) -> BPF maps and programs ([`kernel`]) -> events -> journal records
//! ([`journal`]), or, for units in learn mode, [`learned`] records; [`systemd`] and [`daemon`] keep the kernel in step with systemd, [`api`]
//! reports over D-Bus, [`cli`] is the command line.

pub mod api;
pub mod cli;
pub mod compile;
pub mod daemon;
pub mod journal;
pub mod kernel;
pub mod learned;
pub mod policy;
pub mod systemd;
