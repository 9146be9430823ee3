//! One time domain (R-T4): every instant that comes from outside passes [`given`] or
//! [`as_of`], and deadline arithmetic saturates instead of overflowing.
//!
//! The bounds, and why:
//! - **Floor, [`floor`] = 2000-01-01T00:00:00Z.** The business's records start there:
//!   case numbers and archive years are counted from 2000 (R-P1, R-P12), so nothing a
//!   caller reports about this business happened earlier. It also keeps every accepted
//!   instant a four-digit year, which both backends store and compare exactly (SQLite
//!   holds fixed-width text that sorts as time only for years 0000–9999; PostgreSQL's
//!   `TIMESTAMPTZ` ends at 4713 BC).
//! - **Ceiling, `now` + [`MAX_SKEW`].** A stated time is a fact about the past; a caller's
//!   clock a little ahead of ours is tolerated, a future time is not.
//! - **Order.** A time is never before what it follows: a contact before the receipt, a
//!   callback before the closure or the registration. Each aggregate checks that in its
//!   `decide`, with a [`crate::DomainError`] naming the rule.
//! - **`as_of` window**, for reports and replays: from the floor to `now` +
//!   [`AS_OF_AHEAD`] (a report may look ahead, for what will be due).

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::DomainError;

/// How far ahead of our clock a stated time may be: clock skew between the caller's
/// machine and ours, not a licence to date things in the future.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(2);

/// How far ahead of now a report's or a replay's `as_of` may look.
pub const AS_OF_AHEAD: TimeDelta = TimeDelta::days(366);

/// 2000-01-01T00:00:00Z, the earliest instant a caller may state (see the module docs).
pub fn floor() -> DateTime<Utc> {
    DateTime::from_timestamp(946_684_800, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A time a caller states for `field` (a receipt, a contact, a callback), checked
/// against `now`: not before the floor, not after `now` + [`MAX_SKEW`].
pub fn given(
    field: &'static str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, DomainError> {
    if at < floor() {
        return Err(DomainError::DatedBeforeFloor { field });
    }
    if at > later(now, MAX_SKEW) {
        return Err(DomainError::DatedInFuture { field });
    }
    Ok(at)
}

/// The instant a report or a replay is computed at, checked against `now`: from the
/// floor to `now` + [`AS_OF_AHEAD`].
pub fn as_of(
    field: &'static str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, DomainError> {
    if at < floor() || at > later(now, AS_OF_AHEAD) {
        return Err(DomainError::AsOfOutOfWindow { field });
    }
    Ok(at)
}

/// `at + delta`, saturating at chrono's bounds: a deadline beyond every representable
/// instant is never reached, one before all of them has always passed.
pub fn later(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_add_signed(delta).unwrap_or(if delta < TimeDelta::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// `at - delta`, saturating like [`later`].
pub fn earlier(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_sub_signed(delta).unwrap_or(if delta < TimeDelta::zero() {
        DateTime::<Utc>::MAX_UTC
    } else {
        DateTime::<Utc>::MIN_UTC
    })
}

/// `n` days, saturating at the longest [`TimeDelta`] (configured cadences are checked
/// when the policy is loaded; this only keeps arithmetic from panicking).
pub fn days(n: i64) -> TimeDelta {
    TimeDelta::try_days(n).unwrap_or(if n < 0 { TimeDelta::MIN } else { TimeDelta::MAX })
}

/// `n` hours, saturating like [`days`].
pub fn hours(n: i64) -> TimeDelta {
    TimeDelta::try_hours(n).unwrap_or(if n < 0 { TimeDelta::MIN } else { TimeDelta::MAX })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn bounds_are_the_documented_ones() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        assert_eq!(floor(), Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(given("at", floor(), now), Ok(floor()));
        assert_eq!(
            given("at", floor() - TimeDelta::microseconds(1), now),
            Err(DomainError::DatedBeforeFloor { field: "at" })
        );
        assert_eq!(given("at", now + MAX_SKEW, now), Ok(now + MAX_SKEW));
        assert_eq!(
            given("at", now + MAX_SKEW + TimeDelta::seconds(1), now),
            Err(DomainError::DatedInFuture { field: "at" })
        );
        for extreme in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            assert!(given("at", extreme, now).is_err());
            assert!(as_of("as_of", extreme, now).is_err());
        }
        assert!(as_of("as_of", now + AS_OF_AHEAD, now).is_ok());
        assert!(as_of("as_of", now + AS_OF_AHEAD + TimeDelta::seconds(1), now).is_err());
    }

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(later(DateTime::<Utc>::MAX_UTC, hours(12)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(earlier(DateTime::<Utc>::MIN_UTC, days(3)), DateTime::<Utc>::MIN_UTC);
        assert_eq!(later(DateTime::<Utc>::MIN_UTC, days(-3)), DateTime::<Utc>::MIN_UTC);
        assert_eq!(days(i64::MAX), TimeDelta::MAX);
        assert_eq!(hours(i64::MIN), TimeDelta::MIN);
    }
}
