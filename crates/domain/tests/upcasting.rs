//! Stored events keep loading as their types evolve: stable names, versions, upcasters.

use chrono::{TimeDelta, TimeZone, Utc};
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
    // Written back, it is a current (v3) event.
    assert_eq!(event.schema_version(), 3);
    let again = ComplaintEvent::from_stored("ComplaintFiled", 3, &event.to_payload()).unwrap();
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
        ComplaintEvent::from_stored("ComplaintFiled", 4, &payload),
        Err(DecodeError::FutureVersion { found: 4, known: 3, .. })
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

/// R-T3: a case filed before policies were recorded is held to version 0, the built-in
/// targets of its time (12 hours to respond, calendar time), and keeps those deadlines
/// whatever policy is configured now.
#[test]
fn a_v2_complaint_filed_is_held_to_policy_version_zero() {
    let mut payload: serde_json::Value = serde_json::from_str(V1_COMPLAINT_FILED).unwrap();
    let received_at = Utc.with_ymd_and_hms(2025, 6, 1, 23, 0, 0).unwrap();
    payload["received_at"] = serde_json::json!(received_at);
    let event = ComplaintEvent::from_stored("ComplaintFiled", 2, &payload).unwrap();
    let ComplaintEvent::ComplaintFiled(filed) = &event else { panic!("{event:?}") };
    assert_eq!(filed.terms.policy_version, 0);
    assert_eq!(filed.terms.tier, None);
    assert_eq!(filed.terms.first_response_due_at, received_at + TimeDelta::hours(12));
    assert_eq!(filed.terms.resolution_due_at, received_at + TimeDelta::days(30));
    assert_eq!(filed.terms.first_response_at_risk_at, received_at + TimeDelta::minutes(576));
}

#[test]
fn a_v1_complaint_closed_gets_version_zeros_callback_deadline() {
    let closed_at = Utc.with_ymd_and_hms(2025, 6, 30, 16, 0, 0).unwrap();
    let payload = serde_json::json!({ "closed_at": closed_at });
    let event = ComplaintEvent::from_stored("ComplaintClosed", 1, &payload).unwrap();
    let ComplaintEvent::ComplaintClosed(closed) = &event else { panic!("{event:?}") };
    assert_eq!(closed.callback_due_at, closed_at + TimeDelta::days(3));
    assert_eq!(
        closed.callback_at_risk_at,
        closed_at + TimeDelta::hours(57) + TimeDelta::minutes(36)
    );
    assert!(ComplaintEvent::from_stored("ComplaintClosed", 1, &serde_json::json!({})).is_err());
}

/// One upcaster chain for `ComplaintFiled` (v1 → v2 receipt → v3 terms), and the
/// taxonomy (R-P3) is a reading of what is stored, not a schema step: an event of every
/// version decodes to the current shape, keeps its stored category and cause, and reads
/// them through the one taxonomy (prose from before codes as `unlisted`).
#[test]
fn complaint_filed_of_every_version_decodes_and_reads_through_the_taxonomy() {
    use kefu_domain::taxonomy::{category_label, cause_label, UNLISTED};
    let v1: serde_json::Value = serde_json::from_str(V1_COMPLAINT_FILED).unwrap();
    let mut v2 = v1.clone();
    v2["received_at"] = serde_json::json!("2025-06-01T23:00:00Z");
    let v1_event = ComplaintEvent::from_stored("ComplaintFiled", 1, &v1).unwrap();
    let v2_event = ComplaintEvent::from_stored("ComplaintFiled", 2, &v2).unwrap();
    // A current event, with codes, as intake writes it now.
    let v3_payload = {
        let ComplaintEvent::ComplaintFiled(mut filed) = v2_event.clone() else { unreachable!() };
        filed.category = kefu_domain::taxonomy::category("billing").unwrap();
        filed.cause = kefu_domain::taxonomy::cause("overcharge").unwrap();
        filed.terms.policy_version = 7;
        ComplaintEvent::ComplaintFiled(filed).to_payload()
    };
    let v3_event = ComplaintEvent::from_stored("ComplaintFiled", 3, &v3_payload).unwrap();
    let read = |event: &ComplaintEvent| {
        let ComplaintEvent::ComplaintFiled(filed) = event else { panic!("{event:?}") };
        assert_eq!(event.schema_version(), 3, "decoded to the current version");
        let again = ComplaintEvent::from_stored("ComplaintFiled", 3, &event.to_payload());
        assert_eq!(again.as_ref(), Ok(event), "written back, it reads the same");
        (
            filed.cause.as_str().to_owned(),
            category_label(filed.category.as_str()).to_owned(),
            cause_label(filed.cause.as_str()).to_owned(),
            filed.terms.policy_version,
        )
    };
    let prose = ("rude staff".to_owned(), "service".to_owned(), UNLISTED.to_owned(), 0);
    assert_eq!(read(&v1_event), prose, "v1: the prose is kept, read as unlisted");
    assert_eq!(read(&v2_event), prose, "v2: likewise, held to policy version 0");
    let coded = ("overcharge".to_owned(), "billing".to_owned(), "overcharge".to_owned(), 7);
    assert_eq!(read(&v3_event), coded, "v3: codes read as themselves, its own terms kept");
    // v1 and v2 reach the same terms: a v1's receipt is its filing, a v2's is given.
    let terms = |event: &ComplaintEvent| match event {
        ComplaintEvent::ComplaintFiled(filed) => filed.terms,
        other => panic!("{other:?}"),
    };
    let filed_at = Utc.with_ymd_and_hms(2025, 6, 2, 8, 30, 0).unwrap();
    assert_eq!(terms(&v1_event).first_response_due_at, filed_at + TimeDelta::hours(12));
    let received_at = Utc.with_ymd_and_hms(2025, 6, 1, 23, 0, 0).unwrap();
    assert_eq!(terms(&v2_event).first_response_due_at, received_at + TimeDelta::hours(12));
}

/// Issue 22: `ComplaintFiled` gained an optional `from_request` link (a complaint
/// escalated from a service request) without a schema step: a stored v3 payload without
/// it loads as a complaint filed directly, and a linked one keeps its link.
#[test]
fn a_complaint_filed_without_a_request_link_loads_as_filed_directly() {
    let mut v2: serde_json::Value = serde_json::from_str(V1_COMPLAINT_FILED).unwrap();
    v2["received_at"] = serde_json::json!("2025-06-01T23:00:00Z");
    let event = ComplaintEvent::from_stored("ComplaintFiled", 2, &v2).unwrap();
    let payload = event.to_payload();
    assert!(payload.get("from_request").is_none(), "an unlinked filing writes no link");
    let ComplaintEvent::ComplaintFiled(mut filed) =
        ComplaintEvent::from_stored("ComplaintFiled", 3, &payload).unwrap()
    else {
        panic!()
    };
    assert_eq!(filed.from_request, None);
    let request: kefu_domain::ServiceRequestId =
        "0193a5e0-0000-7000-8000-0000000000e1".parse().unwrap();
    filed.from_request = Some(request);
    let linked = ComplaintEvent::ComplaintFiled(filed).to_payload();
    assert_eq!(linked["from_request"], serde_json::json!(request.to_string()));
    let ComplaintEvent::ComplaintFiled(again) =
        ComplaintEvent::from_stored("ComplaintFiled", 3, &linked).unwrap()
    else {
        panic!()
    };
    assert_eq!(again.from_request, Some(request));
}
