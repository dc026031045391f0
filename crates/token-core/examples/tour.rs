//! A tour of token-core: claims in both formats' JSON, validation and its typed
//! failures, and format detection. Exits non-zero if any outcome is not the expected one.
//!
//! `cargo run -p token-core --example tour [TOKEN...]` — tokens given are classified too.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;

use token_core::{
    Claims, Error, FixedClock, NumericDate, RegisteredClaim, Rfc3339, Timestamp, TokenFormat,
    Validation,
};

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(ok: &mut bool, what: &str, got: &Result<(), Error>, want: &Result<(), Error>) {
    let pass = got == want;
    *ok &= pass;
    let shown = match got {
        Ok(()) => "accepted".to_owned(),
        Err(e) => format!("rejected: {e}"),
    };
    println!(
        "  [{}] {what}: {shown}",
        if pass { "ok" } else { "UNEXPECTED" }
    );
}

fn run() -> Result<bool, Error> {
    let t0 = Timestamp::from_unix_seconds(1_700_000_000)?;
    let clock = FixedClock(t0);
    let claims = Claims::new(serde_json::json!({"role": "admin", "sid": "s-1"}))
        .issuer("https://auth.example")
        .subject("user-42")
        .audience("api")
        .random_token_id()?
        .valid_for(&clock, Duration::from_secs(15 * 60))?;

    println!("claims as a JWT carries them (NumericDate):");
    println!(
        "  {}",
        String::from_utf8_lossy(&claims.to_json::<NumericDate>()?)
    );
    println!("claims as a PASETO carries them (RFC 3339):");
    println!(
        "  {}",
        String::from_utf8_lossy(&claims.to_json::<Rfc3339>()?)
    );

    let v = Validation::new()
        .issuer("https://auth.example")
        .audience("api")
        .max_lifetime(Duration::from_secs(15 * 60))
        .clock(clock);
    let at = |secs: i64| -> Result<Validation, Error> {
        Ok(v.clone().clock(FixedClock(Timestamp::from_unix_seconds(
            1_700_000_000 + secs,
        )?)))
    };

    let mut ok = true;
    println!("\nvalidation:");
    check(&mut ok, "fresh token", &v.validate(&claims), &Ok(()));
    let exp = claims
        .exp
        .ok_or(Error::MissingClaim(RegisteredClaim::Exp))?;
    check(
        &mut ok,
        "16 minutes later",
        &at(16 * 60)?.validate(&claims),
        &Err(Error::Expired { exp }),
    );
    check(
        &mut ok,
        "when another audience is expected",
        &v.clone().audience("billing").validate(&claims),
        &Err(Error::WrongAudience),
    );
    check(
        &mut ok,
        "when another issuer is expected",
        &v.clone().issuer("https://evil.example").validate(&claims),
        &Err(Error::WrongIssuer),
    );
    check(
        &mut ok,
        "longer-lived than 5 minutes allows",
        &v.clone()
            .max_lifetime(Duration::from_secs(300))
            .validate(&claims),
        &Err(Error::LifetimeTooLong {
            lifetime: Duration::from_secs(900),
            max: Duration::from_secs(300),
        }),
    );
    let bad = Claims::<serde_json::Value>::from_json::<NumericDate>(br#"{"exp":"tomorrow"}"#);
    let bad_ok = matches!(
        bad,
        Err(Error::MalformedClaim {
            claim: RegisteredClaim::Exp,
            ..
        })
    );
    ok &= bad_ok;
    println!(
        "  [{}] \"exp\": \"tomorrow\": {}",
        if bad_ok { "ok" } else { "UNEXPECTED" },
        bad.map_or_else(|e| format!("rejected: {e}"), |_| "accepted".into())
    );

    detect_samples();
    println!(
        "\n{}",
        if ok {
            "all outcomes as expected"
        } else {
            "SOME OUTCOMES WERE UNEXPECTED"
        }
    );
    Ok(ok)
}

fn detect_samples() {
    println!("\nformat detection (shape only, nothing trusted):");
    let samples = [
        "v4.public.eyJzdWIiOiJ1c2VyLTQyIn0.eyJraWQiOiJrNC5waWQueHl6In0",
        "v4.local.AAAAAAAA",
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",
        "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y3Q.dGFn",
        "sk_live_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM",
        "v5.public.AAAA",
        "not a token",
    ];
    let extra: Vec<String> = std::env::args().skip(1).collect();
    for s in samples
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        let shown: String = s.chars().take(48).collect();
        match TokenFormat::detect(s) {
            Ok(f) => println!("  {shown:<48}  {f}"),
            Err(e) => println!("  {shown:<48}  refused: {e}"),
        }
    }
}
