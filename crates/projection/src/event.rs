//! Events as projections read them: a window of the log decoded once, for every
//! projection, straight from the stored payload text.
//!
//! A payload's fields are taken as JSON text (`kefu_event_store::PayloadFields`), sealed
//! ones opened or shown erased, and the typed domain event is deserialized from them with
//! no `serde_json::Value` in between. What that fast path does not take plainly (an old
//! schema version to upcast, an unusual payload, a field that does not open) goes the
//! tree path it always went, so errors and results stay what they were.

use std::collections::BTreeSet;

use kefu_domain::complaint::ComplaintEvent;
use kefu_domain::customer::CustomerEvent;
use kefu_domain::request::RequestEvent;
use kefu_domain::staff::StaffEvent;
use kefu_domain::{DecodeError, DomainEvent};
use kefu_event_store::{
    category_of, sealed_subjects, show_erased_payload, EventStore, LiveKeys, LoggedEvent,
    OpenedFields, PayloadFields, StoreError,
};
use serde_json::Value;

use crate::error::ProjectionError;

/// A stored event turned back into the domain's terms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decoded {
    Customer(CustomerEvent),
    Complaint(ComplaintEvent),
    Staff(StaffEvent),
    Request(RequestEvent),
    /// A category no read model here looks at.
    Other,
}

/// One event of the log as the projections apply it: its place and what it means.
#[derive(Debug, Clone)]
pub struct Event {
    /// Global position in the log.
    pub position: u64,
    pub stream_id: String,
    pub event_type: String,
    /// Decoded once for all projections; an event that does not decode stops only the
    /// projections that read it.
    decoded: Result<Decoded, DecodeError>,
}

impl Event {
    pub fn category(&self) -> &str {
        category_of(&self.stream_id)
    }

    /// The domain event, for a projection to consume.
    pub(crate) fn decoded(&self) -> Result<Decoded, ProjectionError> {
        self.decoded
            .clone()
            .map_err(|error| ProjectionError::Decode { position: self.position, error })
    }
}

/// A payload on its way: as fields of its text, or (when that path declines) as a tree.
enum Parsed<'a> {
    Fields(PayloadFields<'a>),
    Tree(Value),
}

/// Decodes a window of the log, sealed fields opened for the event types in `personal`
/// (those a personal-data projection reads) and shown erased for the rest.
pub(crate) async fn decode_window(
    store: &EventStore,
    logged: Vec<LoggedEvent>,
    personal: &[&str],
) -> Result<Vec<Event>, ProjectionError> {
    let opens = |event: &LoggedEvent| personal.contains(&event.event_type.as_str());
    let mut parsed = Vec::with_capacity(logged.len());
    for event in &logged {
        parsed.push(match PayloadFields::parse(&event.payload) {
            Some(fields) => Parsed::Fields(fields),
            None => Parsed::Tree(tree(event)?),
        });
    }
    // One query for the keys of every subject whose fields are opened.
    let mut subjects = BTreeSet::new();
    for (_, parsed) in logged.iter().zip(&parsed).filter(|(event, _)| opens(event)) {
        match parsed {
            Parsed::Fields(fields) => subjects.extend(fields.subjects()),
            Parsed::Tree(payload) => subjects.extend(sealed_subjects(payload)),
        }
    }
    let subjects: Vec<String> = subjects.into_iter().map(str::to_owned).collect();
    let keys = store.live_keys_of(&subjects).await?;
    let mut decoded = Vec::with_capacity(logged.len());
    for (event, parsed) in logged.iter().zip(parsed) {
        let fast = match parsed {
            Parsed::Fields(fields) if opens(event) => {
                fields.open(&keys).and_then(|f| fast(event, &f))
            }
            Parsed::Fields(fields) => fast(event, &fields.show_erased()),
            Parsed::Tree(payload) => {
                decoded.push(slow(event, payload, opens(event), &keys)?);
                continue;
            }
        };
        decoded.push(match fast {
            Some(ok) => Ok(ok),
            None => slow(event, tree(event)?, opens(event), &keys)?,
        });
    }
    Ok(logged
        .into_iter()
        .zip(decoded)
        .map(|(event, decoded)| Event {
            position: event.position,
            stream_id: event.stream_id,
            event_type: event.event_type,
            decoded,
        })
        .collect())
}

/// The payload as a tree; a payload that is not JSON is a corrupt log, as it always was.
fn tree(event: &LoggedEvent) -> Result<Value, StoreError> {
    serde_json::from_str(&event.payload).map_err(|error| StoreError::Corrupt {
        position: i64::try_from(event.position).unwrap_or(i64::MAX),
        reason: format!("payload: {error}"),
    })
}

/// The typed event from the opened fields, if it is of its type's current version and
/// decodes; `None` leaves it to [`slow`].
fn fast(event: &LoggedEvent, fields: &OpenedFields<'_>) -> Option<Decoded> {
    let (kind, version) = (event.event_type.as_str(), event.schema_version);
    let payload = fields.deserializer();
    Some(match event.category() {
        "customer" => Decoded::Customer(CustomerEvent::from_current(kind, version, payload)?.ok()?),
        "complaint" => {
            Decoded::Complaint(ComplaintEvent::from_current(kind, version, payload)?.ok()?)
        }
        "request" => Decoded::Request(RequestEvent::from_current(kind, version, payload)?.ok()?),
        "staff" => Decoded::Staff(StaffEvent::from_current(kind, version, payload)?.ok()?),
        _ => Decoded::Other,
    })
}

/// The tree path: opened (or erased) in the tree, then decoded with upcasting.
fn slow(
    event: &LoggedEvent,
    mut payload: Value,
    open: bool,
    keys: &LiveKeys,
) -> Result<Result<Decoded, DecodeError>, StoreError> {
    if open {
        keys.open_payload(event.position, &mut payload)?;
    } else {
        show_erased_payload(&mut payload);
    }
    let (kind, version) = (event.event_type.as_str(), event.schema_version);
    Ok(match event.category() {
        "customer" => CustomerEvent::from_stored(kind, version, &payload).map(Decoded::Customer),
        "complaint" => ComplaintEvent::from_stored(kind, version, &payload).map(Decoded::Complaint),
        "request" => RequestEvent::from_stored(kind, version, &payload).map(Decoded::Request),
        "staff" => StaffEvent::from_stored(kind, version, &payload).map(Decoded::Staff),
        _ => Ok(Decoded::Other),
    })
}

#[cfg(test)]
mod tests {
    use kefu_event_store::StoreOptions;
    use serde_json::json;

    use super::*;

    fn logged(position: u64, schema_version: u32, payload: &Value) -> LoggedEvent {
        LoggedEvent {
            position,
            stream_id: "customer-0193a0b0-0000-7000-8000-000000000001".into(),
            event_type: "CustomerContacted".into(),
            schema_version,
            payload: payload.to_string(),
        }
    }

    /// What the tree path alone gives (the runner before text decoding).
    async fn by_tree(store: &EventStore, event: &LoggedEvent, open: bool) -> Decoded {
        let mut payload: Value = serde_json::from_str(&event.payload).unwrap();
        let subjects: Vec<String> = sealed_subjects(&payload).map(str::to_owned).collect();
        let keys = store.live_keys_of(&subjects).await.unwrap();
        if open {
            keys.open_payload(event.position, &mut payload).unwrap();
        } else {
            show_erased_payload(&mut payload);
        }
        let kind = event.event_type.as_str();
        Decoded::Customer(CustomerEvent::from_stored(kind, event.schema_version, &payload).unwrap())
    }

    #[tokio::test]
    async fn text_decoding_gives_what_the_tree_gives_opened_erased_or_malformed() {
        let db = kefu_testkit::sqlite();
        let store = EventStore::open(db.url(), StoreOptions::default()).await.unwrap();
        let mut payload = json!({"by": "a1", "channel": "phone", "note": "rang twice",
            "contacted_at": "2026-11-22T15:04:05Z"});
        let key = store.data_key("c1").await.unwrap();
        key.seal_fields(&mut payload, &["note"], |_| json!("[erased]"));
        let events = [logged(1, 1, &payload), logged(2, 1, &json!({"by": "a1"}))];
        for open in [true, false] {
            let personal: &[&str] = if open { &["CustomerContacted"] } else { &[] };
            let decoded = decode_window(&store, events.to_vec(), personal).await.unwrap();
            assert_eq!(decoded[0].decoded().unwrap(), by_tree(&store, &events[0], open).await);
            let Decoded::Customer(CustomerEvent::CustomerContacted(contacted)) =
                decoded[0].decoded().unwrap()
            else {
                panic!("{decoded:?}")
            };
            let note = contacted.note.map(|note| note.as_str().to_owned());
            assert_eq!(note.as_deref(), Some(if open { "rang twice" } else { "[erased]" }));
            // A payload that does not decode is the tree path's error, for its position.
            let error = decoded[1].decoded().unwrap_err();
            assert!(matches!(error, ProjectionError::Decode { position: 2, .. }), "{error}");
        }
        // Once the key is destroyed, opening shows the placeholder, as the tree does.
        store.destroy_data_key("c1").await.unwrap();
        let decoded = decode_window(&store, events[..1].to_vec(), &["CustomerContacted"]).await;
        assert_eq!(decoded.unwrap()[0].decoded().unwrap(), by_tree(&store, &events[0], true).await);
        // A newer schema version than this build knows is refused as before.
        let future = decode_window(&store, vec![logged(3, 99, &payload)], &[]).await.unwrap();
        assert!(future[0].decoded().is_err());
        // A payload that is not JSON is a corrupt log, failing the whole window.
        let mut broken = logged(4, 1, &payload);
        broken.payload.push('}');
        assert!(decode_window(&store, vec![broken], &[]).await.is_err());
    }
}
