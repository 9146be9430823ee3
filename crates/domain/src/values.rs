//! Value objects: grades, channels, outcomes and checked text, each refusing invalid input.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::contact::{normalize_email, normalize_phone, PhoneRegion};
use crate::error::ValueError;

/// A closed set of lowercase words, with `FromStr` that names the allowed ones.
macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|value| value.as_str() == text).ok_or_else(|| {
                    let allowed: Vec<&str> = $name::ALL.iter().map($name::as_str).collect();
                    ValueError::new(
                        stringify!($name),
                        format!("is not one of {}", allowed.join(", ")),
                    )
                })
            }
        }
    };
}

word_enum!(
    /// Customer tier (R-C2): `vip`, `key` (重点客户) or `regular`.
    Tier { Vip = "vip", Key = "key", Regular = "regular" }
);

word_enum!(
    /// A person or an organisation (R-C1).
    CustomerKind { Individual = "individual", Organisation = "organisation" }
);

word_enum!(
    /// Confidentiality of customer data (R-C6), ordered `public < internal < confidential < secret`.
    Confidentiality {
        Public = "public",
        Internal = "internal",
        Confidential = "confidential",
        Secret = "secret",
    }
);

word_enum!(
    /// How a complaint reached us (R-P1).
    IntakeChannel {
        Phone = "phone",
        Visit = "visit",
        Letter = "letter",
        Email = "email",
        OnlineForm = "online_form",
        /// Referred by a judicial authority or an association.
        AuthorityReferral = "authority_referral",
    }
);

word_enum!(
    /// What a service request asks for: a question (咨询) or after-sales service (售后申请).
    RequestKind { Inquiry = "inquiry", AfterSale = "after_sale" }
);

word_enum!(
    /// Severity of a complaint (R-P3); `major` cases go to the director or committee (R-P5).
    Severity { Normal = "normal", Major = "major" }
);

word_enum!(
    /// Kinds of callback (回访).
    CallbackKind {
        PreSale = "pre_sale",
        AfterSale = "after_sale",
        Complaint = "complaint",
        /// Periodic callbacks, holiday and birthday greetings included.
        Routine = "routine",
    }
);

word_enum!(
    /// How a callback was made.
    CallbackChannel { Phone = "phone", Sms = "sms", Email = "email", Visit = "visit" }
);

word_enum!(
    /// What the customer said about the handling (R-P13).
    CallbackOutcome { Satisfied = "satisfied", Neutral = "neutral", Dissatisfied = "dissatisfied" }
);

word_enum!(
    /// Whom a complaint callback surveyed (R-P14: complainant or respondent).
    CallbackParty { Complainant = "complainant", Respondent = "respondent" }
);

word_enum!(
    /// A message to the complainant: an acknowledgement, or the final answer (R-P8).
    ReplyKind { Acknowledgement = "acknowledgement", Final = "final" }
);

word_enum!(
    /// How we contacted or replied to someone.
    ContactChannel {
        Phone = "phone",
        Sms = "sms",
        Email = "email",
        Letter = "letter",
        Visit = "visit",
        OnlineForm = "online_form",
    }
);

impl ContactChannel {
    /// Written channels satisfy R-P10 (replies in writing): letter or email.
    pub fn is_written(self) -> bool {
        matches!(self, ContactChannel::Letter | ContactChannel::Email)
    }
}

word_enum!(
    /// The capacity in which an opinion is signed (R-P5, R-P9).
    SignerCapacity { Handler = "handler", Director = "director", Committee = "committee" }
);

word_enum!(
    /// What a staff member does in the service department.
    StaffRole {
        Agent = "agent",
        Handler = "handler",
        Specialist = "specialist",
        Supervisor = "supervisor",
        Director = "director",
        /// Sits on the committee meeting that decides escalated cases (R-P5).
        Committee = "committee",
    }
);

/// A number from 1 to 5: star level (五星级) or satisfaction score.
macro_rules! one_to_five {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "u8", into = "u8")]
        pub struct $name(u8);

        impl $name {
            pub fn new(value: u32) -> Result<Self, ValueError> {
                u8::try_from(value)
                    .ok()
                    .filter(|value| (1..=5).contains(value))
                    .map($name)
                    .ok_or_else(|| ValueError::new(stringify!($name), format!("{value} is not from 1 to 5")))
            }

            pub fn get(self) -> u8 {
                self.0
            }
        }

        impl TryFrom<u8> for $name {
            type Error = ValueError;
            fn try_from(value: u8) -> Result<Self, Self::Error> {
                $name::new(u32::from(value))
            }
        }

        impl From<$name> for u8 {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

one_to_five!(
    /// Star level of a customer, 1–5 (R-C2); five stars get monthly callbacks (R-C5).
    StarLevel
);
one_to_five!(
    /// Satisfaction score of a callback, 1–5 (R-P13).
    Score
);

/// Free text that must say something: trimmed, non-empty, at most [`Text::MAX_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    pub const MAX_CHARS: usize = 8_000;

    /// Checks `value` for the named field.
    pub fn new(field: &'static str, value: &str) -> Result<Self, ValueError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ValueError::new(field, "must not be empty"));
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(ValueError::new(
                field,
                format!("is longer than {} characters", Self::MAX_CHARS),
            ));
        }
        if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
            return Err(ValueError::new(field, "contains control characters"));
        }
        Ok(Text(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Text {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Text::new("text", &value)
    }
}

impl From<Text> for String {
    fn from(value: Text) -> Self {
        value.0
    }
}

/// How to reach a customer (R-C1). Personal data: encrypted at rest, erasable (R-C8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contacts {
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Contacts {
    pub const MAX_ENTRIES: usize = 10;

    /// Checks and normalises every entry of a new request: phones to E.164 (read in
    /// `region` when written without a country code), emails with a lowercase domain;
    /// repeats after normalisation are dropped. Stored contacts of old events are not
    /// re-checked: they decode as they were written.
    pub fn new(
        phones: Vec<String>,
        emails: Vec<String>,
        address: Option<String>,
        region: PhoneRegion,
    ) -> Result<Self, ValueError> {
        if phones.len() > Self::MAX_ENTRIES || emails.len() > Self::MAX_ENTRIES {
            return Err(ValueError::new("contacts", "at most 10 phones and 10 emails"));
        }
        // Refusals name the entry, never repeat it: what a caller sends is personal.
        let mut normalised = Contacts::default();
        for (i, phone) in phones.iter().enumerate() {
            let phone = normalize_phone(phone, region).map_err(|why| entry("phones", i, why))?;
            if !normalised.phones.contains(&phone) {
                normalised.phones.push(phone);
            }
        }
        for (i, email) in emails.iter().enumerate() {
            let email = normalize_email(email).map_err(|why| entry("emails", i, why))?;
            if !normalised.emails.contains(&email) {
                normalised.emails.push(email);
            }
        }
        normalised.address = match address.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(address) => Some(Text::new("address", address)?.0),
        };
        Ok(normalised)
    }
}

/// A refusal of the `i`th entry of a contacts list, naming it by position (the field
/// stays the entry's kind, `phone` or `email`, for the caller's field violation).
fn entry(list: &str, i: usize, why: ValueError) -> ValueError {
    ValueError::new(why.field, format!("{list}[{i}] {}", why.reason))
}

/// A reference to an original document kept for a complaint (R-P2): never altered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Where the document is kept (a document-store key or URI).
    pub reference: String,
    /// SHA-256 of the document's bytes, lowercase hex, when known: proves it unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Attachment {
    pub fn new(reference: &str, sha256: Option<&str>) -> Result<Self, ValueError> {
        let reference = reference.trim();
        if reference.is_empty() || reference.len() > 1_000 {
            return Err(ValueError::new("attachment", "reference must be 1 to 1000 bytes"));
        }
        let sha256 = match sha256.map(str::trim).filter(|hash| !hash.is_empty()) {
            None => None,
            Some(hash) if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(hash.to_ascii_lowercase())
            }
            Some(_) => return Err(ValueError::new("attachment", "sha256 must be 64 hex digits")),
        };
        Ok(Attachment { reference: reference.to_owned(), sha256 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_parse_and_name_the_allowed_values() {
        assert_eq!("key".parse::<Tier>().unwrap(), Tier::Key);
        let error = "gold".parse::<Tier>().unwrap_err();
        // A refusal names the allowed values, never repeating the input (it may be personal).
        assert_eq!(error.to_string(), "Tier: is not one of vip, key, regular");
        assert_eq!("online_form".parse::<IntakeChannel>().unwrap(), IntakeChannel::OnlineForm);
        assert_eq!(serde_json::to_string(&CallbackKind::PreSale).unwrap(), "\"pre_sale\"");
    }

    #[test]
    fn confidentiality_is_ordered() {
        use Confidentiality::*;
        assert!(Public < Internal && Internal < Confidential && Confidential < Secret);
    }

    #[test]
    fn one_to_five_bounds() {
        assert!(StarLevel::new(0).is_err() && StarLevel::new(6).is_err());
        assert_eq!(Score::new(5).unwrap().get(), 5);
        assert!(serde_json::from_str::<Score>("9").is_err());
    }

    #[test]
    fn text_and_contacts_are_checked() {
        assert!(Text::new("reason", "   ").is_err());
        assert_eq!(Text::new("reason", " late ").unwrap().as_str(), "late");
        assert!(Text::new("reason", "a\u{0}b").is_err());
        let cn = PhoneRegion::default();
        let contacts = Contacts::new(
            vec!["+86 138-0013-8000".into(), "13800138000".into()],
            vec!["a@B.cn".into()],
            None,
            cn,
        )
        .unwrap();
        assert_eq!(contacts.phones, ["+8613800138000"], "normalised, the repeat dropped");
        assert_eq!(contacts.emails, ["a@b.cn"]);
        let refused = Contacts::new(vec!["call me".into()], vec![], None, cn).unwrap_err();
        assert_eq!(
            (refused.field, refused.reason.as_str()),
            ("phone", "phones[0] is not a valid phone number")
        );
        assert!(Contacts::new(vec!["12345".into()], vec![], None, cn).is_err());
        assert!(Contacts::new(vec![], vec!["no-at-sign".into()], None, cn).is_err());
        assert!(Attachment::new("doc://1", Some("xyz")).is_err());
    }
}
