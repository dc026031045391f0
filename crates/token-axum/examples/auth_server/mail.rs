//! Mail: where password-reset tokens go, and the worker that sends them off the request path.

use super::{
    App, Arc, ExposeSecret, Mutex, OneTimeKind, PathBuf, PoisonError, SecretString, SystemTime,
    UNIX_EPOCH,
};

/// A message the service sends.
#[allow(dead_code)] // read by the end-to-end tests
pub(crate) struct Mail {
    pub(crate) to: String,
    pub(crate) token: SecretString,
}

/// Where mail goes.
#[derive(Clone)]
pub(crate) enum Mailer {
    /// Nowhere (no transport configured).
    Discard,
    /// One file per message, readable by the owner only.
    Dir(PathBuf),
    /// A list in memory (tests).
    #[allow(dead_code)] // built by the end-to-end tests
    Memory(Arc<Mutex<Vec<Mail>>>),
}

impl Mailer {
    pub(crate) fn send(&self, to: &str, token: SecretString) -> anyhow::Result<()> {
        match self {
            Self::Discard => {
                eprintln!(
                    "password reset for {to:?}: no mail transport (--mail-dir); nothing sent"
                );
            }
            Self::Dir(dir) => {
                let stamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                let path = dir.join(format!("{stamp}-reset.txt"));
                let text = format!(
                    "To: {to}\nSubject: Password reset\n\nYour password-reset token (valid one hour, once):\n{}\n\nEnter it on the service's /reset/confirm page, with your new password.\n",
                    token.expose_secret()
                );
                write_private(&path, text.as_bytes())?;
            }
            Self::Memory(outbox) => {
                outbox
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Mail {
                        to: to.to_owned(),
                        token,
                    });
            }
        }
        Ok(())
    }
}

pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// How many password-reset requests may wait for the mailer before new ones are
/// refused with `503` (the same answer for every name).
pub(crate) const RESET_QUEUE: usize = 1024;

/// Sends the reset mail off the request path: the handler only queues the name, so a
/// known and an unknown name cost the same and answer the same; the account lookup, the
/// rate limit (the store's, per account), the token and the mail happen here.
pub(crate) async fn reset_worker(
    app: std::sync::Weak<App>,
    mut names: tokio::sync::mpsc::Receiver<String>,
) {
    while let Some(name) = names.recv().await {
        let Some(app) = app.upgrade() else { break };
        let Some(user) = app.user(&name).cloned() else {
            continue;
        };
        let issued = match app
            .service
            .issue_one_time(OneTimeKind::PasswordReset, &user.id)
            .await
        {
            Ok(issued) => issued,
            // Asked again within the interval: the first mail stands.
            Err(token_policy::Error::Opaque(token_opaque::Error::RateLimited { .. })) => continue,
            Err(e) => {
                eprintln!("password reset: {}", e.reason());
                continue;
            }
        };
        if let Err(e) = app.mailer.send(&user.name, issued.token) {
            eprintln!("password reset: mail: {e}");
        }
    }
}
