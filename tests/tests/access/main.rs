//! The access table of `kefu_api::access`, cell by cell, through the real server
//! (issue 16): every row (RPC) for a principal of every role at every clearance, and each
//! relationship a grant depends on both held and not held (a handler not cleared for the
//! case's customer is one assigned before the customer was raised past them, a state a
//! lowered token leaves too), and, on every row
//! that targets a case, the caller allowed there as the case's respondent (R-P4: always
//! refused). Allowed cells must not answer `PERMISSION_DENIED`; denied cells must answer
//! it (`NOT_FOUND` where the table hides targets above the caller's clearance), write
//! nothing (the log's head stays)
//! and leak nothing (no canary of the target's personal or complaint fields in the
//! status); an allowed cell's answer holds no canary of a field the table withholds from
//! the caller (the field dimension: event feed, replays, lists, names in reports).

use kefu_api::access::{self, Clearance, Grant, Relation, Rpc};
use kefu_api::auth::Principal;
use kefu_api::pb;
use kefu_domain::personal::{self, FieldKind};
use kefu_tests::refusals::{contains, status_bytes, tells};
use kefu_tests::{db, rid, Clients, TestApp};
use prost::Message;
use tonic::Code;

mod world;

use world::*;

/// What a cell answered: the encoded response(s), or the status.
type Answer = Result<Vec<u8>, tonic::Status>;

fn encoded<T: Message>(result: Result<tonic::Response<T>, tonic::Status>) -> Answer {
    result.map(|response| response.into_inner().encode_to_vec())
}

/// Where a cell acts: the customer and case, as the relationship under test needs.
struct Target {
    customer: String,
    /// The customer a merge keeps (`customer` is merged into it).
    survivor: String,
    case: String,
    /// A staff member to record the departure of.
    leaver: String,
    /// A service request.
    request: String,
}

/// Calls `rpc` on `target` as `clients`, with a valid request.
async fn call(
    rpc: Rpc,
    clients: &mut Clients,
    target: &Target,
    world: &World,
    head: u64,
) -> Answer {
    match rpc {
        Rpc::RegisterCustomer
        | Rpc::UpdateCustomer
        | Rpc::ClassifyCustomer
        | Rpc::GradeCustomer
        | Rpc::AssignAgent
        | Rpc::RecordContact
        | Rpc::ForgetCustomer
        | Rpc::GetCustomer
        | Rpc::ListCustomers
        | Rpc::FindCustomers
        | Rpc::MergeCustomers
        | Rpc::RegisterStaff
        | Rpc::RecordDeparture
        | Rpc::ListStaff => customers(rpc, clients, target, world, head).await,
        Rpc::FileComplaint
        | Rpc::AssignHandler
        | Rpc::RecuseHandler
        | Rpc::ContactComplainant
        | Rpc::RecordInvestigation
        | Rpc::DraftOpinion
        | Rpc::EscalateComplaint
        | Rpc::SignOpinionAsHandler
        | Rpc::SignOpinionAsDirector
        | Rpc::SignOpinionAsCommittee
        | Rpc::SendReply
        | Rpc::CloseComplaint
        | Rpc::ReopenComplaint
        | Rpc::GetComplaint
        | Rpc::ListComplaints
        | Rpc::ArchiveCases
        | Rpc::AddMaterial
        | Rpc::RecordImplementation => cases(rpc, clients, target, head).await,
        Rpc::LogCustomerCallback
        | Rpc::LogComplaintCallback
        | Rpc::ListDueCallbacks
        | Rpc::GetDashboard
        | Rpc::GetSatisfactionMetrics
        | Rpc::GetMonthlySummary
        | Rpc::GetQualityMetrics
        | Rpc::ListSlaBreaches
        | Rpc::WatchSla
        | Rpc::GetHandlerWorkload
        | Rpc::GetReferralReport
        | Rpc::ReplayCase
        | Rpc::GetCaseAsOf
        | Rpc::VerifyCase
        | Rpc::ExportCase
        | Rpc::Subscribe
        | Rpc::ReadAll => reads(rpc, clients, target, head).await,
        Rpc::ReceiveRequest
        | Rpc::AssignRequest
        | Rpc::RespondToRequest
        | Rpc::ResolveRequest
        | Rpc::EscalateToComplaint
        | Rpc::GetRequest
        | Rpc::ListRequests => requests(rpc, clients, target, head).await,
    }
}

/// [`call`] for the customer rows.
async fn customers(
    rpc: Rpc,
    clients: &mut Clients,
    target: &Target,
    world: &World,
    head: u64,
) -> Answer {
    let n = world.next();
    let customer_id = target.customer.clone();
    match rpc {
        Rpc::RegisterCustomer => encoded(
            clients
                .customers
                .register_customer(customer("New Plain", TARGET_LEVEL, "a-owner"))
                .await,
        ),
        Rpc::UpdateCustomer => encoded(
            clients
                .customers
                .update_customer(pb::UpdateCustomerRequest {
                    request_id: rid(),
                    customer_id,
                    expected_version: None,
                    // Unchanged, so an allowed cell changes nothing.
                    name: Some(CANARIES[0].text.into()),
                    contacts: None,
                    confidentiality: 0,
                })
                .await,
        ),
        Rpc::ClassifyCustomer => encoded(
            clients
                .customers
                .update_customer(pb::UpdateCustomerRequest {
                    request_id: rid(),
                    customer_id,
                    expected_version: None,
                    name: None,
                    contacts: None,
                    confidentiality: pb::Confidentiality::Internal as i32,
                })
                .await,
        ),
        Rpc::GradeCustomer => encoded(
            clients
                .customers
                .grade_customer(pb::GradeCustomerRequest {
                    request_id: rid(),
                    customer_id,
                    expected_version: None,
                    tier: [pb::Tier::Key, pb::Tier::Regular][usize::try_from(n % 2).unwrap()]
                        as i32,
                    stars: 0,
                    reason: "plain reason".into(),
                })
                .await,
        ),
        Rpc::AssignAgent => encoded(
            clients
                .customers
                .assign_agent(pb::AssignAgentRequest {
                    request_id: rid(),
                    customer_id,
                    expected_version: None,
                    agent: "a-owner".into(),
                    reason: String::new(),
                })
                .await,
        ),
        Rpc::RecordContact => encoded(
            clients
                .customers
                .record_contact(pb::RecordContactRequest {
                    request_id: rid(),
                    customer_id,
                    expected_version: None,
                    channel: pb::ContactChannel::Phone as i32,
                    note: String::new(),
                    contacted_at: None,
                })
                .await,
        ),
        Rpc::ForgetCustomer => encoded(
            clients
                .customers
                .forget_customer(pb::ForgetCustomerRequest {
                    request_id: rid(),
                    customer_id,
                    reason: "matrix".into(),
                })
                .await,
        ),
        Rpc::GetCustomer => {
            encoded(clients.customers.get_customer(pb::GetCustomerRequest { customer_id }).await)
        }
        Rpc::ListCustomers => encoded(
            clients
                .customers
                .list_customers(pb::ListCustomersRequest {
                    min_position: head,
                    page_size: 500,
                    ..Default::default()
                })
                .await,
        ),
        Rpc::FindCustomers => encoded(
            clients
                .customers
                .find_customers(pb::FindCustomersRequest {
                    query: CANARIES[0].text.into(),
                    by: pb::FindBy::Name as i32,
                    min_position: head,
                    ..Default::default()
                })
                .await,
        ),
        Rpc::MergeCustomers => encoded(
            clients
                .customers
                .merge_customers(pb::MergeCustomersRequest {
                    request_id: rid(),
                    duplicate_id: customer_id,
                    survivor_id: target.survivor.clone(),
                    reason: "plain reason".into(),
                    ..Default::default()
                })
                .await,
        ),
        Rpc::RegisterStaff => encoded(
            clients
                .staff
                .register_staff(pb::RegisterStaffRequest {
                    request_id: rid(),
                    staff_id: format!("x-{n}"),
                    name: "Plain Staff".into(),
                    roles: vec![pb::StaffRole::Agent as i32],
                })
                .await,
        ),
        Rpc::RecordDeparture => encoded(
            clients
                .staff
                .record_departure(pb::RecordDepartureRequest {
                    request_id: rid(),
                    staff_id: target.leaver.clone(),
                    reason: String::new(),
                })
                .await,
        ),
        Rpc::ListStaff => encoded(
            clients
                .staff
                .list_staff(pb::ListStaffRequest { include_departed: true, min_position: head })
                .await,
        ),
        other => unreachable!("{other:?} is not one of the customer rows"),
    }
}

/// [`call`] for the complaint rows.
async fn cases(rpc: Rpc, clients: &mut Clients, target: &Target, head: u64) -> Answer {
    let customer_id = target.customer.clone();
    let complaint_id = target.case.clone();
    match rpc {
        Rpc::FileComplaint => {
            encoded(clients.complaints.file_complaint(filing(&customer_id)).await)
        }
        Rpc::AssignHandler => encoded(
            clients
                .complaints
                .assign_handler(kefu_tests::flows::assign(&complaint_id, "h-other"))
                .await,
        ),
        Rpc::RecuseHandler => encoded(
            clients
                .complaints
                .recuse_handler(pb::RecuseHandlerRequest {
                    request_id: rid(),
                    complaint_id,
                    expected_version: None,
                    reason: "plain conflict".into(),
                })
                .await,
        ),
        Rpc::ContactComplainant => {
            encoded(clients.complaints.contact_complainant(contact(&complaint_id, "plain")).await)
        }
        Rpc::RecordInvestigation => encoded(
            clients.complaints.record_investigation(investigate(&complaint_id, "plain")).await,
        ),
        Rpc::DraftOpinion => encoded(
            clients
                .complaints
                .draft_opinion(pb::DraftOpinionRequest {
                    request_id: rid(),
                    complaint_id,
                    expected_version: None,
                    opinion: "plain opinion".into(),
                })
                .await,
        ),
        Rpc::EscalateComplaint => encoded(
            clients
                .complaints
                .escalate_complaint(pb::EscalateComplaintRequest {
                    request_id: rid(),
                    complaint_id,
                    expected_version: None,
                    to: pb::SignerCapacity::Director as i32,
                    reason: "plain".into(),
                })
                .await,
        ),
        Rpc::SignOpinionAsHandler | Rpc::SignOpinionAsDirector | Rpc::SignOpinionAsCommittee => {
            let capacity = match rpc {
                Rpc::SignOpinionAsHandler => pb::SignerCapacity::Handler,
                Rpc::SignOpinionAsDirector => pb::SignerCapacity::Director,
                _ => pb::SignerCapacity::Committee,
            };
            let mut sign = kefu_tests::flows::sign(&complaint_id, capacity);
            if capacity == pb::SignerCapacity::Committee {
                sign.meeting = Some(pb::CommitteeMeeting {
                    // R-T4: held after the case was received (and not in the future).
                    held_at: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
                    members_present: vec!["admin".into(), "a-first".into(), "a-owner".into()],
                    reported_to_authority: false,
                });
            }
            encoded(clients.complaints.sign_opinion(sign).await)
        }
        Rpc::SendReply => encoded(
            clients
                .complaints
                .send_reply(kefu_tests::flows::reply(
                    &complaint_id,
                    pb::ReplyKind::Acknowledgement,
                    pb::ContactChannel::Sms,
                ))
                .await,
        ),
        Rpc::CloseComplaint => encoded(
            clients
                .complaints
                .close_complaint(pb::CloseComplaintRequest {
                    request_id: rid(),
                    complaint_id,
                    expected_version: None,
                    summary: String::new(),
                })
                .await,
        ),
        Rpc::ReopenComplaint => encoded(
            clients
                .complaints
                .reopen_complaint(pb::ReopenComplaintRequest {
                    request_id: rid(),
                    complaint_id,
                    expected_version: None,
                    cause: "plain".into(),
                })
                .await,
        ),
        Rpc::GetComplaint => encoded(
            clients
                .complaints
                .get_complaint(pb::GetComplaintRequest { complaint: complaint_id })
                .await,
        ),
        Rpc::ListComplaints => encoded(
            clients
                .complaints
                .list_complaints(pb::ListComplaintsRequest {
                    min_position: head,
                    page_size: 500,
                    ..Default::default()
                })
                .await,
        ),
        Rpc::ArchiveCases => encoded(
            clients
                .complaints
                .archive_cases(pb::ArchiveCasesRequest {
                    request_id: rid(),
                    year: u32::try_from(chrono::Datelike::year(&chrono::Utc::now())).unwrap(),
                })
                .await,
        ),
        Rpc::AddMaterial => {
            encoded(clients.complaints.add_material(add_material(&complaint_id)).await)
        }
        Rpc::RecordImplementation => encoded(
            clients
                .complaints
                .record_implementation(pb::RecordImplementationRequest {
                    request_id: rid(),
                    complaint_id,
                    expected_version: None,
                    summary: "plain".into(),
                    implemented_at: None,
                })
                .await,
        ),
        other => unreachable!("{other:?} is not one of the complaint rows"),
    }
}

/// [`call`] for the service request rows.
async fn requests(rpc: Rpc, clients: &mut Clients, target: &Target, head: u64) -> Answer {
    let id = target.request.clone();
    match rpc {
        Rpc::ReceiveRequest => encoded(
            clients.requests.receive_request(receive_request(&target.customer, "a-owner")).await,
        ),
        Rpc::AssignRequest => encoded(
            clients
                .requests
                .assign_request(pb::AssignRequestRequest {
                    request_id: rid(),
                    service_request_id: id,
                    expected_version: None,
                    agent: "a-owner".into(),
                    reason: String::new(),
                })
                .await,
        ),
        Rpc::RespondToRequest => encoded(
            clients
                .requests
                .respond_to_request(pb::RespondToRequestRequest {
                    request_id: rid(),
                    service_request_id: id,
                    expected_version: None,
                    channel: pb::ContactChannel::Phone as i32,
                    summary: "plain".into(),
                    responded_at: None,
                })
                .await,
        ),
        Rpc::ResolveRequest => encoded(
            clients
                .requests
                .resolve_request(pb::ResolveRequestRequest {
                    request_id: rid(),
                    service_request_id: id,
                    expected_version: None,
                    summary: "plain".into(),
                })
                .await,
        ),
        Rpc::EscalateToComplaint => encoded(
            clients
                .requests
                .escalate_to_complaint(pb::EscalateToComplaintRequest {
                    request_id: rid(),
                    service_request_id: id,
                    expected_version: None,
                    cause: "other".into(),
                    severity: pb::Severity::Normal as i32,
                    respondent: String::new(),
                    reason: "plain".into(),
                })
                .await,
        ),
        Rpc::GetRequest => encoded(
            clients.requests.get_request(pb::GetRequestRequest { service_request_id: id }).await,
        ),
        Rpc::ListRequests => encoded(
            clients
                .requests
                .list_requests(pb::ListRequestsRequest { min_position: head, ..Default::default() })
                .await,
        ),
        other => unreachable!("{other:?} is not one of the request rows"),
    }
}

/// [`call`] for the callback, report, audit and event rows.
async fn reads(rpc: Rpc, clients: &mut Clients, target: &Target, head: u64) -> Answer {
    let customer_id = target.customer.clone();
    let complaint_id = target.case.clone();
    match rpc {
        Rpc::LogCustomerCallback => {
            encoded(clients.callbacks.log_callback(customer_callback(&customer_id, "plain")).await)
        }
        Rpc::LogComplaintCallback => encoded(
            clients
                .callbacks
                .log_callback(kefu_tests::flows::complaint_callback("", &complaint_id, "plain"))
                .await,
        ),
        Rpc::ListDueCallbacks => encoded(
            clients
                .callbacks
                .list_due_callbacks(pb::ListDueCallbacksRequest {
                    horizon_hours: 24 * 30,
                    owner: String::new(),
                    min_position: head,
                    as_of: None,
                })
                .await,
        ),
        Rpc::GetDashboard => encoded(
            clients
                .reports
                .get_dashboard(pb::GetDashboardRequest { min_position: head, as_of: None })
                .await,
        ),
        Rpc::GetSatisfactionMetrics => encoded(
            clients
                .reports
                .get_satisfaction_metrics(pb::GetSatisfactionMetricsRequest {
                    min_position: head,
                    group_by: pb::SatisfactionGrouping::Handler as i32,
                    ..Default::default()
                })
                .await,
        ),
        Rpc::GetMonthlySummary => encoded(
            clients
                .reports
                .get_monthly_summary(pb::GetMonthlySummaryRequest {
                    min_position: head,
                    month: chrono::Utc::now().format("%Y-%m").to_string(),
                })
                .await,
        ),
        Rpc::GetQualityMetrics => encoded(
            clients
                .reports
                .get_quality_metrics(pb::GetQualityMetricsRequest {
                    min_position: head,
                    group_by: vec![
                        pb::QualityDimension::Month as i32,
                        pb::QualityDimension::Channel as i32,
                        pb::QualityDimension::Handler as i32,
                    ],
                    ..Default::default()
                })
                .await,
        ),
        Rpc::ListSlaBreaches => encoded(
            clients
                .reports
                .list_sla_breaches(pb::ListSlaBreachesRequest {
                    min_position: head,
                    as_of: None,
                    include_at_risk: true,
                })
                .await,
        ),
        Rpc::WatchSla => {
            // The items of the moment, up to the `caught_up` message (the feed is live).
            let stream = clients
                .reports
                .watch_sla(pb::WatchSlaRequest { min_position: head, ..Default::default() });
            let mut stream = stream.await?.into_inner();
            let mut bytes = Vec::new();
            loop {
                let next =
                    tokio::time::timeout(std::time::Duration::from_secs(20), stream.message());
                let Some(message) = next.await.expect("the watch goes on")? else { break };
                bytes.extend(message.encode_to_vec());
                if message.caught_up {
                    break;
                }
            }
            Ok(bytes)
        }
        Rpc::GetHandlerWorkload => encoded(
            clients
                .reports
                .get_handler_workload(pb::GetHandlerWorkloadRequest { min_position: head })
                .await,
        ),
        Rpc::GetReferralReport => encoded(
            clients
                .reports
                .get_referral_report(pb::GetReferralReportRequest {
                    min_position: head,
                    ..Default::default()
                })
                .await,
        ),
        Rpc::ReplayCase => {
            let stream =
                clients.audit.replay_case(pb::ReplayCaseRequest { complaint: complaint_id });
            drain(
                stream.await,
                |message: pb::ReplayCaseResponse| message.event.map(|e| e.position),
                0,
            )
            .await
        }
        Rpc::GetCaseAsOf => encoded(
            clients
                .audit
                .get_case_as_of(pb::GetCaseAsOfRequest {
                    complaint: complaint_id,
                    point: Some(pb::get_case_as_of_request::Point::Version(2)),
                })
                .await,
        ),
        Rpc::VerifyCase => encoded(
            clients.audit.verify_case(pb::VerifyCaseRequest { complaint: complaint_id }).await,
        ),
        Rpc::ExportCase => encoded(
            clients.audit.export_case(pb::ExportCaseRequest { complaint: complaint_id }).await,
        ),
        Rpc::Subscribe => {
            let stream = clients
                .events
                .subscribe(pb::SubscribeRequest { from_position: 1, categories: Vec::new() })
                .await;
            drain(stream, |message: pb::SubscribeResponse| message.event.map(|e| e.position), head)
                .await
        }
        Rpc::ReadAll => encoded(
            clients
                .events
                .read_all(pb::ReadAllRequest {
                    from_position: 1,
                    limit: 1_000,
                    categories: Vec::new(),
                })
                .await,
        ),
        other => unreachable!("{other:?} is not one of the callback, report, audit and event rows"),
    }
}

/// A server stream's messages, encoded back to back: to its end, or (live) up to `until`.
async fn drain<T: Message>(
    stream: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
    position: impl Fn(T) -> Option<u64>,
    until: u64,
) -> Answer {
    let mut stream = stream?.into_inner();
    let mut bytes = Vec::new();
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), stream.message());
        let Some(message) = next.await.expect("the stream goes on")? else { break };
        bytes.extend(message.encode_to_vec());
        if until > 0 && position(message).is_some_and(|at| at >= until) {
            break;
        }
    }
    Ok(bytes)
}

/// How a cell's caller stands to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// In the relationship the grant depends on.
    Held,
    NotHeld,
    /// In it, and the respondent of the case (R-P4): refused on every case row.
    Respondent,
}

/// What the table expects of a cell: allowed or not.
fn expected_of(rpc: Rpc, who: &Principal, standing: Standing) -> bool {
    match standing {
        Standing::Held => expected(rpc, who, true),
        Standing::NotHeld => expected(rpc, who, false),
        Standing::Respondent => false,
    }
}

/// What the table expects of a cell: allowed or not.
fn expected(rpc: Rpc, who: &Principal, relation_held: bool) -> bool {
    let granted = match rpc.grant_for(who) {
        Grant::Deny => false,
        Grant::If(Relation::OwnRows) | Grant::Aggregates | Grant::Allow => true,
        Grant::If(_) => relation_held,
    };
    granted && cleared(rpc, who)
}

/// Whether the caller is cleared for the cell's target, as the table applies clearance.
fn cleared(rpc: Rpc, who: &Principal) -> bool {
    match rpc.clearance() {
        Clearance::NewRecord | Clearance::Target | Clearance::Classify => {
            who.clearance >= TARGET_LEVEL
        }
        Clearance::NotConsulted | Clearance::Rows | Clearance::Fields => true,
    }
}

/// A cell the table refuses by hiding its target (R-C6): granted the RPC, not cleared
/// for an existing record it targets, so the answer is `NOT_FOUND`, as for a record
/// that does not exist.
fn hidden(rpc: Rpc, who: &Principal) -> bool {
    // Classifying is an `UpdateCustomer`: whoever may update reads the record first.
    let reads = match rpc {
        Rpc::ClassifyCustomer => {
            [rpc, Rpc::UpdateCustomer].iter().any(|r| r.grant_for(who) != Grant::Deny)
        }
        _ => rpc.grant_for(who) != Grant::Deny,
    };
    matches!(rpc.clearance(), Clearance::Target | Clearance::Classify)
        && reads
        && !cleared(rpc, who)
}

/// Reports of counts by classification label (R-R1, R-R2, R-R3).
const AGGREGATES: [Rpc; 4] = [
    Rpc::GetDashboard,
    Rpc::GetSatisfactionMetrics,
    Rpc::GetMonthlySummary,
    Rpc::GetQualityMetrics,
];

/// The canaries `who` may not read in an answer of `rpc`: those of fields the table
/// withholds, except classification labels as the group keys of aggregate reports.
fn forbidden(who: &Principal, rpc: Rpc) -> Vec<&'static str> {
    CANARIES
        .iter()
        .filter(|c| {
            let kind = personal::kind(c.event_type, c.field);
            let label = personal::LABELS.contains(&(c.event_type, c.field));
            kind != FieldKind::Plain
                && !(label && AGGREGATES.contains(&rpc))
                && !access::may_read(
                    who,
                    c.category,
                    kind,
                    Some(TARGET_LEVEL),
                    access::PartInCase::None,
                )
        })
        .map(|c| c.text)
        .collect()
}

/// Prepares the target of a cell: `standing` decides whether the caller stands in the
/// relationship the grant depends on, and whether the case is against them.
async fn target(world: &mut World, rpc: Rpc, who: &Principal, standing: Standing) -> Target {
    let relation = match rpc.grant_for(who) {
        Grant::If(relation) => Some(relation),
        _ => None,
    };
    let held = standing != Standing::NotHeld;
    let allowed = expected_of(rpc, who, standing);
    let mut target = Target {
        customer: world.t.clone(),
        survivor: world.fresh.clone(),
        case: world.k.clone(),
        leaver: "nobody".into(),
        request: world.r.clone(),
    };
    if standing == Standing::Respondent {
        target.case = world.case_against(&who.id).await;
    }
    match (rpc, relation) {
        // An agent below T's level can no longer be made its own agent (R-C6): the cell
        // runs with T owned by another, and the table expects the same of it (the level
        // is checked first, NOT_FOUND either way).
        (_, Some(Relation::CustomersAgent)) if held && who.clearance < TARGET_LEVEL => {
            world.set_agent("a-owner").await;
            world.refuse_agent(&who.id).await;
        }
        (_, Some(Relation::CustomersAgent)) => {
            world.set_agent(if held { &who.id } else { "a-owner" }).await;
        }
        (_, Some(Relation::CurrentHandler)) if standing == Standing::Held => {
            target.case = world.case_handled_by(who).await;
        }
        (_, Some(Relation::RequestAgent)) => {
            target.request = if held {
                world.request_held_by(who).await
            } else {
                world.request_of(&world.fresh.clone(), "a-owner", "plain").await
            };
        }
        // Erasing or reclassifying the canary target would spoil the cells after it.
        (Rpc::ForgetCustomer | Rpc::ClassifyCustomer, _) if allowed => {
            target.customer = world.plain_customer().await;
        }
        // Merging the canary target away would too: two plain customers of its level.
        (Rpc::MergeCustomers, _) if allowed => {
            target.customer = world.plain_customer().await;
            target.survivor = world.plain_customer().await;
        }
        (Rpc::RecordDeparture, _) => {
            let leaver = format!("leaver-{}", world.next());
            kefu_tests::flows::register_staff_as(&mut world.admin, &leaver).await;
            target.leaver = leaver;
        }
        _ => {}
    }
    target
}

async fn walk(app: &TestApp, rows: &[Rpc], who_filter: impl Fn(&Principal) -> bool) -> usize {
    let mut world = World::build(app).await;
    let mut cells = 0;
    let mut failures = Vec::new();
    for &rpc in rows {
        for who in principals().iter().filter(|p| who_filter(p)) {
            let relational = matches!(
                rpc.grant_for(who),
                Grant::If(
                    Relation::CustomersAgent | Relation::CurrentHandler | Relation::RequestAgent
                )
            );
            let mut standings =
                if relational { vec![Standing::Held, Standing::NotHeld] } else { vec![] };
            if !relational {
                standings.push(Standing::NotHeld);
            }
            // R-P4: wherever the caller would be allowed on a case, not on one against
            // them (a handler's cell cannot be: the respondent is never assigned).
            let handler_cell = matches!(rpc.grant_for(who), Grant::If(Relation::CurrentHandler));
            if rpc.targets_a_case() && expected(rpc, who, true) && !handler_cell {
                standings.push(Standing::Respondent);
            }
            for standing in standings {
                let target = target(&mut world, rpc, who, standing).await;
                let before = db::head(app.db.url()).await;
                let mut clients = app.clients(Some(&who.id)).await;
                let answer = call(rpc, &mut clients, &target, &world, before).await;
                cells += 1;
                let cell = format!("{} as {} ({standing:?})", rpc.name(), who.id);
                let allowed = expected_of(rpc, who, standing);
                match (&answer, allowed) {
                    (Err(status), true) if status.code() == Code::PermissionDenied => {
                        failures.push(format!("{cell}: allowed, but {status:?}"));
                    }
                    (Err(status), false) => {
                        let refusal =
                            if hidden(rpc, who) { Code::NotFound } else { Code::PermissionDenied };
                        if status.code() != refusal {
                            failures.push(format!("{cell}: denied, but {status:?}"));
                        }
                        let after = db::head(app.db.url()).await;
                        if after != before {
                            failures.push(format!("{cell}: denied, yet wrote {before}→{after}"));
                        }
                        let bytes = status_bytes(status);
                        for text in CANARIES.iter().map(|c| c.text) {
                            if contains(&bytes, text) {
                                failures.push(format!("{cell}: denial leaks {text:?}"));
                            }
                        }
                    }
                    (Ok(_), false) => failures.push(format!("{cell}: denied, but answered OK")),
                    (Ok(bytes), true) => {
                        for text in forbidden(who, rpc) {
                            if contains(bytes, text) {
                                failures.push(format!("{cell}: answer leaks {text:?}"));
                            }
                        }
                    }
                    (Err(status), true) => {
                        for text in forbidden(who, rpc) {
                            if tells(status, text) {
                                failures.push(format!("{cell}: error leaks {text:?}"));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cells
}

/// Every cell, on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_of_the_access_table_over_the_wire_sqlite() {
    let app = spawn(kefu_testkit::Backend::Sqlite).await.expect("sqlite");
    let cells = walk(&app, Rpc::ALL, |_| true).await;
    println!("access matrix: {cells} cells tried over gRPC on SQLite");
    assert!(cells >= Rpc::ALL.len() * principals().len());
    app.stop().await;
}

/// Every cell, on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_of_the_access_table_over_the_wire_postgres() {
    let Some(app) = spawn(kefu_testkit::Backend::Postgres).await else { return };
    let cells = walk(&app, Rpc::ALL, |_| true).await;
    assert!(cells >= Rpc::ALL.len() * principals().len());
    println!("access matrix: {cells} cells tried over gRPC on PostgreSQL");
    app.stop().await;
}
