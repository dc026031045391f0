//! One time type for every format, and the injectable [`Clock`].
//!
//! A [`Timestamp`] is a whole number of seconds since the Unix epoch, between
//! `1970-01-01T00:00:00Z` and `9999-12-31T23:59:59Z`. Every value in that range has
//! exactly one JWT form (a NumericDate integer) and one PASETO form (an RFC 3339 string
//! in UTC, `YYYY-MM-DDTHH:MM:SSZ`), so a timestamp written by either format reads back
//! as the same value.
//!
//! Times written by other issuers may be finer than the second: RFC 3339 strings with
//! fractional seconds, JWT NumericDates with a fraction (`1796215339.5`). Offsets are
//! applied exactly. [`Timestamp::parse_rfc3339`] truncates a fraction; the claims of a
//! token are rounded the conservative way, `exp` down and `nbf`/`iat` up
//! ([`crate::claims`]), so a token is never valid longer, nor earlier, than written.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Largest representable instant: `9999-12-31T23:59:59Z`.
const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// Longest RFC 3339 string accepted (`9999-12-31T23:59:59.999999999+23:59` is 35 bytes).
const MAX_RFC3339_LEN: usize = 40;

/// An instant, in whole seconds since the Unix epoch, within years 1970–9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch, `1970-01-01T00:00:00Z`.
    pub const UNIX_EPOCH: Self = Self(0);
    /// The latest representable instant, `9999-12-31T23:59:59Z`.
    pub const MAX: Self = Self(MAX_UNIX_SECONDS);

    /// A timestamp from seconds since the Unix epoch.
    ///
    /// # Errors
    /// [`Error::TimestampOutOfRange`] before 1970 or after 9999.
    pub const fn from_unix_seconds(seconds: i64) -> Result<Self> {
        if seconds < 0 || seconds > MAX_UNIX_SECONDS {
            return Err(Error::TimestampOutOfRange);
        }
        Ok(Self(seconds))
    }

    /// Seconds since the Unix epoch (the JWT NumericDate).
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }

    /// `self + d`, or [`Error::TimestampOutOfRange`] past year 9999.
    pub fn checked_add(self, d: Duration) -> Result<Self> {
        let secs = i64::try_from(d.as_secs()).map_err(|_| Error::TimestampOutOfRange)?;
        Self::from_unix_seconds(self.0.checked_add(secs).ok_or(Error::TimestampOutOfRange)?)
    }

    /// `self - d`, saturating at the Unix epoch.
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(secs).max(0))
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn duration_since(self, earlier: Self) -> Duration {
        Duration::from_secs(u64::try_from(self.0 - earlier.0).unwrap_or(0))
    }

    /// The RFC 3339 form in UTC, `YYYY-MM-DDTHH:MM:SSZ` (what PASETO claims carry).
    pub fn to_rfc3339(self) -> String {
        self.rfc3339_ascii().into_iter().map(char::from).collect()
    }

    /// [`Timestamp::to_rfc3339`] as its 20 ASCII bytes, without allocating (the form
    /// written into every PASETO's claims, three times).
    pub(crate) fn rfc3339_ascii(self) -> [u8; 20] {
        let days = self.0.div_euclid(86_400);
        let secs_of_day = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let [y0, y1, y2, y3] = digits(y);
        let [m0, m1] = digits(m);
        let [d0, d1] = digits(d);
        let [h0, h1] = digits(secs_of_day / 3600);
        let [i0, i1] = digits(secs_of_day / 60 % 60);
        let [s0, s1] = digits(secs_of_day % 60);
        [
            y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', i0, i1, b':', s0, s1,
            b'Z',
        ]
    }

    /// Parses an RFC 3339 `date-time` (section 5.6), strictly: `T` separator, a zone
    /// (`Z` or `±HH:MM`), valid calendar fields, no leap second, no surrounding space.
    ///
    /// # Errors
    /// [`Error::InvalidTimestamp`] naming what is malformed, or
    /// [`Error::TimestampOutOfRange`] outside 1970–9999 UTC.
    pub fn parse_rfc3339(s: &str) -> Result<Self> {
        parse_rfc3339_with_fraction(s.as_bytes()).map(|(t, _)| t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The source of "now" for validation and issuance. Inject a [`FixedClock`] in tests.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
            i64::try_from(d.as_secs()).unwrap_or(MAX_UNIX_SECONDS)
        });
        Timestamp(secs.clamp(0, MAX_UNIX_SECONDS))
    }
}

/// A clock that always reads the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// A clock moved by hand, shareable across threads (`Arc<ManualClock>`): for tests of
/// expiry, idle timeouts, rate limits and grace windows without sleeping.
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock reading `t`.
    pub fn new(t: Timestamp) -> Self {
        Self(std::sync::atomic::AtomicI64::new(t.0))
    }

    /// A clock reading the system's now (then moved only by hand).
    pub fn at_system_now() -> Self {
        Self::new(SystemClock.now())
    }

    /// Moves the clock forward by `d`, saturating at [`Timestamp::MAX`].
    pub fn advance(&self, d: Duration) {
        let secs = i64::try_from(d.as_secs()).unwrap_or(MAX_UNIX_SECONDS);
        let _ = self.0.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |t| Some(t.saturating_add(secs).min(MAX_UNIX_SECONDS)),
        );
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Parses a duration: a whole number and a unit (`90s`, `15m`, `2h`, `7d`), or several
/// such parts from the largest unit down, each unit at most once (`1h30m`, `1d12h`,
/// `2m30s`). The one duration syntax of tessera's tools (a leeway, a lifetime, a time
/// to live).
///
/// # Errors
/// [`Error::MalformedDuration`] saying what is wrong with the text;
/// [`Error::DurationTooLarge`] when the number of seconds does not fit in 64 bits (a
/// number itself, once multiplied by its unit, or the sum of the parts).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(Error::MalformedDuration("needs a unit (s, m, h or d)"));
    }
    let mut total: u64 = 0;
    // The unit of the previous part, in seconds: each part's unit is smaller.
    let mut previous: Option<u64> = None;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or(Error::MalformedDuration("needs a unit (s, m, h or d)"))?;
        let (number, after) = rest.split_at(split);
        // A unit runs up to the next digit, so only the first part can lack a number.
        if number.is_empty() {
            return Err(Error::MalformedDuration("must start with a whole number"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_secs: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(Error::MalformedDuration("the unit must be s, m, h or d")),
        };
        if previous.is_some_and(|p| unit_secs >= p) {
            return Err(Error::MalformedDuration(
                "units go from the largest to the smallest, each once (e.g. 1h30m)",
            ));
        }
        previous = Some(unit_secs);
        // Only ASCII digits remain, so the one way to fail is to be too large.
        let n: u64 = number.parse().map_err(|_| Error::DurationTooLarge)?;
        total = n
            .checked_mul(unit_secs)
            .and_then(|secs| total.checked_add(secs))
            .ok_or(Error::DurationTooLarge)?;
        rest = next;
    }
    Ok(Duration::from_secs(total))
}

// Howard Hinnant's civil calendar algorithms (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The last `N` decimal digits of `n` (non-negative), zero-padded: a year of 1970–9999
/// in 4, a month, day, hour, minute or second in 2.
fn digits<const N: usize>(mut n: i64) -> [u8; N] {
    let mut out = [b'0'; N];
    for slot in out.iter_mut().rev() {
        // A remainder of a non-negative number by 10: 0..=9.
        *slot = b'0' + u8::try_from(n.rem_euclid(10)).unwrap_or(0);
        n /= 10;
    }
    out
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A cursor over ASCII bytes for the RFC 3339 grammar.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize, what: &'static str) -> Result<i64> {
        let mut v = 0i64;
        for _ in 0..n {
            match self.s.get(self.pos) {
                Some(c @ b'0'..=b'9') => v = v * 10 + i64::from(c - b'0'),
                _ => return Err(Error::InvalidTimestamp(what)),
            }
            self.pos += 1;
        }
        Ok(v)
    }

    fn eat(&mut self, accepted: &[u8], what: &'static str) -> Result<u8> {
        match self.s.get(self.pos) {
            Some(c) if accepted.contains(c) => {
                self.pos += 1;
                Ok(*c)
            }
            _ => Err(Error::InvalidTimestamp(what)),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
}

/// Parses an RFC 3339 `date-time`: the instant, its fraction of a second truncated, and
/// whether that fraction was other than zero.
pub(crate) fn parse_rfc3339_with_fraction(s: &[u8]) -> Result<(Timestamp, bool)> {
    if s.len() > MAX_RFC3339_LEN {
        return Err(Error::InvalidTimestamp(
            "longer than any RFC 3339 date-time",
        ));
    }
    let mut c = Cursor { s, pos: 0 };
    let year = c.digits(4, "year must be four digits")?;
    c.eat(b"-", "expected '-' after year")?;
    let month = c.digits(2, "month must be two digits")?;
    c.eat(b"-", "expected '-' after month")?;
    let day = c.digits(2, "day must be two digits")?;
    c.eat(b"Tt", "expected 'T' between date and time")?;
    let hour = c.digits(2, "hour must be two digits")?;
    c.eat(b":", "expected ':' after hour")?;
    let minute = c.digits(2, "minute must be two digits")?;
    c.eat(b":", "expected ':' after minute")?;
    let second = c.digits(2, "second must be two digits")?;
    let mut fraction = false;
    if c.peek() == Some(b'.') {
        c.pos += 1;
        let start = c.pos;
        while let Some(digit @ b'0'..=b'9') = c.peek() {
            fraction |= digit != b'0';
            c.pos += 1;
        }
        if c.pos == start {
            return Err(Error::InvalidTimestamp("fraction needs at least one digit"));
        }
    }
    let offset_secs = match c.eat(b"Zz+-", "expected a time zone: 'Z' or +HH:MM")? {
        b'Z' | b'z' => 0,
        sign => {
            let oh = c.digits(2, "offset hour must be two digits")?;
            c.eat(b":", "expected ':' in offset")?;
            let om = c.digits(2, "offset minute must be two digits")?;
            if oh > 23 || om > 59 {
                return Err(Error::InvalidTimestamp("offset out of range"));
            }
            let o = oh * 3600 + om * 60;
            if sign == b'-' { -o } else { o }
        }
    };
    if c.pos != s.len() {
        return Err(Error::InvalidTimestamp(
            "trailing characters after the time zone",
        ));
    }
    if !(1..=12).contains(&month) {
        return Err(Error::InvalidTimestamp("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(Error::InvalidTimestamp("day out of range for the month"));
    }
    if hour > 23 || minute > 59 {
        return Err(Error::InvalidTimestamp("hour or minute out of range"));
    }
    if second > 59 {
        return Err(Error::InvalidTimestamp(
            "second out of range (leap seconds are not accepted)",
        ));
    }
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Ok((Timestamp::from_unix_seconds(local - offset_secs)?, fraction))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Timestamp::UNIX_EPOCH.to_rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::MAX.to_rfc3339(), "9999-12-31T23:59:59Z");
        let t = Timestamp::from_unix_seconds(1_640_995_200).unwrap();
        assert_eq!(t.to_rfc3339(), "2022-01-01T00:00:00Z");
        let leap = Timestamp::from_unix_seconds(951_782_400).unwrap();
        assert_eq!(leap.to_rfc3339(), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let t = |s| Timestamp::parse_rfc3339(s).map(Timestamp::unix_seconds);
        assert_eq!(t("2022-01-01T00:00:00+00:00"), Ok(1_640_995_200));
        assert_eq!(t("2022-01-01T01:30:00+01:30"), Ok(1_640_995_200));
        assert_eq!(t("2021-12-31T19:00:00-05:00"), Ok(1_640_995_200));
        assert_eq!(t("2022-01-01t00:00:00.999999999z"), Ok(1_640_995_200));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2022-01-01",
            "2022-01-01 00:00:00Z",
            "2022-01-01T00:00:00",
            "2022-13-01T00:00:00Z",
            "2022-02-29T00:00:00Z",
            "2022-01-01T24:00:00Z",
            "2022-01-01T00:60:00Z",
            "2016-12-31T23:59:60Z",
            "2022-01-01T00:00:00.Z",
            "2022-01-01T00:00:00Z ",
            "2022-01-01T00:00:00+24:00",
            "+2022-01-01T00:00:00Z",
            "tomorrow",
            "２０２２-01-01T00:00:00Z",
        ] {
            assert!(
                matches!(
                    Timestamp::parse_rfc3339(bad),
                    Err(Error::InvalidTimestamp(_))
                ),
                "{bad:?} was accepted"
            );
        }
        assert_eq!(
            Timestamp::parse_rfc3339("1969-12-31T23:59:59Z"),
            Err(Error::TimestampOutOfRange)
        );
        assert_eq!(
            Timestamp::parse_rfc3339("9999-12-31T23:59:59-00:01"),
            Err(Error::TimestampOutOfRange)
        );
    }

    #[test]
    fn range_and_arithmetic() {
        assert_eq!(
            Timestamp::from_unix_seconds(-1),
            Err(Error::TimestampOutOfRange)
        );
        assert_eq!(
            Timestamp::from_unix_seconds(MAX_UNIX_SECONDS + 1),
            Err(Error::TimestampOutOfRange)
        );
        assert_eq!(
            Timestamp::MAX.checked_add(Duration::from_secs(1)),
            Err(Error::TimestampOutOfRange)
        );
        assert_eq!(
            Timestamp::UNIX_EPOCH.saturating_sub(Duration::from_secs(5)),
            Timestamp::UNIX_EPOCH
        );
        let a = Timestamp::from_unix_seconds(100).unwrap();
        let b = Timestamp::from_unix_seconds(40).unwrap();
        assert_eq!(a.duration_since(b), Duration::from_secs(60));
        assert_eq!(b.duration_since(a), Duration::ZERO);
    }

    #[test]
    fn manual_clock_moves_only_by_hand() {
        let c = ManualClock::new(Timestamp::from_unix_seconds(100).unwrap());
        assert_eq!(c.now().unix_seconds(), 100);
        c.advance(Duration::from_secs(60));
        assert_eq!(c.now().unix_seconds(), 160);
        c.advance(Duration::from_secs(u64::MAX));
        assert_eq!(c.now(), Timestamp::MAX);
        c.set(Timestamp::UNIX_EPOCH);
        assert_eq!(c.now(), Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now().unix_seconds() > 1_577_836_800);
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(secs in 0..=MAX_UNIX_SECONDS) {
            let t = Timestamp::from_unix_seconds(secs).unwrap();
            prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t));
        }

        /// The digit-by-digit form is the `format!` one, field for field.
        #[test]
        fn rfc3339_digits_match_format(secs in 0..=MAX_UNIX_SECONDS) {
            let t = Timestamp::from_unix_seconds(secs).unwrap();
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let s = secs.rem_euclid(86_400);
            let formatted = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                s / 3600,
                s / 60 % 60,
                s % 60
            );
            prop_assert_eq!(t.to_rfc3339(), formatted);
        }

        #[test]
        fn rfc3339_parser_never_panics(s in "\\PC{0,48}") {
            let _ = Timestamp::parse_rfc3339(&s);
        }

        #[test]
        fn rfc3339_parser_never_panics_on_near_misses(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?") {
            let _ = Timestamp::parse_rfc3339(&s);
        }
    }

    /// `--ttl 1h30m` used to be refused ("the unit must be s, m, h or d").
    #[test]
    fn durations_combine_parts_from_the_largest_unit_down() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse_duration("2m30s"), Ok(Duration::from_secs(150)));
        assert_eq!(
            parse_duration("1d2h3m4s"),
            Ok(Duration::from_secs(86_400 + 7200 + 180 + 4))
        );
        assert_eq!(parse_duration("0h90m"), Ok(Duration::from_secs(5400)));
        // Each part fits, the sum does not.
        assert_eq!(
            parse_duration("213503982334601d86400s"),
            Err(Error::DurationTooLarge)
        );
    }

    /// A number of seconds that overflows used to be reported as "must start with a
    /// whole number" (the number) or "unit must be s, m, h or d" (once multiplied).
    #[test]
    fn durations_parse_and_overflow_is_too_large() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 15m "), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(
            parse_duration("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
        for too_large in [
            "18446744073709551616s",
            "99999999999999999999999999d",
            "213503982334602d",
            "307445734561825861m",
            "5124095576030432h",
        ] {
            assert_eq!(
                parse_duration(too_large),
                Err(Error::DurationTooLarge),
                "{too_large}"
            );
        }
        for (bad, why) in [
            ("", "needs a unit (s, m, h or d)"),
            ("1h30", "needs a unit (s, m, h or d)"),
            (
                "30m1h",
                "units go from the largest to the smallest, each once (e.g. 1h30m)",
            ),
            (
                "1h1h",
                "units go from the largest to the smallest, each once (e.g. 1h30m)",
            ),
            ("1h 30m", "the unit must be s, m, h or d"),
            ("1h-30m", "the unit must be s, m, h or d"),
            ("15", "needs a unit (s, m, h or d)"),
            ("m", "must start with a whole number"),
            ("-1s", "must start with a whole number"),
            ("1.5m", "the unit must be s, m, h or d"),
            ("15 m", "the unit must be s, m, h or d"),
            ("15min", "the unit must be s, m, h or d"),
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(Error::MalformedDuration(why)),
                "{bad:?}"
            );
        }
        assert_eq!(Error::DurationTooLarge.to_string(), "duration too large");
    }
}
