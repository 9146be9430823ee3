//! Proto ⇄ domain: every request field checked in one place, every violation reported
//! with its field name, nothing half-converted.

use chrono::{DateTime, Utc};
use kefu_domain::*;
use prost_types::Timestamp;

use crate::error::ApiError;
use crate::pb;

/// Collects field violations while a request is converted.
#[derive(Debug, Default)]
pub struct Fields {
    violations: Vec<(String, String)>,
}

impl Fields {
    pub fn new() -> Self {
        Fields::default()
    }

    pub fn violation(&mut self, field: &str, reason: impl Into<String>) {
        self.violations.push((field.to_owned(), reason.into()));
    }

    fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.violation(field, strip_field(&error.to_string()));
                None
            }
        }
    }

    /// Required free text.
    pub fn text(&mut self, field: &str, value: &str) -> Option<Text> {
        if value.trim().is_empty() {
            self.violation(field, "is required");
            return None;
        }
        self.check(field, Text::new("text", value))
    }

    /// A code from the taxonomy (R-P3: category, cause).
    pub fn code(
        &mut self,
        field: &str,
        value: &str,
        parse: fn(&str) -> Result<Text, ValueError>,
    ) -> Option<Text> {
        if value.trim().is_empty() {
            self.violation(field, "is required");
            return None;
        }
        self.check(field, parse(value))
    }

    /// Optional free text: empty means absent.
    pub fn opt_text(&mut self, field: &str, value: &str) -> Option<Option<Text>> {
        if value.trim().is_empty() {
            return Some(None);
        }
        self.check(field, Text::new("text", value)).map(Some)
    }

    pub fn staff(&mut self, field: &str, value: &str) -> Option<StaffId> {
        if value.trim().is_empty() {
            self.violation(field, "is required");
            return None;
        }
        self.check(field, StaffId::new(value))
    }

    pub fn opt_staff(&mut self, field: &str, value: &str) -> Option<Option<StaffId>> {
        if value.trim().is_empty() {
            return Some(None);
        }
        self.check(field, StaffId::new(value)).map(Some)
    }

    pub fn customer_id(&mut self, field: &str, value: &str) -> Option<CustomerId> {
        if value.trim().is_empty() {
            self.violation(field, "is required");
            return None;
        }
        self.check(field, value.trim().parse::<CustomerId>())
    }

    pub fn opt_customer_id(&mut self, field: &str, value: &str) -> Option<Option<CustomerId>> {
        if value.trim().is_empty() {
            return Some(None);
        }
        self.check(field, value.trim().parse::<CustomerId>()).map(Some)
    }

    pub fn complaint_id(&mut self, field: &str, value: &str) -> Option<ComplaintId> {
        if value.trim().is_empty() {
            self.violation(field, "is required");
            return None;
        }
        self.check(field, value.trim().parse::<ComplaintId>())
    }

    pub fn service_request_id(&mut self, field: &str, value: &str) -> Option<ServiceRequestId> {
        if value.trim().is_empty() {
            self.violation(field, "is required");
            return None;
        }
        self.check(field, value.trim().parse::<ServiceRequestId>())
    }

    /// An optional 1–5 value: 0 means none.
    pub fn stars(&mut self, field: &str, value: u32) -> Option<Option<StarLevel>> {
        if value == 0 {
            return Some(None);
        }
        self.check(field, StarLevel::new(value)).map(Some)
    }

    pub fn score(&mut self, field: &str, value: u32) -> Option<Option<Score>> {
        if value == 0 {
            return Some(None);
        }
        self.check(field, Score::new(value)).map(Some)
    }

    /// A stated time, or `now` when unset, within the one time domain (R-T4,
    /// [`kefu_domain::time::given`]); `decide` checks it again with what it follows.
    pub fn time_or_now(
        &mut self,
        field: &'static str,
        value: Option<&Timestamp>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let Some(value) = value else { return Some(now) };
        let Some(at) = from_timestamp(value) else {
            self.violation(field, "is not a valid timestamp");
            return None;
        };
        match time::given(field, at, now) {
            Ok(at) => Some(at),
            Err(error) => {
                self.violation(field, strip_rule(&error.to_string(), field));
                None
            }
        }
    }

    /// A report's or a replay's instant, or `now` when unset, within the documented
    /// window ([`kefu_domain::time::as_of`]).
    pub fn as_of(
        &mut self,
        field: &'static str,
        value: Option<&Timestamp>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let Some(value) = value else { return Some(now) };
        let Some(at) = from_timestamp(value) else {
            self.violation(field, "is not a valid timestamp");
            return None;
        };
        match time::as_of(field, at, now) {
            Ok(at) => Some(at),
            Err(error) => {
                self.violation(field, strip_rule(&error.to_string(), field));
                None
            }
        }
    }

    /// A required enum: unset or unknown values are violations.
    pub fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.violation(field, "is required: set one of the enum's values");
        }
        value
    }

    /// Ok when nothing was violated.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.violations))
        }
    }
}

/// `ValueError` messages start with the value type's name; the field says it better.
fn strip_field(message: &str) -> String {
    message.split_once(": ").map_or(message, |(_, rest)| rest).to_owned()
}

/// A domain message that starts with the field's name, without it.
fn strip_rule(message: &str, field: &str) -> String {
    message.strip_prefix(field).map_or(message, str::trim_start).to_owned()
}

/// Unwraps values that `Fields::finish` has proven present.
pub fn present<T>(value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Internal("converted field missing after validation".into()))
}

pub fn from_timestamp(value: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(value.nanos).ok().filter(|nanos| *nanos < 1_000_000_000)?;
    DateTime::from_timestamp(value.seconds, nanos)
}

/// `at` as a protobuf `Timestamp`, within the range that type allows (years 1 to
/// 9999): a deadline that never comes (a calendar with too little working time for a
/// target) reads as the last instant of 9999, as the read models store it.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, protobuf's bounds.
    const FIRST: i64 = -62_135_596_800;
    const LAST: i64 = 253_402_300_799;
    let seconds = at.timestamp();
    if seconds > LAST {
        return Timestamp { seconds: LAST, nanos: 999_999_999 };
    }
    if seconds < FIRST {
        return Timestamp { seconds: FIRST, nanos: 0 };
    }
    Timestamp { seconds, nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0) }
}

pub fn opt_timestamp(at: Option<DateTime<Utc>>) -> Option<Timestamp> {
    at.map(timestamp)
}

/// Maps a proto enum's raw value to a domain value; `None` for unset or unknown.
macro_rules! enum_map {
    ($name:ident, $proto:ty, $domain:ty, { $($p:ident => $d:ident),+ $(,)? }) => {
        pub fn $name(value: i32) -> Option<$domain> {
            match <$proto>::try_from(value).ok()? {
                $(<$proto>::$p => Some(<$domain>::$d),)+
                _ => None,
            }
        }
    };
}

/// The reverse of [`enum_map`], for answers.
macro_rules! enum_back {
    ($name:ident, $domain:ty, $proto:ty, { $($d:ident => $p:ident),+ $(,)? }) => {
        pub fn $name(value: $domain) -> i32 {
            match value {
                $(<$domain>::$d => <$proto>::$p as i32,)+
            }
        }
    };
}

enum_map!(tier, pb::Tier, Tier, { Vip => Vip, Key => Key, Regular => Regular });
enum_back!(tier_out, Tier, pb::Tier, { Vip => Vip, Key => Key, Regular => Regular });
enum_map!(customer_kind, pb::CustomerKind, CustomerKind, { Individual => Individual, Organisation => Organisation });
enum_back!(customer_kind_out, CustomerKind, pb::CustomerKind, { Individual => Individual, Organisation => Organisation });
enum_map!(confidentiality, pb::Confidentiality, Confidentiality, {
    Public => Public, Internal => Internal, Confidential => Confidential, Secret => Secret,
});
enum_back!(confidentiality_out, Confidentiality, pb::Confidentiality, {
    Public => Public, Internal => Internal, Confidential => Confidential, Secret => Secret,
});
enum_map!(intake_channel, pb::IntakeChannel, IntakeChannel, {
    Phone => Phone, Visit => Visit, Letter => Letter, Email => Email, OnlineForm => OnlineForm,
    AuthorityReferral => AuthorityReferral,
});
enum_back!(intake_channel_out, IntakeChannel, pb::IntakeChannel, {
    Phone => Phone, Visit => Visit, Letter => Letter, Email => Email, OnlineForm => OnlineForm,
    AuthorityReferral => AuthorityReferral,
});
enum_map!(severity, pb::Severity, Severity, { Normal => Normal, Major => Major });
enum_back!(severity_out, Severity, pb::Severity, { Normal => Normal, Major => Major });
enum_map!(contact_channel, pb::ContactChannel, ContactChannel, {
    Phone => Phone, Sms => Sms, Email => Email, Letter => Letter, Visit => Visit, OnlineForm => OnlineForm,
});
enum_map!(staff_role, pb::StaffRole, StaffRole, {
    Agent => Agent, Handler => Handler, Specialist => Specialist, Supervisor => Supervisor,
    Director => Director, Committee => Committee,
});
enum_back!(staff_role_out, StaffRole, pb::StaffRole, {
    Agent => Agent, Handler => Handler, Specialist => Specialist, Supervisor => Supervisor,
    Director => Director, Committee => Committee,
});
enum_map!(signer_capacity, pb::SignerCapacity, SignerCapacity, {
    Handler => Handler, Director => Director, Committee => Committee,
});
enum_back!(signer_capacity_out, SignerCapacity, pb::SignerCapacity, {
    Handler => Handler, Director => Director, Committee => Committee,
});
enum_map!(reply_kind, pb::ReplyKind, ReplyKind, { Acknowledgement => Acknowledgement, Final => Final });
enum_map!(callback_kind, pb::CallbackKind, CallbackKind, {
    PreSale => PreSale, AfterSale => AfterSale, Complaint => Complaint, Routine => Routine,
});
enum_map!(callback_channel, pb::CallbackChannel, CallbackChannel, { Phone => Phone, Sms => Sms, Email => Email, Visit => Visit });
enum_map!(callback_outcome, pb::CallbackOutcome, CallbackOutcome, {
    Satisfied => Satisfied, Neutral => Neutral, Dissatisfied => Dissatisfied,
});
enum_map!(callback_party, pb::CallbackParty, CallbackParty, { Complainant => Complainant, Respondent => Respondent });

/// A domain word (as stored in read models) back to its proto enum value.
pub fn word_to<T: std::str::FromStr>(word: &str, out: impl Fn(T) -> i32) -> i32 {
    word.parse::<T>().map_or(0, out)
}

/// Contacts of a new request, normalised (phones read in `region` without a country
/// code); an invalid phone or email is a violation of `contacts.phones` or `contacts.emails`.
pub fn contacts_in(
    fields: &mut Fields,
    contacts: Option<&pb::Contacts>,
    region: PhoneRegion,
) -> Option<Contacts> {
    let Some(contacts) = contacts else { return Some(Contacts::default()) };
    let address = (!contacts.address.trim().is_empty()).then(|| contacts.address.clone());
    let checked = Contacts::new(contacts.phones.clone(), contacts.emails.clone(), address, region);
    match checked {
        Ok(contacts) => Some(contacts),
        Err(error) => {
            let field = match error.field {
                "phone" => "contacts.phones",
                "email" => "contacts.emails",
                "address" => "contacts.address",
                _ => "contacts",
            };
            fields.violation(field, error.reason);
            None
        }
    }
}

pub fn contacts_out(contacts: &Contacts) -> pb::Contacts {
    pb::Contacts {
        phones: contacts.phones.clone(),
        emails: contacts.emails.clone(),
        address: contacts.address.clone().unwrap_or_default(),
    }
}

pub fn write_result(id: impl Into<String>, written: &crate::commands::Written) -> pb::WriteResult {
    pb::WriteResult { id: id.into(), version: written.version, position: written.position }
}

/// Most members a committee meeting may list.
const MAX_MEETING_MEMBERS: usize = 100;

/// R-P5: the meeting of a committee decision; `Some(None)` when none is given. Only a
/// committee decision records one; whether it must, and its quorum, `decide` checks.
pub fn committee_meeting(
    fields: &mut Fields,
    meeting: Option<&pb::CommitteeMeeting>,
    capacity: Option<SignerCapacity>,
) -> Option<Option<complaint::CommitteeMeeting>> {
    let Some(meeting) = meeting else { return Some(None) };
    if capacity.is_some_and(|capacity| capacity != SignerCapacity::Committee) {
        fields.violation("meeting", "only a committee decision records a meeting");
        return None;
    }
    let held_at = match meeting.held_at.as_ref().map(from_timestamp) {
        Some(Some(at)) => Some(at),
        Some(None) => {
            fields.violation("meeting.held_at", "is not a valid timestamp");
            None
        }
        None => {
            fields.violation("meeting.held_at", "is required");
            None
        }
    };
    if meeting.members_present.len() > MAX_MEETING_MEMBERS {
        fields.violation("meeting.members_present", "at most 100 members");
        return None;
    }
    let members: Option<Vec<StaffId>> = meeting
        .members_present
        .iter()
        .enumerate()
        .map(|(i, member)| fields.staff(&format!("meeting.members_present[{i}]"), member))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    Some(Some(complaint::CommitteeMeeting {
        held_at: held_at?,
        members_present: members?,
        reported_to_authority: meeting.reported_to_authority,
    }))
}

pub fn meeting_out(meeting: &complaint::CommitteeMeeting) -> pb::CommitteeMeeting {
    pb::CommitteeMeeting {
        held_at: Some(timestamp(meeting.held_at)),
        members_present: meeting.members_present.iter().map(ToString::to_string).collect(),
        reported_to_authority: meeting.reported_to_authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deadline that never comes (chrono's last instant, year 262142) was sent as a
    /// `Timestamp` no client can read; now as protobuf's last instant.
    #[test]
    fn timestamps_stay_within_protobufs_range() {
        let last = timestamp(DateTime::<Utc>::MAX_UTC);
        assert_eq!((last.seconds, last.nanos), (253_402_300_799, 999_999_999));
        assert_eq!(timestamp(DateTime::<Utc>::MIN_UTC).seconds, -62_135_596_800);
        let now = Utc::now();
        assert_eq!(timestamp(now).seconds, now.timestamp());
    }

    #[test]
    fn unknown_and_unset_enum_values_map_to_none() {
        assert_eq!(tier(pb::Tier::Key as i32), Some(Tier::Key));
        assert_eq!(tier(0), None);
        assert_eq!(tier(99), None);
        assert_eq!(tier_out(Tier::Vip), pb::Tier::Vip as i32);
    }

    #[test]
    fn timestamps_are_checked() {
        let now = Utc::now();
        let mut fields = Fields::new();
        assert!(fields
            .time_or_now("at", Some(&Timestamp { seconds: 0, nanos: -1 }), now)
            .is_none());
        assert!(fields
            .time_or_now("at", Some(&Timestamp { seconds: i64::MAX, nanos: 0 }), now)
            .is_none());
        assert!(fields
            .time_or_now("at", Some(&timestamp(now + chrono::TimeDelta::hours(1))), now)
            .is_none());
        assert!(fields
            .time_or_now(
                "at",
                Some(&Timestamp { seconds: -62_167_219_200 - 86_400, nanos: 0 }),
                now
            )
            .is_none());
        assert_eq!(fields.time_or_now("at", None, now), Some(now));
        assert!(fields.finish().is_err());
    }
}
