//! Metrics where the work happens: verify outcomes counted by reason, issued tokens,
//! refresh rotations and reuse detections, revocations and key rotations counted, and
//! the key table's ages as gauges.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(all(feature = "sqlite", feature = "metrics"))]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use secrecy::ExposeSecret as _;
use token_core::Reason;
use token_opaque::NewApiKey;
use token_opaque::format::Environment;
use token_policy::keystore::KeyJob;
use token_policy::{JsonObject, telemetry};

mod common;
use common::{instance, role, tamper};

// ---- a recorder that keeps every series, for reading back -------------------------

#[derive(Default)]
struct Recorded {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

/// `name{k="v",…}`, the labels in the order recorded.
fn series_name(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
        .collect();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl Recorded {
    fn counter(&self, series: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(series)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    fn gauge(&self, series: &str) -> Option<f64> {
        self.gauges
            .lock()
            .unwrap()
            .get(series)
            .map(|g| f64::from_bits(g.load(Ordering::SeqCst)))
    }

    fn names(&self) -> String {
        let mut out = String::new();
        for (k, v) in self.counters.lock().unwrap().iter() {
            let _ = writeln!(out, "{k} {}", v.load(Ordering::SeqCst));
        }
        for (k, v) in self.gauges.lock().unwrap().iter() {
            let _ = writeln!(out, "{k} {}", f64::from_bits(v.load(Ordering::SeqCst)));
        }
        out
    }
}

impl Recorder for Recorded {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut map = self.counters.lock().unwrap();
        Counter::from_arc(map.entry(series_name(key)).or_default().clone())
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut map = self.gauges.lock().unwrap();
        Gauge::from_arc(map.entry(series_name(key)).or_default().clone())
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn verify_series(credential: &str, outcome: &str, reason: &str) -> String {
    format!(
        "{}{{credential=\"{credential}\",outcome=\"{outcome}\",reason=\"{reason}\"}}",
        telemetry::VERIFY_TOTAL
    )
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story, told in order
async fn verify_outcomes_refreshes_revocations_and_key_rotations_are_counted() {
    let recorded: &'static Recorded = Box::leak(Box::default());
    let _guard = metrics::set_default_local_recorder(recorded);
    let i = instance().await;

    let login = i.svc.login("usr_1", &role()).await.unwrap();
    let access = login.access.expose_secret().to_owned();
    i.svc.verify_access::<JsonObject>(&access).await.unwrap();
    i.svc.verify_access::<JsonObject>(&access).await.unwrap();
    let tampered = tamper(&access);
    assert!(i.svc.verify_access::<JsonObject>(&tampered).await.is_err());
    // A refresh rotation, then the old refresh token again: reuse.
    let old = login.refresh.expose_secret().to_owned();
    let rotated = i.svc.refresh(&old, |_| role()).await.unwrap();
    let err = i.svc.refresh(&old, |_| role()).await.unwrap_err();
    assert_eq!(err.reason(), Reason::ReuseDetected);
    // Expired: past the access lifetime.
    i.clock.advance(Duration::from_secs(3600));
    let err = i
        .svc
        .verify_access::<JsonObject>(rotated.access.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), Reason::Expired);
    // An API key, verified, revoked, refused.
    let created = i
        .svc
        .issue_api_key(NewApiKey::new("usr_1", "ci", Environment::Live))
        .await
        .unwrap();
    let raw = created.key.expose_secret().to_owned();
    i.svc.verify_api_key(&raw).await.unwrap();
    assert!(
        i.svc
            .revoke_api_key("usr_1", &created.info.id)
            .await
            .unwrap()
    );
    assert!(i.svc.verify_api_key(&raw).await.is_err());

    let all = recorded.names();
    assert_eq!(
        recorded.counter(&verify_series("access_token", "accepted", "none")),
        2,
        "{all}"
    );
    assert_eq!(
        recorded.counter(&verify_series("access_token", "refused", "invalid token")),
        1,
        "{all}"
    );
    assert_eq!(
        recorded.counter(&verify_series("access_token", "refused", "expired")),
        1,
        "{all}"
    );
    assert_eq!(
        recorded.counter(&verify_series("api_key", "accepted", "none")),
        1,
        "{all}"
    );
    assert_eq!(
        recorded.counter(&verify_series("api_key", "refused", "revoked")),
        1,
        "{all}"
    );
    let issued = |kind: &str| {
        recorded.counter(&format!(
            "{}{{kind=\"{kind}\"}}",
            telemetry::TOKENS_ISSUED_TOTAL
        ))
    };
    assert_eq!(
        (issued("access"), issued("refresh"), issued("api_key")),
        (2, 2, 1),
        "{all}"
    );
    let refresh = |outcome: &str| {
        recorded.counter(&format!(
            "{}{{outcome=\"{outcome}\"}}",
            telemetry::REFRESH_TOTAL
        ))
    };
    assert_eq!(refresh("rotated"), 1, "{all}");
    assert_eq!(refresh("reuse detected: session revoked"), 1, "{all}");
    assert_eq!(
        recorded.counter(telemetry::REUSE_DETECTED_TOTAL),
        1,
        "{all}"
    );
    let revocations = |kind: &str| {
        recorded.counter(&format!(
            "{}{{kind=\"{kind}\"}}",
            telemetry::REVOCATIONS_TOTAL
        ))
    };
    assert_eq!(revocations("session"), 1, "{all}");
    assert_eq!(revocations("api_key"), 1, "{all}");

    // The key table: opened with one active key per job; a manual rotation adds one
    // and retires the old signer; its ages move on with the clock.
    let keys = |job: &str, state: &str| {
        let labels = format!("{{job=\"{job}\",state=\"{state}\"}}");
        (
            recorded.gauge(&format!("{}{labels}", telemetry::KEYS)),
            recorded.gauge(&format!("{}{labels}", telemetry::KEY_AGE_SECONDS)),
            recorded.gauge(&format!("{}{labels}", telemetry::KEY_SIGNING_AGE_SECONDS)),
        )
    };
    let rotations = |trigger: &str| {
        recorded.counter(&format!(
            "{}{{job=\"access\",trigger=\"{trigger}\"}}",
            telemetry::KEY_ROTATIONS_TOTAL
        ))
    };
    assert_eq!(rotations("schedule"), 1, "{all}");
    // Read an hour ago, at the table's creation: every key then zero seconds old.
    assert_eq!(
        keys("access", "active"),
        (Some(1.0), Some(0.0), Some(0.0)),
        "{all}"
    );
    i.keys.record_metrics();
    assert_eq!(
        keys("access", "active"),
        (Some(1.0), Some(3600.0), Some(3600.0))
    );
    assert_eq!(
        keys("access", "retiring"),
        (Some(0.0), Some(0.0), Some(0.0))
    );
    let kid = i.keys.rotate_now(KeyJob::Access).await.unwrap();
    assert_eq!(rotations("manual"), 1);
    i.keys.refresh_into(&i.svc).await.unwrap();
    assert_eq!(keys("access", "active"), (Some(1.0), Some(0.0), Some(0.0)));
    assert_eq!(
        keys("access", "retiring"),
        (Some(1.0), Some(3600.0), Some(3600.0))
    );
    i.clock.advance(Duration::from_secs(60));
    i.keys.record_metrics();
    assert_eq!(
        keys("access", "active"),
        (Some(1.0), Some(60.0), Some(60.0))
    );
    assert!(
        i.svc.access_keys().key_ids().contains(&kid),
        "the rotated key signs"
    );
    let _ = &i.store;
}
