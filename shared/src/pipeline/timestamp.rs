//! Timestamps as audit events carry them, turned into UTC for object keys; and "now" for templates.
//!
//! Workato writes job times as ISO-8601 with an offset (`2022-10-19T22:30:46-07:00`), current
//! activity logs as `2024-05-01T10:15:30.000Z`, and the 2019 activity stream in Ruby's
//! `Time#to_s` style (`2019-09-13 17:24:16 UTC`, `2019-08-01 06:43:54 -0700`). All of these are
//! accepted. Only calendar arithmetic is needed, so this is a few functions rather than a
//! date-time dependency.
//!
//! A [`UtcTime`] always lies within the years 0000 to 9999 (UTC), so a date is always eight digits
//! and an object key's date folder always sorts. Four-digit years can only leave that range by an
//! offset (`0000-01-01T00:30:00+01:00` is in the year -1, `9999-12-31T23:00:00-05:00` in 10000):
//! such a time is clamped to the nearest end, `0000-01-01T00:00:00Z` or `9999-12-31T23:59:59.999Z`.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment in UTC, to the millisecond (object keys use the second; Splunk's `time` and Azure
/// Monitor's `TimeGenerated` keep the milliseconds an activity's `timestamp` carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcTime {
    /// Seconds since the Unix epoch.
    pub epoch_seconds: i64,
    /// Milliseconds past `epoch_seconds`, 0 to 999.
    pub millis: u16,
}

/// `0000-01-01T00:00:00Z`, the earliest [`UtcTime`].
const MIN_EPOCH_SECONDS: i64 = -62_167_219_200;
/// `9999-12-31T23:59:59Z`, the latest whole second of a [`UtcTime`].
const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TimestampError {
    /// The text is not one of the accepted forms. Only its length is kept: a time field can hold
    /// anything a sender put there, and this error reaches logs and dead-letter attributes.
    #[error("expected a date and time like 2022-10-19T22:30:46-07:00, found text of {chars} characters that is not one (not shown: it is event data)")]
    Format { chars: usize },
    /// The form is right but a month, day, hour, minute, second or offset is out of its range.
    #[error("date or time out of range (month, day, hour, minute, second or offset) in text of {chars} characters (not shown: it is event data)")]
    Range { chars: usize },
}

impl UtcTime {
    /// Parses the timestamp forms described in the module docs.
    pub fn parse(text: &str) -> Result<UtcTime, TimestampError> {
        let err = || TimestampError::Format { chars: text.chars().count() };
        let b = text.trim().as_bytes();
        let num = |range: std::ops::Range<usize>| -> Result<i64, TimestampError> {
            let part = b.get(range).ok_or_else(err)?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(err());
            }
            Ok(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
        };
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
            return Err(err());
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
            return Err(TimestampError::Range { chars: text.chars().count() });
        }
        let mut rest = &b[19..];
        // Fractional seconds: kept to the millisecond (digits past the third are cut, not rounded,
        // so a time never moves into the next second).
        let mut millis = 0u16;
        if rest.first() == Some(&b'.') {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return Err(err());
            }
            let kept = &rest[1..1 + digits.min(3)];
            millis = kept.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0')) * 10u16.pow(3 - kept.len() as u32);
            rest = &rest[1 + digits..];
        }
        if rest.first() == Some(&b' ') {
            rest = &rest[1..];
        }
        let offset_seconds = match rest {
            b"Z" | b"z" | b"UTC" | b"GMT" | b"" => 0,
            [sign @ (b'+' | b'-'), h1, h2, tail @ ..] => {
                let (m1, m2) = match tail {
                    [b':', m1, m2] | [m1, m2] => (*m1, *m2),
                    [] => (b'0', b'0'),
                    _ => return Err(err()),
                };
                let digits = [*h1, *h2, m1, m2];
                if !digits.iter().all(u8::is_ascii_digit) {
                    return Err(err());
                }
                let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
                let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
                if hours > 23 || minutes > 59 {
                    return Err(TimestampError::Range { chars: text.chars().count() });
                }
                let s = (hours * 60 + minutes) * 60;
                if *sign == b'-' {
                    -s
                } else {
                    s
                }
            }
            _ => return Err(err()),
        };
        let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59);
        Ok(UtcTime::clamped(local - offset_seconds, millis))
    }

    /// A JSON number that reads as a moment since the Unix epoch, as log streams write times: whole
    /// seconds (10 or 11 digits), milliseconds (13–14), microseconds (16–17) or nanoseconds
    /// (19–20), told apart by size, with an optional fraction (kept to the millisecond). `None`
    /// for anything else: a number of another size is a count or a duration (`86400`, `12.5`), not
    /// a time, and a negative, an exponent or a non-number is not read.
    pub fn from_epoch_number(text: &str) -> Option<UtcTime> {
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !(frac.is_empty() || digits(frac)) || int.starts_with('0') {
            return None;
        }
        let value: u128 = int.parse().ok()?;
        // Milliseconds since the epoch, by the unit the size says.
        let millis = match int.len() {
            10 | 11 => {
                let frac_millis: u128 = format!("{frac:0<3}")[..3].parse().ok()?;
                value * 1000 + frac_millis
            }
            13 | 14 => value,
            16 | 17 => value / 1_000,
            19 | 20 => value / 1_000_000,
            _ => return None,
        };
        let seconds = i64::try_from(millis / 1000).ok()?;
        Some(UtcTime::clamped(seconds, (millis % 1000) as u16))
    }

    /// A whole second since the Unix epoch (clamped to the years 0000 to 9999, see the module docs).
    pub fn from_epoch_seconds(epoch_seconds: i64) -> UtcTime {
        UtcTime::clamped(epoch_seconds, 0)
    }

    fn clamped(epoch_seconds: i64, millis: u16) -> UtcTime {
        if epoch_seconds < MIN_EPOCH_SECONDS {
            UtcTime { epoch_seconds: MIN_EPOCH_SECONDS, millis: 0 }
        } else if epoch_seconds > MAX_EPOCH_SECONDS {
            UtcTime { epoch_seconds: MAX_EPOCH_SECONDS, millis: 999 }
        } else {
            UtcTime { epoch_seconds, millis }
        }
    }

    /// Seconds since the Unix epoch with three decimals, as Splunk HEC's `time` takes them:
    /// `1666243846.123`, and before 1970 `-0.750` (a quarter second before the epoch plus
    /// `epoch_seconds` -1 and 250 ms), never `-1.250`.
    pub fn epoch_seconds_decimal(&self) -> String {
        let millis = i128::from(self.epoch_seconds) * 1000 + i128::from(self.millis);
        let sign = if millis < 0 { "-" } else { "" };
        format!("{sign}{}.{:03}", millis.abs() / 1000, millis.abs() % 1000)
    }

    /// `YYYYMMDD` in UTC, the date folder of an object key.
    pub fn compact_date(&self) -> String {
        let mut out = String::with_capacity(8);
        self.write_compact_date(&mut out);
        out
    }

    /// `YYYYMMDDHHMMSS` in UTC, the time part of an object name.
    pub fn compact_datetime(&self) -> String {
        let mut out = String::with_capacity(14);
        self.write_compact_datetime(&mut out);
        out
    }

    /// [`UtcTime::compact_date`], appended to `out`.
    pub fn write_compact_date(&self, out: &mut String) {
        let (y, m, d) = civil_from_days(self.epoch_seconds.div_euclid(86_400));
        // Within the years 0000 to 9999 (see the module docs), so never negative.
        debug_assert!((0..=9999).contains(&y), "year {y}");
        push_digits(out, y as u32, 4);
        push_digits(out, m as u32, 2);
        push_digits(out, d as u32, 2);
    }

    /// [`UtcTime::compact_datetime`], appended to `out`.
    pub fn write_compact_datetime(&self, out: &mut String) {
        self.write_compact_date(out);
        let secs = self.epoch_seconds.rem_euclid(86_400) as u32;
        push_digits(out, secs / 3600, 2);
        push_digits(out, secs / 60 % 60, 2);
        push_digits(out, secs % 60, 2);
    }
}

/// The current time, captured once per rendering so every `now` placeholder in one message agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub epoch_nanos: u128,
}

impl Now {
    pub fn capture() -> Now {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        Now { epoch_nanos: nanos }
    }

    /// ISO-8601 with milliseconds and offset, in UTC (Lambda runs in UTC): `2023-06-02T05:30:01.002+00:00`.
    pub fn iso8601(&self) -> String {
        let millis = (self.epoch_nanos / 1_000_000 % 1000) as u32;
        format!("{}.{millis:03}+00:00", self.date_time())
    }

    /// ISO-8601 to the second with `Z`, the form Azure's SAS `se`/`st` fields take: `2023-06-02T05:30:01Z`.
    pub fn iso8601_seconds(&self) -> String {
        format!("{}Z", self.date_time())
    }

    /// `2023-06-02T05:30:01`, UTC.
    fn date_time(&self) -> String {
        let secs = (self.epoch_nanos / 1_000_000_000) as i64;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let tod = secs.rem_euclid(86_400);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", tod / 3600, tod / 60 % 60, tod % 60)
    }

    /// Epoch milliseconds with a fractional part, as Workato's `{{{now_utc}}}`: `1685683801002.2139`.
    pub fn epoch_millis_fractional(&self) -> String {
        let micros_of_milli = self.epoch_nanos / 100 % 10_000;
        format!("{}.{:04}", self.epoch_nanos / 1_000_000, micros_of_milli)
    }

    pub fn epoch_micros(&self) -> u128 {
        self.epoch_nanos / 1_000
    }

    /// This moment as a [`UtcTime`]: the receive time of an event that carries no time of its own.
    pub fn utc_time(&self) -> UtcTime {
        let seconds = i64::try_from(self.epoch_nanos / 1_000_000_000).unwrap_or(i64::MAX);
        UtcTime::clamped(seconds, (self.epoch_nanos / 1_000_000 % 1000) as u16)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
/// `value` in decimal, left-padded with zeros to `width` digits (at most 10), as `{value:0width$}`
/// would write it.
fn push_digits(out: &mut String, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let (mut n, mut i) = (value, digits.len());
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(digits.len() - width.min(digits.len()));
    out.push_str(std::str::from_utf8(&digits[start..]).expect("ASCII digits"));
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
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_time_is_described_never_quoted() {
        // a time field can hold anything a sender put there; its error reaches logs and dead-letter
        // attributes, so it says what is wrong and how long the text is, never what it says
        for text in ["SECRETM0001", "2024-05-01TSECRETM0001", "2024-13-01T10:15:30Z SECRETM0001", "2024-05-01T10:15:30+25:00SECRETM0001"] {
            let err = UtcTime::parse(text).unwrap_err();
            let shown = err.to_string();
            assert!(!shown.contains("SECRETM0001"), "{text:?} gave {shown:?}");
            assert!(shown.contains(&format!("{} characters", text.chars().count())), "{shown}");
        }
        assert_eq!(
            UtcTime::parse("yesterday").unwrap_err().to_string(),
            "expected a date and time like 2022-10-19T22:30:46-07:00, found text of 9 characters that is not one (not shown: it is event data)"
        );
    }

    #[test]
    fn every_documented_form_becomes_utc() {
        let cases = [
            // job times carry an offset: keys use the UTC date, which may be the next day
            ("2022-10-19T22:30:46-07:00", "20221020053046"),
            ("2022-06-14T10:11:12+05:30", "20220614044112"),
            ("2024-05-01T10:15:30.000Z", "20240501101530"),
            ("2019-09-13T15:27:27.446-07:00", "20190913222727"),
            // 2019 activity stream (Ruby Time#to_s)
            ("2019-09-13 17:24:16 UTC", "20190913172416"),
            ("2019-08-01 06:43:54 -0700", "20190801134354"),
            ("2020-02-29T23:59:59Z", "20200229235959"),
            ("2000-01-01T00:00:00+01:00", "19991231230000"),
            ("2026-11-25T21:00:00", "20261125210000"),
        ];
        for (input, want) in cases {
            let t = UtcTime::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(t.compact_datetime(), want, "{input}");
            assert_eq!(t.compact_date(), &want[..8], "{input}");
        }
    }

    #[test]
    fn milliseconds_are_kept_and_further_digits_cut() {
        let millis = |t: &str| UtcTime::parse(t).unwrap_or_else(|e| panic!("{t}: {e}")).millis;
        assert_eq!(millis("2024-05-01T10:15:30.123Z"), 123);
        assert_eq!(millis("2019-09-13T15:27:27.446-07:00"), 446);
        assert_eq!(millis("2024-05-01T10:15:30.4Z"), 400);
        assert_eq!(millis("2024-05-01T10:15:30.05Z"), 50);
        assert_eq!(millis("2024-05-01T10:15:30.999999Z"), 999);
        assert_eq!(millis("2022-10-19T22:30:46-07:00"), 0);
        assert_eq!(UtcTime::parse("2024-05-01T10:15:30.999999Z").unwrap().compact_datetime(), "20240501101530", "never the next second");
    }

    #[test]
    fn malformed_times_are_errors() {
        for input in [
            "",
            "yesterday",
            "2022-13-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2022-10-19T25:00:00Z",
            "2022-10-19T22:30:46-7",
            "2022-10-19T22:30:46+25:00",
            "2022-10-19",
            "2022-10-19T22:30:46.Z",
        ] {
            assert!(UtcTime::parse(input).is_err(), "{input:?} should not parse");
        }
    }

    #[test]
    fn now_renders_like_workato() {
        // 2023-06-02T05:30:01.002213900Z
        let now = Now { epoch_nanos: 1_685_683_801_002_213_900 };
        assert_eq!(now.iso8601(), "2023-06-02T05:30:01.002+00:00");
        assert_eq!(now.iso8601_seconds(), "2023-06-02T05:30:01Z");
        assert_eq!(now.epoch_millis_fractional(), "1685683801002.2139");
        assert_eq!(now.epoch_micros(), 1_685_683_801_002_213);
    }

    #[test]
    fn times_stay_within_the_years_0000_to_9999() {
        let cases = [
            ("0000-01-01T00:30:00+01:00", "00000101000000"),
            ("0000-01-01T00:00:00Z", "00000101000000"),
            ("9999-12-31T23:59:59Z", "99991231235959"),
            ("9999-12-31T23:00:00-05:00", "99991231235959"),
            ("1969-12-31T23:59:59Z", "19691231235959"),
        ];
        for (input, want) in cases {
            assert_eq!(UtcTime::parse(input).unwrap().compact_datetime(), want, "{input}");
        }
        assert_eq!(UtcTime::from_epoch_seconds(i64::MIN).compact_datetime(), "00000101000000");
        assert_eq!(UtcTime::from_epoch_seconds(i64::MAX).compact_datetime(), "99991231235959");
        assert_eq!(UtcTime::from_epoch_seconds(-1).compact_datetime(), "19691231235959");
    }

    #[test]
    fn epoch_seconds_keep_their_milliseconds_on_both_sides_of_1970() {
        let cases = [
            ("2022-10-20T05:30:46.123Z", "1666243846.123"),
            ("1970-01-01T00:00:00Z", "0.000"),
            ("1970-01-01T00:00:00.250Z", "0.250"),
            ("1969-12-31T23:59:59.250Z", "-0.750"),
            ("1969-12-31T23:59:58Z", "-2.000"),
            ("0000-01-01T00:00:00Z", "-62167219200.000"),
        ];
        for (input, want) in cases {
            assert_eq!(UtcTime::parse(input).unwrap().epoch_seconds_decimal(), want, "{input}");
        }
    }

    #[test]
    fn now_is_also_a_utc_time() {
        let now = Now { epoch_nanos: 1_685_683_801_002_213_900 };
        assert_eq!(now.utc_time(), UtcTime { epoch_seconds: 1_685_683_801, millis: 2 });
        assert_eq!(Now { epoch_nanos: u128::MAX }.utc_time().compact_date(), "99991231");
    }

    #[test]
    fn calendar_round_trips() {
        for days in [-800_000, -1, 0, 1, 59, 365, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
