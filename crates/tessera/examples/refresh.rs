//! Refresh tokens on SQLite: issue at login, rotate on use, and a replayed (rotated)
//! token revokes the whole family, the thief's copy and the owner's alike.
//!
//! ```text
//! cargo run -p tessera --example refresh
//! ```
#![allow(clippy::print_stdout)] // an example program reports on stdout
use serde_json::json;
use tessera::prelude::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), tessera::Error> {
    let tokens = OpaqueTokens::new(SqliteStore::memory().await?);
    let service = TokenService::builder(
        Policy::new("https://auth.example", "api"),
        PublicIssuer::<V4>::generate()?,
    )
    .opaque(tokens)
    .build();

    let role = || json!({ "role": "member" });
    let login = service.login("alice", &role()).await?;
    let rotated = service
        .refresh(login.refresh.expose_secret(), |_| role())
        .await?;
    println!("rotated:  family {}", rotated.session_id);

    let replay = service
        .refresh(login.refresh.expose_secret(), |_| role())
        .await;
    let reason = replay.err().map(|e| e.reason());
    assert_eq!(reason, Some(Reason::ReuseDetected));
    println!("replayed: {}", reason.map_or("accepted", Reason::as_str));

    let after = service
        .refresh(rotated.refresh.expose_secret(), |_| role())
        .await;
    assert_eq!(after.err().map(|e| e.reason()), Some(Reason::Revoked));
    println!("family:   revoked");
    Ok(())
}
