//! The service-level and callback-cadence policy (R-P7, R-P15, R-C4, R-C5, R-T1..R-T3),
//! with pure deadline math that saturates instead of overflowing (see [`crate::time`]).
//!
//! A policy is data an operator configures: the business time zone and calendar, a
//! [`Target`] per [`SlaRule`] (in calendar or business time), overrides per severity
//! and per customer tier, and the callback cadences. The policy a case was filed under
//! governs its deadlines for good (R-T3): the filing records its deadlines and the
//! policy version, and closures use that version's targets (see [`crate::policy_log`]).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::calendar::{add_local_days, Calendar};
use crate::time::{days, later};
use crate::values::{Severity, StarLevel, Tier};

/// The largest amount a target may state: far beyond any real target, small enough
/// that deadline math stays well inside chrono's range.
pub const MAX_TARGET_AMOUNT: u32 = 10_000;

/// The unit a target counts in (R-T2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Unit {
    /// Elapsed hours, day and night.
    Hours,
    /// Business-local calendar days: the same local time that many dates later.
    Days,
    /// Working hours of the business calendar.
    BusinessHours,
    /// Working days of the business calendar, due at the close of the last one.
    BusinessDays,
}

/// How long something may take, written `"12 hours"`, `"3 days"`, `"4 business hours"`
/// or `"2 business days"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Target {
    pub amount: u32,
    pub unit: Unit,
}

impl Target {
    pub const fn new(amount: u32, unit: Unit) -> Self {
        Target { amount, unit }
    }

    /// When a target started at `start` is due, in `zone` under `calendar`; saturates
    /// at chrono's end ("never") rather than failing.
    pub fn due(self, start: DateTime<Utc>, zone: Tz, calendar: &Calendar) -> DateTime<Utc> {
        let due = match self.unit {
            Unit::Hours => Some(later(start, TimeDelta::hours(i64::from(self.amount)))),
            Unit::Days => add_local_days(start, self.amount, zone),
            Unit::BusinessHours => {
                calendar.add_working(start, TimeDelta::hours(i64::from(self.amount)), zone)
            }
            Unit::BusinessDays => calendar.add_working_days(start, self.amount, zone),
        };
        due.unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whether the target counts working time.
    pub fn is_business(self) -> bool {
        matches!(self.unit, Unit::BusinessHours | Unit::BusinessDays)
    }

    /// R-T5: when a target started at `start` (and due at `due`) is at risk: once
    /// `percent` of it has passed, counted in the target's own time, so a business-time
    /// target is at risk during working hours, not at night or on a holiday.
    pub fn at_risk(
        self,
        start: DateTime<Utc>,
        due: DateTime<Utc>,
        percent: u8,
        zone: Tz,
        calendar: &Calendar,
    ) -> DateTime<Utc> {
        let share =
            |minutes: i64| TimeDelta::minutes(minutes.saturating_mul(i64::from(percent)) / 100);
        let at = match self.unit {
            Unit::Hours => Some(later(start, share(i64::from(self.amount) * 60))),
            Unit::Days => Some(at_risk_from(start, due, percent)),
            Unit::BusinessHours => {
                calendar.add_working(start, share(i64::from(self.amount) * 60), zone)
            }
            Unit::BusinessDays => {
                let working = calendar.working_between(start, due, zone);
                calendar.add_working(start, share(working.num_minutes()), zone)
            }
        };
        at.unwrap_or(due).min(due)
    }
}

impl TryFrom<String> for Target {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = || {
            format!(
                "{text:?} is not a target such as \"12 hours\", \"3 days\", \"4 business hours\" or \"2 business days\""
            )
        };
        let (amount, unit) = text.trim().split_once(' ').ok_or_else(bad)?;
        let amount: u32 = amount.parse().map_err(|_| bad())?;
        let unit = match unit.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["hour" | "hours"] => Unit::Hours,
            ["day" | "days"] => Unit::Days,
            ["business", "hour" | "hours"] => Unit::BusinessHours,
            ["business", "day" | "days"] => Unit::BusinessDays,
            _ => return Err(bad()),
        };
        if !(1..=MAX_TARGET_AMOUNT).contains(&amount) {
            return Err(format!("{text:?}: the amount must be from 1 to {MAX_TARGET_AMOUNT}"));
        }
        Ok(Target { amount, unit })
    }
}

impl From<Target> for String {
    fn from(target: Target) -> String {
        target.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Hours => "hours",
            Unit::Days => "days",
            Unit::BusinessHours => "business hours",
            Unit::BusinessDays => "business days",
        };
        write!(f, "{} {unit}", self.amount)
    }
}

/// A deadline and its warning point (R-T3, R-T5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub due: DateTime<Utc>,
    /// When the item is at risk: `at_risk_percent` of its target passed, never after `due`.
    pub at_risk: DateTime<Utc>,
}

/// The deadlines the policy sets (R-R3, R-T3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlaRule {
    /// R-P7: first response to a complaint, from its receipt.
    FirstResponse,
    /// The decision and closure of a complaint, from its receipt.
    Resolution,
    /// R-P15: the callback on a closed complaint, from its closure.
    CallbackAfterClosure,
    /// R-C4: a new customer's first contact by their agent, from registration.
    NewCustomerContact,
}

impl SlaRule {
    pub const ALL: [SlaRule; 4] = [
        SlaRule::FirstResponse,
        SlaRule::Resolution,
        SlaRule::CallbackAfterClosure,
        SlaRule::NewCustomerContact,
    ];

    /// The rule's name in configuration, reports and metrics.
    pub fn name(self) -> &'static str {
        match self {
            SlaRule::FirstResponse => "first_response",
            SlaRule::Resolution => "resolution",
            SlaRule::CallbackAfterClosure => "callback_after_closure",
            SlaRule::NewCustomerContact => "new_customer_contact",
        }
    }
}

/// One target per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    pub first_response: Target,
    pub resolution: Target,
    pub callback_after_closure: Target,
    pub new_customer_contact: Target,
}

impl Default for Targets {
    /// DOMAIN.md's: 12 hours (R-P7), callback within 3 days (R-P15), new customers
    /// contacted within 3 days (R-C4); resolution within 30 days.
    fn default() -> Self {
        Targets {
            first_response: Target::new(12, Unit::Hours),
            resolution: Target::new(30, Unit::Days),
            callback_after_closure: Target::new(3, Unit::Days),
            new_customer_contact: Target::new(3, Unit::Days),
        }
    }
}

impl Targets {
    fn of(&self, rule: SlaRule) -> Target {
        match rule {
            SlaRule::FirstResponse => self.first_response,
            SlaRule::Resolution => self.resolution,
            SlaRule::CallbackAfterClosure => self.callback_after_closure,
            SlaRule::NewCustomerContact => self.new_customer_contact,
        }
    }
}

/// Targets that replace the base ones for a severity or a tier; unset ones do not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_response: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_after_closure: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_customer_contact: Option<Target>,
}

impl Overrides {
    fn of(&self, rule: SlaRule) -> Option<Target> {
        match rule {
            SlaRule::FirstResponse => self.first_response,
            SlaRule::Resolution => self.resolution,
            SlaRule::CallbackAfterClosure => self.callback_after_closure,
            SlaRule::NewCustomerContact => self.new_customer_contact,
        }
    }
}

/// The business's time rules. Defaults are DOMAIN.md's; every value is configurable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// R-T1: the business time zone (IANA name).
    pub time_zone: Tz,
    /// R-T2: working hours, holidays and make-up days.
    pub calendar: Calendar,
    /// R-T3: the base target of each rule.
    pub targets: Targets,
    /// R-T3: overrides by severity (`normal`, `major`).
    pub severity: BTreeMap<Severity, Overrides>,
    /// R-T3: overrides by customer tier (`vip`, `key`, `regular`).
    pub tier: BTreeMap<Tier, Overrides>,
    /// R-T5: an item is at risk once this share of its target has elapsed, percent.
    pub at_risk_percent: u8,
    /// R-C5: routine callback interval for `key` customers (weekly).
    pub key_customer_callback_days: i64,
    /// R-C5: routine callback interval for five-star customers (monthly).
    pub five_star_callback_days: i64,
    /// R-C5: routine callback interval for VIP (member) customers.
    pub vip_callback_days: i64,
    /// R-C5: share of VIP customers that must have had a callback in their interval, percent.
    pub vip_coverage_target_percent: u8,
    /// R-P5: the fewest members present for a committee meeting to decide a case.
    pub committee_quorum: u8,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            time_zone: chrono_tz::Asia::Shanghai,
            calendar: Calendar::default(),
            targets: Targets::default(),
            severity: BTreeMap::new(),
            tier: BTreeMap::new(),
            at_risk_percent: 80,
            key_customer_callback_days: 7,
            five_star_callback_days: 30,
            vip_callback_days: 30,
            vip_coverage_target_percent: 100,
            committee_quorum: 3,
        }
    }
}

impl Policy {
    /// Version 0: what cases filed before policies were recorded were held to. The
    /// built-in targets then were calendar time in UTC (12 hours, 3 days, 3 days) and
    /// had no resolution target; 30 days stands for it. Never change this.
    pub fn version_zero() -> Self {
        Policy { time_zone: chrono_tz::UTC, ..Policy::default() }
    }

    /// Refuses a policy that cannot be applied: an unusable calendar, shares out of
    /// range, cadences that are not positive, a quorum of nobody.
    pub fn check(&self) -> Result<(), String> {
        self.calendar.check().map_err(|reason| format!("calendar: {reason}"))?;
        if !(1..=99).contains(&self.at_risk_percent) {
            return Err("at_risk_percent: must be from 1 to 99".into());
        }
        if self.vip_coverage_target_percent > 100 {
            return Err("vip_coverage_target_percent: must be at most 100".into());
        }
        for (name, days) in [
            ("key_customer_callback_days", self.key_customer_callback_days),
            ("five_star_callback_days", self.five_star_callback_days),
            ("vip_callback_days", self.vip_callback_days),
        ] {
            if !(1..=3_660).contains(&days) {
                return Err(format!("{name}: must be from 1 to 3660"));
            }
        }
        if self.committee_quorum == 0 {
            return Err("committee_quorum: must be at least 1".into());
        }
        Ok(())
    }

    /// The targets that apply to `rule` for a case of `severity` and a customer of
    /// `tier`: the severity's and the tier's overrides where set, else the base target.
    pub fn targets_for(
        &self,
        rule: SlaRule,
        severity: Option<Severity>,
        tier: Option<Tier>,
    ) -> Vec<Target> {
        let by_severity = severity.and_then(|s| self.severity.get(&s)).and_then(|o| o.of(rule));
        let by_tier = tier.and_then(|t| self.tier.get(&t)).and_then(|o| o.of(rule));
        let overrides: Vec<Target> = by_severity.into_iter().chain(by_tier).collect();
        if overrides.is_empty() {
            vec![self.targets.of(rule)]
        } else {
            overrides
        }
    }

    /// When `rule`, started at `start`, is due (R-T3): under the applicable targets,
    /// the earliest deadline wins (a VIP's faster first response beats the base).
    pub fn due(
        &self,
        rule: SlaRule,
        start: DateTime<Utc>,
        severity: Option<Severity>,
        tier: Option<Tier>,
    ) -> DateTime<Utc> {
        self.deadline(rule, start, severity, tier).due
    }

    /// [`Policy::due`] and when it is at risk (R-T5), under the winning target.
    pub fn deadline(
        &self,
        rule: SlaRule,
        start: DateTime<Utc>,
        severity: Option<Severity>,
        tier: Option<Tier>,
    ) -> Deadline {
        let (zone, calendar) = (self.time_zone, &self.calendar);
        self.targets_for(rule, severity, tier)
            .into_iter()
            .map(|target| (target, target.due(start, zone, calendar)))
            .min_by_key(|(_, due)| *due)
            .map_or(
                Deadline { due: DateTime::<Utc>::MAX_UTC, at_risk: DateTime::<Utc>::MAX_UTC },
                |(target, due)| Deadline {
                    due,
                    at_risk: target.at_risk(start, due, self.at_risk_percent, zone, calendar),
                },
            )
    }

    /// R-T5: when an item started at `start` and due at `due` becomes at risk, once
    /// `at_risk_percent` of the time between them has elapsed.
    pub fn at_risk_from(&self, start: DateTime<Utc>, due: DateTime<Utc>) -> DateTime<Utc> {
        at_risk_from(start, due, self.at_risk_percent)
    }

    /// The policy's fingerprint: SHA-256 of its canonical JSON, hex. Two policies with
    /// the same hash hold the same rules.
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }

    /// R-C5: how often a customer of this grade gets a routine callback; `None` when the
    /// grade has no cadence. The shortest applicable interval wins.
    pub fn callback_interval(&self, tier: Tier, stars: Option<StarLevel>) -> Option<TimeDelta> {
        let by_tier = match tier {
            Tier::Key => Some(self.key_customer_callback_days),
            Tier::Vip => Some(self.vip_callback_days),
            Tier::Regular => None,
        };
        let by_stars = stars.filter(|stars| stars.get() == 5).map(|_| self.five_star_callback_days);
        by_tier.into_iter().chain(by_stars).min().map(days)
    }

    /// R-C5: when the next routine callback is due, counted from the last callback (or
    /// from registration when there was none).
    pub fn next_routine_callback_due(
        &self,
        tier: Tier,
        stars: Option<StarLevel>,
        registered_at: DateTime<Utc>,
        last_callback_at: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let interval = self.callback_interval(tier, stars)?;
        Some(later(last_callback_at.unwrap_or(registered_at), interval))
    }
}

/// R-T5: when an item started at `start` and due at `due` becomes at risk, once
/// `percent` of the time between them has elapsed (wall-clock time: for a target in
/// business time the deadline already skips nights and holidays).
pub fn at_risk_from(start: DateTime<Utc>, due: DateTime<Utc>, percent: u8) -> DateTime<Utc> {
    let span = due.signed_duration_since(start);
    let share = span.num_seconds().saturating_mul(i64::from(percent)) / 100;
    later(start, TimeDelta::try_seconds(share).unwrap_or(TimeDelta::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn defaults_are_the_domain_brief() {
        let policy = Policy::default();
        let due = |rule| policy.due(rule, at(1, 8), None, None);
        assert_eq!(due(SlaRule::FirstResponse), at(1, 20), "R-P7: 12 hours");
        assert_eq!(due(SlaRule::CallbackAfterClosure), at(4, 8), "R-P15: 3 days");
        assert_eq!(due(SlaRule::NewCustomerContact), at(4, 8), "R-C4: 3 days");
        assert_eq!(policy.time_zone, chrono_tz::Asia::Shanghai, "R-T1");
        assert_eq!(policy.vip_coverage_target_percent, 100, "R-C5: VIP 100 %");
        assert_eq!(policy.committee_quorum, 3, "R-P5: a committee meeting of at least three");
        assert_eq!(policy.check(), Ok(()));
    }

    #[test]
    fn targets_read_as_written_and_refuse_nonsense() {
        for (text, target) in [
            ("12 hours", Target::new(12, Unit::Hours)),
            ("1 day", Target::new(1, Unit::Days)),
            ("4 business hours", Target::new(4, Unit::BusinessHours)),
            ("2 business days", Target::new(2, Unit::BusinessDays)),
        ] {
            assert_eq!(Target::try_from(text.to_owned()), Ok(target));
        }
        for bad in ["", "12", "0 hours", "-1 hours", "12 weeks", "10001 days", "4 businesshours"] {
            assert!(Target::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_earliest_applicable_override_wins_r_t3() {
        let mut policy = Policy::default();
        policy.tier.insert(
            Tier::Vip,
            Overrides { first_response: Some(Target::new(4, Unit::Hours)), ..Overrides::default() },
        );
        policy.severity.insert(
            Severity::Major,
            Overrides { first_response: Some(Target::new(2, Unit::Hours)), ..Overrides::default() },
        );
        let due = |severity, tier| {
            policy.due(SlaRule::FirstResponse, at(1, 8), Some(severity), Some(tier))
        };
        assert_eq!(due(Severity::Normal, Tier::Regular), at(1, 20));
        assert_eq!(due(Severity::Normal, Tier::Vip), at(1, 12));
        assert_eq!(due(Severity::Major, Tier::Vip), at(1, 10));
        assert_eq!(
            policy.due(SlaRule::Resolution, at(1, 8), Some(Severity::Major), Some(Tier::Vip)),
            at(31, 8)
        );
    }

    #[test]
    fn an_item_is_at_risk_once_its_share_has_elapsed_r_t5() {
        let policy = Policy::default();
        assert_eq!(policy.at_risk_from(at(1, 8), at(1, 18)), at(1, 16), "80 % of 10 hours");
        assert_eq!(at_risk_from(at(1, 8), at(1, 18), 50), at(1, 13));
        assert_eq!(at_risk_from(at(1, 8), at(1, 8), 80), at(1, 8));
        let never = DateTime::<Utc>::MAX_UTC;
        assert!(at_risk_from(at(1, 8), never, 99) < never, "a far deadline is far at risk too");
    }

    #[test]
    fn business_targets_are_at_risk_in_working_time_r_t5() {
        let mut policy = Policy { time_zone: chrono_tz::UTC, ..Policy::default() };
        policy.targets.first_response = Target::new(4, Unit::BusinessHours);
        // Friday 6 March 17:00 UTC: 1 h on Friday, 3 h on Monday from 09:00.
        let friday = Utc.with_ymd_and_hms(2026, 3, 6, 17, 0, 0).unwrap();
        let deadline = policy.deadline(SlaRule::FirstResponse, friday, None, None);
        assert_eq!(deadline.due, at(9, 12));
        // 80 % of 4 working hours is 3 h 12 min: Monday 11:12, not Sunday night.
        assert_eq!(deadline.at_risk, at(9, 11) + TimeDelta::minutes(12));
        policy.targets.first_response = Target::new(2, Unit::BusinessDays);
        let deadline = policy.deadline(SlaRule::FirstResponse, friday, None, None);
        assert_eq!(deadline.due, at(10, 18), "the close of Tuesday");
        // 1 h on Friday + 16 h on Monday and Tuesday = 17 h; 80 % = 13 h 36 min:
        // 1 h Friday, 8 h Monday, 3 h Tuesday morning, then 1 h 36 min from 13:00.
        assert_eq!(deadline.at_risk, at(10, 14) + TimeDelta::minutes(36));
    }

    #[test]
    fn the_hash_changes_with_any_rule() {
        let base = Policy::default();
        let faster = Policy {
            targets: Targets { first_response: Target::new(8, Unit::Hours), ..Targets::default() },
            ..Policy::default()
        };
        assert_eq!(base.hash(), Policy::default().hash());
        assert_ne!(base.hash(), faster.hash());
        assert_ne!(base.hash(), Policy::version_zero().hash());
    }

    #[test]
    fn callback_cadence_by_grade_r_c5() {
        let policy = Policy::default();
        let five = Some(StarLevel::new(5).unwrap());
        let four = Some(StarLevel::new(4).unwrap());
        assert_eq!(policy.callback_interval(Tier::Key, None), Some(TimeDelta::days(7)));
        assert_eq!(policy.callback_interval(Tier::Regular, five), Some(TimeDelta::days(30)));
        assert_eq!(policy.callback_interval(Tier::Key, five), Some(TimeDelta::days(7)));
        assert_eq!(policy.callback_interval(Tier::Regular, four), None);
        assert_eq!(
            policy.next_routine_callback_due(Tier::Key, None, at(1, 0), Some(at(5, 0))),
            Some(at(12, 0))
        );
        let custom = Policy { key_customer_callback_days: 14, ..Policy::default() };
        assert_eq!(custom.callback_interval(Tier::Key, None), Some(TimeDelta::days(14)));
    }
}
