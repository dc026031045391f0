//! `tokenctl inspect [TOKEN|-]`: decode what is readable **without verifying
//! anything**, and lint it.
//!
//! Every finding has a severity (`error`, `warning`, `info`), a code, a message and a
//! fix. The command exits 1 when any finding is an error.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use token_core::{
    Claims, Clock, MAX_TOKEN_LEN, NumericDate, PasetoPurpose, PasetoVersion, Rfc3339, SystemClock,
    TimeEncoding, TokenFormat,
};
use token_policy::Policy;
use token_policy::policy::MAX_ACCESS_TTL;

use crate::error::{Failure, Result};
use crate::keyfile::{purpose_name, version_name};
use crate::util::{echo, humanize, json_text, out, out_json, printable, read_token, terminal_safe};

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The token; `-` or nothing reads it from standard input.
    #[arg(value_name = "TOKEN|-")]
    token: Option<String>,
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    /// Refused by tessera, or a security problem: exit 1.
    Error,
    /// Risky or non-portable.
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// One lint finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// Severity.
    pub(crate) severity: Severity,
    /// A stable short code (`alg-none`, `missing-exp`, …).
    pub(crate) code: &'static str,
    /// What is wrong.
    pub(crate) message: String,
    /// How to fix it.
    pub(crate) fix: String,
}

/// A decoded part.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Part {
    /// JSON.
    Json(Value),
    /// Not JSON: shown as text (or base64url when binary).
    Text(String),
    /// Encrypted: not readable without the key.
    Encrypted,
}

impl Part {
    fn from_bytes(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).map_or_else(|_| Self::Text(printable(bytes)), Self::Json)
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Json(v) => v.clone(),
            Self::Text(t) => Value::String(t.clone()),
            Self::Encrypted => Value::String("(encrypted)".into()),
        }
    }

    fn to_text(&self) -> String {
        match self {
            Self::Json(v) => json_text(v, false),
            Self::Text(t) => t.clone(),
            Self::Encrypted => "(encrypted: not readable without the key)".into(),
        }
    }
}

/// Everything `inspect` found.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Report {
    /// The format, as detected by shape.
    pub(crate) format: String,
    /// The JOSE header.
    pub(crate) header: Option<Part>,
    /// The PASETO footer.
    pub(crate) footer: Option<Part>,
    /// The payload.
    pub(crate) payload: Option<Part>,
    /// Lint findings, most severe first.
    pub(crate) findings: Vec<Finding>,
}

impl Report {
    fn add(
        &mut self,
        severity: Severity,
        code: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            severity,
            code,
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// The number of findings of severity error.
    pub(crate) fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

/// Tokens this long no longer fit a cookie (4096 bytes in browsers).
const LARGE_TOKEN_LEN: usize = 4096;

/// Decodes and lints `token`. Never verifies anything.
pub(crate) fn analyse(token: &str) -> Report {
    let mut report = Report {
        format: "unknown".into(),
        header: None,
        footer: None,
        payload: None,
        findings: Vec::new(),
    };
    let len = token.len();
    if len > MAX_TOKEN_LEN {
        report.add(
            Severity::Error,
            "oversized",
            format!("the token is {len} bytes, over the {MAX_TOKEN_LEN}-byte limit every tessera verifier enforces"),
            "keep claims small: store bulky data server-side and reference it by id",
        );
        return report;
    }
    if len > LARGE_TOKEN_LEN {
        report.add(
            Severity::Warning,
            "oversized",
            format!("the token is {len} bytes: over the {LARGE_TOKEN_LEN} bytes a browser allows a cookie, and near common 8 KiB header limits"),
            "keep claims small: store bulky data server-side and reference it by id",
        );
    }
    match TokenFormat::detect(token) {
        Err(e) => report.add(
            Severity::Error,
            "unrecognized",
            format!("not a PASETO, JWS, JWE or tessera opaque token: {e}"),
            "check that the whole token was copied, without quotes or a `Bearer ` prefix",
        ),
        Ok(format) => {
            report.format = format.to_string();
            match format {
                TokenFormat::Paseto {
                    version, purpose, ..
                } => paseto(token, version, purpose, &mut report),
                TokenFormat::Jws => jws(token, &mut report),
                TokenFormat::Jwe => jwe(token, &mut report),
                TokenFormat::Opaque(kind) => opaque(token, kind, &mut report),
                _ => {}
            }
        }
    }
    report.findings.sort_by_key(|f| f.severity);
    report
}

fn paseto(token: &str, version: PasetoVersion, purpose: PasetoPurpose, report: &mut Report) {
    let name = format!("{}.{}", version_name(version), purpose_name(purpose));
    match version {
        PasetoVersion::V1 => report.add(
            Severity::Error,
            "deprecated-version",
            "PASETO v1 is deprecated and refused by tessera",
            "issue v4 tokens (v3 where NIST algorithms are required)",
        ),
        PasetoVersion::V2 => report.add(
            Severity::Warning,
            "deprecated-version",
            "PASETO v2 is deprecated; tessera verifies it only for migrations",
            "issue v4 tokens (v3 where NIST algorithms are required)",
        ),
        PasetoVersion::V3 | PasetoVersion::V4 => {}
    }
    // The library reads the token as its verifiers do, up to the key; nothing is
    // verified or decrypted.
    let parts = match token_paseto::dangerous_decode_parts(token) {
        Ok(parts) => parts,
        Err(token_paseto::Error::InvalidFooter(why)) => {
            report.add(
                Severity::Error,
                "invalid-footer",
                format!("the footer is refused by tessera verifiers: {why}"),
                FOOTER_FIX,
            );
            return;
        }
        Err(e) => {
            report.add(
                Severity::Error,
                "malformed",
                format!("tessera verifiers refuse the token: {e}"),
                "check that the whole token was copied",
            );
            return;
        }
    };
    if let Some(bytes) = parts.footer() {
        footer_rules(&parts, bytes, report);
        let part = Part::from_bytes(bytes);
        if let Part::Json(Value::Object(map)) = &part {
            if !map.contains_key("kid") && purpose == PasetoPurpose::Public {
                report.add(
                    Severity::Info,
                    "no-kid",
                    "the footer names no key id (`kid`)",
                    "put the key's PASERK id in the footer so verifiers with several keys can pick one",
                );
            }
        }
        report.footer = Some(part);
    } else if purpose == PasetoPurpose::Public {
        report.add(
            Severity::Info,
            "no-kid",
            "no footer, so no key id (`kid`)",
            "put the key's PASERK id in the footer so verifiers with several keys can pick one",
        );
    }
    match parts.payload() {
        None => {
            report.payload = Some(Part::Encrypted);
            report.add(
                Severity::Info,
                "encrypted",
                format!("{name}: the payload is encrypted; its claims cannot be read or linted without the key"),
                "verify it with `tokenctl verify --key local.paserk`",
            );
        }
        Some(message) => {
            let part = Part::from_bytes(message);
            lint_payload::<Rfc3339>(message, &part, report);
            report.payload = Some(part);
        }
    }
}

/// Reports what the library refuses in a compact JOSE token before its header is read.
fn jose_malformed(e: &token_jwt::Error, report: &mut Report) {
    report.add(
        Severity::Error,
        "malformed",
        format!("tessera verifiers refuse the token: {e}"),
        "check that the whole token was copied",
    );
}

fn is_jwe_alg(alg: &str) -> bool {
    alg == "dir"
        || alg.starts_with("ECDH-ES")
        || alg.starts_with("RSA-OAEP")
        || alg == "RSA1_5"
        || alg.starts_with("PBES2")
        || (alg.starts_with('A') && (alg.ends_with("KW") || alg.ends_with("GCMKW")))
}

fn is_jws_alg(alg: &str) -> bool {
    alg.eq_ignore_ascii_case("none")
        || ["HS", "RS", "ES", "PS"]
            .iter()
            .any(|p| alg.starts_with(p) && alg.len() == 5)
        || alg == "EdDSA"
        || alg == "ES256K"
}

/// The fix for a footer tessera verifiers refuse.
const FOOTER_FIX: &str = "write a small JSON object (at most 2048 bytes, 2 levels, 16 members) whose `kid` is the key's PASERK id, or opaque text that does not start with `{` or `[`";

/// Reports a footer every tessera verifier refuses, by the verifiers' own reading
/// (`token_paseto::footer_kid`): too long, too deep or too wide, not an object, a
/// member named twice, a `kid` that is not a key id of this version and purpose.
fn footer_rules(parts: &token_paseto::UntrustedParts, bytes: &[u8], report: &mut Report) {
    let Err(e) = parts.footer_kid() else {
        return;
    };
    if matches!(
        token_core::json::check(bytes),
        Err(token_core::Error::DuplicateMember(_))
    ) {
        strict_json(bytes, "footer", report);
        return;
    }
    let why = match e {
        token_paseto::Error::InvalidFooter(why) => why.to_owned(),
        other => other.to_string(),
    };
    report.add(
        Severity::Error,
        "invalid-footer",
        format!("the footer is refused by tessera verifiers: {why}"),
        FOOTER_FIX,
    );
}

/// The fix for a token whose shape and header disagree.
const JWS_JWE_FIX: &str =
    "a JWE has five parts; a verifier must refuse a token whose shape and header disagree";

/// Reports a header every tessera verifier refuses before choosing a key, by the
/// verifiers' own parser (`token_jwt::UntrustedParts::header`: bounds, strict reading,
/// no JWE member in a JWS header). A refusal already reported under its own code (a
/// repeated or null member, a header that is not a JSON object) is not reported twice.
fn header_rules(parts: &token_jwt::UntrustedParts, report: &mut Report) {
    let Err(e) = parts.header() else {
        return;
    };
    let (code, fix) = match &e {
        token_jwt::Error::JwsJweConfusion(_) => ("jws-jwe-confusion", JWS_JWE_FIX),
        token_jwt::Error::HeaderTooDeep { .. } => (
            "header-too-deep",
            "keep header members flat: nothing a verifier reads is nested",
        ),
        _ => ("malformed", "check that the whole token was copied"),
    };
    let explained = |c: &str| {
        c == code || (code == "malformed" && matches!(c, "duplicate-member" | "null-member"))
    };
    if report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error && explained(f.code))
    {
        return;
    }
    report.add(
        Severity::Error,
        code,
        format!("tessera verifiers refuse the header: {e}"),
        fix,
    );
}

/// Reports what every tessera verifier refuses to read in a JSON part (the header, the
/// footer, the claims): a member named twice, whose value depends on the parser.
fn strict_json(bytes: &[u8], part: &str, report: &mut Report) {
    if let Err(token_core::Error::DuplicateMember(name)) = token_core::json::check(bytes) {
        report.add(
            Severity::Error,
            "duplicate-member",
            format!("the {part} names `{name}` more than once: JSON parsers disagree on which value counts, and tessera verifiers refuse it"),
            "name every member once",
        );
    }
}

fn header_members(header: &Map<String, Value>, report: &mut Report) {
    for (member, value) in header {
        if value.is_null() {
            report.add(
                Severity::Error,
                "null-member",
                format!("header member `{}` is null: tessera verifiers refuse it, others read it as absent", echo(member)),
                "leave the member out, or give it a value",
            );
        }
    }
    for (member, why) in [
        ("jku", "a URL to fetch the verification keys from"),
        ("x5u", "a URL to fetch a certificate from"),
        ("jwk", "an embedded public key"),
        ("x5c", "an embedded certificate chain"),
    ] {
        if header.contains_key(member) {
            report.add(
                Severity::Warning,
                "key-in-header",
                format!("the header carries `{member}` ({why}): a verifier that uses it lets the token choose its own key"),
                "remove it; verifiers must take keys only from their own configuration (a JWKS they fetched themselves)",
            );
        }
    }
    if header.contains_key("crit") {
        report.add(
            Severity::Warning,
            "crit",
            "the header lists critical extensions (`crit`); verifiers that do not implement them must refuse the token",
            "drop `crit` and the extensions it names",
        );
    }
    if header.get("kid").is_none() {
        report.add(
            Severity::Info,
            "no-kid",
            "the header names no key id (`kid`)",
            "set `kid` so verifiers with several keys (rotation, JWKS) can pick one",
        );
    }
}

#[allow(clippy::too_many_lines)] // the JWS checks, in order
fn jws(token: &str, report: &mut Report) {
    // The library splits and decodes the token as its verifiers do; nothing is verified.
    let parts = match token_jwt::dangerous_decode_parts(token) {
        Ok(parts) => parts,
        Err(e) => return jose_malformed(&e, report),
    };
    let header = Part::from_bytes(parts.header_json());
    strict_json(parts.header_json(), "header", report);
    let map = if let Part::Json(Value::Object(map)) = &header {
        Some(map.clone())
    } else {
        report.add(
            Severity::Error,
            "malformed",
            "the header is not a JSON object",
            "check that the whole token was copied",
        );
        None
    };
    report.header = Some(header);
    if let Some(map) = &map {
        let alg = echo(map.get("alg").and_then(Value::as_str).unwrap_or_default());
        let alg = alg.as_str();
        if alg.eq_ignore_ascii_case("none") {
            report.add(
                Severity::Error,
                "alg-none",
                "`alg: none`: the token is not signed at all, anyone can write it",
                "sign with ES256 or EdDSA; verifiers must refuse `none` whatever its spelling",
            );
        } else if alg.starts_with("HS") {
            report.add(
                Severity::Warning,
                "hmac",
                format!("`alg: {alg}`: an HMAC shared secret; every verifier holds the secret and so can forge tokens, and a weak secret can be brute-forced offline"),
                "sign with an asymmetric algorithm (ES256 or EdDSA) so verifiers hold only a public key",
            );
        } else if alg.is_empty() {
            report.add(
                Severity::Error,
                "malformed",
                "the header has no `alg`",
                "every JWS names its algorithm",
            );
        } else if is_jwe_alg(alg) {
            report.add(
                Severity::Error,
                "jws-jwe-confusion",
                format!("a three-part (JWS) token whose header is a JWE header (`alg: {alg}`)"),
                JWS_JWE_FIX,
            );
        } else if token_jwt::Algorithm::from_name(alg).is_none() {
            report.add(
                Severity::Warning,
                "unsupported-alg",
                format!("`alg: {alg}` is not accepted by tessera verifiers"),
                "use ES256 (the default), ES384, EdDSA, PS256 or RS256",
            );
        }
        header_members(map, report);
        if let Some(typ) = map.get("typ").and_then(Value::as_str).map(echo) {
            let t = typ.to_ascii_lowercase();
            let t = t.strip_prefix("application/").unwrap_or(&t);
            if t != "jwt" && t != "at+jwt" {
                report.add(
                    Severity::Info,
                    "typ",
                    format!(
                        "`typ: {typ}`: verifiers that do not expect this type refuse the token"
                    ),
                    "verify with `--typ` set to this type",
                );
            }
        }
        if parts.signature().is_some_and(<[u8]>::is_empty) && !alg.eq_ignore_ascii_case("none") {
            report.add(
                Severity::Error,
                "no-signature",
                "the signature is empty",
                "sign the token",
            );
        }
    }
    header_rules(&parts, report);
    match parts.payload() {
        None | Some([]) => report.add(
            Severity::Error,
            "malformed",
            "the payload is empty (detached content)",
            "JWTs carry their claims in the payload",
        ),
        Some(bytes) => {
            let part = Part::from_bytes(bytes);
            lint_payload::<NumericDate>(bytes, &part, report);
            report.payload = Some(part);
        }
    }
}

fn jwe(token: &str, report: &mut Report) {
    let parts = match token_jwt::dangerous_decode_parts(token) {
        Ok(parts) => parts,
        Err(e) => return jose_malformed(&e, report),
    };
    let header = Part::from_bytes(parts.header_json());
    strict_json(parts.header_json(), "header", report);
    report.payload = Some(Part::Encrypted);
    let map = if let Part::Json(Value::Object(map)) = &header {
        map.clone()
    } else {
        report.add(
            Severity::Error,
            "malformed",
            "the header is not a JSON object",
            "check that the whole token was copied",
        );
        report.header = Some(header);
        return;
    };
    report.header = Some(header);
    report.add(
        Severity::Info,
        "encrypted",
        "a JWE: the payload is encrypted; its claims cannot be read or linted without the key",
        "verify it with `tokenctl verify --key` and the decryption key",
    );
    let alg = echo(map.get("alg").and_then(Value::as_str).unwrap_or_default());
    let alg = alg.as_str();
    let nested = map.get("cty").and_then(Value::as_str).is_some_and(|c| {
        c.eq_ignore_ascii_case("jwt") || c.eq_ignore_ascii_case("application/jwt")
    });
    if alg == "RSA1_5" {
        report.add(
            Severity::Error,
            "rsa1_5",
            "`alg: RSA1_5`: RSA PKCS#1 v1.5 key encryption is a padding oracle",
            "use ECDH-ES+A256KW (or dir with a shared key)",
        );
    } else if is_jws_alg(alg) {
        report.add(
            Severity::Error,
            "jws-jwe-confusion",
            format!("a five-part (JWE) token whose header names a signature algorithm (`alg: {alg}`)"),
            "a JWS has three parts; a decrypter must refuse a token whose shape and header disagree",
        );
    } else if alg != "dir" && alg != "ECDH-ES+A256KW" {
        report.add(
            Severity::Warning,
            "unsupported-alg",
            format!("`alg: {alg}` is not accepted by tessera decrypters"),
            "use ECDH-ES+A256KW, or dir with a shared 256-bit key",
        );
    } else if alg == "ECDH-ES+A256KW" && !nested {
        report.add(
            Severity::Warning,
            "unsigned-jwe",
            "an ECDH-ES JWE without an inner signed JWT: anyone holding the recipient's public key can make one",
            "sign first, then encrypt (a nested JWT, `cty: JWT`)",
        );
    }
    match map.get("enc").and_then(Value::as_str) {
        Some("A256GCM") => {}
        Some(enc) => report.add(
            Severity::Warning,
            "unsupported-enc",
            format!("`enc: {}` is not accepted by tessera decrypters", echo(enc)),
            "use A256GCM",
        ),
        None => report.add(
            Severity::Error,
            "malformed",
            "a JWE header without `enc`",
            "every JWE names its content encryption",
        ),
    }
    if map.contains_key("zip") {
        report.add(
            Severity::Warning,
            "compression",
            "the payload is compressed before encryption (`zip`): its length leaks what it holds",
            "do not compress encrypted tokens",
        );
    }
    if nested {
        report.add(
            Severity::Info,
            "nested",
            "a nested JWT: a signed JWT inside, verified after decryption",
            "verify it with the decryption key and the signer's public key",
        );
    }
    header_members(&map, report);
    header_rules(&parts, report);
}

fn opaque(token: &str, kind: token_core::OpaqueKind, report: &mut Report) {
    match token_opaque::Prefixes::default().parse(token) {
        Ok(_) => report.add(
            Severity::Info,
            "opaque",
            format!("a tessera opaque token ({}): it means nothing by itself; its database says what it is worth", kind.default_prefix()),
            "check it against its store (`tokenctl api-key verify` for API keys)",
        ),
        Err(token_opaque::Error::BadChecksum) => report.add(
            Severity::Error,
            "bad-checksum",
            "the checksum does not match: a typo, a truncated copy or a made-up string",
            "copy the token again, whole",
        ),
        Err(e) => report.add(Severity::Error, "malformed", e.to_string(), "copy the token again, whole"),
    }
}

/// Lints a readable payload: registered claims (in encoding `E`), lifetime, and
/// sensitive-looking names and values.
fn lint_payload<E: TimeEncoding>(bytes: &[u8], part: &Part, report: &mut Report) {
    let Part::Json(Value::Object(map)) = part else {
        report.add(
            Severity::Error,
            "malformed-claims",
            "the payload is not a JSON object of claims",
            "a token's claims are a JSON object",
        );
        return;
    };
    strict_json(bytes, "payload", report);
    match Claims::<Map<String, Value>>::from_json::<E>(bytes) {
        // Reported as `duplicate-member` above.
        Err(token_core::Error::DuplicateMember(_)) => {}
        Err(e) => report.add(
            Severity::Error,
            "malformed-claims",
            e.to_string(),
            "write `exp`, `nbf` and `iat` as the format requires (JWT: integer seconds; PASETO: RFC 3339)",
        ),
        Ok(claims) => lint_claims(&claims, report),
    }
    // The policy's own rule and list (token_core::SensitiveClaims): what inspect flags is
    // what `TokenService` refuses to issue.
    for path in Policy::new("", "")
        .sensitive_claims()
        .find(&Value::Object(map.clone()))
    {
        report.add(
            Severity::Error,
            "sensitive-claim",
            format!("claim `{path}` looks sensitive, and this payload is readable by anyone who sees the token"),
            "keep it server-side, or carry it in an encrypted token (PASETO v4.local)",
        );
    }
    let mut values = Vec::new();
    collect_sensitive_values(&Value::Object(map.clone()), "", &mut values);
    for (path, what) in values {
        report.add(
            Severity::Error,
            "sensitive-value",
            format!("claim `{path}` holds {what}, readable by anyone who sees the token"),
            "keep it server-side, or carry it in an encrypted token (PASETO v4.local)",
        );
    }
}

fn lint_claims(claims: &Claims<Map<String, Value>>, report: &mut Report) {
    if claims.exp.is_none() {
        report.add(
            Severity::Error,
            "missing-exp",
            "no `exp`: the token is valid until its key is retired",
            "give every token an expiry (access tokens: 15 min at most)",
        );
    }
    if claims.jti.is_none() {
        report.add(
            Severity::Warning,
            "missing-jti",
            "no `jti`: the token cannot be revoked by id or checked for replay",
            "give every token a random `jti`",
        );
    }
    if claims.aud.is_none() {
        report.add(
            Severity::Warning,
            "missing-aud",
            "no `aud`: any service that trusts the issuer accepts the token",
            "name the one service the token is for in `aud`",
        );
    }
    if let (Some(exp), Some(iat)) = (claims.exp, claims.iat) {
        let lifetime = exp.duration_since(iat);
        if lifetime > MAX_ACCESS_TTL {
            report.add(
                Severity::Warning,
                "lifetime-too-long",
                format!(
                    "lifetime {} (exp - iat), longer than the access job allows ({})",
                    humanize(lifetime),
                    humanize(MAX_ACCESS_TTL)
                ),
                "issue short-lived access tokens and refresh them with an opaque refresh token",
            );
        }
    }
    if let Some(exp) = claims.exp {
        if exp <= SystemClock.now() {
            report.add(
                Severity::Info,
                "expired",
                format!("expired at {exp}"),
                "issue a new token",
            );
        }
    }
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Whether `s` looks like a payment card number: 13–19 digits (spaces and dashes
/// allowed between them) passing the Luhn check.
fn looks_like_card(s: &str) -> bool {
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return false;
    }
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    (13..=19).contains(&digits.len()) && luhn(&digits)
}

fn looks_like_email(s: &str) -> bool {
    let mut parts = s.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && s.len() < 255
                && !s.contains(char::is_whitespace)
        }
        _ => false,
    }
}

fn looks_like_token(s: &str) -> bool {
    if s.len() < 16 {
        return false;
    }
    match TokenFormat::detect(s) {
        Ok(TokenFormat::Paseto { .. } | TokenFormat::Opaque(_)) => true,
        Ok(TokenFormat::Jws | TokenFormat::Jwe) => token_jwt::dangerous_decode_parts(s)
            .ok()
            .and_then(|p| serde_json::from_slice::<Value>(p.header_json()).ok())
            .is_some_and(|h| h.get("alg").is_some()),
        _ => false,
    }
}

fn collect_sensitive_values(value: &Value, path: &str, out: &mut Vec<(String, &'static str)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect_sensitive_values(v, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_sensitive_values(v, &format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => {
            if looks_like_card(s) {
                out.push((path.to_owned(), "what looks like a payment card number"));
            } else if looks_like_email(s) {
                out.push((path.to_owned(), "what looks like an email address"));
            } else if looks_like_token(s) {
                out.push((
                    path.to_owned(),
                    "what looks like another token (a bearer credential)",
                ));
            }
        }
        Value::Number(n) if n.as_u64().is_some_and(|n| looks_like_card(&n.to_string())) => {
            out.push((path.to_owned(), "what looks like a payment card number"));
        }
        _ => {}
    }
}

fn render(report: &Report) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{:<10}{}", "format:", report.format);
    if report.header.is_some() || report.payload.is_some() || report.footer.is_some() {
        let _ = writeln!(
            text,
            "UNVERIFIED: decoded without checking any signature or key; nothing below can be trusted"
        );
    }
    for (name, part) in [
        ("header", &report.header),
        ("footer", &report.footer),
        ("payload", &report.payload),
    ] {
        if let Some(part) = part {
            let label = format!("{name}:");
            let _ = writeln!(
                text,
                "{label:<10}{}",
                part.to_text().replace('\n', "\n          ")
            );
        }
    }
    if report.findings.is_empty() {
        let _ = writeln!(text, "findings: none");
    } else {
        let _ = writeln!(text, "findings:");
        for f in &report.findings {
            let _ = writeln!(
                text,
                "  {:<8} {}: {}",
                f.severity.name(),
                f.code,
                terminal_safe(&f.message)
            );
            let _ = writeln!(text, "           fix: {}", f.fix);
        }
    }
    text.trim_end().to_owned()
}

fn to_json(report: &Report) -> Value {
    json!({
        "format": report.format,
        "verified": false,
        "header": report.header.as_ref().map(Part::to_json),
        "footer": report.footer.as_ref().map(Part::to_json),
        "payload": report.payload.as_ref().map(Part::to_json),
        "findings": report.findings.iter().map(|f| json!({
            "severity": f.severity.name(),
            "code": f.code,
            "message": f.message,
            "fix": f.fix,
        })).collect::<Vec<_>>(),
    })
}

/// Runs `inspect`.
pub(crate) fn run(args: &Args, json: bool) -> Result<()> {
    let token = read_token(args.token.as_deref())?;
    let report = analyse(&token);
    if json {
        out_json(&to_json(&report), true)?;
    } else {
        out(&render(&report))?;
    }
    match report.errors() {
        0 => Ok(()),
        1 => Err(Failure::failed("1 finding of severity error")),
        n => Err(Failure::failed(format!("{n} findings of severity error"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_pass_luhn() {
        assert!(looks_like_card("4111 1111 1111 1111"));
        assert!(looks_like_card("4242-4242-4242-4242"));
        assert!(!looks_like_card("4111 1111 1111 1112"));
        assert!(!looks_like_card("1700000000"));
        assert!(!looks_like_card("hello"));
    }

    /// Inspection reads tokens with the libraries' unverified decoders, so it refuses
    /// what verifiers refuse, in their words.
    #[test]
    fn malformed_parts_are_the_libraries_refusals() {
        let message = |token: &str| {
            analyse(token)
                .findings
                .into_iter()
                .find(|f| f.code == "malformed" && f.severity == Severity::Error)
                .map(|f| f.message)
                .unwrap_or_default()
        };
        // Ten bytes: shorter than an Ed25519 signature.
        assert!(
            message("v4.public.AAAAAAAAAAAAAA").ends_with("payload is shorter than a signature"),
            "{}",
            message("v4.public.AAAAAAAAAAAAAA")
        );
        assert!(message("eyJhbGciOiJFUzI1NiJ9.A.AAAA").ends_with("payload is not base64url"));
        assert!(message("eyJhbGciOiJFUzI1NiJ9.AAAA.A").ends_with("signature is not base64url"));
        // A footer over the bound is the verifiers' `invalid footer`.
        let long = format!("v4.public.{}.{}", "A".repeat(100), "A".repeat(3000));
        assert!(
            analyse(&long)
                .findings
                .iter()
                .any(|f| f.code == "invalid-footer")
        );
    }

    #[test]
    fn emails_and_tokens() {
        assert!(looks_like_email("alice@example.com"));
        assert!(!looks_like_email("https://auth.example"));
        assert!(!looks_like_email("a@b"));
        assert!(!looks_like_token("example.com.au"));
        assert!(looks_like_token(
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
        ));
    }
}
