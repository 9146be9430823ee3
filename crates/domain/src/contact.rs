//! Normalised contacts: phone numbers in E.164 (libphonenumber's rules, a configurable
//! default region for numbers written without a country code), emails with a lowercase
//! domain, and the keys a customer is found and de-duplicated by.

use std::fmt;
use std::str::FromStr;
use std::sync::Once;

use phonenumber::country;

use crate::error::ValueError;

/// The region a phone number written without its country code belongs to
/// (an ISO 3166 code known to libphonenumber: `CN`, `HK`, `SG`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhoneRegion(country::Id);

impl Default for PhoneRegion {
    /// Mainland China: kefu's customers are mostly there (DOMAIN.md).
    fn default() -> Self {
        PhoneRegion(country::Id::CN)
    }
}

impl fmt::Display for PhoneRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

impl FromStr for PhoneRegion {
    type Err = ValueError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let code = text.trim().to_ascii_uppercase();
        code.parse::<country::Id>().map(PhoneRegion).map_err(|_| {
            ValueError::new("phone_region", format!("{text:?} is not a region code such as CN"))
        })
    }
}

/// In configuration files a region is its code (`"CN"`), checked like the flag.
impl serde::Serialize for PhoneRegion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PhoneRegion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|error: ValueError| serde::de::Error::custom(error.reason))
    }
}

/// Longest phone text accepted, in bytes (a number and an extension fit easily).
const MAX_PHONE_LEN: usize = 40;

/// Regular expressions libphonenumber's metadata may keep compiled at once.
const PHONE_REGEX_CACHE: usize = 4_096;

/// libphonenumber's metadata compiles its regular expressions lazily into one shared
/// cache of 100; parsing one national mobile number of CN touches more than that, so
/// every parse recompiled some (about 1 ms a number instead of 20 µs). Made large once.
fn phone_library() {
    static SIZED: Once = Once::new();
    SIZED.call_once(|| {
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            cache.set_capacity(PHONE_REGEX_CACHE);
        }
    });
}

/// A phone number as a new request gives it, in any common writing (`+86 138-0013-8000`,
/// `13800138000`, `0086 138 0013 8000`, `(010) 5555 0101`), as E.164 (`+8613800138000`).
/// Refused unless libphonenumber knows it as a valid number of its region.
pub fn normalize_phone(raw: &str, region: PhoneRegion) -> Result<String, ValueError> {
    let refused = || ValueError::new("phone", "is not a valid phone number");
    phone_library();
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_PHONE_LEN {
        return Err(refused());
    }
    let number = phonenumber::parse(Some(region.0), raw).map_err(|_| refused())?;
    if !number.is_valid() {
        return Err(refused());
    }
    Ok(e164(&number))
}

/// The index key of a phone number as stored (perhaps long ago, as typed) or as a search
/// gives it: its E.164 form when it parses at all, valid or not, so an old odd number is
/// still found when it is searched as it was typed; `None` when nothing number-like is there.
pub fn phone_key(raw: &str, region: PhoneRegion) -> Option<String> {
    phone_library();
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_PHONE_LEN {
        return None;
    }
    phonenumber::parse(Some(region.0), raw).ok().map(|number| e164(&number))
}

fn e164(number: &phonenumber::PhoneNumber) -> String {
    number.format().mode(phonenumber::Mode::E164).to_string()
}

/// Longest email accepted (RFC 5321's path limit).
const MAX_EMAIL_LEN: usize = 254;

/// An email as a new request gives it: trimmed, one `@`, a dotted domain, the domain in
/// lowercase (domains are case-insensitive; the local part is kept as written).
pub fn normalize_email(raw: &str) -> Result<String, ValueError> {
    let email = raw.trim();
    let refused = || ValueError::new("email", "is not an email address");
    let Some((local, domain)) = email.split_once('@') else { return Err(refused()) };
    let valid = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid || email.len() > MAX_EMAIL_LEN {
        return Err(refused());
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

/// The index key of an email: trimmed and all lowercase. Mail systems treat local parts
/// case-insensitively in practice, so `Zhou@Example.cn` and `zhou@example.cn` are one person.
pub fn email_key(raw: &str) -> Option<String> {
    let email = raw.trim();
    (email.contains('@') && email.len() <= MAX_EMAIL_LEN).then(|| email.to_lowercase())
}

/// The index key of a postal address, for duplicate detection only: lowercase, every run of
/// whitespace and punctuation one space, so `88 Huaihai Rd.` and `88  huaihai rd` agree.
pub fn address_key(raw: &str) -> Option<String> {
    let mut key = String::with_capacity(raw.len());
    for word in raw.split(|c: char| c.is_whitespace() || c.is_ascii_punctuation()) {
        if word.is_empty() {
            continue;
        }
        if !key.is_empty() {
            key.push(' ');
        }
        key.extend(word.chars().flat_map(char::to_lowercase));
    }
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CN: PhoneRegion = PhoneRegion(country::Id::CN);

    #[test]
    fn common_writings_of_one_mobile_number_are_one_e164_number() {
        for written in [
            "+86 138-0013-8000",
            "13800138000",
            "138 0013 8000",
            "0086 138 0013 8000",
            "+86 (138) 0013 8000",
            "+8613800138000",
            " 138-0013-8000 ",
        ] {
            assert_eq!(normalize_phone(written, CN).as_deref(), Ok("+8613800138000"), "{written}");
        }
    }

    #[test]
    fn landlines_and_other_regions_keep_their_area_and_country() {
        assert_eq!(normalize_phone("(010) 5555 0101", CN).unwrap(), "+861055550101");
        assert_eq!(normalize_phone("+852 2123 4567", CN).unwrap(), "+85221234567");
        let hk: PhoneRegion = "hk".parse().unwrap();
        assert_eq!(normalize_phone("2123 4567", hk).unwrap(), "+85221234567");
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for bad in ["", "call me", "12345", "138001380001234567890", "+86 1", "1380013800"] {
            let error = normalize_phone(bad, CN).expect_err(bad);
            assert_eq!(error.field, "phone");
        }
        assert!(normalize_phone(&"1".repeat(100), CN).is_err());
    }

    #[test]
    fn keys_of_old_numbers_parse_leniently() {
        assert_eq!(phone_key("138-0013-8000", CN).as_deref(), Some("+8613800138000"));
        assert_eq!(phone_key("no number", CN), None);
    }

    #[test]
    fn regions_parse_case_insensitively_and_unknown_ones_are_refused() {
        assert_eq!("cn".parse::<PhoneRegion>().unwrap(), PhoneRegion::default());
        assert_eq!(PhoneRegion::default().to_string(), "CN");
        assert!("XX".parse::<PhoneRegion>().is_err());
    }

    #[test]
    fn emails_lowercase_their_domain_and_keys_lowercase_everything() {
        assert_eq!(normalize_email(" Zhou.QX7@Example.CN ").unwrap(), "Zhou.QX7@example.cn");
        assert_eq!(email_key("Zhou.QX7@Example.CN").as_deref(), Some("zhou.qx7@example.cn"));
        for bad in ["no-at-sign", "a@b", "@b.cn", "a b@c.cn", "a@.cn", "a@b.cn."] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn address_keys_ignore_case_spacing_and_punctuation() {
        assert_eq!(address_key("88 Huaihai Rd."), address_key(" 88  huaihai rd "));
        assert_eq!(address_key("上海市 淮海路88号").as_deref(), Some("上海市 淮海路88号"));
        assert_eq!(address_key(" ,. "), None);
    }
}
