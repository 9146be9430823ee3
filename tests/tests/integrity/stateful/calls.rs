//! The writes the stateful test sends, kept whole so that one can be sent again byte for
//! byte (a retry) or with the same key and another body (a reused key).

use kefu_api::pb;
use kefu_tests::Clients;
use tonic::Status;

/// One write as sent: who sent it and the request.
#[derive(Debug, Clone)]
pub struct Sent {
    pub principal: &'static str,
    pub call: Call,
}

/// Every mutating RPC the sequences use.
#[derive(Debug, Clone)]
pub enum Call {
    RegisterCustomer(pb::RegisterCustomerRequest),
    UpdateCustomer(pb::UpdateCustomerRequest),
    GradeCustomer(pb::GradeCustomerRequest),
    AssignAgent(pb::AssignAgentRequest),
    RecordContact(pb::RecordContactRequest),
    ForgetCustomer(pb::ForgetCustomerRequest),
    RegisterStaff(pb::RegisterStaffRequest),
    RecordDeparture(pb::RecordDepartureRequest),
    FileComplaint(pb::FileComplaintRequest),
    AssignHandler(pb::AssignHandlerRequest),
    RecuseHandler(pb::RecuseHandlerRequest),
    ContactComplainant(pb::ContactComplainantRequest),
    RecordInvestigation(pb::RecordInvestigationRequest),
    DraftOpinion(pb::DraftOpinionRequest),
    EscalateComplaint(pb::EscalateComplaintRequest),
    SignOpinion(pb::SignOpinionRequest),
    SendReply(pb::SendReplyRequest),
    RecordImplementation(pb::RecordImplementationRequest),
    CloseComplaint(pb::CloseComplaintRequest),
    ReopenComplaint(pb::ReopenComplaintRequest),
    ArchiveCases(pb::ArchiveCasesRequest),
    LogCallback(pb::LogCallbackRequest),
}

/// What an accepted write answered: the whole answer (compared with a retry's) and the
/// parts the checks look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub answer: String,
    pub result: Option<pb::WriteResult>,
    pub case_number: Option<String>,
    pub departure: Option<pb::RecordDepartureResponse>,
    pub archive: Option<pb::ArchiveCasesResponse>,
}

impl Ack {
    fn of(answer: impl std::fmt::Debug, result: Option<pb::WriteResult>) -> Self {
        Ack {
            answer: format!("{answer:?}"),
            result,
            case_number: None,
            departure: None,
            archive: None,
        }
    }
}

/// Sends `call` on `clients`; the answer or the refusal.
pub async fn send(clients: &mut Clients, call: Call) -> Result<Ack, Status> {
    macro_rules! plain {
        ($service:ident . $rpc:ident ($request:expr)) => {{
            let answer = clients.$service.$rpc($request).await?.into_inner();
            Ack::of(&answer, answer.result.clone())
        }};
    }
    Ok(match call {
        Call::RegisterCustomer(r) => {
            // The possible duplicates are advice as of each answer (issue 20): a customer
            // registered since may be one; the write itself is what a retry repeats.
            let answer = clients.customers.register_customer(r).await?.into_inner();
            Ack::of(&answer.result, answer.result.clone())
        }
        Call::UpdateCustomer(r) => plain!(customers.update_customer(r)),
        Call::GradeCustomer(r) => plain!(customers.grade_customer(r)),
        Call::AssignAgent(r) => plain!(customers.assign_agent(r)),
        Call::RecordContact(r) => plain!(customers.record_contact(r)),
        Call::ForgetCustomer(r) => plain!(customers.forget_customer(r)),
        Call::RegisterStaff(r) => plain!(staff.register_staff(r)),
        Call::RecordDeparture(r) => {
            let answer = clients.staff.record_departure(r).await?.into_inner();
            Ack { departure: Some(answer.clone()), ..Ack::of(&answer, answer.result.clone()) }
        }
        Call::FileComplaint(r) => {
            let answer = clients.complaints.file_complaint(r).await?.into_inner();
            let case_number = Some(answer.case_number.clone());
            Ack { case_number, ..Ack::of(&answer, answer.result.clone()) }
        }
        Call::AssignHandler(r) => plain!(complaints.assign_handler(r)),
        Call::RecuseHandler(r) => plain!(complaints.recuse_handler(r)),
        Call::ContactComplainant(r) => plain!(complaints.contact_complainant(r)),
        Call::RecordInvestigation(r) => plain!(complaints.record_investigation(r)),
        Call::DraftOpinion(r) => plain!(complaints.draft_opinion(r)),
        Call::EscalateComplaint(r) => plain!(complaints.escalate_complaint(r)),
        Call::SignOpinion(r) => plain!(complaints.sign_opinion(r)),
        Call::SendReply(r) => plain!(complaints.send_reply(r)),
        Call::RecordImplementation(r) => plain!(complaints.record_implementation(r)),
        Call::CloseComplaint(r) => plain!(complaints.close_complaint(r)),
        Call::ReopenComplaint(r) => plain!(complaints.reopen_complaint(r)),
        Call::ArchiveCases(r) => {
            let answer = clients.complaints.archive_cases(r).await?.into_inner();
            Ack { archive: Some(answer.clone()), ..Ack::of(&answer, None) }
        }
        Call::LogCallback(r) => plain!(callbacks.log_callback(r)),
    })
}

impl Call {
    /// The caller's idempotency key.
    pub fn request_id(&self) -> &str {
        match self {
            Call::RegisterCustomer(r) => &r.request_id,
            Call::UpdateCustomer(r) => &r.request_id,
            Call::GradeCustomer(r) => &r.request_id,
            Call::AssignAgent(r) => &r.request_id,
            Call::RecordContact(r) => &r.request_id,
            Call::ForgetCustomer(r) => &r.request_id,
            Call::RegisterStaff(r) => &r.request_id,
            Call::RecordDeparture(r) => &r.request_id,
            Call::FileComplaint(r) => &r.request_id,
            Call::AssignHandler(r) => &r.request_id,
            Call::RecuseHandler(r) => &r.request_id,
            Call::ContactComplainant(r) => &r.request_id,
            Call::RecordInvestigation(r) => &r.request_id,
            Call::DraftOpinion(r) => &r.request_id,
            Call::EscalateComplaint(r) => &r.request_id,
            Call::SignOpinion(r) => &r.request_id,
            Call::SendReply(r) => &r.request_id,
            Call::RecordImplementation(r) => &r.request_id,
            Call::CloseComplaint(r) => &r.request_id,
            Call::ReopenComplaint(r) => &r.request_id,
            Call::ArchiveCases(r) => &r.request_id,
            Call::LogCallback(r) => &r.request_id,
        }
    }

    /// The same call under the same key with one field changed: another request, which
    /// must never hide behind the first one's key.
    pub fn altered(&self) -> Call {
        let other = |text: &str| format!("{text} (another request)");
        let mut call = self.clone();
        match &mut call {
            Call::RegisterCustomer(r) => r.name = other(&r.name),
            Call::UpdateCustomer(r) => r.name = Some(other(r.name.as_deref().unwrap_or("n"))),
            Call::GradeCustomer(r) => r.reason = other(&r.reason),
            Call::AssignAgent(r) => r.reason = other(&r.reason),
            Call::RecordContact(r) => r.note = other(&r.note),
            Call::ForgetCustomer(r) => r.reason = other(&r.reason),
            Call::RegisterStaff(r) => r.name = other(&r.name),
            Call::RecordDeparture(r) => r.reason = other(&r.reason),
            Call::FileComplaint(r) => r.description = other(&r.description),
            Call::AssignHandler(r) => r.reason = other(&r.reason),
            Call::RecuseHandler(r) => r.reason = other(&r.reason),
            Call::ContactComplainant(r) => r.summary = other(&r.summary),
            Call::RecordInvestigation(r) => r.findings = other(&r.findings),
            Call::DraftOpinion(r) => r.opinion = other(&r.opinion),
            Call::EscalateComplaint(r) => r.reason = other(&r.reason),
            Call::SignOpinion(r) => r.remedy = other(&r.remedy),
            Call::SendReply(r) => r.summary = other(&r.summary),
            Call::RecordImplementation(r) => r.summary = other(&r.summary),
            Call::CloseComplaint(r) => r.summary = other(&r.summary),
            Call::ReopenComplaint(r) => r.cause = other(&r.cause),
            // Not drawn (see `reuse_key`): its cases' keys derive from the key and the
            // case number, so another year's request shares none with the first.
            Call::ArchiveCases(r) => r.year = r.year.saturating_add(1),
            Call::LogCallback(r) => r.comment = other(&r.comment),
        }
        call
    }

    /// The time field this call states, if any, by its proto name.
    pub fn stated_time_field(&self) -> Option<&'static str> {
        match self {
            Call::RecordContact(_) | Call::ContactComplainant(_) => Some("contacted_at"),
            Call::FileComplaint(_) => Some("received_at"),
            Call::LogCallback(_) => Some("called_at"),
            _ => None,
        }
    }
}
