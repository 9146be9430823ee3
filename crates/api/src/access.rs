//! Access as one table: which roles may call each RPC and under which relationship to
//! the case or customer (R-P4, R-P5, R-C3), how the caller's clearance applies to what
//! it returns or changes (R-C6), and which event fields each caller reads (R-C6, R-P11)
//! on the event feed and in exports. Every service asks here; nothing else decides.
//!
//! `docs/security.md` shows this table; `security_doc_shows_the_table` keeps it so,
//! and `tests/tests/access/main.rs` walks every cell through the real server.

use kefu_domain::complaint::Case;
use kefu_domain::customer::CustomerRecord;
use kefu_domain::personal::FieldKind;
use kefu_domain::{Confidentiality, StaffId};

use crate::auth::{Principal, Role, Tokens};
use crate::error::ApiError;

/// Every callable thing, one per RPC, split where one RPC does different things
/// (signing in each capacity, classifying within an update, the two kinds of callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    RegisterCustomer,
    UpdateCustomer,
    /// `UpdateCustomer` changing the confidentiality level.
    ClassifyCustomer,
    GradeCustomer,
    AssignAgent,
    RecordContact,
    ForgetCustomer,
    GetCustomer,
    ListCustomers,
    FindCustomers,
    MergeCustomers,
    RegisterStaff,
    RecordDeparture,
    ListStaff,
    FileComplaint,
    AssignHandler,
    RecuseHandler,
    ContactComplainant,
    RecordInvestigation,
    DraftOpinion,
    EscalateComplaint,
    SignOpinionAsHandler,
    SignOpinionAsDirector,
    SignOpinionAsCommittee,
    SendReply,
    CloseComplaint,
    ReopenComplaint,
    GetComplaint,
    ListComplaints,
    ArchiveCases,
    AddMaterial,
    RecordImplementation,
    /// `LogCallback` about a customer (written to the customer's record).
    LogCustomerCallback,
    /// `LogCallback` about a closed complaint (may reopen it).
    LogComplaintCallback,
    ListDueCallbacks,
    ReceiveRequest,
    AssignRequest,
    RespondToRequest,
    ResolveRequest,
    EscalateToComplaint,
    GetRequest,
    ListRequests,
    GetDashboard,
    GetSatisfactionMetrics,
    GetMonthlySummary,
    /// Quality metrics (issue 22): counts and durations per month, channel, handler.
    GetQualityMetrics,
    ListSlaBreaches,
    /// `WatchSla`: the rows of `ListSlaBreaches`, pushed as time passes (R-T5).
    WatchSla,
    GetHandlerWorkload,
    GetReferralReport,
    ReplayCase,
    GetCaseAsOf,
    VerifyCase,
    ExportCase,
    Subscribe,
    ReadAll,
}

/// A relationship to the target that a grant depends on, checked against the stream's
/// current state (or, for lists, applied as a filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// The caller is the customer's own agent (R-C3).
    CustomersAgent,
    /// The caller is the case's current handler (R-P4, R-P5, R-P11).
    CurrentHandler,
    /// Only the rows the caller owns: cases they handle, callbacks due from them.
    OwnRows,
    /// The caller is the service request's agent.
    RequestAgent,
}

impl Relation {
    fn describe(self) -> &'static str {
        match self {
            Relation::CustomersAgent => "the customer's own agent",
            Relation::CurrentHandler => "the case's current handler",
            Relation::OwnRows => "their own rows",
            Relation::RequestAgent => "the request's agent",
        }
    }
}

/// What one role may do with one RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    Deny,
    /// Allowed when the caller stands in the relationship to the target.
    If(Relation),
    /// Aggregates only: anything row-level is withheld (analysts).
    Aggregates,
    Allow,
}

impl Grant {
    /// Deny < If < Aggregates < Allow: a principal with several roles gets the strongest.
    fn strength(self) -> u8 {
        match self {
            Grant::Deny => 0,
            If(_) => 1,
            Grant::Aggregates => 2,
            Grant::Allow => 3,
        }
    }

    fn cell(self) -> &'static str {
        match self {
            Grant::Deny => "—",
            If(Relation::CustomersAgent) => "own agent",
            If(Relation::CurrentHandler) => "handler",
            If(Relation::OwnRows) => "own rows",
            If(Relation::RequestAgent) => "request's agent",
            Grant::Aggregates => "aggregates",
            Grant::Allow => "✓",
        }
    }
}

/// How the caller's clearance (R-C6) applies to an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Clearance {
    /// Hands out no customer information (ids, versions and counts at most).
    NotConsulted,
    /// The new record's level must be within the caller's clearance.
    NewRecord,
    /// Every target customer's current level (a case's: its customer's) must be within
    /// the caller's clearance; a target above it is answered as not found, exactly like
    /// an absent one, so that no call tells that it exists.
    Target,
    /// Target, and the new level must be within the caller's clearance too (R-C6:
    /// classifying; the new level is the caller's own input, refused as denied).
    Classify,
    /// Only rows (and names) within the caller's clearance are returned.
    Rows,
    /// Each event field arrives in clear or redacted by [`may_read`].
    Fields,
}

impl Clearance {
    fn describe(self) -> &'static str {
        match self {
            Clearance::NotConsulted => "not consulted",
            Clearance::NewRecord => "new record's level",
            Clearance::Target => "target's level, above is not found",
            Clearance::Classify => "old level (above is not found) and new level",
            Clearance::Rows => "rows within",
            Clearance::Fields => "per field",
        }
    }
}

/// The roles of the table's columns, in order.
pub const ROLES: [Role; 8] = [
    Role::Agent,
    Role::Specialist,
    Role::Supervisor,
    Role::Director,
    Role::Compliance,
    Role::Analyst,
    Role::Service,
    Role::Admin,
];

/// One row of the table.
#[derive(Debug, Clone, Copy)]
struct Rule {
    clearance: Clearance,
    grants: &'static [(Role, Grant)],
}

use Grant::{Aggregates as AGG, Allow as ALL, If};
use Relation::{
    CurrentHandler as HANDLER, CustomersAgent as OWN_AGENT, OwnRows as OWN_ROWS,
    RequestAgent as REQUEST_AGENT,
};
use Role::{
    Agent as AG, Analyst as AN, Compliance as CO, Director as DI, Service as SV, Specialist as SP,
    Supervisor as SU,
};

/// Customer readers: every role with business with customers, not analysts (R-C6).
const CUSTOMER_READERS: &[(Role, Grant)] = &[(AG, ALL), (SU, ALL), (DI, ALL), (CO, ALL), (SV, ALL)];
/// Acting on a case: its handler, or a supervisor or the director stepping in (R-P4).
const CASE_ACTORS: &[(Role, Grant)] = &[(AG, If(HANDLER)), (SU, ALL), (DI, ALL)];
/// Reports: overseers in full, analysts aggregates only.
const REPORT_READERS: &[(Role, Grant)] = &[(AN, AGG), (SU, ALL), (DI, ALL), (CO, ALL)];
/// Row-level reports: no analysts.
const ROW_REPORT_READERS: &[(Role, Grant)] = &[(SU, ALL), (DI, ALL), (CO, ALL)];
const COMPLIANCE: &[(Role, Grant)] = &[(CO, ALL)];
const SUPERVISORS: &[(Role, Grant)] = &[(SU, ALL), (DI, ALL)];
/// Acting on a service request: its agent, or a supervisor or the director stepping in.
const REQUEST_ACTORS: &[(Role, Grant)] = &[(AG, If(REQUEST_AGENT)), (SU, ALL), (DI, ALL)];

impl Rpc {
    /// Every row of the table, in the order the docs show them.
    pub const ALL: &'static [Rpc] = &[
        Rpc::RegisterCustomer,
        Rpc::UpdateCustomer,
        Rpc::ClassifyCustomer,
        Rpc::GradeCustomer,
        Rpc::AssignAgent,
        Rpc::RecordContact,
        Rpc::ForgetCustomer,
        Rpc::GetCustomer,
        Rpc::ListCustomers,
        Rpc::FindCustomers,
        Rpc::MergeCustomers,
        Rpc::RegisterStaff,
        Rpc::RecordDeparture,
        Rpc::ListStaff,
        Rpc::FileComplaint,
        Rpc::AssignHandler,
        Rpc::RecuseHandler,
        Rpc::ContactComplainant,
        Rpc::RecordInvestigation,
        Rpc::DraftOpinion,
        Rpc::EscalateComplaint,
        Rpc::SignOpinionAsHandler,
        Rpc::SignOpinionAsDirector,
        Rpc::SignOpinionAsCommittee,
        Rpc::SendReply,
        Rpc::CloseComplaint,
        Rpc::ReopenComplaint,
        Rpc::GetComplaint,
        Rpc::ListComplaints,
        Rpc::ArchiveCases,
        Rpc::AddMaterial,
        Rpc::RecordImplementation,
        Rpc::LogCustomerCallback,
        Rpc::LogComplaintCallback,
        Rpc::ListDueCallbacks,
        Rpc::ReceiveRequest,
        Rpc::AssignRequest,
        Rpc::RespondToRequest,
        Rpc::ResolveRequest,
        Rpc::EscalateToComplaint,
        Rpc::GetRequest,
        Rpc::ListRequests,
        Rpc::GetDashboard,
        Rpc::GetSatisfactionMetrics,
        Rpc::GetMonthlySummary,
        Rpc::GetQualityMetrics,
        Rpc::ListSlaBreaches,
        Rpc::WatchSla,
        Rpc::GetHandlerWorkload,
        Rpc::GetReferralReport,
        Rpc::ReplayCase,
        Rpc::GetCaseAsOf,
        Rpc::VerifyCase,
        Rpc::ExportCase,
        Rpc::Subscribe,
        Rpc::ReadAll,
    ];

    /// The table itself.
    fn rule(self) -> Rule {
        use Clearance::*;
        let (clearance, grants): (Clearance, &'static [(Role, Grant)]) = match self {
            Rpc::RegisterCustomer => (NewRecord, &[(AG, ALL), (SU, ALL), (SV, ALL)]),
            Rpc::UpdateCustomer => (Target, &[(AG, If(OWN_AGENT)), (SU, ALL)]),
            Rpc::ClassifyCustomer => (Classify, &[(SU, ALL), (CO, ALL)]),
            Rpc::GradeCustomer => (Target, &[(AG, If(OWN_AGENT)), (SU, ALL)]),
            Rpc::AssignAgent => (Target, &[(SU, ALL)]),
            Rpc::RecordContact => (Target, &[(AG, If(OWN_AGENT)), (SU, ALL)]),
            Rpc::ForgetCustomer => (Target, COMPLIANCE),
            Rpc::GetCustomer => (Target, CUSTOMER_READERS),
            Rpc::ListCustomers => (Rows, CUSTOMER_READERS),
            // A lookup is a list by another key: the same readers, the same rows.
            Rpc::FindCustomers => (Rows, CUSTOMER_READERS),
            Rpc::MergeCustomers => (Target, &[(SU, ALL)]),
            Rpc::RegisterStaff | Rpc::RecordDeparture => (NotConsulted, &[(SU, ALL)]),
            Rpc::ListStaff => {
                (NotConsulted, &[(AG, ALL), (SP, ALL), (SU, ALL), (DI, ALL), (CO, ALL)])
            }
            Rpc::FileComplaint => (Target, &[(AG, ALL), (SU, ALL), (SV, ALL)]),
            Rpc::AssignHandler | Rpc::EscalateComplaint | Rpc::ReopenComplaint => {
                (Target, SUPERVISORS)
            }
            Rpc::RecuseHandler | Rpc::SignOpinionAsHandler => {
                (Target, &[(AG, If(HANDLER)), (SU, If(HANDLER)), (DI, If(HANDLER))])
            }
            Rpc::ContactComplainant
            | Rpc::RecordInvestigation
            | Rpc::SendReply
            | Rpc::CloseComplaint => (Target, CASE_ACTORS),
            Rpc::DraftOpinion => (Target, &[(SP, ALL)]),
            Rpc::SignOpinionAsDirector | Rpc::SignOpinionAsCommittee => (Target, &[(DI, ALL)]),
            Rpc::GetComplaint => (Target, &[(AG, If(HANDLER)), (SU, ALL), (DI, ALL), (CO, ALL)]),
            Rpc::ListComplaints => (Rows, &[(AG, If(OWN_ROWS)), (SU, ALL), (DI, ALL), (CO, ALL)]),
            Rpc::ArchiveCases => (Rows, &[(SU, ALL), (DI, ALL), (CO, ALL)]),
            // R-P2: whoever writes the case: its handler, the specialist, or a supervisor
            // or the director stepping in (never its respondent, R-P4).
            Rpc::AddMaterial => (Target, &[(AG, If(HANDLER)), (SP, ALL), (SU, ALL), (DI, ALL)]),
            // R-P9: the specialist organises implementation.
            Rpc::RecordImplementation => (Target, &[(SP, ALL)]),
            Rpc::LogCustomerCallback => (Target, &[(AG, If(OWN_AGENT)), (SU, ALL), (SV, ALL)]),
            // R-P15 by the customer's own agent (R-C3), or a supervisor or a calling
            // service stepping in; never the respondent (R-P4, every case row).
            Rpc::LogComplaintCallback => (Target, &[(AG, If(OWN_AGENT)), (SU, ALL), (SV, ALL)]),
            Rpc::ListDueCallbacks => (NotConsulted, &[(AG, If(OWN_ROWS)), (SU, ALL)]),
            // Service requests: taken like a filing (a calling service may too), worked
            // by their agent or a supervisor stepping in, read by them and compliance
            // (R-P11's analogue), within clearance (R-C6).
            Rpc::ReceiveRequest => (Target, &[(AG, ALL), (SU, ALL), (SV, ALL)]),
            Rpc::AssignRequest => (Target, SUPERVISORS),
            Rpc::RespondToRequest | Rpc::ResolveRequest | Rpc::EscalateToComplaint => {
                (Target, REQUEST_ACTORS)
            }
            Rpc::GetRequest => {
                (Target, &[(AG, If(REQUEST_AGENT)), (SU, ALL), (DI, ALL), (CO, ALL)])
            }
            Rpc::ListRequests => (Rows, &[(AG, If(OWN_ROWS)), (SU, ALL), (DI, ALL), (CO, ALL)]),
            // Quality by handler names staff, as satisfaction by handler does: staff
            // codes are no customer's data, and every figure is a count over cases.
            Rpc::GetDashboard
            | Rpc::GetSatisfactionMetrics
            | Rpc::GetMonthlySummary
            | Rpc::GetQualityMetrics => (NotConsulted, REPORT_READERS),
            Rpc::ListSlaBreaches | Rpc::WatchSla | Rpc::GetHandlerWorkload => {
                (NotConsulted, ROW_REPORT_READERS)
            }
            Rpc::GetReferralReport => (Rows, ROW_REPORT_READERS),
            // Hidden above clearance like any case; within it, field by field (R-P11).
            Rpc::ReplayCase => (Target, COMPLIANCE),
            Rpc::GetCaseAsOf | Rpc::ExportCase => (Target, COMPLIANCE),
            Rpc::VerifyCase => (Target, COMPLIANCE),
            Rpc::Subscribe | Rpc::ReadAll => (Fields, &[(CO, ALL), (SV, ALL)]),
        };
        Rule { clearance, grants }
    }

    /// `Service.Method`, with the variant where one RPC has several rows.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::RegisterCustomer => "CustomerService.RegisterCustomer",
            Rpc::UpdateCustomer => "CustomerService.UpdateCustomer",
            Rpc::ClassifyCustomer => "CustomerService.UpdateCustomer (confidentiality)",
            Rpc::GradeCustomer => "CustomerService.GradeCustomer",
            Rpc::AssignAgent => "CustomerService.AssignAgent",
            Rpc::RecordContact => "CustomerService.RecordContact",
            Rpc::ForgetCustomer => "CustomerService.ForgetCustomer",
            Rpc::GetCustomer => "CustomerService.GetCustomer",
            Rpc::ListCustomers => "CustomerService.ListCustomers",
            Rpc::FindCustomers => "CustomerService.FindCustomers",
            Rpc::MergeCustomers => "CustomerService.MergeCustomers",
            Rpc::RegisterStaff => "StaffService.RegisterStaff",
            Rpc::RecordDeparture => "StaffService.RecordDeparture",
            Rpc::ListStaff => "StaffService.ListStaff",
            Rpc::FileComplaint => "ComplaintService.FileComplaint",
            Rpc::AssignHandler => "ComplaintService.AssignHandler",
            Rpc::RecuseHandler => "ComplaintService.RecuseHandler",
            Rpc::ContactComplainant => "ComplaintService.ContactComplainant",
            Rpc::RecordInvestigation => "ComplaintService.RecordInvestigation",
            Rpc::DraftOpinion => "ComplaintService.DraftOpinion",
            Rpc::EscalateComplaint => "ComplaintService.EscalateComplaint",
            Rpc::SignOpinionAsHandler => "ComplaintService.SignOpinion (handler)",
            Rpc::SignOpinionAsDirector => "ComplaintService.SignOpinion (director)",
            Rpc::SignOpinionAsCommittee => "ComplaintService.SignOpinion (committee)",
            Rpc::SendReply => "ComplaintService.SendReply",
            Rpc::CloseComplaint => "ComplaintService.CloseComplaint",
            Rpc::ReopenComplaint => "ComplaintService.ReopenComplaint",
            Rpc::GetComplaint => "ComplaintService.GetComplaint",
            Rpc::ListComplaints => "ComplaintService.ListComplaints",
            Rpc::ArchiveCases => "ComplaintService.ArchiveCases",
            Rpc::AddMaterial => "ComplaintService.AddMaterial",
            Rpc::RecordImplementation => "ComplaintService.RecordImplementation",
            Rpc::LogCustomerCallback => "CallbackService.LogCallback (customer)",
            Rpc::LogComplaintCallback => "CallbackService.LogCallback (complaint)",
            Rpc::ListDueCallbacks => "CallbackService.ListDueCallbacks",
            Rpc::ReceiveRequest => "RequestService.ReceiveRequest",
            Rpc::AssignRequest => "RequestService.AssignRequest",
            Rpc::RespondToRequest => "RequestService.RespondToRequest",
            Rpc::ResolveRequest => "RequestService.ResolveRequest",
            Rpc::EscalateToComplaint => "RequestService.EscalateToComplaint",
            Rpc::GetRequest => "RequestService.GetRequest",
            Rpc::ListRequests => "RequestService.ListRequests",
            Rpc::GetDashboard => "ReportingService.GetDashboard",
            Rpc::GetSatisfactionMetrics => "ReportingService.GetSatisfactionMetrics",
            Rpc::GetMonthlySummary => "ReportingService.GetMonthlySummary",
            Rpc::GetQualityMetrics => "ReportingService.GetQualityMetrics",
            Rpc::ListSlaBreaches => "ReportingService.ListSlaBreaches",
            Rpc::WatchSla => "ReportingService.WatchSla",
            Rpc::GetHandlerWorkload => "ReportingService.GetHandlerWorkload",
            Rpc::GetReferralReport => "ReportingService.GetReferralReport",
            Rpc::ReplayCase => "AuditService.ReplayCase",
            Rpc::GetCaseAsOf => "AuditService.GetCaseAsOf",
            Rpc::VerifyCase => "AuditService.VerifyCase",
            Rpc::ExportCase => "AuditService.ExportCase",
            Rpc::Subscribe => "EventService.Subscribe",
            Rpc::ReadAll => "EventService.ReadAll",
        }
    }

    /// The rows checked against one case ([`Access::on_case`]): its customer's level,
    /// its respondent (R-P4) and the relationship.
    pub fn targets_a_case(self) -> bool {
        match self {
            Rpc::AssignHandler
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
            | Rpc::AddMaterial
            | Rpc::RecordImplementation
            | Rpc::LogComplaintCallback => true,
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
            | Rpc::ListStaff
            | Rpc::FileComplaint
            | Rpc::ListComplaints
            | Rpc::ArchiveCases
            | Rpc::LogCustomerCallback
            | Rpc::ListDueCallbacks
            | Rpc::ReceiveRequest
            | Rpc::AssignRequest
            | Rpc::RespondToRequest
            | Rpc::ResolveRequest
            | Rpc::EscalateToComplaint
            | Rpc::GetRequest
            | Rpc::ListRequests
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
            | Rpc::ReadAll => false,
        }
    }

    /// How the caller's clearance applies.
    pub fn clearance(self) -> Clearance {
        self.rule().clearance
    }

    /// What `role` alone may do; `admin` holds every role, so it gets the strongest.
    pub fn grant(self, role: Role) -> Grant {
        if role == Role::Admin {
            return ROLES[..ROLES.len() - 1]
                .iter()
                .map(|role| self.grant(*role))
                .max_by_key(|grant| grant.strength())
                .unwrap_or(Grant::Deny);
        }
        let rule = self.rule();
        rule.grants.iter().find(|(r, _)| *r == role).map_or(Grant::Deny, |(_, grant)| *grant)
    }

    /// What a principal may do: the strongest grant among its roles.
    pub fn grant_for(self, who: &Principal) -> Grant {
        who.roles
            .iter()
            .map(|role| self.grant(*role))
            .max_by_key(|grant| grant.strength())
            .unwrap_or(Grant::Deny)
    }
}

/// Work a staff member may be given (R-C3, R-P5), and so must be cleared for (R-C6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// A customer's own agent: reads and contacts them.
    OwnCustomer,
    /// A case's handler: reads and investigates it.
    HandleCase,
    /// A member at a committee meeting on a case: reads or writes cases in some role.
    SitOnCommittee,
}

impl Duty {
    /// Whether a token of `who` lets them do the work, by the table above.
    fn permits(self, who: &Principal) -> bool {
        let granted = |rpc: Rpc| rpc.grant_for(who) != Grant::Deny;
        match self {
            Duty::OwnCustomer => granted(Rpc::GetCustomer) && granted(Rpc::RecordContact),
            Duty::HandleCase => granted(Rpc::GetComplaint) && granted(Rpc::RecordInvestigation),
            Duty::SitOnCommittee => {
                [Rpc::GetComplaint, Rpc::DraftOpinion, Rpc::SignOpinionAsCommittee]
                    .into_iter()
                    .any(granted)
            }
        }
    }
}

/// R-C6: the clearance `staff` holds for `duty`: the highest among their tokens whose
/// roles let them do it (`None`: cleared for nothing). A secret analyst's or service's
/// token reads no customer's record, so it clears nobody to own or handle one.
pub fn duty_clearance(tokens: &Tokens, staff: &str, duty: Duty) -> Option<Confidentiality> {
    tokens.of(staff).filter(|who| duty.permits(who)).map(|who| who.clearance).max()
}

/// R-P11: roles that read the details of every complaint (a handler reads their own).
pub fn reads_case_details(who: &Principal) -> bool {
    [Role::Supervisor, Role::Director, Role::Compliance, Role::Admin]
        .iter()
        .any(|role| who.roles.contains(role))
}

/// Roles that never read a customer's data, only aggregates (DOMAIN.md: analysts).
fn reads_no_personal_data(who: &Principal) -> bool {
    who.roles.iter().all(|role| *role == Role::Analyst)
}

/// The reader's part in the complaint an event is about (for other events: `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartInCase {
    None,
    /// The case's current handler (R-P11: reads their own case's details).
    Handler,
    /// The staff member complained about (R-P4: never reads their own case, in any role).
    Respondent,
}

/// The field dimension of the table: whether `who` reads a field of `kind` in an event of
/// a `category` stream whose customer is at `level` (`None`: unknown, so not readable),
/// taking `part` in the complaint it is about.
pub fn may_read(
    who: &Principal,
    category: &str,
    kind: FieldKind,
    level: Option<Confidentiality>,
    part: PartInCase,
) -> bool {
    match kind {
        FieldKind::Plain => true,
        FieldKind::Restricted | FieldKind::Personal => {
            let cleared = level.is_some_and(|level| level <= who.clearance);
            // R-P11, and its analogue for service requests: their details are read by
            // the one working them and by the overseers.
            let case_allowed = !matches!(category, "complaint" | "request")
                || match part {
                    PartInCase::Respondent => false,
                    PartInCase::Handler => true,
                    PartInCase::None => reads_case_details(who),
                };
            cleared && case_allowed && !reads_no_personal_data(who)
        }
    }
}

/// A case's customer as the table checks a case: their current level (R-C6) and own
/// agent (R-C3). A customer the log does not have reads as `secret` with no agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseCustomer {
    pub level: Confidentiality,
    pub agent: Option<StaffId>,
    /// What keeps `level` true until a write commits: the customer's stream still at
    /// the version read (a raise, a merge or any other change moves it), first, then a
    /// merged duplicate's survivor's likewise (its level governs).
    pub held: Vec<kefu_event_store::Condition>,
    /// Erased (R-C8): their cases take nothing new.
    pub forgotten: bool,
}

/// R-C6 for an assignee: a case goes only to someone cleared for its customer.
pub fn assignee_cleared(assignee: Option<Confidentiality>, customer: &CaseCustomer) -> bool {
    assignee.is_some_and(|clearance| customer.level <= clearance)
}

/// A call the table allows, with what the service must still check or apply.
#[derive(Debug, Clone)]
pub struct Access {
    pub rpc: Rpc,
    pub grant: Grant,
    clearance: Confidentiality,
    principal: String,
}

/// The refusal of `rpc` to `who`, whose roles the table does not grant it.
pub fn refusal(who: &Principal, rpc: Rpc) -> ApiError {
    ApiError::forbidden(format!(
        "{} may not call {} (access table: docs/security.md)",
        who.id,
        rpc.name()
    ))
}

/// Checks the table for `who` calling `rpc`: `PERMISSION_DENIED` unless some role of
/// theirs is granted it. What the grant depends on is then checked through [`Access`].
pub fn authorize(who: &Principal, rpc: Rpc) -> Result<Access, ApiError> {
    let grant = rpc.grant_for(who);
    if grant == Grant::Deny {
        return Err(refusal(who, rpc));
    }
    Ok(Access { rpc, grant, clearance: who.clearance, principal: who.id.clone() })
}

impl Access {
    /// The relationship the grant depends on, if any.
    pub fn relation(&self) -> Option<Relation> {
        match self.grant {
            If(relation) => Some(relation),
            Grant::Deny | Grant::Aggregates | Grant::Allow => None,
        }
    }

    /// Refuses unless the relationship the grant depends on holds (`holds` says whether
    /// it does for this target); a grant without one passes.
    pub fn require(&self, holds: impl FnOnce(Relation) -> bool) -> Result<(), ApiError> {
        match self.relation() {
            Some(relation) if !holds(relation) => Err(ApiError::forbidden(format!(
                "{} may call {} only as {}",
                self.principal,
                self.rpc.name(),
                relation.describe()
            ))),
            _ => Ok(()),
        }
    }

    /// Checks a customer's record as the target: its level first (R-C6, so an uncleared
    /// caller learns nothing of the record), then the caller's relationship to it (R-C3).
    pub fn on_customer(&self, record: &CustomerRecord) -> Result<(), ApiError> {
        self.on_customer_at(record, record.confidentiality)
    }

    /// [`Access::on_customer`] at `level`, the level that governs the record now (a
    /// merged duplicate's is its survivor's): the level first, then the relationship.
    pub fn on_customer_at(
        &self,
        record: &CustomerRecord,
        level: Confidentiality,
    ) -> Result<(), ApiError> {
        self.hide(level, "customer", &record.id)?;
        self.with_customer(record)
    }

    /// A write's check of a customer as it stands (`state`), at `governing`, the level
    /// governing it (a merged duplicate's is its survivor's): an unknown customer and
    /// one above clearance answer alike, `NOT_FOUND`; then the relationship.
    pub fn on_customer_state(
        &self,
        state: Option<&CustomerRecord>,
        governing: Confidentiality,
        id: &impl ToString,
    ) -> Result<(), ApiError> {
        let Some(record) = state else {
            return Err(ApiError::NotFound { what: "customer", id: id.to_string() });
        };
        self.on_customer_at(record, governing.max(record.confidentiality))
    }

    /// The caller's relationship to a customer's record (R-C3), its level left to the
    /// caller's check.
    pub fn with_customer(&self, record: &CustomerRecord) -> Result<(), ApiError> {
        self.require(|relation| {
            relation == Relation::CustomersAgent && record.agent.as_str() == self.principal
        })
    }

    /// Checks a case as the target, in this order: its customer's level (R-C6, so an
    /// uncleared caller learns nothing more of the case), that the caller is not its
    /// respondent (R-P4: never acts on nor reads their own complaint, stepping in or
    /// not), and the caller's relationship to it (R-P5, R-P11, R-C3).
    pub fn on_case(&self, case: &Case, customer: &CaseCustomer) -> Result<(), ApiError> {
        self.hide(customer.level, "complaint", &case.id)?;
        self.not_respondent(case.respondent.as_ref())?;
        self.require(|relation| match relation {
            Relation::CurrentHandler => {
                case.handler.as_ref().is_some_and(|handler| handler.as_str() == self.principal)
            }
            Relation::CustomersAgent => {
                customer.agent.as_ref().is_some_and(|agent| agent.as_str() == self.principal)
            }
            Relation::OwnRows | Relation::RequestAgent => false,
        })
    }

    /// Checks a service request as the target, its customer's level already checked
    /// (`hide`): the caller's relationship to it (its agent).
    pub fn on_request(&self, agent: Option<&StaffId>) -> Result<(), ApiError> {
        self.require(|relation| {
            relation == Relation::RequestAgent
                && agent.is_some_and(|agent| agent.as_str() == self.principal)
        })
    }

    /// R-P4: the respondent never acts on nor reads their own complaint, in any role.
    pub fn not_respondent(&self, respondent: Option<&StaffId>) -> Result<(), ApiError> {
        if respondent.is_some_and(|respondent| respondent.as_str() == self.principal) {
            return Err(ApiError::forbidden(format!(
                "{} is the respondent of this complaint and may not call {} on it (R-P4)",
                self.principal,
                self.rpc.name()
            )));
        }
        Ok(())
    }

    /// True when the caller acts by overseeing rather than by a relationship: a
    /// supervisor or the director stepping in on a case (R-P4).
    pub fn oversees(&self) -> bool {
        self.grant == Grant::Allow
    }

    /// Whether a raise of a record's level could put it above the caller's clearance
    /// (none can for a caller cleared for the highest level).
    pub fn may_lose_clearance(&self) -> bool {
        self.clearance < Confidentiality::Secret
    }

    /// True when only aggregates may be returned.
    pub fn aggregates_only(&self) -> bool {
        self.grant == Grant::Aggregates
    }

    /// Whether figures per staff member are withheld from the caller: a report's rows or
    /// groups per handler (workload, satisfaction or quality by handler, or filtered to
    /// one) describe a person, not the service, so aggregates-only callers get none.
    pub fn withholds_per_staff(&self) -> bool {
        self.aggregates_only()
    }

    /// R-C6: an existing record (`what` `id`: a customer, or a case of a customer) at
    /// `level` above the caller's clearance is not found, as if it did not exist: a
    /// refusal would tell that it does.
    pub fn hide(
        &self,
        level: Confidentiality,
        what: &'static str,
        id: &impl ToString,
    ) -> Result<(), ApiError> {
        match self.rpc.clearance() {
            Clearance::Target | Clearance::Classify if level > self.clearance => {
                Err(ApiError::NotFound { what, id: id.to_string() })
            }
            _ => Ok(()),
        }
    }

    /// R-C6: refuses a level the caller chose (a new record's, a new classification)
    /// above their clearance.
    pub fn new_level(&self, level: Confidentiality) -> Result<(), ApiError> {
        match self.rpc.clearance() {
            Clearance::Target | Clearance::Classify | Clearance::NewRecord
                if level > self.clearance =>
            {
                Err(ApiError::forbidden(format!(
                    "the level asked for, {level}, is above the caller's clearance (R-C6)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// R-C6: classifying a record to `new` needs clearance for both its levels.
    pub fn classify(&self, record: &CustomerRecord, new: Confidentiality) -> Result<(), ApiError> {
        self.hide(record.confidentiality, "customer", &record.id)?;
        self.new_level(new)
    }

    /// R-C6: the highest level of the rows this call may return.
    pub fn max_level(&self) -> Confidentiality {
        self.clearance
    }

    /// Whether a row of an operational list is the caller's to see: its customer within
    /// clearance (R-C6) and not a case against the caller (R-P4).
    pub fn sees(&self, row: &kefu_projection::queries::RowAccess) -> bool {
        row.visible_to(kefu_projection::confidentiality_rank(self.clearance), &self.principal)
    }
}

/// The table as Markdown, as `docs/security.md` shows it.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("| RPC | clearance |");
    for role in ROLES {
        out.push_str(&format!(" {} |", role.as_str()));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(ROLES.len()));
    out.push('\n');
    for rpc in Rpc::ALL {
        out.push_str(&format!("| {} | {} |", rpc.name(), rpc.clearance().describe()));
        for role in ROLES {
            out.push_str(&format!(" {} |", rpc.grant(role).cell()));
        }
        out.push('\n');
    }
    out.push_str(
        "\nOn every `ComplaintService` and complaint `LogCallback` row, the case's \
         customer's level is checked first, then the respondent of the case is refused \
         (R-P4: never acts on nor reads their own complaint), then the relationship. \
         `ListComplaints` leaves out the caller's own cases as respondent. `AssignHandler` \
         also needs the assignee cleared for the customer (their tokens' highest \
         clearance), else `FAILED_PRECONDITION` `HANDLER_NOT_CLEARED`; a customer's agent \
         likewise (R-C6: nobody owns a record they may not read): `RegisterCustomer` (to \
         the named agent, or the least-loaded cleared one), `AssignAgent` and a raise \
         above the agent's clearance are else `FAILED_PRECONDITION` `AGENT_NOT_CLEARED`, \
         a change of level beyond the clearance of whoever holds the customer's open work \
         (an open case's handler, an open request's agent) `FAILED_PRECONDITION` \
         `HOLDERS_NOT_CLEARED` naming each, \
         and a departure hands each customer only to an agent cleared for them (cleared \
         by a token that lets them do the work: an analyst's or service's token clears \
         nobody to own or handle a record). `ArchiveCases` \
         archives and names only the cases it could list for the caller (within clearance, \
         not against them): the others stay as they are and are not mentioned, so an \
         archivist cleared for the highest level archives everything (but any case \
         against themself). A committee decision counts no member below the customer's \
         level (`COMMITTEE_MEMBER_NOT_CLEARED`) nor one who drafted the round's opinion \
         (`DRAFTER_CANNOT_SIGN`).\n",
    );
    out.push_str("\nEvent fields (feed and `ReplayCase`), for a caller allowed the RPC:\n\n");
    out.push_str("| field kind | customer events | complaint events |\n|---|---|---|\n");
    for kind in [FieldKind::Plain, FieldKind::Restricted, FieldKind::Personal] {
        let (customer, complaint) = match kind {
            FieldKind::Plain => ("in clear", "in clear"),
            FieldKind::Restricted | FieldKind::Personal => (
                "in clear within clearance, else redacted",
                "in clear within clearance for supervisor, director, compliance and admin \
                 (R-P11), never for the case's respondent (R-P4), else redacted",
            ),
        };
        out.push_str(&format!("| {} | {customer} | {complaint} |\n", kind.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role], clearance: Confidentiality) -> Principal {
        Principal { id: "p".into(), roles: roles.to_vec(), clearance }
    }

    #[test]
    fn admin_gets_the_strongest_grant_of_any_role() {
        for rpc in Rpc::ALL {
            let strongest = ROLES[..7].iter().map(|r| rpc.grant(*r).strength()).max();
            assert_eq!(Some(rpc.grant(Role::Admin).strength()), strongest, "{rpc:?}");
            assert_ne!(rpc.grant(Role::Admin), Grant::Deny, "{rpc:?}: admin may do anything");
        }
    }

    #[test]
    fn every_rpc_is_a_row_once() {
        let mut names: Vec<&str> = Rpc::ALL.iter().map(|rpc| rpc.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Rpc::ALL.len());
    }

    /// The table and the protos name the same RPCs: one the protos declare has a row
    /// (a new RPC is not served unasked), and every row is a declared RPC.
    #[test]
    fn every_declared_rpc_has_a_row_and_every_row_is_declared() {
        let declared: std::collections::BTreeSet<String> = crate::describe::kefu_methods()
            .expect("descriptor set")
            .into_iter()
            .map(|method| {
                let service = method.service.trim_start_matches("kefu.v1.");
                format!("{service}.{}", method.name)
            })
            .collect();
        let rows: std::collections::BTreeSet<String> = Rpc::ALL
            .iter()
            .map(|rpc| rpc.name().split(' ').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(declared, rows);
    }

    #[test]
    fn analysts_read_aggregates_only() {
        let analyst = principal(&[Role::Analyst], Confidentiality::Secret);
        for rpc in Rpc::ALL {
            assert!(matches!(rpc.grant_for(&analyst), Grant::Deny | Grant::Aggregates), "{rpc:?}");
        }
        assert!(!may_read(
            &analyst,
            "customer",
            FieldKind::Personal,
            Some(Confidentiality::Public),
            PartInCase::None
        ));
    }

    #[test]
    fn fields_follow_clearance_and_r_p11() {
        use Confidentiality::*;
        let service = principal(&[Role::Service], Internal);
        let compliance = principal(&[Role::Compliance], Internal);
        let none = PartInCase::None;
        assert!(may_read(&service, "customer", FieldKind::Personal, Some(Internal), none));
        assert!(!may_read(&service, "customer", FieldKind::Personal, Some(Secret), none));
        assert!(!may_read(&service, "complaint", FieldKind::Restricted, Some(Public), none));
        assert!(may_read(&service, "complaint", FieldKind::Plain, Some(Secret), none));
        assert!(may_read(&compliance, "complaint", FieldKind::Personal, Some(Internal), none));
        assert!(!may_read(&compliance, "complaint", FieldKind::Personal, None, none));
        // R-P4: the respondent reads nothing of their own case, whatever their roles; a
        // handler reads their own case's details (R-P11).
        let admin = principal(&[Role::Admin], Secret);
        let agent = principal(&[Role::Agent], Secret);
        for kind in [FieldKind::Restricted, FieldKind::Personal] {
            for who in [&admin, &compliance, &agent] {
                let part = PartInCase::Respondent;
                assert!(!may_read(who, "complaint", kind, Some(Public), part), "{who:?}");
            }
            assert!(may_read(&admin, "complaint", kind, Some(Public), none));
            assert!(may_read(&agent, "complaint", kind, Some(Public), PartInCase::Handler));
            assert!(!may_read(&agent, "complaint", kind, Some(Public), none));
            // Their own customer's record is no case: R-C6 alone.
            assert!(may_read(&admin, "customer", kind, Some(Public), PartInCase::Respondent));
        }
        assert!(may_read(
            &admin,
            "complaint",
            FieldKind::Plain,
            Some(Secret),
            PartInCase::Respondent
        ));
    }

    /// `KEFU_BLESS_DOCS=1` writes the generated table into the doc instead of failing.
    #[test]
    fn security_doc_shows_the_table() {
        const START: &str = "<!-- access table: generated by kefu_api::access::markdown -->\n";
        const END: &str = "<!-- end of access table -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/security.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let (Some(start), Some(end)) = (doc.find(START), doc.find(END)) else {
            panic!("docs/security.md lacks the access table's markers");
        };
        let shown = &doc[start + START.len()..end];
        let table = markdown();
        if shown != table && std::env::var_os("KEFU_BLESS_DOCS").is_some() {
            let blessed = format!("{}{START}{table}{}", &doc[..start], &doc[end..]);
            std::fs::write(path, blessed).unwrap();
            return;
        }
        assert!(
            shown == table,
            "docs/security.md shows another table than the code's; rerun with KEFU_BLESS_DOCS=1"
        );
    }
}
