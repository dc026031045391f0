//! Input and output helpers shared by the commands.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use token_core::Timestamp;

use crate::error::{Failure, Result};

/// The most bytes read from a key file, a claims file or standard input.
pub(crate) const MAX_INPUT_LEN: u64 = 1024 * 1024;

/// Reads a whole text file, bounded to [`MAX_INPUT_LEN`] bytes. `what` names the file
/// in the error ("key file", "claims file", …).
pub(crate) fn read_text(path: &Path, what: &str) -> Result<String> {
    let cannot = |e: &dyn std::fmt::Display| {
        Failure::usage(format!("cannot read {what} {}: {e}", path.display()))
    };
    let file = fs::File::open(path).map_err(|e| cannot(&e))?;
    let mut text = String::new();
    file.take(MAX_INPUT_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| cannot(&e))?;
    if text.len() as u64 > MAX_INPUT_LEN {
        return Err(cannot(&"larger than 1 MiB"));
    }
    Ok(text)
}

/// Reads standard input as text, bounded to [`MAX_INPUT_LEN`] bytes.
pub(crate) fn read_stdin(what: &str) -> Result<String> {
    let mut text = String::new();
    io::stdin()
        .take(MAX_INPUT_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("cannot read {what} from standard input: {e}")))?;
    if text.len() as u64 > MAX_INPUT_LEN {
        return Err(Failure::usage(format!(
            "{what} on standard input is larger than 1 MiB"
        )));
    }
    Ok(text)
}

/// The token given as an argument, or read from standard input when the argument is
/// `-` or absent. Surrounding whitespace is removed.
pub(crate) fn read_token(arg: Option<&str>) -> Result<String> {
    let text = match arg {
        Some(token) if token != "-" => token.to_owned(),
        _ => read_stdin("token")?,
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(Failure::usage(
            "no token given (pass it as an argument or on standard input)",
        ));
    }
    Ok(token.to_owned())
}

/// Writes `contents` to a new file at `path`. Secret files get mode 0600, others 0644.
/// An existing file is an error unless `force`, in which case it is replaced.
pub(crate) fn write_file(path: &Path, contents: &[u8], secret: bool, force: bool) -> Result<()> {
    let mode = if secret { 0o600 } else { 0o644 };
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let cannot =
        |e: &dyn std::fmt::Display| Failure::usage(format!("cannot write {}: {e}", path.display()));
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Failure::usage(format!(
                "{} already exists (pass --force to overwrite it)",
                path.display()
            ))
        } else {
            cannot(&e)
        }
    })?;
    // An existing file keeps its old mode when truncated: set it explicitly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| cannot(&e))?;
    file.write_all(contents).map_err(|e| cannot(&e))?;
    file.sync_all().map_err(|e| cannot(&e))
}

/// Prints `text` and a newline on stdout. A closed pipe (`tokenctl … | head`) is not
/// an error.
pub(crate) fn out(text: &str) -> Result<()> {
    let mut stdout = io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::usage(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// Prints a JSON value on stdout: compact with `--json`, indented otherwise.
pub(crate) fn out_json(value: &serde_json::Value, compact: bool) -> Result<()> {
    out(&json_text(value, compact))
}

/// A JSON value as text that is safe on a terminal: the control characters JSON
/// allows raw in strings (DEL, C1) are escaped too, so a hostile token cannot send
/// terminal escape sequences. The JSON means the same.
pub(crate) fn json_text(value: &serde_json::Value, compact: bool) -> String {
    let text = if compact {
        serde_json::to_string(value)
    } else {
        serde_json::to_string_pretty(value)
    }
    .unwrap_or_default();
    terminal_safe(&text)
}

/// Escapes every control character but newline as `\uXXXX`.
pub(crate) fn terminal_safe(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return text.to_owned();
    }
    text.chars()
        .fold(String::with_capacity(text.len()), |mut s, c| {
            if c.is_control() && c != '\n' {
                let _ = write!(s, "\\u{:04x}", u32::from(c));
            } else {
                s.push(c);
            }
            s
        })
}

/// An attacker-chosen value (a `kid`, a header member) cut to something safe to echo
/// in one line: at most 64 characters, anything but visible ASCII replaced by `?`.
pub(crate) fn echo(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if value.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

/// Prints a note on stderr.
pub(crate) fn note(text: &str) {
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

/// Parses a duration such as `90s`, `15m`, `2h`, `7d` or `1h30m` (for clap), with the
/// library's one duration syntax: an overflowing number of seconds is "too large".
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    token_core::parse_duration(s).map_err(|e| e.to_string())
}

/// The file a `sqlite://PATH[?option]` database URL names; `None` for other URLs.
pub(crate) fn sqlite_file(url: &str) -> Option<&Path> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    Some(Path::new(path))
}

/// A SQLite database a command only reads must exist: opening a misspelt path would
/// create an empty database and answer "unknown key". Other URLs pass.
pub(crate) fn require_existing_database(url: &str) -> Result<()> {
    match sqlite_file(url) {
        Some(path) if !path.is_file() => Err(Failure::usage(format!(
            "no database at {} (a misspelt --db? `api-key create` creates one)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Whether `url` names a SQLite file that does not exist yet (opening it creates it).
pub(crate) fn database_is_new(url: &str) -> bool {
    sqlite_file(url).is_some_and(|path| !path.exists())
}

/// Parses an RFC 3339 instant such as `2030-01-01T00:00:00Z` (for clap).
pub(crate) fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

/// Decodes unpadded base64url.
pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// Encodes as unpadded base64url.
pub(crate) fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A human form of a duration: `15 min`, `2 h`, `90 s`, `7 d`.
pub(crate) fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if s != 0 && s % 86_400 == 0 {
        format!("{} d", s / 86_400)
    } else if s != 0 && s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s != 0 && s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// Bytes as text when they are UTF-8, else as base64url.
pub(crate) fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => format!("(binary, base64url) {}", b64url_encode(bytes)),
    }
}

/// 128 random bits as 32 hex digits.
pub(crate) fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|_| Failure::usage("the operating system's random number generator failed"))?;
    Ok(bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_stays_valid_json() {
        let value = serde_json::json!({ "x": "a\u{9b}[2Jb\u{7f}" });
        let text = json_text(&value, true);
        assert!(!text.chars().any(char::is_control), "{text}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).ok(),
            Some(value)
        );
    }

    #[test]
    fn echoed_values_are_short_and_visible() {
        assert_eq!(echo("k4.pid.abc"), "k4.pid.abc");
        assert_eq!(echo("a\nb\u{1b}c"), "a?b?c");
        assert_eq!(echo(&"x".repeat(100)).chars().count(), 65);
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_file("sqlite://keys.db"), Some(Path::new("keys.db")));
        assert_eq!(
            sqlite_file("sqlite:///tmp/k.db?synchronous=full"),
            Some(Path::new("/tmp/k.db"))
        );
        assert_eq!(sqlite_file("postgres://localhost/db"), None);
        assert!(require_existing_database("postgres://localhost/db").is_ok());
        assert!(require_existing_database("sqlite:///nonexistent/tokenctl/k.db").is_err());
        assert!(database_is_new("sqlite:///nonexistent/tokenctl/k.db"));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(humanize(Duration::from_secs(900)), "15 min");
        assert_eq!(humanize(Duration::from_secs(7200)), "2 h");
        assert_eq!(humanize(Duration::from_secs(86_400)), "1 d");
        assert_eq!(humanize(Duration::from_secs(61)), "61 s");
    }
}
