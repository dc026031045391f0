//! The examples, run as a user runs them: `quickstart` and `refresh` exit 0 with their
//! story told, and `resource_server` verifies the reference auth service's tokens
//! holding no private key, side by side on loopback.
#![allow(
    clippy::float_cmp,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/<name>`, next to this test's own binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    dir.join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn run(name: &str) -> String {
    let out = Command::new(example(name)).output().unwrap_or_else(|e| {
        panic!("{name} is not built ({e}): run `cargo test -p tessera` to build the examples")
    });
    assert!(out.status.success(), "{name}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn quickstart_issues_and_verifies() {
    let out = run("quickstart");
    assert!(out.contains("token:    v4.public."), "{out}");
    assert!(out.contains("verified: subject \"alice\""), "{out}");
}

#[cfg(all(feature = "policy", feature = "sqlite"))]
#[test]
fn refresh_replay_revokes_the_family() {
    let out = run("refresh");
    assert!(
        out.contains("replayed: reuse detected: session revoked"),
        "{out}"
    );
    assert!(out.contains("family:   revoked"), "{out}");
}

#[cfg(all(
    feature = "axum",
    feature = "client",
    feature = "redis",
    feature = "metrics"
))]
mod resource_server {
    use std::process::Stdio;
    use std::time::Duration;

    use serde_json::{Value, json};
    use token_core::test_support::{REDIS_URL, service_url};
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::process::{Child, Command};

    use super::example;

    const PASSWORD: &str = "correct horse battery";
    const ISSUER: &str = "tessera-reference-auth";

    /// Starts `bin` with `args` and returns it with the base URL its first line names
    /// (`… listening on http://ADDR`).
    async fn start(bin: &str, args: &[String]) -> (Child, String) {
        let path = example(bin);
        assert!(
            path.exists(),
            "{} is not built: run `cargo test --workspace --all-features` (it builds \
             token-axum's auth_server and tessera's resource_server)",
            path.display()
        );
        let mut child = Command::new(&path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the service printed its address")
            .unwrap()
            .unwrap_or_default();
        let Some((_, base)) = line.split_once(" listening on ") else {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), err.read_to_string(&mut stderr))
                        .await;
            }
            panic!("{bin} did not start: {line} {stderr}");
        };
        let base = base.trim().to_owned();
        // Keep reading what the service prints: a closed pipe would end it at its next line.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, base)
    }

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    async fn login(auth: &str) -> String {
        let r = http()
            .post(format!("{auth}/login"))
            .json(&json!({ "username": "alice", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn whoami(api: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut request = http().get(format!("{api}/whoami"));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// The demo users file, readable by its owner only; removed when dropped.
    struct UsersFile(std::path::PathBuf);

    impl UsersFile {
        fn new() -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            let path =
                std::env::temp_dir().join(format!("tessera-users-{}-{nanos}", std::process::id()));
            std::fs::write(&path, format!("alice:{PASSWORD}\n")).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            Self(path)
        }
    }

    impl Drop for UsersFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// The samples of `GET {api}/metrics`, by series (`name{labels}`), after checking
    /// the content type; and the text.
    async fn metrics(api: &str) -> (std::collections::HashMap<String, f64>, String) {
        let r = http().get(format!("{api}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4");
        let text = r.text().await.unwrap();
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                let value = if value == "+Inf" {
                    f64::INFINITY
                } else {
                    value.parse().unwrap()
                };
                (series.to_owned(), value)
            })
            .collect();
        (samples, text)
    }

    fn verify_total(outcome: &str, reason: &str) -> String {
        format!(
            "tessera_verify_total{{credential=\"access_token\",outcome=\"{outcome}\",reason=\"{reason}\"}}"
        )
    }

    /// The `error_description` of an RFC 6750 challenge.
    fn description(challenge: &str) -> &str {
        challenge
            .split("error_description=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no error_description in {challenge}"))
    }

    async fn stop(mut child: Child) -> std::process::ExitStatus {
        let pid = child.id().unwrap();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("stopped within 10 s")
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::too_many_lines)] // one story, told in order
    async fn a_resource_server_verifies_the_auth_services_tokens_with_public_keys_only() {
        let users = UsersFile::new();
        let redis = service_url(
            REDIS_URL,
            "resource server sharing revocation through Redis",
        );
        let mut auth_args: Vec<String> = [
            "--addr",
            "127.0.0.1:0",
            "--insecure-cookies",
            "--demo-users-file",
        ]
        .map(String::from)
        .to_vec();
        auth_args.push(users.0.display().to_string());
        if let Some(url) = &redis {
            auth_args.extend(["--redis-url".into(), url.clone()]);
        }
        let (_auth, auth) = start("auth_server", &auth_args).await;

        let mut api_args: Vec<String> = vec![
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--key-set-url".into(),
            format!("{auth}/.well-known/paseto-keys.json"),
            "--issuer".into(),
            ISSUER.into(),
            "--audience".into(),
            "api".into(),
        ];
        if let Some(url) = &redis {
            api_args.extend(["--redis-url".into(), url.clone()]);
        }
        let (api_child, api) = start("resource_server", &api_args).await;

        let access = login(&auth).await;
        let r = whoami(&api, Some(&access)).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert!(body["sub"].as_str().unwrap().starts_with("usr_"), "{body}");
        let scopes: Vec<&str> = body["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(scopes.contains(&"profile"), "{body}");

        // RFC 6750 401s: no token, a bad one.
        let r = whoami(&api, None).await;
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let r = whoami(&api, Some("v4.public.bm90IGEgdG9rZW4")).await;
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        let bad_reason = description(&challenge).to_owned();

        // Its metrics: one verification accepted, one refused for the reason the
        // challenge gave, and the request without a token refused at the layer.
        let (samples, text) = metrics(&api).await;
        let get = |series: &str| samples.get(series).copied().unwrap_or(0.0);
        assert_eq!(get(&verify_total("accepted", "none")), 1.0, "{text}");
        assert_eq!(get(&verify_total("refused", &bad_reason)), 1.0, "{text}");
        assert_eq!(
            get("tessera_http_auth_total{outcome=\"refused\",reason=\"no credentials\"}"),
            1.0,
            "{text}"
        );
        assert!(!text.contains(&access), "the access token is in /metrics");

        // With the issuer's revocation list, a logout reaches the resource server
        // (its replica of the list, within the bound), and its lag is a gauge.
        if redis.is_some() {
            let r = http()
                .post(format!("{auth}/logout"))
                .bearer_auth(&access)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
            let start = std::time::Instant::now();
            let r = loop {
                let r = whoami(&api, Some(&access)).await;
                if r.status() != 200 || start.elapsed() > Duration::from_secs(2) {
                    break r;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert_eq!(r.status(), 401);
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.contains("revoked"), "{challenge}");
            let (samples, text) = metrics(&api).await;
            assert_eq!(samples[&verify_total("refused", "revoked")], 1.0, "{text}");
            let lag = samples["tessera_revocation_lag_seconds"];
            assert!((0.0..=2.0).contains(&lag), "lag {lag}\n{text}");
            assert_eq!(samples["tessera_revocation_max_staleness_seconds"], 2.0);
            assert!(samples["tessera_revocation_resyncs_total"] >= 1.0, "{text}");
        }
        assert!(stop(api_child).await.success(), "exit 0 on SIGTERM");

        // The JWKS of a PASETO issuer holds no key: the resource server says so and
        // does not start.
        let out = std::process::Command::new(example("resource_server"))
            .args([
                "--addr",
                "127.0.0.1:0",
                "--key-set-url",
                &format!("{auth}/.well-known/jwks.json"),
                "--issuer",
                ISSUER,
                "--audience",
                "api",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("holds no key"), "{stderr}");
    }
}
