//! Business time (R-T1, R-T2): business-local years and months at midnight, and the
//! properties of deadline math in working time under a calendar with holidays and
//! make-up days.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use kefu_domain::calendar::{business_month, Calendar, MAX_SCAN_DAYS};
use kefu_domain::case_register::{case_year, CaseRegisterEvent, IssueCaseNumber};
use kefu_domain::{Aggregate, CaseRegister, ComplaintId, DomainError};
use proptest::prelude::*;

const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

fn beijing(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    SHANGHAI.with_ymd_and_hms(y, m, d, h, min, s).unwrap().with_timezone(&Utc)
}

#[test]
fn the_case_year_is_the_business_local_year_r_t1() {
    // 03:00 on 1 January in Beijing is still 31 December in UTC.
    let new_year_morning = beijing(2027, 1, 1, 3, 0, 0);
    assert_eq!(case_year(new_year_morning, SHANGHAI), 2027);
    assert_eq!(case_year(new_year_morning, chrono_tz::UTC), 2026);
    let last_second = beijing(2026, 12, 31, 23, 59, 59);
    let first_second = beijing(2027, 1, 1, 0, 0, 0);
    assert_eq!((case_year(last_second, SHANGHAI), case_year(first_second, SHANGHAI)), (2026, 2027));
    // The register of 2027 numbers a filing made at 00:00 Beijing time, 16:00 UTC.
    let complaint_id = ComplaintId::generate();
    let issued = CaseRegister::decide(
        &None,
        IssueCaseNumber { complaint_id, year: 2027, zone: SHANGHAI },
        first_second,
    )
    .unwrap();
    let CaseRegisterEvent::CaseNumberIssued(issued) = &issued[0];
    assert_eq!(issued.case_number.to_string(), "2027-000001");
    assert_eq!(
        CaseRegister::decide(
            &None,
            IssueCaseNumber { complaint_id, year: 2027, zone: SHANGHAI },
            last_second
        ),
        Err(DomainError::RegisterYearMismatch { register: 2027, year: 2026 })
    );
}

#[test]
fn months_are_business_local_months_r_t1_r_r1() {
    assert_eq!(business_month(beijing(2026, 11, 30, 23, 59, 59), SHANGHAI), "2026-11");
    assert_eq!(business_month(beijing(2026, 12, 1, 0, 0, 0), SHANGHAI), "2026-12");
    // 07:00 on 1 December in Beijing is 23:00 on 30 November in UTC: December's.
    let morning = beijing(2026, 12, 1, 7, 0, 0);
    assert_eq!(morning, Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap());
    assert_eq!(business_month(morning, SHANGHAI), "2026-12");
    assert_eq!(business_month(beijing(2027, 1, 1, 0, 0, 0), SHANGHAI), "2027-01");
    assert_eq!(business_month(beijing(2026, 12, 31, 23, 59, 59), SHANGHAI), "2026-12");
    // Chrono's edge does not panic: the month falls back to the UTC one there.
    assert_eq!(business_month(DateTime::<Utc>::MAX_UTC, SHANGHAI), "262142-12");
}

/// The example calendar's shape: National Day week off, two make-up Saturdays.
fn national_day() -> Calendar {
    let date = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    Calendar {
        holidays: (1..=7).map(|d| date(10, d)).collect(),
        makeup_days: [date(9, 26), date(10, 10)].into(),
        ..Calendar::default()
    }
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // September to November 2026, to the minute.
    (0i64..(91 * 24 * 60))
        .prop_map(|minutes| beijing(2026, 9, 1, 0, 0, 0) + TimeDelta::minutes(minutes))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn adding_working_time_is_monotonic(start in instant(), a in 0i64..3_000, b in 0i64..3_000) {
        let calendar = national_day();
        let (short, long) = (a.min(b), a.max(b));
        let short = calendar.add_working(start, TimeDelta::minutes(short), SHANGHAI).unwrap();
        let long = calendar.add_working(start, TimeDelta::minutes(long), SHANGHAI).unwrap();
        prop_assert!(short <= long);
        prop_assert!(short >= start);
    }

    #[test]
    fn later_starts_are_never_due_earlier(start in instant(), shift in 0i64..10_000, minutes in 1i64..3_000) {
        let calendar = national_day();
        let amount = TimeDelta::minutes(minutes);
        let first = calendar.add_working(start, amount, SHANGHAI).unwrap();
        let second = calendar.add_working(start + TimeDelta::minutes(shift), amount, SHANGHAI).unwrap();
        prop_assert!(first <= second);
    }

    #[test]
    fn working_time_never_lands_outside_working_hours_or_on_a_holiday(start in instant(), minutes in 1i64..3_000) {
        let calendar = national_day();
        let due = calendar.add_working(start, TimeDelta::minutes(minutes), SHANGHAI).unwrap();
        // The due instant is in working time, or is the close of a working span.
        let just_before = due - TimeDelta::minutes(1);
        prop_assert!(calendar.is_working(just_before, SHANGHAI), "{due}");
        let local = due.with_timezone(&SHANGHAI).date_naive();
        prop_assert!(!calendar.holidays.contains(&local), "{due} is a holiday");
        // Exactly `minutes` of working time lie between the start and the due instant.
        let mut worked = 0;
        let mut at = start;
        while at < due {
            if calendar.is_working(at, SHANGHAI) { worked += 1; }
            at += TimeDelta::minutes(1);
        }
        // Minute-by-minute counting from a start that is not on the minute may round once.
        prop_assert!((worked - minutes).abs() <= 1, "worked {worked} of {minutes}");
    }

    #[test]
    fn business_days_end_on_working_days(start in instant(), n in 1u32..15) {
        let calendar = national_day();
        let due = calendar.add_working_days(start, n, SHANGHAI).unwrap();
        let day = due.with_timezone(&SHANGHAI).date_naive();
        prop_assert!(!calendar.spans(day).is_empty(), "{day} is not worked");
        prop_assert!(due > start);
    }
}

#[test]
fn holidays_are_skipped_and_makeup_days_worked_r_t2() {
    let calendar = national_day();
    // Wednesday 30 September 17:00 + 4 working hours: 1 h that evening, then the
    // holiday week, then 3 h on Thursday 8 October.
    let due = calendar.add_working(beijing(2026, 9, 30, 17, 0, 0), TimeDelta::hours(4), SHANGHAI);
    assert_eq!(due, Some(beijing(2026, 10, 8, 12, 0, 0)));
    // Friday 9 October 17:00 + 2 h: Saturday 10 October is a make-up day.
    let due = calendar.add_working(beijing(2026, 10, 9, 17, 0, 0), TimeDelta::hours(2), SHANGHAI);
    assert_eq!(due, Some(beijing(2026, 10, 10, 10, 0, 0)));
    // Friday 25 September evening + 1 business day: Saturday 26 (make-up) at its close.
    let due = calendar.add_working_days(beijing(2026, 9, 25, 20, 0, 0), 1, SHANGHAI);
    assert_eq!(due, Some(beijing(2026, 9, 26, 18, 0, 0)));
}

#[test]
fn a_calendar_with_no_working_time_ends_the_search_instead_of_looping() {
    // A calendar `check` refuses, given anyway: every day a holiday for twenty years.
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let holidays = start.iter_days().take(usize::try_from(MAX_SCAN_DAYS).unwrap() + 2).collect();
    let calendar = Calendar { holidays, ..Calendar::default() };
    assert_eq!(
        calendar.add_working(beijing(2026, 1, 1, 0, 0, 0), TimeDelta::hours(1), SHANGHAI),
        None
    );
    assert_eq!(calendar.add_working_days(beijing(2026, 1, 1, 0, 0, 0), 1, SHANGHAI), None);
}
