//! Sealed fields opened in a payload's stored text, with no JSON tree: for readers that
//! decode typed events straight from the text (the projections). Parsing each payload
//! into a `serde_json::Value`, walking it for envelopes and dropping it again was about
//! a quarter of a rebuild's CPU.
//!
//! Only what the tree path ([`crate::LiveKeys::open_payload`],
//! [`crate::show_erased_payload`]) does plainly is done here. Anything unusual (a
//! payload that is not an object, an escaped or repeated key, an envelope missing a
//! part, a field that does not open) gives `None`, and the caller takes the tree path,
//! which then does exactly what it always did, errors included.

use std::borrow::Cow;

use serde::de::value::MapDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::vault::LiveKeys;

/// A payload's top-level fields as JSON text, sealed ones still sealed.
#[derive(Debug)]
pub struct PayloadFields<'a> {
    fields: Vec<(&'a str, Field<'a>)>,
}

#[derive(Debug)]
enum Field<'a> {
    Plain(&'a RawValue),
    Sealed(Sealed<'a>),
}

/// `{"sealed": {...}}`: exactly that one key (as the tree path's `envelope` demands).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    sealed: Sealed<'a>,
}

/// An envelope's parts; all three must be there (else the tree path decides).
#[derive(Debug, Deserialize)]
struct Sealed<'a> {
    subject: &'a str,
    data: &'a str,
    #[serde(borrow)]
    erased: &'a RawValue,
}

/// A payload's fields as a reader sees them: every sealed one opened or erased.
#[derive(Debug)]
pub struct OpenedFields<'a> {
    fields: Vec<(&'a str, Cow<'a, RawValue>)>,
}

impl<'a> PayloadFields<'a> {
    /// The fields of `payload`, or `None` when it is anything but a plain object whose
    /// envelopes are whole (see the module's note).
    pub fn parse(payload: &'a str) -> Option<Self> {
        let mut deserializer = serde_json::Deserializer::from_str(payload);
        let fields = deserializer.deserialize_map(FieldsVisitor).ok()?;
        deserializer.end().ok()?;
        Some(fields)
    }

    /// The subjects whose keys the sealed fields need.
    pub fn subjects(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.fields.iter().filter_map(|(_, field)| match field {
            Field::Sealed(sealed) => Some(sealed.subject),
            Field::Plain(_) => None,
        })
    }

    /// Every sealed field as its erased placeholder (as [`crate::show_erased_payload`]).
    pub fn show_erased(self) -> OpenedFields<'a> {
        let fields = self
            .fields
            .into_iter()
            .map(|(name, field)| match field {
                Field::Plain(value) => (name, Cow::Borrowed(value)),
                Field::Sealed(sealed) => (name, Cow::Borrowed(sealed.erased)),
            })
            .collect();
        OpenedFields { fields }
    }

    /// Every sealed field opened with `keys`, or erased where its subject has no live
    /// key (as [`LiveKeys::open_payload`]); `None` when one does not open (the tree
    /// path says so as an error).
    pub fn open(self, keys: &LiveKeys) -> Option<OpenedFields<'a>> {
        let mut fields = Vec::with_capacity(self.fields.len());
        for (name, field) in self.fields {
            let value = match field {
                Field::Plain(value) => Cow::Borrowed(value),
                Field::Sealed(sealed) => match keys.get(sealed.subject) {
                    Some(key) => Cow::Owned(key.open_text(name, sealed.data)?),
                    None => Cow::Borrowed(sealed.erased),
                },
            };
            fields.push((name, value));
        }
        Some(OpenedFields { fields })
    }
}

impl OpenedFields<'_> {
    /// The fields as a map to deserialize a typed event from, each value parsed from
    /// its text only by the type that reads it.
    pub fn deserializer(
        &self,
    ) -> MapDeserializer<'_, impl Iterator<Item = (&str, &RawValue)>, serde_json::Error> {
        MapDeserializer::new(self.fields.iter().map(|(name, value)| (*name, &**value)))
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = PayloadFields<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: Vec<(&'de str, Field<'de>)> =
            Vec::with_capacity(map.size_hint().unwrap_or(8));
        // A borrowed `&str` fails on an escaped key: the tree path takes those.
        while let Some((name, value)) = map.next_entry::<&'de str, &'de RawValue>()? {
            if fields.iter().any(|(seen, _)| *seen == name) {
                // The tree keeps the last of repeated keys; leave that to it.
                return Err(serde::de::Error::custom("a repeated key"));
            }
            fields.push((name, field(value).map_err(serde::de::Error::custom)?));
        }
        Ok(PayloadFields { fields })
    }
}

/// A field's value: plain, or a whole envelope. An object that mentions `"sealed"` but
/// is not a whole envelope is refused (the tree path decides what it is).
fn field(value: &RawValue) -> Result<Field<'_>, &'static str> {
    let text = value.get();
    // serde_json writes keys unescaped, and PostgreSQL's jsonb prints them so too.
    if !text.starts_with('{') || !text.contains("\"sealed\"") {
        return Ok(Field::Plain(value));
    }
    serde_json::from_str::<Envelope<'_>>(text)
        .map(|envelope| Field::Sealed(envelope.sealed))
        .map_err(|_| "an object that is not a whole envelope")
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::vault::show_erased_payload;

    /// What the typed decoders see: the opened fields as a tree, for comparison.
    fn as_tree(fields: &OpenedFields<'_>) -> Value {
        Value::deserialize(fields.deserializer()).unwrap()
    }

    #[test]
    fn erased_fields_read_as_the_tree_path_shows_them() {
        let sealed = json!({"sealed": {"alg": "A256GCM", "subject": "c1", "data": "AAAA",
            "erased": "[erased]"}});
        let mut payload = json!({"name": sealed, "tier": "vip", "n": 1.5, "note": null,
            "contacts": {"phone": "123"}});
        let text = payload.to_string();
        let fields = PayloadFields::parse(&text).unwrap();
        assert_eq!(fields.subjects().collect::<Vec<_>>(), ["c1"]);
        let shown = fields.show_erased();
        show_erased_payload(&mut payload);
        assert_eq!(as_tree(&shown), payload);
        // With no live key, opening erases too.
        let opened = PayloadFields::parse(&text).unwrap().open(&LiveKeys::default()).unwrap();
        assert_eq!(as_tree(&opened), payload);
    }

    #[test]
    fn opened_fields_read_as_the_tree_path_opens_them() {
        let key = crate::vault::DataKey::from_bytes("c1", &[7; 32]).unwrap();
        let mut payload = json!({"name": "Li Lei", "contacts": {"phone": "1"}, "tier": "vip"});
        key.seal_fields(&mut payload, &["name", "contacts"], |_| json!("[erased]"));
        let text = payload.to_string();
        let keys = LiveKeys([("c1".to_owned(), key)].into_iter().collect());
        let opened = PayloadFields::parse(&text).unwrap().open(&keys).unwrap();
        keys.open_payload(1, &mut payload).unwrap();
        assert_eq!(as_tree(&opened), payload);
        assert_eq!(payload["name"], "Li Lei");
        // A field that does not open with its key is the tree path's error to report.
        let other = crate::vault::DataKey::from_bytes("c1", &[8; 32]).unwrap();
        let wrong = LiveKeys([("c1".to_owned(), other)].into_iter().collect());
        assert!(PayloadFields::parse(&text).unwrap().open(&wrong).is_none());
    }

    #[test]
    fn anything_unusual_is_left_to_the_tree_path() {
        for text in [
            "[1]",
            "null",
            r#"{"a": 1, "a": 2}"#,
            r#"{"a\u0062": 1}"#,
            r#"{"a": {"sealed": {"subject": "c1", "data": "x"}}}"#,
            r#"{"a": {"sealed": {"subject": "c1", "data": "x", "erased": 1}, "b": 2}}"#,
            r#"{"a": {"sealed": "x"}}"#,
            r#"{"contacts": {"phone": "sealed"}}"#,
            r#"{"a": 1} x"#,
        ] {
            assert!(PayloadFields::parse(text).is_none(), "{text}");
        }
    }
}
