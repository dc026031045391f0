//! Small helpers shared by the tasks.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A task's error: a message for the terminal.
pub(crate) type Error = Box<dyn std::error::Error>;
/// A task's result.
pub(crate) type Result<T = ()> = std::result::Result<T, Error>;

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `cargo`, as the one running us.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it; an unsuccessful exit is an error naming `what`.
pub(crate) fn exec(what: &str, cmd: &mut Command) -> Result {
    println!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})").into())
    }
}

/// Runs `cmd` quietly and returns its stdout, or an error with its stderr.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into())
    }
}

/// Whether `program --version` runs.
pub(crate) fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Prints a step banner with the time elapsed since the task started.
pub(crate) fn step(name: &str) {
    let elapsed = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs();
    println!("\n==> [{:>2}:{:02}] {name}", elapsed / 60, elapsed % 60);
}
