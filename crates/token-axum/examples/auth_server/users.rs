//! The demo users: `--demo-users`, `--demo-users-file`, and the options they feed.

use super::*;

/// Everything `build` needs.
pub(crate) struct Options {
    pub(crate) database_url: String,
    pub(crate) redis_url: Option<String>,
    pub(crate) users: Vec<(String, SecretString)>,
    pub(crate) insecure_cookies: bool,
    pub(crate) mailer: Mailer,
    pub(crate) max_api_keys: u32,
    /// The refresh grace window (`--refresh-grace`, [`REFRESH_GRACE_REUSES`] repeats).
    pub(crate) refresh_grace: GracePolicy,
    /// The origins CORS allows (`--cors-origin`); none: no CORS header.
    pub(crate) cors_origins: Vec<HeaderValue>,
    /// Keys kept wrapped in the database (`--kek-file` and the schedule flags); none:
    /// keys of this process only.
    pub(crate) keys: Option<KeyOptions>,
    /// `--revocation-max-staleness` (with Redis).
    pub(crate) revocation_max_staleness: Option<Duration>,
    /// The public URL the OAuth metadata names (`--public-url`).
    pub(crate) public_url: String,
    /// The service's public origin (`--public-origin`): the origin its pages' forms must
    /// come from, and what DPoP proofs name. Without it, the pages take the origin the
    /// request's `Host` names, and DPoP proofs `listen_origin`.
    pub(crate) public_origin: Option<String>,
    /// The origin of the address listened on (`http://127.0.0.1:8080`), set when the
    /// listener is bound: what DPoP proofs name without `--public-origin`. Neither:
    /// DPoP is not accepted.
    pub(crate) listen_origin: Option<String>,
    /// `--dpop-nonce`: server nonces under this secret.
    pub(crate) dpop_nonce: Option<Secret>,
    /// `--fingerprint-cookie`.
    pub(crate) fingerprint_cookie: bool,
    /// `--context-check`: contexts hashed under this secret.
    pub(crate) context_check: Option<Secret>,
    /// A log line for each request (off with `--no-request-log`): without it, the
    /// request-log layer is not in the stack at all.
    pub(crate) request_log: bool,
}

/// The secret of nonces or contexts: shared by the instances of a fleet (from a file),
/// or drawn at random for this process only.
pub(crate) enum Secret {
    Shared(token_core::SecretBytes),
    ProcessOnly,
}

/// The key table's settings.
pub(crate) struct KeyOptions {
    /// The key-encryption key.
    pub(crate) kek: PathBuf,
    pub(crate) rotate_every: Option<Duration>,
    pub(crate) publish_ahead: Option<Duration>,
    pub(crate) refresh_every: Option<Duration>,
}

impl Default for Options {
    /// The command line's defaults: an in-memory database, no users, no mail, a
    /// ten-second refresh grace window, no CORS.
    fn default() -> Self {
        Self {
            database_url: "sqlite::memory:".to_owned(),
            redis_url: None,
            users: Vec::new(),
            insecure_cookies: false,
            mailer: Mailer::Discard,
            max_api_keys: 100,
            refresh_grace: GracePolicy::new(DEFAULT_REFRESH_GRACE, REFRESH_GRACE_REUSES),
            cors_origins: Vec::new(),
            keys: None,
            public_origin: None,
            revocation_max_staleness: None,
            public_url: "http://127.0.0.1:8080".to_owned(),
            listen_origin: None,
            dpop_nonce: None,
            fingerprint_cookie: false,
            context_check: None,
            request_log: true,
        }
    }
}

impl Options {
    /// The options of a command line.
    pub(crate) fn from_args(args: Args) -> anyhow::Result<Self> {
        let users = match (&args.demo_users, &args.demo_users_file) {
            (Some(list), _) => parse_users(list)?,
            (None, Some(path)) => read_users_file(path)?,
            (None, None) => Vec::new(),
        };
        let mailer = match args.mail_dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir).context("cannot create the mail directory")?;
                Mailer::Dir(dir)
            }
            None => Mailer::Discard,
        };
        Ok(Self {
            database_url: args.database_url,
            redis_url: args.redis_url,
            users,
            insecure_cookies: args.insecure_cookies,
            mailer,
            max_api_keys: args.max_api_keys,
            refresh_grace: GracePolicy::new(args.refresh_grace, REFRESH_GRACE_REUSES),
            cors_origins: args.cors_origins,
            keys: args.kek_file.map(|kek| KeyOptions {
                kek,
                rotate_every: args.key_rotation_every,
                publish_ahead: args.key_publish_ahead,
                refresh_every: args.key_refresh_every,
            }),
            revocation_max_staleness: args.revocation_max_staleness,
            public_url: args
                .public_url
                .or_else(|| args.public_origin.clone())
                .unwrap_or_else(|| format!("http://{}", args.addr)),
            public_origin: args.public_origin,
            listen_origin: None,
            dpop_nonce: if args.dpop_nonce {
                Some(read_secret(
                    args.dpop_nonce_secret_file,
                    "TESSERA_DPOP_NONCE_SECRET_FILE",
                    "DPoP nonce secret",
                )?)
            } else {
                None
            },
            fingerprint_cookie: args.fingerprint_cookie,
            context_check: if args.context_check {
                Some(read_secret(
                    args.context_secret_file,
                    "TESSERA_CONTEXT_SECRET_FILE",
                    "context secret",
                )?)
            } else {
                None
            },
            request_log: !args.no_request_log,
        })
    }
}

/// A secret (`what`) from the file `path` or the file the variable `env` names: its
/// content, surrounding whitespace trimmed, at least 32 bytes. A secret of this
/// process only when neither is given.
fn read_secret(path: Option<PathBuf>, env: &str, what: &str) -> anyhow::Result<Secret> {
    let Some(path) = path.or_else(|| {
        std::env::var_os(env)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }) else {
        return Ok(Secret::ProcessOnly);
    };
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(&path)
            .with_context(|| format!("cannot read the {what} {}", path.display()))?,
    );
    let text = bytes.trim_ascii();
    if text.len() < token_axum::dpop::MIN_NONCE_SECRET {
        bail!(
            "the {what} {} is shorter than {} bytes",
            path.display(),
            token_axum::dpop::MIN_NONCE_SECRET
        );
    }
    Ok(Secret::Shared(token_core::SecretBytes::from_slice(text)))
}

/// What the command line should be warned about, on stderr.
pub(crate) fn warnings(args: &Args) -> Vec<String> {
    let mut warnings = Vec::new();
    if args.demo_users.is_some() {
        warnings.push(
            "--demo-users puts passwords in the process list, where every local user can \
             read them; use --demo-users-file PATH (one NAME:PASSWORD a line) instead"
                .to_owned(),
        );
    }
    #[cfg(unix)]
    if let Some(path) = &args.demo_users_file {
        use std::os::unix::fs::PermissionsExt as _;
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            warnings.push(format!(
                "--demo-users-file {} is readable by other users (chmod 600 it)",
                path.display()
            ));
        }
    }
    warnings
}

/// Parses `alice:PASSWORD,bob:PASSWORD`. Error messages never quote a password.
pub(crate) fn parse_users(list: &str) -> anyhow::Result<Vec<(String, SecretString)>> {
    let mut users = Vec::new();
    for (i, entry) in list.split(',').enumerate() {
        add_user(&mut users, &format!("--demo-users entry {}", i + 1), entry)?;
    }
    Ok(users)
}

/// Parses a users file: one `NAME:PASSWORD` a line, the password being the rest of the
/// line as is (spaces, `:` and `,` included); blank lines and lines whose first
/// non-blank character is `#` are skipped. Error messages name the line, never quote a
/// password.
pub(crate) fn parse_users_file(text: &str) -> anyhow::Result<Vec<(String, SecretString)>> {
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        add_user(
            &mut users,
            &format!("--demo-users-file line {}", i + 1),
            line,
        )?;
    }
    Ok(users)
}

pub(crate) fn read_users_file(
    path: &std::path::Path,
) -> anyhow::Result<Vec<(String, SecretString)>> {
    let cannot = || format!("cannot read --demo-users-file {}", path.display());
    let file = std::fs::File::open(path).with_context(cannot)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_USERS_FILE + 1),
        &mut bytes,
    )
    .with_context(cannot)?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > MAX_USERS_FILE) {
        bail!(
            "--demo-users-file {} is larger than {MAX_USERS_FILE} bytes",
            path.display()
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("--demo-users-file {} is not UTF-8", path.display()))?;
    parse_users_file(&text)
}

/// Checks and adds one `NAME:PASSWORD` entry; `at` names it in errors.
pub(crate) fn add_user(
    users: &mut Vec<(String, SecretString)>,
    at: &str,
    entry: &str,
) -> anyhow::Result<()> {
    let Some((name, password)) = entry.split_once(':') else {
        bail!("{at} is not NAME:PASSWORD");
    };
    if !valid_username(name) {
        bail!("{at}: a name is 1-64 characters of a-z, A-Z, 0-9, '.', '_', '-'");
    }
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&password.len()) {
        bail!("{at} ({name}): a password is {MIN_PASSWORD} to {MAX_PASSWORD} bytes");
    }
    if users.iter().any(|(n, _)| n == name) {
        bail!("{at}: {name} is named twice");
    }
    users.push((name.to_owned(), SecretString::from(password.to_owned())));
    Ok(())
}

pub(crate) fn valid_username(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}
