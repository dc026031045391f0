//! Claim names that look sensitive, and the one rule that decides it.
//!
//! A signed token's payload is readable by anyone who sees the token (a browser, a
//! proxy log, a support ticket), so e-mail addresses, card numbers or credentials do
//! not belong in it. Issuing code refuses such claims and inspection tools flag them,
//! both through [`SensitiveClaims`], so the two never disagree on a name.
//!
//! A claim name is cut into words at `_`, `-`, `.` and any other punctuation, at a
//! lower-case or digit to upper-case step (`userEmail`, `creditCard`), at the end of an
//! upper-case run (`APIKey` is `api` `key`) and between letters and digits. A listed
//! name matches when its words appear together, in order, among the claim's words
//! (`email` matches `user_email`, `userEmail` and `Email`; `api_key` matches `apiKey`
//! and `X-API-Key`), or when they are written as one word (`api_key` matches `apikey`).
//! A word is never matched inside a longer one: `email` does not match
//! `emailed_at_count`.

use serde_json::Value;

/// Claim names that must not appear in a readable (signed, unencrypted) payload: the
/// list [`SensitiveClaims::default`] holds.
pub const DEFAULT_SENSITIVE_CLAIMS: &[&str] = &[
    "email",
    "phone",
    "password",
    "passwd",
    "secret",
    "ssn",
    "card",
    "card_number",
    "pan",
    "cvv",
    "cvc",
    "iban",
    "account_number",
    "dob",
    "date_of_birth",
    "address",
    "token",
    "api_key",
    "private_key",
];

/// A list of sensitive claim names and the matching rule of this module.
///
/// ```
/// use serde_json::json;
/// use token_core::SensitiveClaims;
///
/// let sensitive = SensitiveClaims::default();
/// assert!(sensitive.matches("userEmail"));
/// assert!(!sensitive.matches("emailed_at_count"));
/// let claims = json!({"role": "admin", "creditCard": "…", "profile": {"apiKey": "…"}});
/// assert_eq!(sensitive.find(&claims), ["creditCard", "profile.apiKey"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensitiveClaims {
    names: Vec<String>,
    /// Each name cut into words.
    words: Vec<Vec<String>>,
}

impl Default for SensitiveClaims {
    /// [`DEFAULT_SENSITIVE_CLAIMS`].
    fn default() -> Self {
        Self::new(DEFAULT_SENSITIVE_CLAIMS.iter().copied())
    }
}

impl SensitiveClaims {
    /// The list `names` (in any spelling: `card_number`, `cardNumber` and
    /// `card-number` are the same name). A name with no letter or digit is ignored.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let words = names
            .iter()
            .map(|n| words(n))
            .filter(|w| !w.is_empty())
            .collect();
        Self { names, words }
    }

    /// The names, as given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether the claim name `name` looks sensitive.
    pub fn matches(&self, name: &str) -> bool {
        let claim = words(name);
        self.words.iter().any(|listed| contains(&claim, listed))
    }

    /// Every member of `claims`, at any depth, whose name looks sensitive: its path,
    /// members joined by `.` and array items as `[i]` (`profile.userEmail`,
    /// `cards[0].number`), in the order the JSON maps hold their members.
    pub fn find(&self, claims: &Value) -> Vec<String> {
        let mut hits = Vec::new();
        self.collect(claims, "", &mut hits);
        hits
    }

    fn collect(&self, value: &Value, path: &str, hits: &mut Vec<String>) {
        match value {
            Value::Object(members) => {
                for (name, member) in members {
                    let here = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    if self.matches(name) {
                        hits.push(here.clone());
                    }
                    self.collect(member, &here, hits);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.collect(item, &format!("{path}[{i}]"), hits);
                }
            }
            _ => {}
        }
    }
}

/// Whether `listed` (two words or more) appears in `claim` as a run of words, or
/// written as one of its words.
fn contains(claim: &[String], listed: &[String]) -> bool {
    claim.windows(listed.len()).any(|w| w == listed)
        || (listed.len() > 1 && claim.iter().any(|w| *w == listed.concat()))
}

/// `name` cut into lower-case words (see the module documentation).
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let boundary = prev.is_some_and(|p| {
            p.is_alphanumeric()
                && ((c.is_uppercase() && (p.is_lowercase() || p.is_numeric()))
                    || (c.is_uppercase()
                        && p.is_uppercase()
                        && next.is_some_and(char::is_lowercase))
                    || (c.is_numeric() != p.is_numeric()))
        });
        if boundary && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_cut_into_words_in_every_spelling() {
        for (name, want) in [
            ("email", &["email"][..]),
            ("Email", &["email"]),
            ("user_email", &["user", "email"]),
            ("userEmail", &["user", "email"]),
            ("UserEmail", &["user", "email"]),
            ("card-number", &["card", "number"]),
            ("APIKey", &["api", "key"]),
            ("X-API-Key", &["x", "api", "key"]),
            ("address2", &["address", "2"]),
            ("sha256Hash", &["sha", "256", "hash"]),
            ("a.b c", &["a", "b", "c"]),
            ("__", &[]),
        ] {
            assert_eq!(words(name), want, "{name}");
        }
    }

    #[test]
    fn every_spelling_of_a_listed_name_matches_and_longer_words_do_not() {
        let s = SensitiveClaims::default();
        for name in [
            "email",
            "Email",
            "user_email",
            "userEmail",
            "UserEmail",
            "card-number",
            "cardNumber",
            "creditCard",
            "refreshToken",
            "refresh_token",
            "apiKey",
            "api_key",
            "apikey",
            "X-API-Key",
            "privateKey",
            "dateOfBirth",
            "dateofbirth",
            "homeAddress",
        ] {
            assert!(s.matches(name), "{name}");
        }
        for name in [
            "role",
            "sid",
            "scope",
            "emailed_at_count",
            "tokens_left",
            "key",
            "api",
            "company",
            "cardinality",
        ] {
            assert!(!s.matches(name), "{name}");
        }
    }

    #[test]
    fn a_custom_list_replaces_the_default() {
        let s = SensitiveClaims::new(["tenant_secret_hint"]);
        assert!(!s.matches("email"));
        assert!(s.matches("tenant_secret_hint"));
        assert!(s.matches("tenantSecretHint"));
        assert_eq!(s.names(), ["tenant_secret_hint"]);
        assert!(!SensitiveClaims::new(["--"]).matches("anything"));
    }

    #[test]
    fn every_hit_is_reported_with_its_path() {
        let claims = json!({
            "role": "admin",
            "userEmail": "a@example.com",
            "creditCard": {"number": "4111"},
            "session": {"refreshToken": "rt_…", "items": [{"apiKey": "sk_…"}, {"ok": 1}]},
        });
        let mut hits = SensitiveClaims::default().find(&claims);
        hits.sort();
        assert_eq!(
            hits,
            [
                "creditCard",
                "session.items[0].apiKey",
                "session.refreshToken",
                "userEmail",
            ]
        );
        assert!(
            SensitiveClaims::default()
                .find(&json!({"sub": "a"}))
                .is_empty()
        );
    }
}
