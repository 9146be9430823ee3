//! How SQLite holds an instant: RFC 3339 text in UTC with microseconds, which sorts as time does.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2026-11-22T15:04:05.123456Z`. chrono's RFC 3339 writer, not a strftime pattern: the
/// pattern is re-interpreted on every call, and a rebuild formats millions of these.
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads what [`format`] wrote.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|at| at.with_timezone(&Utc))
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
}
