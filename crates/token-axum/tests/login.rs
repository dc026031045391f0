//! The reference service's users file, and the `--demo-users` warning, in process and
//! on the example binary (`target/<profile>/examples/auth_server`): `cargo test -p
//! token-axum` builds it; for this file alone, build it first:
//!
//! ```text
//! cargo build -p token-axum --example auth_server && cargo test -p token-axum --test login
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/auth_server.rs"]
mod auth_server;
mod common;

use std::time::Duration;

use auth_server::Options;
use common::unique;

const ALICE_PW: &str = "correct horse battery";
const BOB_PW: &str = "hunter2-but-longer";

#[tokio::test]
async fn the_users_file_takes_lines_comments_and_reports_bad_lines_by_number() {
    let text = "# demo accounts\n\nalice:correct horse battery\n   # indented comment\n\
                bob:pa:ss, word\r\n\t\n";
    let users = auth_server::parse_users_file(text).unwrap();
    let users: Vec<(&str, &str)> = users
        .iter()
        .map(|(n, p)| (n.as_str(), secrecy::ExposeSecret::expose_secret(p)))
        .collect();
    assert_eq!(
        users,
        [("alice", "correct horse battery"), ("bob", "pa:ss, word")]
    );
    assert!(
        auth_server::parse_users_file("# nobody\n")
            .unwrap()
            .is_empty()
    );

    for (text, expected) in [
        (
            "alice:long-enough-1\nsecret-no-colon\n",
            "line 2 is not NAME:PASSWORD",
        ),
        ("\n\nal ice:long-enough-1\n", "line 3: a name is"),
        (
            "#\nalice:tiny\n",
            "line 2 (alice): a password is 8 to 1024 bytes",
        ),
        (
            "alice:long-enough-1\n# x\nalice:long-enough-2\n",
            "line 3: alice is named twice",
        ),
    ] {
        let err = auth_server::parse_users_file(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        for secret in ["secret-no-colon", "long-enough", "tiny"] {
            assert!(!err.contains(secret), "{err:?} quotes a password");
        }
    }

    // On the command line: read from the file, never together with --demo-users.
    let dir = std::env::temp_dir().join(format!("token-axum-users-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.txt");
    std::fs::write(&path, text).unwrap();
    let parse = |args: &[&str]| {
        <auth_server::Args as clap::Parser>::try_parse_from(
            ["auth_server"].iter().chain(args).copied(),
        )
    };
    let file = path.to_str().unwrap();
    let args = parse(&["--demo-users-file", file]).unwrap();
    assert!(
        auth_server::warnings(&args)
            .iter()
            .all(|w| !w.contains("process list"))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            auth_server::warnings(&args)
                .iter()
                .any(|w| w.contains("readable by other users"))
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(auth_server::warnings(&args).is_empty());
    }
    assert_eq!(Options::from_args(args).unwrap().users.len(), 2);
    assert!(
        parse(&[
            "--demo-users",
            "alice:long-enough-1",
            "--demo-users-file",
            file
        ])
        .is_err()
    );
    let missing = dir.join("missing.txt");
    let args = parse(&["--demo-users-file", missing.to_str().unwrap()]).unwrap();
    let err = Options::from_args(args).err().unwrap().to_string();
    assert!(err.contains("cannot read --demo-users-file"), "{err}");
    // --demo-users still works, with a warning.
    let args = parse(&["--demo-users", "alice:long-enough-1"]).unwrap();
    assert!(
        auth_server::warnings(&args)
            .iter()
            .any(|w| w.contains("--demo-users puts passwords in the process list"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The example binary, built beside this test's directory.
fn example_binary() -> std::path::PathBuf {
    // target/<profile>/deps/login-… → target/<profile>/examples/auth_server
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|d| {
            d.join("examples")
                .join(format!("auth_server{}", std::env::consts::EXE_SUFFIX))
        })
        .unwrap();
    assert!(
        bin.exists(),
        "{} is not built: run `cargo build -p token-axum --example auth_server` first \
         (`cargo test -p token-axum` builds it)",
        bin.display()
    );
    bin
}

/// The binary, started with `args`; its base URL once it listens.
async fn spawn_server(args: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    let mut child = tokio::process::Command::new(example_binary())
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the server did not start within a minute")
        .unwrap();
    let Some(base) = line
        .as_deref()
        .and_then(|l| l.strip_prefix("auth_server listening on "))
    else {
        let mut stderr = String::new();
        let _ = child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await;
        panic!("the server did not start: {line:?}\n{stderr}");
    };
    // Keep reading stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base.to_owned())
}

async fn stderr_of(mut child: tokio::process::Child) -> String {
    use tokio::io::AsyncReadExt as _;
    child.start_kill().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let mut stderr = String::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        child.stderr.take().unwrap().read_to_string(&mut stderr),
    )
    .await;
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_users_flag_warns_on_stderr_and_a_bad_users_file_stops_the_start() {
    let (child, _) = spawn_server(&["--demo-users", &format!("alice:{ALICE_PW}")]).await;
    let stderr = stderr_of(child).await;
    assert!(
        stderr.contains("warning: --demo-users puts passwords in the process list"),
        "{stderr}"
    );

    let dir = std::env::temp_dir().join(format!("token-axum-users-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.txt");
    std::fs::write(&path, format!("alice:{ALICE_PW}\n\nbob-{BOB_PW}\n")).unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(example_binary())
            .args(["--addr", "127.0.0.1:0", "--demo-users-file"])
            .arg(&path)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--demo-users-file line 3 is not NAME:PASSWORD"),
        "{stderr}"
    );
    assert!(!stderr.contains(BOB_PW) && !stderr.contains(ALICE_PW));
    std::fs::remove_dir_all(&dir).unwrap();
}
