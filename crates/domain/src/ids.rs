//! Identifiers: customers and complaints by UUID v7, staff by code, cases by yearly number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ValueError;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $category:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// The stream category of this aggregate.
            pub const CATEGORY: &'static str = $category;

            /// A new time-ordered (v7) id.
            pub fn generate() -> Self {
                $name(Uuid::now_v7())
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                $name(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// The name of this aggregate's stream: `<category>-<uuid>`.
            pub fn stream_name(&self) -> String {
                format!("{}-{}", Self::CATEGORY, self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let uuid = Uuid::parse_str(text).map_err(|_| ValueError::new(
                    stringify!($name),
                    "is not a UUID",
                ))?;
                if uuid.is_nil() {
                    return Err(ValueError::new(stringify!($name), "must not be the nil UUID"));
                }
                Ok($name(uuid))
            }
        }
    };
}

uuid_id!(
    /// A customer (客户); stream `customer-<uuid>`.
    CustomerId,
    "customer"
);
uuid_id!(
    /// A complaint case; stream `complaint-<uuid>`.
    ComplaintId,
    "complaint"
);
uuid_id!(
    /// A service request (咨询 or 售后申请); stream `request-<uuid>`. Named apart from
    /// the API's `request_id`, the idempotency key every mutating call carries.
    ServiceRequestId,
    "request"
);

/// A staff member's code (工号), e.g. `s-0042` or `li.wei`; stream `staff-<code>`.
///
/// 1–64 characters of ASCII letters, digits, `.`, `_` and `-`, stored lowercase so that
/// the same person is never two ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StaffId(String);

impl StaffId {
    pub const CATEGORY: &'static str = "staff";
    pub const MAX_LEN: usize = 64;

    pub fn new(code: &str) -> Result<Self, ValueError> {
        let code = code.trim();
        if code.is_empty() || code.len() > Self::MAX_LEN {
            return Err(ValueError::new("StaffId", "must be 1 to 64 characters"));
        }
        if !code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return Err(ValueError::new(
                "StaffId",
                "may only hold ASCII letters, digits, '.', '_' and '-'",
            ));
        }
        Ok(StaffId(code.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn stream_name(&self) -> String {
        format!("{}-{}", Self::CATEGORY, self.0)
    }
}

impl fmt::Display for StaffId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for StaffId {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        StaffId::new(text)
    }
}

impl TryFrom<String> for StaffId {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        StaffId::new(&value)
    }
}

impl From<StaffId> for String {
    fn from(value: StaffId) -> Self {
        value.0
    }
}

/// A case number unique per year (R-P1): `YYYY-NNNNNN`, e.g. `2026-000123`.
///
/// Sequence numbers start at 1 each year and are never reused; see
/// [`crate::case_register`] for how they are issued without duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CaseNumber {
    year: u16,
    sequence: u32,
}

impl CaseNumber {
    pub const MAX_SEQUENCE: u32 = 999_999;

    pub fn new(year: i32, sequence: u32) -> Result<Self, ValueError> {
        let year =
            u16::try_from(year).ok().filter(|year| (1000..=9999).contains(year)).ok_or_else(
                || ValueError::new("CaseNumber", format!("year {year} is not four digits")),
            )?;
        if sequence == 0 || sequence > Self::MAX_SEQUENCE {
            return Err(ValueError::new(
                "CaseNumber",
                format!("sequence {sequence} is outside 1..=999999"),
            ));
        }
        Ok(CaseNumber { year, sequence })
    }

    pub fn year(&self) -> i32 {
        i32::from(self.year)
    }

    pub fn sequence(&self) -> u32 {
        self.sequence
    }
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:06}", self.year, self.sequence)
    }
}

impl FromStr for CaseNumber {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || ValueError::new("CaseNumber", "is not of the form YYYY-NNNNNN");
        let (year, sequence) = text.split_once('-').ok_or_else(malformed)?;
        let all_digits =
            |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(year, 4) || !all_digits(sequence, 6) {
            return Err(malformed());
        }
        let year: i32 = year.parse().map_err(|_| malformed())?;
        let sequence: u32 = sequence.parse().map_err(|_| malformed())?;
        CaseNumber::new(year, sequence)
    }
}

impl TryFrom<String> for CaseNumber {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<CaseNumber> for String {
    fn from(value: CaseNumber) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_numbers_parse_and_print() {
        let number: CaseNumber = "2026-000123".parse().unwrap();
        assert_eq!((number.year(), number.sequence()), (2026, 123));
        assert_eq!(number.to_string(), "2026-000123");
        for bad in ["2026-0001", "26-000001", "2026-000000", "2026_000001", "2026-00001a", "", "-"]
        {
            assert!(bad.parse::<CaseNumber>().is_err(), "{bad} must be refused");
        }
        assert!(CaseNumber::new(2026, 1_000_000).is_err());
    }

    #[test]
    fn staff_ids_are_normalised_and_checked() {
        assert_eq!(StaffId::new(" Li.Wei ").unwrap().as_str(), "li.wei");
        assert_eq!(StaffId::new("s-0042").unwrap().stream_name(), "staff-s-0042");
        for bad in ["", "has space", "名字", &"x".repeat(65)] {
            assert!(StaffId::new(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn uuid_ids_refuse_garbage_and_nil() {
        assert!("not-a-uuid".parse::<CustomerId>().is_err());
        assert!(Uuid::nil().to_string().parse::<ComplaintId>().is_err());
        let id = ComplaintId::generate();
        assert_eq!(id.to_string().parse::<ComplaintId>().unwrap(), id);
        assert!(id.stream_name().starts_with("complaint-"));
    }
}
