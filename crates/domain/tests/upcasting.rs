//! Stored events keep loading as their types evolve: stable names, versions, upcasters.

use chrono::{TimeZone, Utc};
use kefu_domain::complaint::ComplaintEvent;
use kefu_domain::customer::CustomerEvent;
use kefu_domain::{DecodeError, DomainEvent};

const V1_COMPLAINT_FILED: &str = include_str!("fixtures/complaint_filed_v1.json");

#[test]
fn a_v1_complaint_filed_loads_with_receipt_at_filing() {
    let payload: serde_json::Value = serde_json::from_str(V1_COMPLAINT_FILED).unwrap();
    let event = ComplaintEvent::from_stored("ComplaintFiled", 1, &payload).unwrap();
    let ComplaintEvent::ComplaintFiled(filed) = &event else { panic!("{event:?}") };
    let filed_at = Utc.with_ymd_and_hms(2025, 6, 2, 8, 30, 0).unwrap();
    assert_eq!(filed.filed_at, filed_at);
    assert_eq!(filed.received_at, filed_at, "v1 clocks started at filing");
    assert!(filed.attachments.is_empty());
    assert_eq!(filed.case_number.to_string(), "2025-000031");
    // Written back, it is a current (v2) event.
    assert_eq!(event.schema_version(), 2);
    let again = ComplaintEvent::from_stored("ComplaintFiled", 2, &event.to_payload()).unwrap();
    assert_eq!(again, event);
}

#[test]
fn type_names_are_the_stable_literals() {
    assert!(ComplaintEvent::TYPES.contains(&"ComplaintFiled"));
    assert!(ComplaintEvent::TYPES.contains(&"HandlerRecused"));
    assert!(ComplaintEvent::TYPES.contains(&"OpinionSigned"));
    assert!(ComplaintEvent::TYPES.contains(&"CallbackLogged"));
    assert!(CustomerEvent::TYPES.contains(&"CustomerRegistered"));
    assert!(CustomerEvent::TYPES.contains(&"CallbackLogged"));
}

#[test]
fn unknown_future_and_malformed_events_are_refused_with_reasons() {
    let payload: serde_json::Value = serde_json::from_str(V1_COMPLAINT_FILED).unwrap();
    assert_eq!(
        ComplaintEvent::from_stored("ComplaintTeleported", 1, &payload),
        Err(DecodeError::UnknownType("ComplaintTeleported".into()))
    );
    assert!(matches!(
        ComplaintEvent::from_stored("ComplaintFiled", 3, &payload),
        Err(DecodeError::FutureVersion { found: 3, known: 2, .. })
    ));
    assert!(matches!(
        ComplaintEvent::from_stored("ComplaintFiled", 2, &serde_json::json!({ "complaint_id": 7 })),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        ComplaintEvent::from_stored("ComplaintFiled", 1, &serde_json::json!([])),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn a_v1_committee_signature_loads_without_a_meeting() {
    // Written before R-P5 asked committee decisions to name their meeting.
    let payload = serde_json::json!({
        "signer": "d1",
        "capacity": "committee",
        "decision": "apology and retraining",
        "signed_at": "2026-03-01T10:00:00Z"
    });
    let event = ComplaintEvent::from_stored("OpinionSigned", 1, &payload).unwrap();
    let ComplaintEvent::OpinionSigned(signed) = &event else { panic!("{event:?}") };
    assert_eq!(signed.meeting, None);
    assert_eq!(signed.signer.as_str(), "d1");
    assert_eq!(event.schema_version(), 2);
}
