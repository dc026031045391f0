//! Spans and events on issue, verify, refresh, reuse detection, revocation and key
//! rotation: identifiers and reasons in their fields, never a token, an API key or key
//! material. (A test binary of its own: its subscriber is the only one.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(all(feature = "sqlite", feature = "tracing"))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret as _;
use token_opaque::NewApiKey;
use token_opaque::format::Environment;
use token_policy::JsonObject;
use token_policy::keystore::KeyJob;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

mod common;
use common::{instance, role, tamper};

// ---- a tracing layer that keeps every span and event with its fields ---------------

#[derive(Clone, Debug)]
struct Captured {
    /// `span` or `event`.
    what: &'static str,
    target: String,
    /// The span's name, or the event's message.
    name: String,
    fields: Vec<(String, String)>,
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text.clone());
        }
        self.fields.push((field.name().to_owned(), text));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        }
        self.fields
            .push((field.name().to_owned(), value.to_owned()));
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S: Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        self.0.lock().unwrap().push(Captured {
            what: "span",
            target: attrs.metadata().target().to_owned(),
            name: attrs.metadata().name().to_owned(),
            fields: f.fields,
        });
    }

    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        values.record(&mut f);
        self.0.lock().unwrap().push(Captured {
            what: "span",
            target: String::new(),
            name: "(recorded)".into(),
            fields: f.fields,
        });
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        self.0.lock().unwrap().push(Captured {
            what: "event",
            target: event.metadata().target().to_owned(),
            name: f.message.unwrap_or_default(),
            fields: f.fields,
        });
    }
}

/// The last 40 characters of a PASETO's signed part (its signature).
fn signed_part(token: &str) -> String {
    let body = token.split('.').nth(2).unwrap();
    body[body.len() - 40..].to_owned()
}

/// Every value of every field of every span and event: none may hold a secret.
fn assert_no_secret(captured: &[Captured], secrets: &[(&str, &str)]) {
    for c in captured {
        for (field, value) in &c.fields {
            for (what, secret) in secrets {
                assert!(
                    !secret.is_empty() && !value.contains(secret),
                    "{what} in field `{field}` of {} {:?} ({})",
                    c.what,
                    c.name,
                    c.target
                );
            }
        }
    }
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one story, told in order
async fn spans_and_events_name_identifiers_and_reasons_never_a_secret() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let i = instance().await;

    let login = i.svc.login("usr_2", &role()).await.unwrap();
    let issued = i
        .svc
        .issue_access("usr_2", &login.session_id, &role())
        .unwrap()
        .expose_secret()
        .to_owned();
    let access = login.access.expose_secret().to_owned();
    i.svc.verify_access::<JsonObject>(&access).await.unwrap();
    let tampered = tamper(&access);
    assert!(i.svc.verify_access::<JsonObject>(&tampered).await.is_err());
    let old = login.refresh.expose_secret().to_owned();
    let rotated = i.svc.refresh(&old, |_| role()).await.unwrap();
    let new_refresh = rotated.refresh.expose_secret().to_owned();
    let new_access = rotated.access.expose_secret().to_owned();
    assert!(i.svc.refresh(&old, |_| role()).await.is_err());
    let second = i.svc.login("usr_2", &role()).await.unwrap();
    i.svc
        .logout(
            second.access.expose_secret(),
            second.refresh.expose_secret(),
        )
        .await
        .unwrap();
    let created = i
        .svc
        .issue_api_key(NewApiKey::new("usr_2", "ci", Environment::Live))
        .await
        .unwrap();
    let raw = created.key.expose_secret().to_owned();
    i.svc.verify_api_key(&raw).await.unwrap();
    let rolled = i
        .svc
        .roll_api_key("usr_2", &created.info.id, Duration::from_secs(60))
        .await
        .unwrap();
    let rolled_raw = rolled.key.expose_secret().to_owned();
    assert!(
        i.svc
            .revoke_api_key("usr_2", &rolled.info.id)
            .await
            .unwrap()
    );
    i.svc.logout_everywhere("usr_2").await.unwrap();
    let kid = i.keys.rotate_now(KeyJob::Access).await.unwrap();

    let captured = capture.0.lock().unwrap().clone();
    let has = |what: &str, name: &str| {
        captured
            .iter()
            .any(|c| c.what == what && c.name == name && c.target.starts_with("token_policy"))
    };
    for span in [
        "login",
        "refresh",
        "logout",
        "logout_everywhere",
        "rotate_key",
    ] {
        assert!(has("span", span), "no span {span}: {captured:#?}");
    }
    for event in [
        "access token issued",
        "login: session started",
        "credential refused",
        "refresh token rotated",
        "refresh token reuse detected: session revoked",
        "session revoked",
        "every access token of the subject revoked",
        "API key issued",
        "API key rolled",
        "API key revoked",
        "key rotated: now signing",
    ] {
        assert!(has("event", event), "no event {event:?}: {captured:#?}");
    }
    // The refusal names its reason; the rotation its key id.
    assert!(captured.iter().any(|c| {
        c.name == "credential refused"
            && c.fields
                .contains(&("reason".into(), "invalid token".into()))
    }));
    assert!(
        captured.iter().any(|c| c.name == "key rotated: now signing"
            && c.fields.contains(&("kid".into(), kid.clone())))
    );

    // No token, API key or key material in any field, whole or in part.
    let rows = i
        .store
        .key_table()
        .unwrap()
        .key_records(i.keys.plan().namespace_name())
        .await
        .unwrap();
    let mut secrets: Vec<(&str, String)> = vec![
        ("an access token", access.clone()),
        ("an issued access token", issued.clone()),
        ("an issued access token's signed part", signed_part(&issued)),
        ("an access token's signed part", signed_part(&access)),
        ("a tampered access token", tampered.clone()),
        ("a refreshed access token", new_access.clone()),
        ("a refresh token", old.clone()),
        ("a rotated refresh token", new_refresh.clone()),
        (
            "a logged-out access token",
            second.access.expose_secret().to_owned(),
        ),
        (
            "a logged-out refresh token",
            second.refresh.expose_secret().to_owned(),
        ),
        ("an API key", raw.clone()),
        ("a rolled API key", rolled_raw.clone()),
        ("the key-encryption key", i.kek.clone()),
    ];
    for r in &rows {
        secrets.push(("a wrapped data key", r.wrapped_dek.clone()));
        secrets.push(("a sealed key", r.sealed.clone()));
    }
    // The secret part of the opaque tokens (after their prefix).
    let tails: Vec<String> = [&old, &new_refresh, &raw, &rolled_raw]
        .iter()
        .map(|t| t[t.len() - 24..].to_owned())
        .collect();
    for t in &tails {
        secrets.push(("the tail of an opaque token", t.clone()));
    }
    let secrets: Vec<(&str, &str)> = secrets.iter().map(|(w, s)| (*w, s.as_str())).collect();
    assert_no_secret(&captured, &secrets);
}
