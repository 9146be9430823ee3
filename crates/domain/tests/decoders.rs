//! Fuzzing the decoders with proptest (bounded, so it runs in CI): stored-event JSON
//! with upcasting, case numbers, ids and text values. Nothing panics; whatever decodes
//! encodes back to itself.

use kefu_domain::case_register::CaseRegisterEvent;
use kefu_domain::complaint::ComplaintEvent;
use kefu_domain::customer::CustomerEvent;
use kefu_domain::staff::StaffEvent;
use kefu_domain::{CaseNumber, ComplaintId, CustomerId, DomainEvent, StaffId, Text};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z".prop_map(Value::String),
        Just(json!("01a20328-fbaf-7555-9606-5bd5cb5c46c8")),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,16}", inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A payload shaped like a real one: known field names with arbitrary values.
fn event_like_payload() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "complaint_id",
        "case_number",
        "customer_id",
        "category",
        "cause",
        "severity",
        "channel",
        "description",
        "respondent",
        "attachments",
        "received_at",
        "filed_at",
        "handler",
        "reason",
        "name",
        "contacts",
        "tier",
        "agent",
        "registered_at",
        "kind",
        "outcome",
        "score",
        "called_at",
        "by",
        "year",
        "archived_at",
        "confidentiality",
    ]);
    prop::collection::vec((names, json_value()), 0..14).prop_map(|fields| {
        Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    })
}

fn round_trips<E: DomainEvent + PartialEq + std::fmt::Debug>(
    event_type: &str,
    version: u32,
    payload: Value,
) {
    if let Ok(event) = E::from_stored(event_type, version, &payload) {
        let again = E::from_stored(event.event_type(), event.schema_version(), &event.to_payload());
        assert_eq!(again.as_ref(), Ok(&event));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn stored_events_never_panic_and_round_trip(
        event_type in prop::sample::select(
            [ComplaintEvent::TYPES, CustomerEvent::TYPES, StaffEvent::TYPES, CaseRegisterEvent::TYPES, &["Nope", ""]].concat()
        ),
        version in 0u32..5,
        payload in prop_oneof![json_value(), event_like_payload()],
    ) {
        round_trips::<ComplaintEvent>(event_type, version, payload.clone());
        round_trips::<CustomerEvent>(event_type, version, payload.clone());
        round_trips::<StaffEvent>(event_type, version, payload.clone());
        round_trips::<CaseRegisterEvent>(event_type, version, payload);
    }

    #[test]
    fn case_numbers_and_ids_parse_or_refuse(text in prop_oneof![
        ".{0,20}",
        "[0-9]{1,5}-[0-9]{1,8}",
        "[0-9a-f-]{30,40}",
    ]) {
        if let Ok(number) = text.parse::<CaseNumber>() {
            prop_assert_eq!(number.to_string().parse::<CaseNumber>().ok(), Some(number));
        }
        if let Ok(id) = text.parse::<ComplaintId>() {
            prop_assert_eq!(id.to_string().parse::<ComplaintId>().ok(), Some(id));
        }
        let _ = text.parse::<CustomerId>();
        if let Ok(staff) = StaffId::new(&text) {
            prop_assert_eq!(StaffId::new(staff.as_str()).ok(), Some(staff));
        }
        if let Ok(value) = Text::new("field", &text) {
            prop_assert!(!value.to_string().trim().is_empty());
        }
    }
}
