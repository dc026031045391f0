//! `tokenctl demo [--db sqlite://PATH]`: every token job end to end on the embedded
//! default (SQLite, in-process blocklist), each step with its expected and actual
//! outcome. Exits 0 only if every step behaved as expected.
//!
//! Without `--db`, the database is a fresh SQLite file in a new temporary directory,
//! removed afterwards. Users are named per run (`alice-<run id>`), so a `--db` that is
//! reused between runs does not trip the per-user rate limits.

use std::fmt::Write as _;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use token_core::{Claims, SystemClock, TokenFormat, Validation};
use token_jwt::{Algorithm, SigningKey, SigningKeySet};
use token_opaque::{Environment, NewApiKey, OneTimeKind, OpaqueTokens};
use token_paseto::{LocalCipher, LocalKey, PublicIssuer, PublicVerifier, SecretKey, V4};
use token_policy::{DualVerifier, Error, MemoryBlocklist, Policy, TokenService};

use crate::error::{Failure, Result, describe_error};
use crate::runtime;
use crate::util::{database_is_new, note, out, out_json, random_hex, sqlite_file};

const ISSUER: &str = "https://auth.example";
const AUDIENCE: &str = "api";

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The database (default: a SQLite file in a fresh temporary directory).
    #[arg(long, value_name = "URL")]
    db: Option<String>,
}

/// The application's claims in the demo's access tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    role: String,
}

/// The payload of the demo's payment tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Payment {
    order_id: String,
    amount: u64,
    currency: String,
}

/// One step and its outcome.
struct Step {
    name: String,
    expected: String,
    actual: String,
    ok: bool,
}

#[derive(Default)]
struct Steps(Vec<Step>);

impl Steps {
    fn record(&mut self, name: &str, expected: &str, actual: impl Into<String>, ok: bool) {
        self.0.push(Step {
            name: name.to_owned(),
            expected: expected.to_owned(),
            actual: actual.into(),
            ok,
        });
    }

    /// Records a step that must fail with an error `matches` accepts.
    fn rejected<T>(
        &mut self,
        name: &str,
        expected: &str,
        result: std::result::Result<T, Error>,
        matches: impl Fn(&Error) -> bool,
    ) {
        match result {
            Ok(_) => self.record(name, expected, "accepted", false),
            Err(e) => {
                let ok = matches(&e);
                self.record(
                    name,
                    expected,
                    format!("rejected: {}", describe_error(&e)),
                    ok,
                );
            }
        }
    }
}

/// A token shown without its secret part: its type prefix and length.
fn shown(token: &SecretString) -> String {
    let t = token.expose_secret();
    let prefix = match TokenFormat::detect(t) {
        Ok(TokenFormat::Paseto { .. }) => {
            t.splitn(3, '.').take(2).collect::<Vec<_>>().join(".") + "."
        }
        Ok(TokenFormat::Opaque(kind)) => kind.default_prefix().to_owned(),
        Ok(TokenFormat::Jws | TokenFormat::Jwe) => "eyJ".to_owned(),
        _ => String::new(),
    };
    format!("{prefix}… ({} bytes)", t.len())
}

/// A fresh temporary directory, private to this user.
fn temp_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tokenctl-demo-{}", random_hex()?));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Runs `demo`.
pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    let (url, temp) = if let Some(url) = &args.db {
        if let Some(path) = sqlite_file(url).filter(|_| database_is_new(url)) {
            note(&format!("creating the database {}", path.display()));
        }
        (url.clone(), None)
    } else {
        let dir = temp_dir()?;
        let url = format!("sqlite://{}", dir.join("tessera-demo.db").display());
        (url, Some(dir))
    };
    let result = runtime().and_then(|rt| rt.block_on(steps(&url)));
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    let steps = result?;
    let failed = steps.0.iter().filter(|s| !s.ok).count();
    if json {
        out_json(
            &json!({
                "database": url,
                "blocklist": "in-process",
                "ok": failed == 0,
                "steps": steps.0.iter().enumerate().map(|(i, s)| json!({
                    "step": i + 1,
                    "name": s.name,
                    "expected": s.expected,
                    "actual": s.actual,
                    "ok": s.ok,
                })).collect::<Vec<_>>(),
            }),
            true,
        )?;
    } else {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "tessera demo: every token job end to end ({url}, in-process blocklist)\n"
        );
        for (i, s) in steps.0.iter().enumerate() {
            let mark = if s.ok { "ok  " } else { "FAIL" };
            let _ = writeln!(text, "{mark} {:>2}. {}", i + 1, s.name);
            let _ = writeln!(text, "          expected: {}", s.expected);
            let _ = writeln!(text, "          actual:   {}", s.actual);
        }
        if failed == 0 {
            let _ = write!(text, "\nall {} steps behaved as expected", steps.0.len());
        } else {
            let _ = write!(
                text,
                "\n{failed} of {} steps did not behave as expected",
                steps.0.len()
            );
        }
        out(&text)?;
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "demo: {failed} of {} steps did not behave as expected",
            steps.0.len()
        )))
    }
}

fn setup_error(e: &impl std::fmt::Display) -> Failure {
    Failure::usage(format!("demo setup failed: {e}"))
}

#[allow(clippy::too_many_lines)] // one scenario, step by step
async fn steps(url: &str) -> Result<Steps> {
    let store = token_policy::config::open_store(url)
        .await
        .map_err(|e| setup_error(&e))?;
    let opaque = OpaqueTokens::new(store);
    let api_keys = opaque.api_keys();
    let access_key = SecretKey::<V4>::generate().map_err(|e| setup_error(&e))?;
    let access_public = access_key.public_key().clone();
    let payment_key = LocalKey::<V4>::generate().map_err(|e| setup_error(&e))?;
    let svc = TokenService::builder(Policy::new(ISSUER, AUDIENCE), PublicIssuer::new(access_key))
        .payment(LocalCipher::new(payment_key))
        .opaque(opaque)
        .blocklist(Arc::new(MemoryBlocklist::new()))
        .build();
    let run = random_hex()?;
    let run = run.get(..8).unwrap_or_default();
    let alice = format!("alice-{run}");
    let bob = format!("bob-{run}");
    let admin = Session {
        role: "admin".into(),
    };
    let mut s = Steps::default();

    // Access + refresh.
    let name = format!("login as {alice}");
    let expected = "an access token (v4.public) and a refresh token (rt_)";
    let login = match svc.login(&alice, &admin).await {
        Ok(login) => {
            let ok = login.access.expose_secret().starts_with("v4.public.")
                && login.refresh.expose_secret().starts_with("rt_");
            s.record(
                &name,
                expected,
                format!("{} and {}", shown(&login.access), shown(&login.refresh)),
                ok,
            );
            login
        }
        Err(e) => {
            s.record(
                &name,
                expected,
                format!("error: {}", describe_error(&e)),
                false,
            );
            return Ok(s);
        }
    };

    let expected = format!("accepted, sub = {alice}, role = admin");
    match svc
        .verify_access::<Session>(login.access.expose_secret())
        .await
    {
        Ok(v) => {
            let c = v.claims();
            let ok = c.sub.as_deref() == Some(alice.as_str()) && c.custom.session == admin;
            s.record(
                "verify the access token",
                &expected,
                format!(
                    "accepted, sub = {}, role = {}",
                    c.sub.as_deref().unwrap_or("-"),
                    c.custom.session.role
                ),
                ok,
            );
        }
        Err(e) => s.record(
            "verify the access token",
            &expected,
            format!("rejected: {}", describe_error(&e)),
            false,
        ),
    }

    let name = "refresh: rotate the refresh token";
    let expected = "a new access token and a new refresh token, same session";
    let next = match svc
        .refresh(login.refresh.expose_secret(), |_| admin.clone())
        .await
    {
        Ok(next) => {
            let fresh = svc
                .verify_access::<Session>(next.access.expose_secret())
                .await
                .is_ok();
            let ok = fresh
                && next.session_id == login.session_id
                && next.refresh.expose_secret() != login.refresh.expose_secret();
            s.record(
                name,
                expected,
                format!(
                    "{} and {}, session {}",
                    shown(&next.access),
                    shown(&next.refresh),
                    if next.session_id == login.session_id {
                        "kept"
                    } else {
                        "changed"
                    }
                ),
                ok,
            );
            Some(next)
        }
        Err(e) => {
            s.record(
                name,
                expected,
                format!("rejected: {}", describe_error(&e)),
                false,
            );
            None
        }
    };

    s.rejected(
        "replay the rotated (old) refresh token",
        "rejected: reuse detected: session revoked",
        svc.refresh(login.refresh.expose_secret(), |_| admin.clone())
            .await,
        |e| matches!(e, Error::Opaque(token_opaque::Error::ReuseDetected)),
    );
    if let Some(next) = &next {
        s.rejected(
            "use the legitimate successor after the replay",
            "rejected: revoked (the whole family)",
            svc.refresh(next.refresh.expose_secret(), |_| admin.clone())
                .await,
            |e| matches!(e, Error::Opaque(token_opaque::Error::Revoked)),
        );
    }

    // Payment: bound to the user, single use.
    let payment = Payment {
        order_id: "o-17".into(),
        amount: 4200,
        currency: "EUR".into(),
    };
    let expected = "a v4.local token whose payload is not readable";
    let token = match svc.issue_payment(payment.clone(), &alice) {
        Ok(t) => {
            let ok =
                t.expose_secret().starts_with("v4.local.") && !t.expose_secret().contains("o-17");
            s.record(
                &format!("payment token for {alice}"),
                expected,
                shown(&t),
                ok,
            );
            Some(t)
        }
        Err(e) => {
            s.record(
                &format!("payment token for {alice}"),
                expected,
                format!("error: {}", describe_error(&e)),
                false,
            );
            None
        }
    };
    if let Some(token) = &token {
        s.rejected(
            &format!("{alice}'s payment token used in {bob}'s session"),
            "rejected: invalid token (bound to another user)",
            svc.consume_payment::<Payment>(token.expose_secret(), &bob)
                .await,
            |e| e.reason() == "invalid token",
        );
        let name = format!("{alice}'s payment token used in {alice}'s session");
        let expected = "accepted: order o-17, 4200 EUR";
        match svc
            .consume_payment::<Payment>(token.expose_secret(), &alice)
            .await
        {
            Ok(p) => s.record(
                &name,
                expected,
                format!(
                    "accepted: order {}, {} {}",
                    p.order_id, p.amount, p.currency
                ),
                p == payment,
            ),
            Err(e) => s.record(
                &name,
                expected,
                format!("rejected: {}", describe_error(&e)),
                false,
            ),
        }
        s.rejected(
            "the same payment token a second time",
            "rejected: already used",
            svc.consume_payment::<Payment>(token.expose_secret(), &alice)
                .await,
            |e| matches!(e, Error::AlreadyUsed),
        );
    }

    // API key: create, verify, revoke, rejected.
    let expected = "sk_test_… shown once, scopes deploy";
    let created = svc
        .issue_api_key(
            NewApiKey::new(alice.clone(), "deploy bot", Environment::Test).scopes(["deploy"]),
        )
        .await;
    match created {
        Ok(created) => {
            s.record(
                "API key: create",
                expected,
                format!(
                    "{}, scopes {}",
                    shown(&created.key),
                    created.info.scopes.join(",")
                ),
                created.key.expose_secret().starts_with("sk_test_"),
            );
            let key = created.key.expose_secret();
            match svc.verify_api_key(key).await {
                Ok(info) => s.record(
                    "API key: verify",
                    "accepted, scope deploy",
                    format!("accepted, scopes {}", info.scopes.join(",")),
                    info.has_scope("deploy"),
                ),
                Err(e) => s.record(
                    "API key: verify",
                    "accepted, scope deploy",
                    format!("rejected: {}", describe_error(&e)),
                    false,
                ),
            }
            match api_keys.revoke(&alice, &created.info.id).await {
                Ok(revoked) => s.record(
                    "API key: revoke",
                    "revoked",
                    if revoked {
                        "revoked"
                    } else {
                        "already revoked"
                    },
                    revoked,
                ),
                Err(e) => s.record("API key: revoke", "revoked", format!("error: {e}"), false),
            }
            s.rejected(
                "API key: verify after revocation",
                "rejected: revoked",
                svc.verify_api_key(key).await,
                |e| matches!(e, Error::Opaque(token_opaque::Error::Revoked)),
            );
        }
        Err(e) => s.record(
            "API key: create",
            expected,
            format!("error: {}", describe_error(&e)),
            false,
        ),
    }

    // Password reset: used once.
    let expected = "a prt_ token, expiry in the database";
    match svc.issue_one_time(OneTimeKind::PasswordReset, &alice).await {
        Ok(reset) => {
            s.record(
                "password reset: issue",
                expected,
                shown(&reset.token),
                reset.token.expose_secret().starts_with("prt_"),
            );
            let expected = format!("accepted for {alice}");
            match svc
                .redeem_one_time(OneTimeKind::PasswordReset, reset.token.expose_secret())
                .await
            {
                Ok(r) => s.record(
                    "password reset: first use",
                    &expected,
                    format!("accepted for {}", r.user_id),
                    r.user_id == alice,
                ),
                Err(e) => s.record(
                    "password reset: first use",
                    &expected,
                    format!("rejected: {}", describe_error(&e)),
                    false,
                ),
            }
            s.rejected(
                "password reset: second use",
                "rejected: unknown token (used once, then deleted)",
                svc.redeem_one_time(OneTimeKind::PasswordReset, reset.token.expose_secret())
                    .await,
                |e| matches!(e, Error::Opaque(token_opaque::Error::NotFound)),
            );
        }
        Err(e) => s.record(
            "password reset: issue",
            expected,
            format!("error: {}", describe_error(&e)),
            false,
        ),
    }

    // An access token revoked by jti.
    let name = format!("access token of {bob} revoked by jti");
    let expected = "rejected: revoked";
    match svc.login(&bob, &admin).await {
        Ok(login) => {
            match svc
                .verify_access::<Session>(login.access.expose_secret())
                .await
            {
                Ok(v) => {
                    let claims = v.claims();
                    match (&claims.jti, claims.exp) {
                        (Some(jti), Some(exp)) => {
                            if let Err(e) = svc.revoke_access(jti, exp).await {
                                s.record(
                                    &name,
                                    expected,
                                    format!("error: {}", describe_error(&e)),
                                    false,
                                );
                            } else {
                                s.rejected(
                                    &name,
                                    expected,
                                    svc.verify_access::<Session>(login.access.expose_secret())
                                        .await,
                                    |e| matches!(e, Error::Revoked),
                                );
                            }
                        }
                        _ => s.record(&name, expected, "the token has no jti or exp", false),
                    }
                }
                Err(e) => s.record(
                    &name,
                    expected,
                    format!("error: {}", describe_error(&e)),
                    false,
                ),
            }
        }
        Err(e) => s.record(
            &name,
            expected,
            format!("error: {}", describe_error(&e)),
            false,
        ),
    }

    // Migration: one verifier for JWT and PASETO, by an explicit allow-list.
    dual(&svc, access_public, &alice, &admin, &mut s).await?;
    Ok(s)
}

async fn dual(
    svc: &TokenService,
    access_public: token_paseto::PublicKey<V4>,
    alice: &str,
    admin: &Session,
    s: &mut Steps,
) -> Result<()> {
    let jwt_keys =
        SigningKeySet::new(SigningKey::generate(Algorithm::Es256).map_err(|e| setup_error(&e))?);
    let dual = DualVerifier::new()
        .allow_paseto_v4_public(PublicVerifier::new(access_public))
        .allow_jwt(
            token_core::AsymmetricSigner::verifier(&jwt_keys),
            &[Algorithm::Es256],
        );
    let validation = Validation::new().issuer(ISSUER).audience(AUDIENCE);
    let login = svc.login(alice, admin).await;
    let expected = "accepted (PASETO route)";
    match login {
        Ok(login) => {
            match dual.verify::<Map<String, Value>>(login.access.expose_secret(), &validation) {
                Ok(v) => s.record(
                    "dual verifier: a PASETO v4.public access token",
                    expected,
                    format!(
                        "accepted, sub = {}",
                        v.claims().sub.as_deref().unwrap_or("-")
                    ),
                    true,
                ),
                Err(e) => s.record(
                    "dual verifier: a PASETO v4.public access token",
                    expected,
                    format!("rejected: {}", describe_error(&e)),
                    false,
                ),
            }
        }
        Err(e) => s.record(
            "dual verifier: a PASETO v4.public access token",
            expected,
            format!("error: {}", describe_error(&e)),
            false,
        ),
    }
    let claims = Claims::new(Map::new())
        .issuer(ISSUER)
        .subject(alice)
        .audience(AUDIENCE)
        .random_token_id()
        .and_then(|c| c.valid_for(&SystemClock, Duration::from_secs(300)))
        .map_err(|e| setup_error(&e))?;
    let expected = "accepted (JWT route); counts: 1 PASETO, 1 JWT";
    match jwt_keys.sign(&claims) {
        Ok(jwt) => match dual.verify::<Map<String, Value>>(jwt.expose_secret(), &validation) {
            Ok(_) => {
                let c = dual.counts();
                s.record(
                    "dual verifier: a JWT ES256 token",
                    expected,
                    format!(
                        "accepted (JWT route); counts: {} PASETO, {} JWT",
                        c.paseto, c.jwt
                    ),
                    c.paseto == 1 && c.jwt == 1,
                );
            }
            Err(e) => s.record(
                "dual verifier: a JWT ES256 token",
                expected,
                format!("rejected: {}", describe_error(&e)),
                false,
            ),
        },
        Err(e) => s.record(
            "dual verifier: a JWT ES256 token",
            expected,
            format!("error: {e}"),
            false,
        ),
    }
    Ok(())
}
