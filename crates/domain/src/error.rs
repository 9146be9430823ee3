//! Why the domain refuses: an invalid value, or a command that breaks a business rule.

/// A value that cannot exist: the field it was for and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValueError {
    pub field: &'static str,
    pub reason: String,
}

impl ValueError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ValueError { field, reason: reason.into() }
    }
}

/// How a refusal maps onto a caller's expectations (the API turns this into a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is malformed.
    InvalidArgument,
    /// The thing the command is about does not exist.
    NotFound,
    /// The thing the command would create exists already.
    AlreadyExists,
    /// The command is well-formed but a business rule forbids it in the current state.
    FailedPrecondition,
    /// A finite resource is used up.
    ResourceExhausted,
}

/// A command refused by the business rules. Each variant states a fact and names its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid value: {0}")]
    InvalidValue(#[from] ValueError),

    // Existence.
    #[error("customer is not registered")]
    CustomerNotRegistered,
    #[error("customer is already registered")]
    CustomerAlreadyRegistered,
    #[error("customer's personal data was erased; the record accepts no more changes")]
    CustomerForgotten,
    #[error("customer was merged into another record, which takes every change now")]
    CustomerMerged,
    #[error("a customer cannot be merged into itself")]
    MergeIntoItself,
    #[error("complaint is not filed")]
    ComplaintNotFiled,
    #[error("complaint is already filed")]
    ComplaintAlreadyFiled,
    #[error("staff member is not registered")]
    StaffNotRegistered,
    #[error("staff member is already registered")]
    StaffAlreadyRegistered,
    #[error("staff member has left (R-C3)")]
    StaffDeparted,

    // Customers.
    #[error("a grading change needs a reason (R-C2)")]
    GradingNeedsReason,
    #[error("the customer already has this grade (R-C2)")]
    GradeUnchanged,
    #[error("the referrer is not a registered customer (R-C7)")]
    ReferrerUnknown,
    #[error("a customer cannot refer themself (R-C7)")]
    SelfReferral,

    // Intake.
    #[error("a complaint cannot be received in the future (R-P3)")]
    ReceivedInFuture,
    #[error("{field} must not be in the future (R-T4)")]
    DatedInFuture { field: &'static str },
    #[error("{field} must not be before 2000-01-01T00:00:00Z (R-T4)")]
    DatedBeforeFloor { field: &'static str },
    #[error("{field} must be from 2000-01-01T00:00:00Z to a year ahead of now")]
    AsOfOutOfWindow { field: &'static str },
    #[error("a contact cannot precede the complaint's receipt (R-T4)")]
    ContactBeforeReceipt,
    #[error("a complaint callback cannot precede the case's closure (R-T4)")]
    CallbackBeforeClosure,
    #[error("a contact cannot precede the customer's registration (R-T4)")]
    ContactBeforeRegistration,
    #[error("a callback cannot precede the customer's registration (R-T4)")]
    CallbackBeforeRegistration,
    #[error("a committee meeting deciding a case cannot precede its receipt (R-T4)")]
    MeetingBeforeReceipt,
    #[error("a committee meeting deciding a case cannot precede its escalation (R-T4)")]
    MeetingBeforeEscalation,
    #[error("case number {case_number} is not of the filing year {year} (R-P1)")]
    CaseNumberYearMismatch { case_number: String, year: i32 },
    /// The register of one year only issues that year's numbers, and only to a filing
    /// of that year: a filing's year is computed once (`case_register::case_year`).
    #[error("the case register of {register} cannot issue a number to a filing of {year} (R-P1)")]
    RegisterYearMismatch { register: i32, year: i32 },
    #[error("all case numbers of {year} are used (R-P1)")]
    CaseNumbersExhausted { year: i32 },
    /// The case is held to a policy version this process has not loaded yet: retry
    /// (the policy stream is read again).
    #[error("the case's policy version {version} is not known here (R-T3)")]
    PolicyVersionUnknown { version: u64 },

    // Recusal (R-P4).
    #[error("the respondent cannot handle their own complaint (R-P4)")]
    RespondentCannotHandle,
    #[error("the respondent cannot investigate their own complaint (R-P4)")]
    RespondentCannotInvestigate,
    #[error("the respondent cannot sign the opinion on their own complaint (R-P4)")]
    RespondentCannotSign,
    #[error("a recused person cannot be assigned to or sign this case again (R-P4)")]
    RecusedCannotReturn,
    #[error("a recusal must record its reason (R-P4)")]
    RecusalNeedsReason,
    #[error("the respondent cannot contact the complainant about their own complaint (R-P4)")]
    RespondentCannotContact,
    #[error("the respondent cannot reply to the complainant about their own complaint (R-P4)")]
    RespondentCannotReply,
    #[error("the respondent cannot close their own complaint (R-P4)")]
    RespondentCannotClose,
    #[error("the respondent cannot draft the opinion on their own complaint (R-P4)")]
    RespondentCannotDraft,
    #[error("the handler must be cleared for the customer's confidentiality (R-C6)")]
    HandlerNotCleared,
    /// R-C6 with R-C3: a customer's agent must be cleared for the customer's level;
    /// assign a cleared agent first (before a raise), or name one.
    #[error("the customer's agent must be cleared for the customer's confidentiality (R-C6)")]
    AgentNotCleared,
    /// R-C6 with R-C3: the same for whoever holds the customer's open work (a case's
    /// handler, a request's agent): reassign it to someone cleared first.
    #[error("the customer's open work is held by staff not cleared for the new level: {0}; reassign it first (R-C6)")]
    HoldersNotCleared(String),
    #[error("the duplicate is classified above the survivor: raise the survivor to its level first (R-C6), then merge")]
    MergeLowersLevel,
    /// R-C3: a customer is owned by an agent, a staff member holding the agent role.
    #[error("a customer's agent must be a staff member with the agent role (R-C3)")]
    NotAnAgent,
    #[error("only the current handler may do this (R-P5)")]
    NotCurrentHandler,
    #[error("no handler is assigned (R-P5)")]
    NoHandlerAssigned,

    // Deciding (R-P5, R-P6, R-P9).
    #[error("a major complaint must be escalated before it is decided (R-P5)")]
    MajorComplaintNotEscalated,
    #[error("an escalated complaint is signed by the director or the committee (R-P5)")]
    EscalatedNeedsDirectorOrCommittee,
    #[error("a normal complaint is signed by its handler in the handler capacity (R-P9)")]
    NormalNeedsHandlerSignature,
    #[error("the complaint is already escalated")]
    AlreadyEscalated,
    #[error("an escalation goes to the director or the committee (R-P5)")]
    EscalationTarget,
    #[error("an investigation record must precede the signed opinion (R-P6)")]
    InvestigationRequired,
    #[error("the specialist's written opinion must precede the signature (R-P5)")]
    DraftOpinionRequired,
    #[error("the opinion is already signed")]
    AlreadySigned,
    #[error("the handler, who signs the opinion, cannot also draft it (R-P5)")]
    HandlerCannotDraft,
    #[error("whoever drafted this round's opinion cannot sign it, in any capacity (R-P5)")]
    DrafterCannotSign,
    #[error("the case is escalated to the {escalated_to}, who decides it (R-P5)")]
    NotTheDecidingBody { escalated_to: String },
    #[error("a committee decision records its meeting: date, members present, report to an authority (R-P5)")]
    CommitteeMeetingRequired,
    #[error("{present} members present, below the committee's quorum of {quorum} (R-P5)")]
    CommitteeQuorumNotMet { present: usize, quorum: usize },
    #[error("the signer of a committee decision must be among the members present (R-P5)")]
    SignerNotAtMeeting,
    #[error(
        "a member named present at the committee meeting is not registered or has left (R-P5)"
    )]
    CommitteeMemberNotOnStaff,
    #[error(
        "a member named present at the committee meeting does not sit on the committee (R-P5)"
    )]
    NotACommitteeMember,
    #[error(
        "a member named present at the committee meeting is not cleared for the customer's confidentiality (R-C6)"
    )]
    CommitteeMemberNotCleared,

    // Replies (R-P8, R-P10).
    #[error("no commitments before the decision: only acknowledgements until the opinion is signed (R-P8)")]
    NoCommitmentBeforeDecision,
    #[error("the final reply must be written: letter or email (R-P10)")]
    FinalReplyNotWritten,
    #[error("the final reply was already sent")]
    FinalReplyAlreadySent,

    // Closing, reopening, archiving.
    #[error("closing needs a signed opinion (R-P9)")]
    CloseNeedsSignedOpinion,
    #[error("closing needs the final reply (R-P8)")]
    CloseNeedsFinalReply,
    #[error("the complaint is closed")]
    ComplaintClosed,
    #[error("the complaint is not closed")]
    ComplaintNotClosed,
    #[error("the complaint is archived (R-P12)")]
    ComplaintArchived,
    #[error("a complaint callback happens after the complaint is closed (R-P13)")]
    CallbackBeforeClose,
    #[error("a complaint callback is of kind complaint (R-P13)")]
    CallbackKindMismatch,
    #[error("case {case_number} does not belong to archive year {year} (R-P12)")]
    ArchiveYearMismatch { case_number: String, year: i32 },
    #[error("a reopen records its cause (R-P14)")]
    ReopenNeedsCause,
    #[error("case {case_number} is archived only after its callback or its callback window, due {due} (R-P15)")]
    CallbackWindowOpen { case_number: String, due: String },

    // Materials (R-P2) and implementation (R-P9).
    #[error("material {number} is not among the case's materials (R-P2)")]
    MaterialNotFound { number: u32 },
    #[error(
        "material {number} was already superseded by material {by}: supersede the newer one (R-P2)"
    )]
    MaterialAlreadySuperseded { number: u32, by: u32 },
    #[error("a material superseding another records the reason (R-P2)")]
    SupersedingNeedsReason,
    #[error("a reason is recorded only with a material it supersedes (R-P2)")]
    ReasonWithoutSuperseding,
    #[error("the case holds the most materials it may ({max}) (R-P2)")]
    MaterialsExhausted { max: usize },
    #[error("the respondent cannot add materials to their own complaint (R-P4)")]
    RespondentCannotAddMaterial,
    #[error("the respondent cannot record the implementation on their own complaint (R-P4)")]
    RespondentCannotImplement,
    #[error("the implementation follows the signed opinion (R-P9)")]
    ImplementationBeforeSignature,
    #[error("an implementation cannot precede the signature of the opinion it carries out (R-T4)")]
    ImplementedBeforeSigning,
    #[error(
        "closing a case whose opinion promised a remedy needs its implementation record (R-P9)"
    )]
    CloseNeedsImplementation,

    // Service requests.
    #[error("service request is not received")]
    RequestNotReceived,
    #[error("service request is already received")]
    RequestAlreadyReceived,
    #[error("the service request is resolved")]
    RequestAlreadyResolved,
    #[error("the service request was escalated to {complaint}, which carries it on")]
    /// `complaint`: how the refusal names it (its number, or that the caller may not see it).
    RequestAlreadyEscalated { complaint: String },
    #[error("only the request's agent (or a supervisor stepping in) may do this")]
    NotRequestAgent,
    #[error("a response cannot precede the request's receipt (R-T4)")]
    ResponseBeforeReceipt,

    // Departures.
    #[error("the leaver's work cannot all be reassigned: {0} (R-C3)")]
    DepartureUnassignable(String),
}

impl DomainError {
    /// Stable machine-readable reason, e.g. `RESPONDENT_CANNOT_HANDLE` (gRPC `ErrorInfo`).
    pub fn code(&self) -> &'static str {
        use DomainError::*;
        match self {
            InvalidValue(_) => "INVALID_VALUE",
            CustomerNotRegistered => "CUSTOMER_NOT_REGISTERED",
            CustomerAlreadyRegistered => "CUSTOMER_ALREADY_REGISTERED",
            CustomerForgotten => "CUSTOMER_FORGOTTEN",
            CustomerMerged => "CUSTOMER_MERGED",
            MergeIntoItself => "MERGE_INTO_ITSELF",
            ComplaintNotFiled => "COMPLAINT_NOT_FILED",
            ComplaintAlreadyFiled => "COMPLAINT_ALREADY_FILED",
            StaffNotRegistered => "STAFF_NOT_REGISTERED",
            StaffAlreadyRegistered => "STAFF_ALREADY_REGISTERED",
            StaffDeparted => "STAFF_DEPARTED",
            GradingNeedsReason => "GRADING_NEEDS_REASON",
            GradeUnchanged => "GRADE_UNCHANGED",
            ReferrerUnknown => "REFERRER_UNKNOWN",
            SelfReferral => "SELF_REFERRAL",
            ReceivedInFuture => "RECEIVED_IN_FUTURE",
            DatedInFuture { .. } => "DATED_IN_FUTURE",
            DatedBeforeFloor { .. } => "DATED_BEFORE_FLOOR",
            AsOfOutOfWindow { .. } => "AS_OF_OUT_OF_WINDOW",
            ContactBeforeReceipt => "CONTACT_BEFORE_RECEIPT",
            CallbackBeforeClosure => "CALLBACK_BEFORE_CLOSURE",
            ContactBeforeRegistration => "CONTACT_BEFORE_REGISTRATION",
            CallbackBeforeRegistration => "CALLBACK_BEFORE_REGISTRATION",
            MeetingBeforeReceipt => "MEETING_BEFORE_RECEIPT",
            MeetingBeforeEscalation => "MEETING_BEFORE_ESCALATION",
            HandlerNotCleared => "HANDLER_NOT_CLEARED",
            AgentNotCleared => "AGENT_NOT_CLEARED",
            HoldersNotCleared(_) => "HOLDERS_NOT_CLEARED",
            MergeLowersLevel => "MERGE_LOWERS_LEVEL",
            NotAnAgent => "NOT_AN_AGENT",
            CommitteeMemberNotOnStaff => "COMMITTEE_MEMBER_NOT_ON_STAFF",
            NotACommitteeMember => "NOT_A_COMMITTEE_MEMBER",
            CommitteeMemberNotCleared => "COMMITTEE_MEMBER_NOT_CLEARED",
            CallbackWindowOpen { .. } => "CALLBACK_WINDOW_OPEN",
            DepartureUnassignable(_) => "DEPARTURE_UNASSIGNABLE",
            CaseNumberYearMismatch { .. } => "CASE_NUMBER_YEAR_MISMATCH",
            CaseNumbersExhausted { .. } => "CASE_NUMBERS_EXHAUSTED",
            RegisterYearMismatch { .. } => "REGISTER_YEAR_MISMATCH",
            PolicyVersionUnknown { .. } => "POLICY_VERSION_UNKNOWN",
            RespondentCannotHandle => "RESPONDENT_CANNOT_HANDLE",
            RespondentCannotInvestigate => "RESPONDENT_CANNOT_INVESTIGATE",
            RespondentCannotSign => "RESPONDENT_CANNOT_SIGN",
            RecusedCannotReturn => "RECUSED_CANNOT_RETURN",
            RecusalNeedsReason => "RECUSAL_NEEDS_REASON",
            RespondentCannotContact => "RESPONDENT_CANNOT_CONTACT",
            RespondentCannotReply => "RESPONDENT_CANNOT_REPLY",
            RespondentCannotClose => "RESPONDENT_CANNOT_CLOSE",
            RespondentCannotDraft => "RESPONDENT_CANNOT_DRAFT",
            NotCurrentHandler => "NOT_CURRENT_HANDLER",
            NoHandlerAssigned => "NO_HANDLER_ASSIGNED",
            MajorComplaintNotEscalated => "MAJOR_COMPLAINT_NOT_ESCALATED",
            EscalatedNeedsDirectorOrCommittee => "ESCALATED_NEEDS_DIRECTOR_OR_COMMITTEE",
            NormalNeedsHandlerSignature => "NORMAL_NEEDS_HANDLER_SIGNATURE",
            AlreadyEscalated => "ALREADY_ESCALATED",
            EscalationTarget => "ESCALATION_TARGET",
            InvestigationRequired => "INVESTIGATION_REQUIRED",
            DraftOpinionRequired => "DRAFT_OPINION_REQUIRED",
            AlreadySigned => "ALREADY_SIGNED",
            HandlerCannotDraft => "HANDLER_CANNOT_DRAFT",
            DrafterCannotSign => "DRAFTER_CANNOT_SIGN",
            NotTheDecidingBody { .. } => "NOT_THE_DECIDING_BODY",
            CommitteeMeetingRequired => "COMMITTEE_MEETING_REQUIRED",
            CommitteeQuorumNotMet { .. } => "COMMITTEE_QUORUM_NOT_MET",
            SignerNotAtMeeting => "SIGNER_NOT_AT_MEETING",
            NoCommitmentBeforeDecision => "NO_COMMITMENT_BEFORE_DECISION",
            FinalReplyNotWritten => "FINAL_REPLY_NOT_WRITTEN",
            FinalReplyAlreadySent => "FINAL_REPLY_ALREADY_SENT",
            CloseNeedsSignedOpinion => "CLOSE_NEEDS_SIGNED_OPINION",
            CloseNeedsFinalReply => "CLOSE_NEEDS_FINAL_REPLY",
            ComplaintClosed => "COMPLAINT_CLOSED",
            ComplaintNotClosed => "COMPLAINT_NOT_CLOSED",
            ComplaintArchived => "COMPLAINT_ARCHIVED",
            CallbackBeforeClose => "CALLBACK_BEFORE_CLOSE",
            CallbackKindMismatch => "CALLBACK_KIND_MISMATCH",
            ArchiveYearMismatch { .. } => "ARCHIVE_YEAR_MISMATCH",
            ReopenNeedsCause => "REOPEN_NEEDS_CAUSE",
            MaterialNotFound { .. } => "MATERIAL_NOT_FOUND",
            MaterialAlreadySuperseded { .. } => "MATERIAL_ALREADY_SUPERSEDED",
            SupersedingNeedsReason => "SUPERSEDING_NEEDS_REASON",
            ReasonWithoutSuperseding => "REASON_WITHOUT_SUPERSEDING",
            MaterialsExhausted { .. } => "MATERIALS_EXHAUSTED",
            RespondentCannotAddMaterial => "RESPONDENT_CANNOT_ADD_MATERIAL",
            RespondentCannotImplement => "RESPONDENT_CANNOT_IMPLEMENT",
            ImplementationBeforeSignature => "IMPLEMENTATION_BEFORE_SIGNATURE",
            ImplementedBeforeSigning => "IMPLEMENTED_BEFORE_SIGNING",
            CloseNeedsImplementation => "CLOSE_NEEDS_IMPLEMENTATION",
            RequestNotReceived => "REQUEST_NOT_RECEIVED",
            RequestAlreadyReceived => "REQUEST_ALREADY_RECEIVED",
            RequestAlreadyResolved => "REQUEST_ALREADY_RESOLVED",
            RequestAlreadyEscalated { .. } => "REQUEST_ALREADY_ESCALATED",
            NotRequestAgent => "NOT_REQUEST_AGENT",
            ResponseBeforeReceipt => "RESPONSE_BEFORE_RECEIPT",
        }
    }

    /// The rule of DOMAIN.md this refusal enforces, when there is one.
    pub fn rule(&self) -> Option<&'static str> {
        use DomainError::*;
        Some(match self {
            GradingNeedsReason | GradeUnchanged => "R-C2",
            StaffDeparted | DepartureUnassignable(_) | NotAnAgent => "R-C3",
            DatedInFuture { .. }
            | DatedBeforeFloor { .. }
            | ContactBeforeReceipt
            | CallbackBeforeClosure
            | ContactBeforeRegistration
            | CallbackBeforeRegistration
            | MeetingBeforeReceipt
            | MeetingBeforeEscalation
            | ImplementedBeforeSigning
            | ResponseBeforeReceipt => "R-T4",
            HandlerNotCleared
            | AgentNotCleared
            | HoldersNotCleared(_)
            | CommitteeMemberNotCleared
            | MergeLowersLevel => "R-C6",
            CallbackWindowOpen { .. } => "R-P15",
            ReferrerUnknown | SelfReferral => "R-C7",
            CustomerForgotten => "R-C8",
            CaseNumberYearMismatch { .. }
            | CaseNumbersExhausted { .. }
            | RegisterYearMismatch { .. } => "R-P1",
            PolicyVersionUnknown { .. } => "R-T3",
            ReceivedInFuture => "R-P3",
            RespondentCannotHandle
            | RespondentCannotInvestigate
            | RespondentCannotSign
            | RecusedCannotReturn
            | RecusalNeedsReason
            | RespondentCannotContact
            | RespondentCannotReply
            | RespondentCannotClose
            | RespondentCannotDraft
            | RespondentCannotAddMaterial
            | RespondentCannotImplement => "R-P4",
            NotCurrentHandler
            | NoHandlerAssigned
            | MajorComplaintNotEscalated
            | EscalatedNeedsDirectorOrCommittee
            | EscalationTarget
            | DraftOpinionRequired
            | HandlerCannotDraft
            | DrafterCannotSign
            | NotTheDecidingBody { .. }
            | CommitteeMeetingRequired
            | CommitteeQuorumNotMet { .. }
            | SignerNotAtMeeting
            | CommitteeMemberNotOnStaff
            | NotACommitteeMember => "R-P5",
            InvestigationRequired => "R-P6",
            NoCommitmentBeforeDecision | CloseNeedsFinalReply => "R-P8",
            MaterialNotFound { .. }
            | MaterialAlreadySuperseded { .. }
            | SupersedingNeedsReason
            | ReasonWithoutSuperseding
            | MaterialsExhausted { .. } => "R-P2",
            NormalNeedsHandlerSignature
            | CloseNeedsSignedOpinion
            | ImplementationBeforeSignature
            | CloseNeedsImplementation => "R-P9",
            FinalReplyNotWritten => "R-P10",
            ComplaintArchived | ArchiveYearMismatch { .. } => "R-P12",
            CallbackBeforeClose | CallbackKindMismatch => "R-P13",
            ReopenNeedsCause => "R-P14",
            InvalidValue(_)
            | CustomerNotRegistered
            | CustomerAlreadyRegistered
            | CustomerMerged
            | MergeIntoItself
            | ComplaintNotFiled
            | ComplaintAlreadyFiled
            | StaffNotRegistered
            | StaffAlreadyRegistered
            | AsOfOutOfWindow { .. }
            | AlreadyEscalated
            | AlreadySigned
            | FinalReplyAlreadySent
            | ComplaintClosed
            | ComplaintNotClosed
            | RequestNotReceived
            | RequestAlreadyReceived
            | RequestAlreadyResolved
            | RequestAlreadyEscalated { .. }
            | NotRequestAgent => return None,
        })
    }

    pub fn kind(&self) -> ErrorKind {
        use DomainError::*;
        match self {
            InvalidValue(_)
            | DatedInFuture { .. }
            | DatedBeforeFloor { .. }
            | AsOfOutOfWindow { .. }
            | ContactBeforeReceipt
            | CallbackBeforeClosure
            | ContactBeforeRegistration
            | CallbackBeforeRegistration
            | MeetingBeforeReceipt
            | MeetingBeforeEscalation
            | ReceivedInFuture
            | CallbackKindMismatch
            | EscalationTarget
            | SelfReferral
            | MergeIntoItself
            | GradingNeedsReason
            | RecusalNeedsReason
            | ReopenNeedsCause
            | CommitteeMeetingRequired
            | MaterialNotFound { .. }
            | SupersedingNeedsReason
            | ReasonWithoutSuperseding
            | ImplementedBeforeSigning
            | ResponseBeforeReceipt => ErrorKind::InvalidArgument,
            CustomerNotRegistered
            | ComplaintNotFiled
            | StaffNotRegistered
            | ReferrerUnknown
            | RequestNotReceived => ErrorKind::NotFound,
            CustomerAlreadyRegistered
            | ComplaintAlreadyFiled
            | StaffAlreadyRegistered
            | RequestAlreadyReceived => ErrorKind::AlreadyExists,
            CaseNumbersExhausted { .. } | MaterialsExhausted { .. } => ErrorKind::ResourceExhausted,
            CustomerForgotten
            | CustomerMerged
            | StaffDeparted
            | GradeUnchanged
            | CaseNumberYearMismatch { .. }
            | RegisterYearMismatch { .. }
            | PolicyVersionUnknown { .. }
            | RespondentCannotHandle
            | RespondentCannotInvestigate
            | RespondentCannotSign
            | RespondentCannotContact
            | RespondentCannotReply
            | RespondentCannotClose
            | RespondentCannotDraft
            | HandlerCannotDraft
            | DrafterCannotSign
            | NotTheDecidingBody { .. }
            | CommitteeQuorumNotMet { .. }
            | SignerNotAtMeeting
            | CommitteeMemberNotOnStaff
            | NotACommitteeMember
            | CommitteeMemberNotCleared
            | HandlerNotCleared
            | AgentNotCleared
            | HoldersNotCleared(_)
            | MergeLowersLevel
            | NotAnAgent
            | RecusedCannotReturn
            | NotCurrentHandler
            | NoHandlerAssigned
            | MajorComplaintNotEscalated
            | EscalatedNeedsDirectorOrCommittee
            | NormalNeedsHandlerSignature
            | AlreadyEscalated
            | InvestigationRequired
            | DraftOpinionRequired
            | AlreadySigned
            | NoCommitmentBeforeDecision
            | FinalReplyNotWritten
            | FinalReplyAlreadySent
            | CloseNeedsSignedOpinion
            | CloseNeedsFinalReply
            | ComplaintClosed
            | ComplaintNotClosed
            | ComplaintArchived
            | CallbackBeforeClose
            | ArchiveYearMismatch { .. }
            | CallbackWindowOpen { .. }
            | DepartureUnassignable(_)
            | MaterialAlreadySuperseded { .. }
            | RespondentCannotAddMaterial
            | RespondentCannotImplement
            | ImplementationBeforeSignature
            | CloseNeedsImplementation
            | RequestAlreadyResolved
            | RequestAlreadyEscalated { .. }
            | NotRequestAgent => ErrorKind::FailedPrecondition,
        }
    }

    /// The request field a refusal is about, when it is about one (the API names it
    /// in the status's field violation).
    pub fn field(&self) -> Option<&'static str> {
        use DomainError::*;
        match self {
            InvalidValue(value) => Some(value.field),
            DatedInFuture { field } | DatedBeforeFloor { field } | AsOfOutOfWindow { field } => {
                Some(field)
            }
            ReceivedInFuture => Some("received_at"),
            ContactBeforeReceipt | ContactBeforeRegistration => Some("contacted_at"),
            CallbackBeforeClosure | CallbackBeforeRegistration => Some("called_at"),
            MeetingBeforeReceipt | MeetingBeforeEscalation => Some("meeting.held_at"),
            MaterialNotFound { .. } => Some("supersedes"),
            SupersedingNeedsReason | ReasonWithoutSuperseding => Some("reason"),
            ImplementedBeforeSigning => Some("implemented_at"),
            ResponseBeforeReceipt => Some("responded_at"),
            _ => None,
        }
    }
}
