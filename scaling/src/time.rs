//! Instants and durations with Go semantics, without a clock.
//!
//! Times are nanoseconds since the Unix epoch in an `i128`, so that Go's zero
//! time (`0001-01-01T00:00:00Z`, which the upstream tests use for "started long
//! ago") and any sum of it with a duration are representable exactly.

use crate::error::{Error, Result};
use std::fmt;

const NANOS_PER_SECOND: i128 = 1_000_000_000;
const SECONDS_PER_DAY: i128 = 86_400;

/// An instant, with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(i128);

/// A signed span of time in nanoseconds (Go's `time.Duration`, wider).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(i128);

impl Duration {
    /// A duration of `seconds` whole seconds.
    pub const fn from_seconds(seconds: i64) -> Self {
        Duration(seconds as i128 * NANOS_PER_SECOND)
    }

    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: i128) -> Self {
        Duration(nanos)
    }

    /// The duration in nanoseconds.
    pub const fn as_nanos(self) -> i128 {
        self.0
    }

    /// Whole seconds, truncated toward zero (Go's `int32(d.Seconds())` for sane values).
    pub fn whole_seconds(self) -> i64 {
        let s = self.0 / NANOS_PER_SECOND;
        i64::try_from(s).unwrap_or(if s < 0 { i64::MIN } else { i64::MAX })
    }

    /// Parses a Go duration string exactly as `time.ParseDuration` does
    /// (`"60s"`, `"1m0s"`, `"10.5s"`, `"1h30m"`, `"-1.5h"`, `"300ms"`, `"0"`).
    pub fn parse_go(input: &str) -> Result<Self> {
        parse_go_duration(input).map(|n| Duration(i128::from(n)))
    }
}

impl Time {
    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub const ZERO: Time = Time(-62_135_596_800 * NANOS_PER_SECOND);

    /// The Unix epoch.
    pub const UNIX_EPOCH: Time = Time(0);

    /// An instant `nanos` nanoseconds after the Unix epoch.
    pub const fn from_unix_nanos(nanos: i128) -> Self {
        Time(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i128 {
        self.0
    }

    /// Go's `t.After(u)`: strictly later.
    pub fn after(self, u: Time) -> bool {
        self.0 > u.0
    }

    /// Go's `t.Before(u)`: strictly earlier.
    pub fn before(self, u: Time) -> bool {
        self.0 < u.0
    }

    /// Parses an RFC 3339 time: `Z` or a numeric offset, an optional fraction
    /// of one to nine digits. Years 0000–9999, as Go's `time.Parse(time.RFC3339)`.
    pub fn parse_rfc3339(input: &str) -> Result<Self> {
        parse_rfc3339(input).map_err(|reason| Error::Time {
            input: input.to_string(),
            reason: reason.to_string(),
        })
    }

    /// Formats as RFC 3339 in UTC with `Z`, with the fraction trimmed of
    /// trailing zeros (Go's `time.RFC3339Nano` layout).
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(NANOS_PER_SECOND);
        let nanos = self.0.rem_euclid(NANOS_PER_SECOND);
        let days = secs.div_euclid(SECONDS_PER_DAY);
        let rem = secs.rem_euclid(SECONDS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            y,
            m,
            d,
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        );
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        out.push('Z');
        out
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;
    /// Go's `t.Add(d)` (saturating far beyond any real instant).
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d.0))
    }
}

impl std::ops::Sub<Duration> for Time {
    type Output = Time;
    /// Go's `t.Add(-d)`.
    fn sub(self, d: Duration) -> Time {
        Time(self.0.saturating_sub(d.0))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i128> {
    let s = b.get(at..at + n)?;
    let mut v: i128 = 0;
    for c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i128::from(c - b'0');
    }
    Some(v)
}

fn expect(b: &[u8], at: usize, c: u8) -> bool {
    b.get(at) == Some(&c)
}

fn parse_rfc3339(s: &str) -> std::result::Result<Time, &'static str> {
    const SHAPE: &str = "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)";
    let b = s.as_bytes();
    let year = digits(b, 0, 4).ok_or(SHAPE)?;
    if !expect(b, 4, b'-') {
        return Err(SHAPE);
    }
    let month = digits(b, 5, 2).ok_or(SHAPE)?;
    if !expect(b, 7, b'-') {
        return Err(SHAPE);
    }
    let day = digits(b, 8, 2).ok_or(SHAPE)?;
    if !expect(b, 10, b'T') {
        return Err(SHAPE);
    }
    let hour = digits(b, 11, 2).ok_or(SHAPE)?;
    if !expect(b, 13, b':') {
        return Err(SHAPE);
    }
    let minute = digits(b, 14, 2).ok_or(SHAPE)?;
    if !expect(b, 16, b':') {
        return Err(SHAPE);
    }
    let second = digits(b, 17, 2).ok_or(SHAPE)?;
    let mut pos = 19;
    let mut nanos: i128 = 0;
    if expect(b, pos, b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let n = pos - start;
        if n == 0 {
            return Err("a fraction needs at least one digit");
        }
        if n > 9 {
            return Err("a fraction has at most nine digits");
        }
        nanos = digits(b, start, n).ok_or(SHAPE)? * 10i128.pow((9 - n) as u32);
    }
    let offset_seconds: i128 = match b.get(pos) {
        Some(b'Z') => {
            pos += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            let oh = digits(b, pos + 1, 2).ok_or(SHAPE)?;
            if !expect(b, pos + 3, b':') {
                return Err(SHAPE);
            }
            let om = digits(b, pos + 4, 2).ok_or(SHAPE)?;
            if oh >= 24 || om >= 60 {
                return Err("time zone offset out of range");
            }
            pos += 6;
            let v = oh * 3600 + om * 60;
            if *sign == b'-' { -v } else { v }
        }
        _ => return Err(SHAPE),
    };
    if pos != b.len() {
        return Err("extra text after the time");
    }
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range");
    }
    if hour >= 24 {
        return Err("hour out of range");
    }
    if minute >= 60 {
        return Err("minute out of range");
    }
    if second >= 60 {
        return Err("second out of range");
    }
    let days = days_from_civil(year, month, day);
    let secs = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset_seconds;
    Ok(Time(secs * NANOS_PER_SECOND + nanos))
}

fn is_leap(y: i128) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i128, m: i128) -> i128 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i128, m: i128, d: i128) -> i128 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i128) -> (i128, i128, i128) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `time.ParseDuration`, in nanoseconds, with Go's error texts.
fn parse_go_duration(orig: &str) -> Result<i64> {
    let invalid = || Error::Duration(format!("time: invalid duration {}", go_quote(orig)));
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(s[i] - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // Fraction part.
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let mut i = 0;
            let mut overflow = false;
            while i < s.len() && s[i].is_ascii_digit() {
                if !overflow {
                    if f > (LIMIT - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(s[i] - b'0');
                        if y > LIMIT {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            post = i > 0;
            s = &s[i..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit.
        let mut i = 0;
        while i < s.len() && !(s[i] == b'.' || s[i].is_ascii_digit()) {
            i += 1;
        }
        if i == 0 {
            return Err(Error::Duration(format!(
                "time: missing unit in duration {}",
                go_quote(orig)
            )));
        }
        let unit_bytes = &s[..i];
        s = &s[i..];
        let unit: u64 = match unit_bytes {
            b"ns" => 1,
            // "us", "µs" (U+00B5) and "μs" (U+03BC), compared as UTF-8 bytes like Go.
            b"us" | [0xc2, 0xb5, b's'] | [0xce, 0xbc, b's'] => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(Error::Duration(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(&String::from_utf8_lossy(unit_bytes)),
                    go_quote(orig)
                )));
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Go adds the fraction through float64 to stay nanosecond-accurate for hours.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// Go's `strconv.Quote`-like quoting for error texts (ASCII-safe subset).
fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_in_utc() {
        let table: &[(&str, &str)] = &[
            ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z"),
            ("2026-03-01T10:00:00.5Z", "2026-03-01T10:00:00.5Z"),
            (
                "2026-03-01T10:00:00.123456789Z",
                "2026-03-01T10:00:00.123456789Z",
            ),
            ("2026-03-01T11:30:00+01:30", "2026-03-01T10:00:00Z"),
            ("2026-03-01T08:00:00-02:00", "2026-03-01T10:00:00Z"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
            ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
        ];
        for (input, want) in table {
            assert_eq!(Time::parse_rfc3339(input).unwrap().to_rfc3339(), *want);
        }
        assert_eq!(
            Time::parse_rfc3339("0001-01-01T00:00:00Z").unwrap(),
            Time::ZERO
        );
        assert_eq!(
            Time::parse_rfc3339("1970-01-01T00:00:01Z").unwrap(),
            Time::from_unix_nanos(1_000_000_000)
        );
    }

    #[test]
    fn malformed_times_are_rejected() {
        for input in [
            "",
            "2026-03-01",
            "2026-03-01T10:00:00",
            "2026-03-01 10:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "2026-03-01T24:00:00Z",
            "2026-03-01T10:60:00Z",
            "2026-03-01T10:00:60Z",
            "2026-03-01T10:00:00.Z",
            "2026-03-01T10:00:00.1234567891Z",
            "2026-03-01T10:00:00+0100",
            "2026-03-01T10:00:00+24:00",
            "2026-03-01T10:00:00Zjunk",
            "26-03-01T10:00:00Z",
        ] {
            assert!(Time::parse_rfc3339(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn go_durations_parse_to_nanoseconds() {
        let table: &[(&str, i128)] = &[
            ("0", 0),
            ("60s", 60_000_000_000),
            ("1m0s", 60_000_000_000),
            ("10.5s", 10_500_000_000),
            ("1m30s", 90_000_000_000),
            ("1h", 3_600_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("300ms", 300_000_000),
            ("2us", 2_000),
            ("2\u{00b5}s", 2_000),
            ("2\u{03bc}s", 2_000),
            ("7ns", 7),
            ("-1s", -1_000_000_000),
            ("+1s", 1_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("2562047h47m16.854775807s", i128::from(i64::MAX)),
        ];
        for (input, want) in table {
            assert_eq!(
                Duration::parse_go(input).unwrap().as_nanos(),
                *want,
                "{input}"
            );
        }
    }

    #[test]
    fn malformed_durations_are_rejected_with_go_texts() {
        let table: &[(&str, &str)] = &[
            ("", "time: invalid duration \"\""),
            ("s", "time: invalid duration \"s\""),
            ("1", "time: missing unit in duration \"1\""),
            ("1x", "time: unknown unit \"x\" in duration \"1x\""),
            (".s", "time: invalid duration \".s\""),
            (
                "9999999999999999999h",
                "time: invalid duration \"9999999999999999999h\"",
            ),
            ("1s ", "time: unknown unit \"s \" in duration \"1s \""),
        ];
        for (input, want) in table {
            assert_eq!(Duration::parse_go(input).unwrap_err().to_string(), *want);
        }
    }
}
