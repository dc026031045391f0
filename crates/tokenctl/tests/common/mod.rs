//! Helpers for running the built `tokenctl` binary.
#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a run of `tokenctl` produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout, trimmed.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self.stdout.trim()
    }

    /// Asserts exit `code` with exactly one line on stderr, and returns that line.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        lines[0]
    }

    /// Asserts a rejection (exit 1, `rejected: <reason>…`) whose reason is one of the
    /// phrases every tessera crate shares (see [`shared_reason`]).
    #[track_caller]
    pub fn rejected(&self, reason: &str) {
        let line = self.fails(1);
        assert!(
            line.starts_with(&format!("rejected: {reason}")),
            "expected `rejected: {reason}`, got {line:?}"
        );
        assert!(
            shared_reason(line).is_some(),
            "not a shared reason: {line:?}"
        );
    }

    /// Asserts exit `code` with one line on stderr that starts with `prefix`.
    #[track_caller]
    pub fn fails_with(&self, code: i32, prefix: &str) {
        let line = self.fails(code);
        assert!(
            line.starts_with(prefix),
            "expected `{prefix}…`, got {line:?}"
        );
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// Runs `tokenctl` with `args`.
pub fn tokenctl<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    run_with_stdin(args, None)
}

/// Runs `tokenctl` with `args`, feeding `stdin`.
pub fn run_with_stdin<S: AsRef<std::ffi::OsStr>>(args: &[S], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenctl"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUST_BACKTRACE")
        .spawn()
        .expect("spawn tokenctl");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for tokenctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh directory under the target's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tokenctl-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// A directory that is never removed (for keys shared by every test of a binary).
    pub fn persistent(name: &str) -> PathBuf {
        let dir = Self::new(name);
        let path = dir.0.clone();
        std::mem::forget(dir);
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes a file and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// The path as a string argument.
    pub fn arg(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Unpadded base64url.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url.
pub fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

/// A compact JWS from a header and claims, with `signature` as its last segment.
pub fn jws(header: &serde_json::Value, claims: &serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// The current Unix time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .try_into()
        .expect("time")
}

/// Generates a key of `kind` into a new directory under `parent` and returns the
/// directory and the printed key id.
pub fn keygen(parent: &Path, kind: &str) -> (PathBuf, String) {
    let dir = parent.join(kind);
    let run = tokenctl(&["keygen", kind, "--out", &dir.display().to_string()]);
    let kid = run.ok().to_owned();
    (dir, kid)
}

/// `dir/name` as a string argument.
pub fn p(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The [`token_core::Reason`] a `rejected: …` line gives: the line is
/// `rejected: <phrase>` or `rejected: <phrase> (<detail>)`, `<phrase>` one of the shared
/// phrases.
pub fn shared_reason(line: &str) -> Option<token_core::Reason> {
    let rest = line.strip_prefix("rejected: ")?;
    token_core::Reason::ALL.into_iter().find(|r| {
        let phrase = r.as_str();
        rest == phrase
            || rest
                .strip_prefix(phrase)
                .is_some_and(|detail| detail.starts_with(" (") && detail.ends_with(')'))
    })
}
