//! Business time (R-T1, R-T2): the business's time zone and calendar, and deadline math
//! in calendar days and in working time, pure and bounded.
//!
//! A [`Calendar`] is data: working hours per weekday (local wall-clock spans), public
//! holidays (not worked whatever the weekday) and make-up working days (调休: a day,
//! usually a weekend day, worked instead of a holiday, with Monday's hours). All of it is
//! read in the business zone, so "09:00" is 09:00 in Beijing whatever the server's zone,
//! and days of the week are local days.
//!
//! The math never loops unboundedly: it looks at most [`MAX_SCAN_DAYS`] local days
//! ahead and answers "never" (`None`) past that. A calendar with no working time at all
//! is refused by [`Calendar::check`] (and so at `kefu config check`), not discovered by
//! a deadline that never comes.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// How many local days deadline math looks ahead before answering "never": twenty years,
/// far beyond any target (targets are at most [`crate::policy::MAX_TARGET_AMOUNT`] units).
pub const MAX_SCAN_DAYS: u32 = 20 * 366;

/// The longest stretch of days without working time a calendar may have (a month).
pub const MAX_IDLE_DAYS: i64 = 31;

/// Working time of one local day: `start` to `end`, minutes after local midnight
/// (`end` may be 24:00). Written `"09:00-12:00"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span {
    start: u16,
    end: u16,
}

impl Span {
    /// `start..end` in minutes after midnight; `None` unless `start < end <= 24:00`.
    pub fn new(start: u16, end: u16) -> Option<Self> {
        (start < end && end <= 24 * 60).then_some(Span { start, end })
    }

    /// The span's length.
    pub fn length(self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.end - self.start))
    }
}

impl TryFrom<String> for Span {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let minutes = |part: &str| -> Option<u16> {
            let (hours, minutes) = part.trim().split_once(':')?;
            let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
            (minutes < 60 && hours <= 24).then(|| hours * 60 + minutes)
        };
        let (start, end) = text
            .split_once('-')
            .and_then(|(start, end)| Some((minutes(start)?, minutes(end)?)))
            .ok_or_else(|| format!("{text:?} is not a span such as \"09:00-12:00\""))?;
        Span::new(start, end).ok_or_else(|| format!("{text:?} must start before it ends, by 24:00"))
    }
}

impl From<Span> for String {
    fn from(span: Span) -> String {
        format!(
            "{:02}:{:02}-{:02}:{:02}",
            span.start / 60,
            span.start % 60,
            span.end / 60,
            span.end % 60
        )
    }
}

/// Working hours per weekday; a day with no spans is not worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Week {
    pub mon: Vec<Span>,
    pub tue: Vec<Span>,
    pub wed: Vec<Span>,
    pub thu: Vec<Span>,
    pub fri: Vec<Span>,
    pub sat: Vec<Span>,
    pub sun: Vec<Span>,
}

impl Default for Week {
    /// Monday to Friday, 09:00–12:00 and 13:00–18:00.
    fn default() -> Self {
        let day =
            || vec![Span { start: 9 * 60, end: 12 * 60 }, Span { start: 13 * 60, end: 18 * 60 }];
        Week {
            mon: day(),
            tue: day(),
            wed: day(),
            thu: day(),
            fri: day(),
            sat: vec![],
            sun: vec![],
        }
    }
}

impl Week {
    fn of(&self, weekday: Weekday) -> &[Span] {
        match weekday {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }
}

/// The business calendar (R-T2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calendar {
    /// Working hours per weekday, local wall-clock time.
    pub hours: Week,
    /// Public holidays: not worked, whatever the weekday.
    pub holidays: BTreeSet<NaiveDate>,
    /// Make-up working days (调休): worked with Monday's hours, whatever the weekday.
    pub makeup_days: BTreeSet<NaiveDate>,
}

impl Calendar {
    /// Refuses a calendar that cannot be used: overlapping or unordered spans, a day
    /// both a holiday and a make-up day, or no working time in the week at all.
    pub fn check(&self) -> Result<(), String> {
        let days = [
            ("mon", &self.hours.mon),
            ("tue", &self.hours.tue),
            ("wed", &self.hours.wed),
            ("thu", &self.hours.thu),
            ("fri", &self.hours.fri),
            ("sat", &self.hours.sat),
            ("sun", &self.hours.sun),
        ];
        for (name, spans) in days {
            if spans.windows(2).any(|pair| pair[0].end > pair[1].start) {
                return Err(format!("hours.{name}: spans must be in order and not overlap"));
            }
        }
        if let Some(both) = self.holidays.intersection(&self.makeup_days).next() {
            return Err(format!("{both} is both a holiday and a make-up working day"));
        }
        if days.iter().all(|(_, spans)| spans.is_empty()) {
            return Err("hours: no weekday has working hours, so business time never passes".into());
        }
        if !self.makeup_days.is_empty() && self.hours.mon.is_empty() {
            return Err("makeup_days work Monday's hours, and hours.mon has none".into());
        }
        self.check_idle_runs()
    }

    /// Refuses a stretch of more than [`MAX_IDLE_DAYS`] days without working time
    /// among the listed holidays: deadlines in business time would run off past it.
    fn check_idle_runs(&self) -> Result<(), String> {
        let listed = self.holidays.iter().chain(&self.makeup_days);
        let (Some(first), Some(last)) = (listed.clone().min(), listed.max()) else {
            return Ok(());
        };
        let mut idle_since: Option<NaiveDate> = None;
        let mut day = *first - Days::new(7);
        while day <= *last + Days::new(7) {
            if self.spans(day).is_empty() {
                let since = *idle_since.get_or_insert(day);
                if (day - since).num_days() >= MAX_IDLE_DAYS {
                    return Err(format!(
                        "no working time for more than {MAX_IDLE_DAYS} days from {since}"
                    ));
                }
            } else {
                idle_since = None;
            }
            day = day + Days::new(1);
        }
        Ok(())
    }

    /// The working spans of a local date.
    pub fn spans(&self, date: NaiveDate) -> &[Span] {
        if self.holidays.contains(&date) {
            &[]
        } else if self.makeup_days.contains(&date) {
            &self.hours.mon
        } else {
            self.hours.of(date.weekday())
        }
    }

    /// Whether `at` falls in working time (start inclusive, end exclusive).
    pub fn is_working(&self, at: DateTime<Utc>, zone: Tz) -> bool {
        let Some(date) = local(at, zone).map(|local| local.date()) else { return false };
        self.intervals(date, zone).any(|(start, end)| start <= at && at < end)
    }

    /// The working intervals of a local date as instants, in order.
    fn intervals(
        &self,
        date: NaiveDate,
        zone: Tz,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        self.spans(date).iter().filter_map(move |span| {
            Some((local_instant(date, span.start, zone)?, local_instant(date, span.end, zone)?))
        })
    }

    /// `start` plus `duration` of working time: the instant when that much working time
    /// has passed since `start` (a start outside working hours counts from the next
    /// working minute). Always within working hours (the end of a span included);
    /// `None` when it lies beyond [`MAX_SCAN_DAYS`] or `duration` is negative.
    pub fn add_working(
        &self,
        start: DateTime<Utc>,
        duration: TimeDelta,
        zone: Tz,
    ) -> Option<DateTime<Utc>> {
        if duration < TimeDelta::zero() {
            return None;
        }
        let mut remaining = duration;
        let mut date = local(start, zone)?.date();
        for _ in 0..MAX_SCAN_DAYS {
            for (begin, end) in self.intervals(date, zone) {
                let begin = begin.max(start);
                if end <= begin {
                    continue;
                }
                let available = end - begin;
                if remaining <= available {
                    return Some(begin + remaining);
                }
                remaining -= available;
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// The working time between `from` and `to` (zero when `to` is not later), counted
    /// over at most [`MAX_SCAN_DAYS`] local days.
    pub fn working_between(&self, from: DateTime<Utc>, to: DateTime<Utc>, zone: Tz) -> TimeDelta {
        let mut total = TimeDelta::zero();
        let Some(mut date) = local(from, zone).map(|local| local.date()) else { return total };
        for _ in 0..MAX_SCAN_DAYS {
            let mut past_end = false;
            for (begin, end) in self.intervals(date, zone) {
                past_end = begin >= to;
                let (begin, end) = (begin.max(from), end.min(to));
                if begin < end {
                    total += end - begin;
                }
            }
            if past_end || local(to, zone).is_some_and(|local| local.date() <= date) {
                break;
            }
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
        total
    }

    /// The close of the `n`-th working day after `start`'s local date (R-T2 "business
    /// days"); `None` past [`MAX_SCAN_DAYS`].
    pub fn add_working_days(
        &self,
        start: DateTime<Utc>,
        n: u32,
        zone: Tz,
    ) -> Option<DateTime<Utc>> {
        let mut date = local(start, zone)?.date();
        let mut left = n;
        for _ in 0..MAX_SCAN_DAYS {
            date = date.succ_opt()?;
            if let Some((_, end)) = self.intervals(date, zone).last() {
                left = left.saturating_sub(1);
                if left == 0 {
                    return Some(end);
                }
            }
        }
        None
    }
}

/// The business-local month of `at` in `zone`, `YYYY-MM` (R-T1, R-R1, R-R2): the one
/// month function that monthly summaries and satisfaction months are counted by.
/// A complaint received at 07:00 on 1 December in Beijing (23:00 UTC on 30 November)
/// is December's.
pub fn business_month(at: DateTime<Utc>, zone: Tz) -> String {
    let local = local(at, zone).unwrap_or(at.naive_utc());
    format!("{:04}-{:02}", local.year(), local.month())
}

/// The business-local wall-clock time of `at`; `None` at chrono's edges, where the
/// local time is not representable (`with_timezone` would panic there).
pub fn local(at: DateTime<Utc>, zone: Tz) -> Option<NaiveDateTime> {
    use chrono::{Offset, TimeZone};
    let offset = zone.offset_from_utc_datetime(&at.naive_utc()).fix();
    at.naive_utc().checked_add_signed(TimeDelta::seconds(i64::from(offset.local_minus_utc())))
}

/// `start` plus `n` business-local calendar days: the same local wall-clock time `n`
/// dates later (DST-safe: a day with a clock change is still one day); `None` past
/// chrono's range.
pub fn add_local_days(start: DateTime<Utc>, n: u32, zone: Tz) -> Option<DateTime<Utc>> {
    let target = local(start, zone)?.checked_add_days(Days::new(u64::from(n)))?;
    resolve(target, zone)
}

/// The instant of `minutes` after local midnight of `date` (24:00 is the next midnight).
fn local_instant(date: NaiveDate, minutes: u16, zone: Tz) -> Option<DateTime<Utc>> {
    let midnight = date.and_time(NaiveTime::MIN);
    resolve(midnight.checked_add_signed(TimeDelta::minutes(i64::from(minutes)))?, zone)
}

/// A local wall-clock time as an instant: the earlier of an ambiguous time (clocks
/// going back), the first instant after a skipped one (clocks going forward).
fn resolve(local: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    use chrono::offset::LocalResult;
    use chrono::TimeZone;
    // A gap is at most a few hours; step over it a quarter hour at a time.
    for step in 0..=16 {
        let probe = local.checked_add_signed(TimeDelta::minutes(15 * step))?;
        match zone.from_local_datetime(&probe) {
            LocalResult::Single(at) => return Some(at.with_timezone(&Utc)),
            LocalResult::Ambiguous(earliest, _) => return Some(earliest.with_timezone(&Utc)),
            LocalResult::None => continue,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn shanghai(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn spans_read_and_write_as_operators_write_them() {
        let span = Span::try_from("09:00-12:30".to_owned()).unwrap();
        assert_eq!(String::from(span), "09:00-12:30");
        assert_eq!(span.length(), TimeDelta::minutes(210));
        assert_eq!(String::from(Span::try_from("18:00-24:00".to_owned()).unwrap()), "18:00-24:00");
        for bad in ["", "9-12", "12:00-09:00", "09:00-09:00", "09:60-10:00", "23:00-24:30", "x"] {
            assert!(Span::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_calendar_without_working_time_is_refused() {
        let empty = Calendar {
            hours: Week {
                mon: vec![],
                tue: vec![],
                wed: vec![],
                thu: vec![],
                fri: vec![],
                sat: vec![],
                sun: vec![],
            },
            ..Calendar::default()
        };
        assert!(empty.check().unwrap_err().contains("no weekday"));
        assert_eq!(Calendar::default().check(), Ok(()));
        let date = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        let both =
            Calendar { holidays: [date].into(), makeup_days: [date].into(), ..Calendar::default() };
        assert!(both.check().is_err());
        // The attack's calendar: only Mondays work, and every Monday is a holiday.
        let mut mondays_only = Calendar::default();
        mondays_only.hours = Week { mon: mondays_only.hours.mon.clone(), ..empty.hours.clone() };
        let mut monday = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        while monday.year() < 2028 {
            mondays_only.holidays.insert(monday);
            monday = monday + Days::new(7);
        }
        assert!(mondays_only.check().unwrap_err().contains("no working time for more than"));
        // Make-up days work Monday's hours: none on Monday is refused with them.
        let no_monday = Calendar {
            hours: Week { mon: vec![], ..Calendar::default().hours },
            makeup_days: [NaiveDate::from_ymd_opt(2026, 10, 10).unwrap()].into(),
            ..Calendar::default()
        };
        assert!(no_monday.check().unwrap_err().contains("hours.mon"));
    }

    #[test]
    fn working_time_skips_nights_weekends_and_holidays_and_honours_makeup_days() {
        let zone = chrono_tz::Asia::Shanghai;
        let calendar = Calendar {
            holidays: [NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()].into(),
            makeup_days: [NaiveDate::from_ymd_opt(2026, 10, 3).unwrap()].into(),
            ..Calendar::default()
        };
        // Wednesday 30 Sep 17:00 + 4 working hours: 1 h that evening, Thursday 1 Oct is a
        // holiday, Friday 2 Oct 09:00-12:00 gives the other 3.
        let due = calendar.add_working(shanghai(2026, 9, 30, 17, 0), TimeDelta::hours(4), zone);
        assert_eq!(due, Some(shanghai(2026, 10, 2, 12, 0)));
        // Friday 17:30 + 1 h: Saturday 3 Oct is a make-up day (Monday's hours).
        let due = calendar.add_working(shanghai(2026, 10, 2, 17, 30), TimeDelta::hours(1), zone);
        assert_eq!(due, Some(shanghai(2026, 10, 3, 9, 30)));
        // Two business days from Wednesday evening: Friday's and Saturday's (make-up) close.
        assert_eq!(
            calendar.add_working_days(shanghai(2026, 9, 30, 20, 0), 2, zone),
            Some(shanghai(2026, 10, 3, 18, 0))
        );
    }

    #[test]
    fn calendar_days_are_local_days_across_dst() {
        // New York springs forward on 8 March 2026: 3 local days is 71 hours then.
        let zone = chrono_tz::America::New_York;
        let start = zone.with_ymd_and_hms(2026, 3, 7, 9, 0, 0).unwrap().with_timezone(&Utc);
        let due = add_local_days(start, 3, zone).unwrap();
        assert_eq!(
            due.with_timezone(&zone).naive_local(),
            NaiveDate::from_ymd_opt(2026, 3, 10).unwrap().and_hms_opt(9, 0, 0).unwrap()
        );
        assert_eq!(due - start, TimeDelta::hours(71));
        // A wall-clock time the change skips lands just after the gap.
        let start = zone.with_ymd_and_hms(2026, 3, 7, 2, 30, 0).unwrap().with_timezone(&Utc);
        let due = add_local_days(start, 1, zone).unwrap();
        assert_eq!(
            due.with_timezone(&zone).naive_local().time(),
            NaiveTime::from_hms_opt(3, 0, 0).unwrap()
        );
    }
}
