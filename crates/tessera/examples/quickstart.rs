//! Issue and verify a PASETO `v4.public` access token.
//!
//! ```text
//! cargo run -p tessera --example quickstart
//! ```
#![allow(clippy::print_stdout)] // an example program reports on stdout
use tessera::prelude::*;

fn main() -> Result<(), tessera::Error> {
    let issuer = PublicIssuer::<V4>::generate()?;
    let claims = Claims::new(())
        .issuer("https://auth.example")
        .subject("alice")
        .audience("api")
        .expires_in(Duration::from_secs(15 * 60))?;
    let token = issuer.sign(&claims)?;
    println!("token:    {}", token.expose_secret());

    let validation = Validation::new()
        .issuer("https://auth.example")
        .audience("api");
    let verified = issuer
        .verifier()
        .verify::<()>(token.expose_secret(), &validation)?;
    println!(
        "verified: subject {:?}",
        verified.sub.as_deref().unwrap_or("?")
    );
    Ok(())
}
