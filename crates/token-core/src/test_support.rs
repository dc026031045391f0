//! Helpers for tests that need a real service (PostgreSQL, Redis). Enabled by the
//! `test-support` feature; for dev-dependencies only.
//!
//! `cargo xtask services up` starts the services and writes their URLs to
//! `target/services/env`; `cargo xtask ci` passes them to the tests as environment
//! variables.

/// The variable holding the PostgreSQL URL.
pub const DATABASE_URL: &str = "TESSERA_TEST_DATABASE_URL";
/// The variable holding the Redis URL.
pub const REDIS_URL: &str = "TESSERA_TEST_REDIS_URL";
/// The variable holding a Redis Cluster's node URLs, comma-separated (three masters
/// from `cargo xtask services up`).
pub const REDIS_CLUSTER_URL: &str = "TESSERA_TEST_REDIS_CLUSTER_URL";
/// When `1`, a missing service fails the test instead of skipping it.
pub const REQUIRE_SERVICES: &str = "TESSERA_REQUIRE_SERVICES";

/// What to do about a service, given a way to read the environment.
///
/// # Errors
/// A message naming the missing variable when services are required.
pub fn service_url_from(
    var: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    match lookup(var).filter(|v| !v.is_empty()) {
        Some(url) => Ok(Some(url)),
        None if lookup(REQUIRE_SERVICES).as_deref() == Some("1") => Err(format!(
            "{var} is not set but {REQUIRE_SERVICES}=1: run `cargo xtask services up` \
             and export target/services/env, or run `cargo xtask ci`"
        )),
        None => Ok(None),
    }
}

/// The URL in `var`, or `None` after printing a loud SKIP line.
///
/// # Panics
/// When `var` is unset and `TESSERA_REQUIRE_SERVICES=1`: the test must fail, not skip.
#[allow(clippy::panic, clippy::print_stderr)]
pub fn service_url(var: &str, test: &str) -> Option<String> {
    match service_url_from(var, |k| std::env::var(k).ok()) {
        Ok(Some(url)) => Some(url),
        Ok(None) => {
            eprintln!("!!! SKIPPED {test}: {var} is not set (`cargo xtask services up`)");
            None
        }
        Err(msg) => panic!("{test}: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_unless_required() {
        let none = |_: &str| None;
        assert_eq!(service_url_from(DATABASE_URL, none), Ok(None));
        let required = |k: &str| (k == REQUIRE_SERVICES).then(|| "1".to_owned());
        let err = service_url_from(DATABASE_URL, required).unwrap_err();
        assert!(err.contains(DATABASE_URL));
        let set = |k: &str| (k == REDIS_URL).then(|| "redis://127.0.0.1:1/".to_owned());
        assert_eq!(
            service_url_from(REDIS_URL, set),
            Ok(Some("redis://127.0.0.1:1/".to_owned()))
        );
        assert_eq!(service_url_from(REDIS_CLUSTER_URL, set), Ok(None));
        let err = service_url_from(REDIS_CLUSTER_URL, required).unwrap_err();
        assert!(err.contains(REDIS_CLUSTER_URL));
    }
}
