//! Service-level and callback-cadence policy (R-P7, R-P15, R-C4, R-C5), with pure deadline
//! math that saturates instead of overflowing (see [`crate::time`]): a stored instant
//! from an old log at chrono's edge yields "never due", not a panic.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::time::{days, hours, later};
use crate::values::{StarLevel, Tier};

/// The business's time rules. Defaults are DOMAIN.md's; every value is configurable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// R-P7: first response to a complaint after its receipt.
    pub first_response_hours: i64,
    /// R-P15: complaint callback after closure (and after-sale callback after service).
    pub callback_within_days: i64,
    /// R-C4: a new customer's first contact by their agent after registration.
    pub new_customer_contact_days: i64,
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
            first_response_hours: 12,
            callback_within_days: 3,
            new_customer_contact_days: 3,
            key_customer_callback_days: 7,
            five_star_callback_days: 30,
            vip_callback_days: 30,
            vip_coverage_target_percent: 100,
            committee_quorum: 3,
        }
    }
}

impl Policy {
    /// R-P7 as a duration.
    pub fn first_response_limit(&self) -> TimeDelta {
        hours(self.first_response_hours)
    }

    /// R-P15 as a duration.
    pub fn callback_window(&self) -> TimeDelta {
        days(self.callback_within_days)
    }

    /// R-C4 as a duration.
    pub fn first_contact_window(&self) -> TimeDelta {
        days(self.new_customer_contact_days)
    }

    /// R-P7: when the first response to a complaint received at `received_at` is due.
    pub fn first_response_due(&self, received_at: DateTime<Utc>) -> DateTime<Utc> {
        later(received_at, self.first_response_limit())
    }

    /// R-P15: when the callback on a complaint closed at `closed_at` is due.
    pub fn callback_due(&self, closed_at: DateTime<Utc>) -> DateTime<Utc> {
        later(closed_at, self.callback_window())
    }

    /// R-C4: when a customer registered at `registered_at` must have been contacted.
    pub fn first_contact_due(&self, registered_at: DateTime<Utc>) -> DateTime<Utc> {
        later(registered_at, self.first_contact_window())
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
        assert_eq!(policy.first_response_due(at(1, 8)), at(1, 20), "R-P7: 12 hours");
        assert_eq!(policy.callback_due(at(1, 8)), at(4, 8), "R-P15: 3 days");
        assert_eq!(policy.first_contact_due(at(1, 8)), at(4, 8), "R-C4: 3 days");
        assert_eq!(policy.vip_coverage_target_percent, 100, "R-C5: VIP 100 %");
        assert_eq!(policy.committee_quorum, 3, "R-P5: a committee meeting of at least three");
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
