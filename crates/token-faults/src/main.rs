//! `token-faults`: the checking half of `cargo xtask faults`.
//!
//! xtask starts and breaks the processes (PostgreSQL, Redis, the reference service);
//! this tool puts the load on the service and checks what must survive:
//!
//! - `load` — logins, refresh rotations (some raced), API keys and logouts against a
//!   running service for a bounded time, revoked credentials tried again; reads
//!   `fault` / `healed` lines on standard input to time the recovery. Prints its row.
//! - `check-db` — the refresh tables after a fault: one live token per live family, no
//!   token with two successors, and on SQLite `PRAGMA integrity_check`.
//! - `clock` — the library with an injected clock stepped back and forward by minutes.
//! - `disk-full` — the library on SQLite in a directory of a small file system, filled.
//! - `hostile` — slow and hostile clients against a running service.
//! - `kek` — a key-encryption key for the service's `--kek-file`.
//!
//! Every scenario prints one JSON row (see [`row::Row`]) on standard output.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod check;
mod clock;
mod disk;
mod hostile;
mod load;
mod row;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "token-faults", about = "tessera's fault-injection checks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A bounded load against a running reference service.
    Load(LoadArgs),
    /// Checks the refresh tables of a database.
    CheckDb {
        /// `sqlite://PATH` or `postgres://…`.
        #[arg(long)]
        database_url: String,
    },
    /// The library under clock steps (an injected clock).
    Clock {
        /// Clock steps.
        #[arg(long, default_value_t = 200)]
        steps: u32,
    },
    /// The library on SQLite on a full file system.
    DiskFull {
        /// A directory on a small file system (a size-limited tmpfs).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Slow and hostile clients against a running reference service.
    Hostile(hostile::Args),
    /// Writes a new key-encryption key (`k4.local` PASERK) for the service's
    /// `--kek-file`.
    Kek {
        /// Where to write it (created, never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct LoadArgs {
    #[arg(long)]
    url: String,
    /// The scenario's name in the row.
    #[arg(long)]
    name: String,
    /// The backends, as the row names them.
    #[arg(long)]
    backend: String,
    /// A users file (`name:password` lines), as the service reads it.
    #[arg(long)]
    users_file: PathBuf,
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds a request may take before it is a hang.
    #[arg(long, default_value_t = 15)]
    request_timeout: u64,
    /// Milliseconds a revoked credential may still be accepted.
    #[arg(long, default_value_t = 2000)]
    revocation_bound_ms: u64,
    /// Seconds the service's refresh grace window lasts.
    #[arg(long, default_value_t = 10)]
    refresh_grace: u64,
    /// Seconds the final checks may wait for the service.
    #[arg(long, default_value_t = 30)]
    settle: u64,
}

fn users(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(n, p)| (n.to_owned(), p.to_owned()))
        .collect())
}

async fn run(cli: Cli) -> anyhow::Result<String> {
    let json = match cli.command {
        Command::Load(a) => {
            let settings = load::Settings {
                url: a.url.trim_end_matches('/').to_owned(),
                users: users(&a.users_file)?,
                workers: a.workers,
                duration: Duration::from_secs(a.seconds),
                request_timeout: Duration::from_secs(a.request_timeout),
                revocation_bound: Duration::from_millis(a.revocation_bound_ms),
                refresh_grace: Duration::from_secs(a.refresh_grace),
                settle: Duration::from_secs(a.settle),
            };
            serde_json::to_string(&load::run(settings, &a.name, &a.backend).await?)?
        }
        Command::CheckDb { database_url } => {
            let found = if let Some(path) = database_url.strip_prefix("sqlite://") {
                check::sqlite(std::path::Path::new(path))?
            } else {
                check::postgres(&database_url).await?
            };
            serde_json::to_string(&found)?
        }
        Command::Clock { steps } => serde_json::to_string(&clock::run(steps).await?)?,
        Command::DiskFull { dir } => serde_json::to_string(&disk::run(&dir).await?)?,
        Command::Hostile(args) => serde_json::to_string(&hostile::run(args).await?)?,
        Command::Kek { out } => {
            use secrecy::ExposeSecret as _;
            use std::io::Write as _;
            let kek = token_policy::keystore::Kek::generate()?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            file.write_all(kek.to_paserk().expose_secret().as_bytes())?;
            serde_json::to_string(&serde_json::json!({ "kek": out }))?
        }
    };
    Ok(json)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("token-faults: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("token-faults: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
