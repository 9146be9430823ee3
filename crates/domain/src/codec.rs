//! Events as stored: stable type names, versioned JSON payloads, and upcasting of old versions.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A stored event that cannot be turned back into a domain event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{event_type} schema version {found} is newer than this build knows ({known})")]
    FutureVersion { event_type: String, found: u32, known: u32 },
    #[error("{event_type} v{schema_version} payload does not decode: {reason}")]
    Malformed { event_type: String, schema_version: u32, reason: String },
}

/// An aggregate's event enum as it crosses the storage boundary.
///
/// Type names are literals that never change once shipped; a payload change bumps the
/// type's schema version and adds a step to [`DomainEvent::upcast`], so every event ever
/// stored still loads.
pub trait DomainEvent: Sized + Serialize + DeserializeOwned {
    /// Every event type name of this enum.
    const TYPES: &'static [&'static str];

    fn event_type(&self) -> &'static str;

    /// The current schema version of `event_type` (what this build writes).
    fn current_version(event_type: &str) -> Option<u32>;

    /// Rewrites a payload stored at `from_version` of `event_type` one version up.
    fn upcast(event_type: &str, from_version: u32, payload: Value) -> Result<Value, String>;

    fn schema_version(&self) -> u32 {
        Self::current_version(self.event_type()).unwrap_or(1)
    }

    /// The JSON payload stored for this event (its fields, without the type tag).
    fn to_payload(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut tagged)) => tagged.remove("data").unwrap_or(Value::Null),
            // Adjacently tagged enums of structs always serialize to an object.
            _ => Value::Null,
        }
    }

    /// Decodes a stored event, upcasting old schema versions first. A current-version
    /// payload is read in place: no copy, no intermediate tagged value.
    fn from_stored(
        event_type: &str,
        schema_version: u32,
        payload: &Value,
    ) -> Result<Self, DecodeError> {
        let known = Self::current_version(event_type)
            .ok_or_else(|| DecodeError::UnknownType(event_type.to_owned()))?;
        if schema_version > known {
            return Err(DecodeError::FutureVersion {
                event_type: event_type.to_owned(),
                found: schema_version,
                known,
            });
        }
        let malformed = |reason: String| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            schema_version,
            reason,
        };
        let decoded = if schema_version == known {
            Self::from_payload(event_type, payload)
        } else {
            let mut upcast = payload.clone();
            for version in schema_version..known {
                upcast = Self::upcast(event_type, version, upcast).map_err(malformed)?;
            }
            Self::from_payload(event_type, &upcast)
        };
        decoded.map_err(|error| malformed(error.to_string()))
    }

    /// Deserializes a current-version payload of the variant named `event_type`.
    fn from_payload(event_type: &str, payload: &Value) -> Result<Self, serde_json::Error> {
        Self::deserialize_variant(event_type, payload)
    }

    /// Decodes a current-version payload from any deserializer (the fields of its stored
    /// text, say), with no JSON tree in between; `None` for an older schema version or
    /// an unknown type, which take [`DomainEvent::from_stored`] (upcasters rewrite trees).
    fn from_current<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        schema_version: u32,
        payload: D,
    ) -> Option<Result<Self, D::Error>> {
        let current = Self::current_version(event_type)? == schema_version;
        current.then(|| Self::deserialize_variant(event_type, payload))
    }

    /// The variant named `event_type`, deserialized from `payload`.
    fn deserialize_variant<'de, D: serde::Deserializer<'de>>(
        event_type: &str,
        payload: D,
    ) -> Result<Self, D::Error>;
}

/// For event enums whose types never changed shape.
pub(crate) fn no_upcasters(event_type: &str, from_version: u32, _: Value) -> Result<Value, String> {
    Err(format!("no upcaster from {event_type} v{from_version}"))
}

/// Declares an aggregate's event enum: one variant per event struct of the same name,
/// with its current schema version, and the function that upcasts old payloads.
macro_rules! event_enum {
    ($(#[$meta:meta])* $name:ident, upcast = $upcast:path, { $($variant:ident = $version:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum $name {
            $($variant($variant)),+
        }

        impl $crate::codec::DomainEvent for $name {
            const TYPES: &'static [&'static str] = &[$(stringify!($variant)),+];

            fn event_type(&self) -> &'static str {
                match self {
                    $($name::$variant(_) => stringify!($variant)),+
                }
            }

            fn current_version(event_type: &str) -> Option<u32> {
                match event_type {
                    $(stringify!($variant) => Some($version),)+
                    _ => None,
                }
            }

            fn upcast(
                event_type: &str,
                from_version: u32,
                payload: serde_json::Value,
            ) -> Result<serde_json::Value, String> {
                $upcast(event_type, from_version, payload)
            }

            fn deserialize_variant<'de, D: serde::Deserializer<'de>>(
                event_type: &str,
                payload: D,
            ) -> Result<Self, D::Error> {
                use serde::Deserialize as _;
                match event_type {
                    $(stringify!($variant) => $variant::deserialize(payload).map($name::$variant),)+
                    other => Err(serde::de::Error::unknown_variant(other, Self::TYPES)),
                }
            }
        }

        $(
            impl From<$variant> for $name {
                fn from(event: $variant) -> Self {
                    $name::$variant(event)
                }
            }
        )+
    };
}
pub(crate) use event_enum;
