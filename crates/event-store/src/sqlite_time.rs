//! How SQLite holds an instant: RFC 3339 text in UTC with microseconds, which sorts as time does.
//!
//! The text sorts as time only while it is fixed-width, that is for years 0000–9999, so
//! instants are stored clamped to that range ([`storable`]). kefu accepts no time from
//! outside beyond it (`kefu_domain::time`), but logs written before that rule may hold
//! any year chrono can; such an instant is stored (and read back) as the nearest bound.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// The earliest storable instant: 0000-01-01T00:00:00Z.
pub fn earliest() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(0, 1, 1)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map_or(DateTime::<Utc>::MIN_UTC, |at| at.and_utc())
}

/// The latest storable instant: 9999-12-31T23:59:59.999999Z.
pub fn latest() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_micro_opt(23, 59, 59, 999_999))
        .map_or(DateTime::<Utc>::MAX_UTC, |at| at.and_utc())
}

/// `at` clamped to the years both backends store and compare exactly (0000–9999).
pub fn storable(at: DateTime<Utc>) -> DateTime<Utc> {
    at.clamp(earliest(), latest())
}

/// `2026-11-22T15:04:05.123456Z`. chrono's RFC 3339 writer, not a strftime pattern: the
/// pattern is re-interpreted on every call, and a rebuild formats millions of these.
pub fn format(at: DateTime<Utc>) -> String {
    storable(at).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads what [`format`] wrote. A signed year (`-0001-…`, `+10000-…`), written by
/// releases that did not clamp, reads as the nearest bound, as [`format`] now writes it.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match text.as_bytes().first() {
        Some(b'-') => Ok(earliest()),
        Some(b'+') => Ok(latest()),
        _ => DateTime::parse_from_rfc3339(text).map(|at| at.with_timezone(&Utc)),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{SubsecRound, TimeZone};

    use super::*;

    #[test]
    fn the_text_is_the_one_stored_since_the_first_release() {
        let cases = [
            (Utc.timestamp_opt(0, 0).unwrap(), "1970-01-01T00:00:00.000000Z"),
            // Sub-microsecond digits are cut, as the old `%.6f` pattern cut them.
            (Utc.timestamp_opt(1_795_000_000, 123_456_789).unwrap(), "2026-11-18T11:06:40.123456Z"),
            (
                Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
                "9999-12-31T23:59:59.000000Z",
            ),
        ];
        for (at, text) in cases {
            assert_eq!(format(at), text);
            assert_eq!(format(at), at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            assert_eq!(parse(text).unwrap(), at.trunc_subsecs(6));
        }
        assert!(parse("2026-11-18 08:26:40").is_err());
    }

    #[test]
    fn every_instant_is_stored_fixed_width_and_sorted() {
        let instants = [
            DateTime::<Utc>::MIN_UTC,
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
            earliest(),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            latest(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            DateTime::<Utc>::MAX_UTC,
        ];
        let texts: Vec<String> = instants.iter().map(|at| format(*at)).collect();
        assert!(texts.iter().all(|text| text.len() == 27), "{texts:?}");
        assert!(texts.windows(2).all(|pair| pair[0] <= pair[1]), "{texts:?}");
        assert_eq!(texts[0], "0000-01-01T00:00:00.000000Z");
        assert_eq!(texts[6], "9999-12-31T23:59:59.999999Z");
        for at in instants {
            assert_eq!(parse(&format(at)).unwrap(), storable(at));
        }
        // What releases before the clamp wrote for year -1 and year 10000.
        for (legacy, bound) in [
            ("-0001-01-01T00:00:00.000000Z", earliest()),
            ("+10000-01-01T00:00:00.000000Z", latest()),
        ] {
            assert_eq!(parse(legacy).unwrap(), bound);
        }
    }
}
