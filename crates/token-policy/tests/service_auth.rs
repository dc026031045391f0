//! Service-to-service tokens: a peer's key verifies only tokens whose `iss` names that
//! peer, so a compromised service cannot speak as another.
#![cfg(feature = "jwt")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use token_core::{Claims, Clock, ManualClock, SystemClock};
use token_jwt::{Algorithm, SigningKey, SigningKeySet};
use token_policy::{Error, ServiceAuth, ServicePeers};

const TTL: Duration = Duration::from_secs(300);

fn keys() -> SigningKeySet {
    SigningKeySet::new(SigningKey::generate(Algorithm::Es256).unwrap())
}

/// A token signed by `signer` claiming to come from `iss`, addressed to `aud`.
fn forged(signer: &SigningKeySet, iss: &str, aud: &str) -> String {
    let claims = Claims::new(())
        .issuer(iss)
        .subject(iss)
        .audience(aud)
        .random_token_id()
        .unwrap()
        .valid_for(&SystemClock, TTL)
        .unwrap();
    signer.sign(&claims).unwrap().expose_secret().to_owned()
}

struct Fleet {
    ledger: SigningKeySet,
    orders: SigningKeySet,
    billing: ServiceAuth,
}

fn fleet() -> Fleet {
    let ledger = keys();
    let orders = keys();
    let peers = ServicePeers::new()
        .trust("ledger", ledger.verifier())
        .unwrap()
        .trust("orders", orders.verifier())
        .unwrap();
    let billing = ServiceAuth::new("billing", keys(), peers).unwrap();
    Fleet {
        ledger,
        orders,
        billing,
    }
}

fn clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::at_system_now())
}

#[test]
fn a_peer_speaks_for_itself() {
    let f = fleet();
    for (keys, name) in [(&f.ledger, "ledger"), (&f.orders, "orders")] {
        let token = forged(keys, name, "billing");
        let v = f.billing.verify(&token, TTL, clock()).unwrap();
        assert_eq!(v.claims().iss.as_deref(), Some(name));
        assert_eq!(v.claims().sub.as_deref(), Some(name));
    }
}

#[test]
fn a_compromised_peer_cannot_speak_as_another() {
    let f = fleet();
    // ledger's key, orders' name: refused before the claims reach the caller.
    let token = forged(&f.ledger, "orders", "billing");
    let err = f.billing.verify(&token, TTL, clock()).unwrap_err();
    assert_eq!(err.reason(), "wrong issuer", "{err:?}");
    // Nor as the target itself, nor as a service nobody trusts.
    for iss in ["billing", "payments"] {
        let err = f
            .billing
            .verify(&forged(&f.ledger, iss, "billing"), TTL, clock())
            .unwrap_err();
        assert_eq!(err.reason(), "wrong issuer", "{iss}: {err:?}");
    }
}

#[test]
fn an_untrusted_key_is_unknown() {
    let f = fleet();
    let stranger = keys();
    let err = f
        .billing
        .verify(&forged(&stranger, "ledger", "billing"), TTL, clock())
        .unwrap_err();
    assert_eq!(err.reason(), "unknown key", "{err:?}");
}

#[test]
fn one_key_belongs_to_one_service() {
    let shared = keys();
    let err = ServicePeers::new()
        .trust("ledger", shared.verifier())
        .unwrap()
        .trust("orders", shared.verifier())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPolicy(_)), "{err:?}");
    assert!(err.to_string().contains("belongs to one service"), "{err}");
    let err = ServicePeers::new()
        .trust("ledger", keys().verifier())
        .unwrap()
        .trust("ledger", keys().verifier())
        .unwrap_err();
    assert!(err.to_string().contains("given twice"), "{err}");
    assert!(ServicePeers::new().trust("", keys().verifier()).is_err());
}
