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
    #[error("an event cannot be dated in the future")]
    DatedInFuture,
    #[error("case number {case_number} is not of the filing year {year} (R-P1)")]
    CaseNumberYearMismatch { case_number: String, year: i32 },
    #[error("all case numbers of {year} are used (R-P1)")]
    CaseNumbersExhausted { year: i32 },

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
            DatedInFuture => "DATED_IN_FUTURE",
            CaseNumberYearMismatch { .. } => "CASE_NUMBER_YEAR_MISMATCH",
            CaseNumbersExhausted { .. } => "CASE_NUMBERS_EXHAUSTED",
            RespondentCannotHandle => "RESPONDENT_CANNOT_HANDLE",
            RespondentCannotInvestigate => "RESPONDENT_CANNOT_INVESTIGATE",
            RespondentCannotSign => "RESPONDENT_CANNOT_SIGN",
            RecusedCannotReturn => "RECUSED_CANNOT_RETURN",
            RecusalNeedsReason => "RECUSAL_NEEDS_REASON",
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
        }
    }

    /// The rule of DOMAIN.md this refusal enforces, when there is one.
    pub fn rule(&self) -> Option<&'static str> {
        use DomainError::*;
        Some(match self {
            GradingNeedsReason | GradeUnchanged => "R-C2",
            StaffDeparted => "R-C3",
            ReferrerUnknown | SelfReferral => "R-C7",
            CustomerForgotten => "R-C8",
            CaseNumberYearMismatch { .. } | CaseNumbersExhausted { .. } => "R-P1",
            ReceivedInFuture => "R-P3",
            RespondentCannotHandle
            | RespondentCannotInvestigate
            | RespondentCannotSign
            | RecusedCannotReturn
            | RecusalNeedsReason => "R-P4",
            NotCurrentHandler
            | NoHandlerAssigned
            | MajorComplaintNotEscalated
            | EscalatedNeedsDirectorOrCommittee
            | EscalationTarget
            | DraftOpinionRequired => "R-P5",
            InvestigationRequired => "R-P6",
            NoCommitmentBeforeDecision | CloseNeedsFinalReply => "R-P8",
            NormalNeedsHandlerSignature | CloseNeedsSignedOpinion => "R-P9",
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
            | DatedInFuture
            | AlreadyEscalated
            | AlreadySigned
            | FinalReplyAlreadySent
            | ComplaintClosed
            | ComplaintNotClosed => return None,
        })
    }

    pub fn kind(&self) -> ErrorKind {
        use DomainError::*;
        match self {
            InvalidValue(_) | DatedInFuture | ReceivedInFuture | CallbackKindMismatch
            | EscalationTarget | SelfReferral | MergeIntoItself | GradingNeedsReason
            | RecusalNeedsReason | ReopenNeedsCause => ErrorKind::InvalidArgument,
            CustomerNotRegistered | ComplaintNotFiled | StaffNotRegistered | ReferrerUnknown => {
                ErrorKind::NotFound
            }
            CustomerAlreadyRegistered | ComplaintAlreadyFiled | StaffAlreadyRegistered => {
                ErrorKind::AlreadyExists
            }
            CaseNumbersExhausted { .. } => ErrorKind::ResourceExhausted,
            CustomerForgotten
            | CustomerMerged
            | StaffDeparted
            | GradeUnchanged
            | CaseNumberYearMismatch { .. }
            | RespondentCannotHandle
            | RespondentCannotInvestigate
            | RespondentCannotSign
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
            | ArchiveYearMismatch { .. } => ErrorKind::FailedPrecondition,
        }
    }
}
