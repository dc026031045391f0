//! The one error type of `tokenctl`, and its exit codes.
//!
//! | exit | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the token was rejected; a check found a problem of severity error (`inspect`, `issue`, a key `key inspect` finds malformed); a key or password was wrong |
//! | 2 | usage or input error: a bad flag value, an unreadable file, a malformed key given to any other command, a database that does not exist |
//!
//! Every failure is reported as one line on stderr: text, or with `--json` one JSON
//! object ([`Failure::to_json`]) with the same exit code. No message carries key
//! material or a raw token. A rejection is `rejected: <reason>`, `<reason>` one of the phrases every
//! tessera crate shares ([`Reason`], from each library error's `reason()`), followed by
//! the error's own detail in parentheses where it says more (this is a local tool: its
//! user may see what a service would keep to itself). There is no second table of
//! reasons here.

use std::fmt;

use token_core::Reason;

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The token was rejected. Exit 1, printed as `rejected: <reason>`, or
    /// `rejected: <reason> (<detail>)` when there is more to say: the reason is always
    /// one of the phrases every tessera crate shares ([`Reason`]).
    Rejected {
        /// Why, in the shared vocabulary.
        reason: Reason,
        /// What this tool can add for its user, if anything.
        detail: Option<String>,
    },
    /// A check found problems (lint findings of severity error, a key that is not what
    /// was expected, a key that cannot be recovered with the given key or password).
    /// Exit 1, printed as `error: <message>`.
    Failed(String),
    /// Usage or input error. Exit 2, printed as `error: <message>`.
    Usage(String),
}

impl Failure {
    /// A rejection for `reason`, with what `detail` says.
    pub(crate) fn rejected(reason: Reason, detail: impl Into<String>) -> Self {
        Self::Rejected {
            reason,
            detail: Some(detail.into()),
        }
    }

    /// A rejection by a library: the error's [`Reason`], and its own text as the detail
    /// where that says more than the phrase.
    pub(crate) fn refused(e: &impl Refusal) -> Self {
        let reason = e.reason();
        Self::Rejected {
            reason,
            detail: detail(reason, &e.to_string()),
        }
    }

    /// A usage or input error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// A failed check.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// The process exit code.
    pub(crate) const fn exit_code(&self) -> u8 {
        match self {
            Self::Rejected { .. } | Self::Failed(_) => 1,
            Self::Usage(_) => 2,
        }
    }

    /// The `--json` form: `{"error": "rejected", "reason": <the shared phrase>,
    /// "detail": …}` for a rejection (`detail` only when there is one), `{"error":
    /// "failed" | "usage", "reason": <the message>}` otherwise.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Rejected { reason, detail } => {
                let mut object = serde_json::json!({
                    "error": "rejected",
                    "reason": reason.as_str(),
                });
                if let (Some(map), Some(detail)) = (object.as_object_mut(), detail) {
                    let detail = one_line(detail);
                    if !detail.trim().is_empty() {
                        map.insert("detail".into(), detail.into());
                    }
                }
                object
            }
            Self::Failed(message) => {
                serde_json::json!({ "error": "failed", "reason": one_line(message) })
            }
            Self::Usage(message) => {
                serde_json::json!({ "error": "usage", "reason": one_line(message) })
            }
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { reason, detail } => {
                write!(f, "rejected: {}", describe(*reason, detail.as_deref()))
            }
            Self::Failed(message) | Self::Usage(message) => {
                write!(f, "error: {}", one_line(message))
            }
        }
    }
}

/// `Result` with [`Failure`].
pub(crate) type Result<T, E = Failure> = std::result::Result<T, E>;

/// A library error that says why, in the shared vocabulary: every tessera crate's
/// error has `reason()`.
pub(crate) trait Refusal: fmt::Display {
    /// The error's [`Reason`].
    fn reason(&self) -> Reason;
}

macro_rules! refusal {
    ($($error:ty),*) => {$(
        impl Refusal for $error {
            fn reason(&self) -> Reason {
                <$error>::reason(self)
            }
        }
    )*};
}

refusal!(
    token_core::Error,
    token_paseto::Error,
    token_jwt::Error,
    token_opaque::Error,
    token_policy::Error
);

/// The one printed form of a refusal: the shared phrase, then `detail` in parentheses.
pub(crate) fn describe(reason: Reason, detail: Option<&str>) -> String {
    match detail.map(one_line) {
        Some(detail) if !detail.is_empty() => format!("{reason} ({detail})"),
        _ => reason.as_str().to_owned(),
    }
}

/// [`describe`] for a library error: its reason, and its text where it says more.
pub(crate) fn describe_error(e: &impl Refusal) -> String {
    let reason = e.reason();
    describe(reason, detail(reason, &e.to_string()).as_deref())
}

/// Words that add nothing to a phrase when an error's text repeats it.
const FILLER: [&str; 6] = ["a", "an", "the", "token", "opaque", "id"];

/// What an error's `text` adds to the phrase of `reason`: nothing when its words are
/// the phrase's (`unknown key id`, `token revoked`); the rest when it opens with the
/// phrase and a colon (`malformed token: footer is not base64url`); else all of it.
fn detail(reason: Reason, text: &str) -> Option<String> {
    let phrase: Vec<String> = words(reason.as_str()).collect();
    let redundant = |s: &str| words(s).all(|w| phrase.contains(&w) || FILLER.contains(&w.as_str()));
    let text = one_line(text);
    let text = text.trim();
    if redundant(text) {
        return None;
    }
    match text.split_once(": ") {
        Some((head, rest)) if redundant(head) && !rest.trim().is_empty() => {
            Some(rest.trim().to_owned())
        }
        _ => Some(text.to_owned()),
    }
}

/// The lower-case words of `s`.
fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// One line, whatever the message holds.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_is_the_shared_phrase_then_what_the_error_adds() {
        let cases: Vec<(Failure, &str)> = vec![
            (
                Failure::refused(&token_paseto::Error::Malformed(
                    "footer is not valid base64url",
                )),
                "rejected: malformed token (footer is not valid base64url)",
            ),
            (
                Failure::refused(&token_core::Error::InvalidToken),
                "rejected: invalid token",
            ),
            (
                Failure::refused(&token_core::Error::UnknownKeyId),
                "rejected: unknown key",
            ),
            (
                Failure::refused(&token_opaque::Error::Revoked),
                "rejected: revoked",
            ),
            (
                Failure::refused(&token_opaque::Error::BadChecksum),
                "rejected: checksum mismatch",
            ),
            (
                Failure::refused(&token_opaque::Error::Malformed("too short")),
                "rejected: malformed token (too short)",
            ),
            (
                Failure::refused(&token_paseto::Error::InvalidFooter("`kid` is not a string")),
                "rejected: invalid footer (`kid` is not a string)",
            ),
            (
                Failure::refused(&token_paseto::Error::FooterMismatch),
                "rejected: invalid footer (footer does not match the expected footer)",
            ),
            (
                Failure::refused(&token_jwt::Error::UnsupportedCritical("b64".into())),
                "rejected: unsupported critical header (critical header parameter `b64` is not supported)",
            ),
            (
                Failure::rejected(Reason::UnknownKey, "`k1` names none of the\ngiven keys"),
                "rejected: unknown key (`k1` names none of the given keys)",
            ),
        ];
        for (failure, want) in cases {
            assert_eq!(failure.to_string(), want);
            assert_eq!(failure.exit_code(), 1);
            // The JSON form says the same: the phrase, then the detail.
            let json = failure.to_json();
            assert_eq!(json["error"], "rejected");
            let Failure::Rejected { reason, .. } = &failure else {
                panic!("{failure:?}")
            };
            assert_eq!(json["reason"], reason.as_str());
            let text = match json.get("detail").and_then(serde_json::Value::as_str) {
                Some(detail) => format!("rejected: {} ({detail})", reason.as_str()),
                None => format!("rejected: {}", reason.as_str()),
            };
            assert_eq!(text, want);
        }
    }

    #[test]
    fn other_failures_are_json_with_their_message() {
        assert_eq!(
            Failure::usage("no\nkey").to_json(),
            serde_json::json!({"error": "usage", "reason": "no key"})
        );
        assert_eq!(
            Failure::failed("2 findings").to_json(),
            serde_json::json!({"error": "failed", "reason": "2 findings"})
        );
    }
}
