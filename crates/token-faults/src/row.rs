//! One scenario's line of `target/faults/summary.json`.

use serde::Serialize;

/// What a scenario counted. The first nine fields are the summary's columns; the rest
/// say what else went wrong (`cargo xtask faults` fails on any but `failed_closed`,
/// `unanswered` and `recovery_ms` that is not zero).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Row {
    /// The scenario.
    pub(crate) name: String,
    /// The backends it ran on.
    pub(crate) backend: String,
    /// HTTP requests (or library calls) made.
    pub(crate) requests: u64,
    /// Answers `503` (with the library: typed "unavailable" errors) while a backend was
    /// down: the service failed closed, which is right.
    pub(crate) failed_closed: u64,
    /// Answers `500`-`599` other than `503`.
    pub errors_5xx: u64,
    /// A refresh token the client got with `200` that was refused afterwards, or a live
    /// family left without a live token in the database.
    pub(crate) lost_rotations: u64,
    /// One refresh token rotated into two successors (seen by clients racing, or in the
    /// database as a token with two children or a family with two live tokens).
    pub(crate) double_rotations: u64,
    /// A revoked credential (a logged-out access or refresh token, a revoked API key, an
    /// expired token) accepted past the revocation bound.
    pub(crate) revoked_accepted: u64,
    /// From the fault's end to the first success of every kind of request that needs
    /// the backend; `None` when nothing was healed.
    pub(crate) recovery_ms: Option<u64>,
    /// Requests with no answer at all (connection refused or reset while the service
    /// process was down): expected when it is killed, never counted as a success.
    pub(crate) unanswered: u64,
    /// Requests that took longer than the request timeout.
    pub(crate) hangs: u64,
    /// Any other answer that is not one of those the request may get (a `401` for a
    /// valid access token, a database that fails `PRAGMA integrity_check`, …).
    pub(crate) unexpected: u64,
}

impl Row {
    /// An empty row for `name` on `backend`.
    pub(crate) fn new(name: &str, backend: &str) -> Self {
        Self {
            name: name.to_owned(),
            backend: backend.to_owned(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Row;

    #[test]
    fn the_summary_fields_are_the_documented_ones() {
        let json = serde_json::to_value(Row::new("a", "b")).unwrap_or_default();
        let keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for field in [
            "name",
            "backend",
            "requests",
            "failed_closed",
            "errors_5xx",
            "lost_rotations",
            "double_rotations",
            "revoked_accepted",
            "recovery_ms",
        ] {
            assert!(keys.contains(&field), "{field} missing from {keys:?}");
        }
    }
}
