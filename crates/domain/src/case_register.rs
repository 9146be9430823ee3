//! R-P1: the yearly case register that issues case numbers, unique and never reused.
//!
//! Each year has one register stream, `caseregister-<year>`, whose events are the
//! numbers issued, in order. Issuing is `decide` on the folded register (the last
//! number + 1) and an append with the register's version as the expected version.
//! Two filings racing for the same number load the same version; the store lets only
//! one append succeed and the other gets a conflict, reloads and takes the next number.
//! So no number is issued twice, and since the log is append-only none is reused. The
//! API derives the event id from the filing's request id, so a retried filing gets the
//! number it was first given rather than a new one.
//!
//! The year is computed once per filing, by [`case_year`] of the filing's instant, and
//! the command carries it: the register of a year refuses to issue a number to a filing
//! of another year, and a register whose last number is of another year (a log written
//! before this rule, when a filing straddling midnight numbered with a later clock)
//! refuses to go on from it rather than start that year's sequence again.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::codec::{event_enum, no_upcasters};
use crate::error::DomainError;
use crate::ids::{CaseNumber, ComplaintId};

/// The stream category of case registers.
pub const CATEGORY: &str = "caseregister";

/// The case-register year of a filing made at `at` (R-P1): the one place that says
/// which year an instant belongs to for numbering, so the register a filing uses, the
/// number's year and the filing's year always agree.
pub fn case_year(at: DateTime<Utc>) -> i32 {
    at.year()
}

/// The register stream of `year`.
pub fn stream_name(year: i32) -> String {
    format!("{CATEGORY}-{year}")
}

/// The number after `last` in `year`: `year-000001` for the first of a year.
pub fn next_case_number(year: i32, last: Option<CaseNumber>) -> Result<CaseNumber, DomainError> {
    let sequence = match last {
        Some(last) if last.year() == year => last.sequence() + 1,
        _ => 1,
    };
    if sequence > CaseNumber::MAX_SEQUENCE {
        return Err(DomainError::CaseNumbersExhausted { year });
    }
    Ok(CaseNumber::new(year, sequence)?)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseNumberIssued {
    pub case_number: CaseNumber,
    pub complaint_id: ComplaintId,
    pub issued_at: DateTime<Utc>,
}

event_enum!(
    /// Everything that happens in a `caseregister-<year>` stream.
    CaseRegisterEvent, upcast = no_upcasters, {
        CaseNumberIssued = 1,
    }
);

/// Issue the next number of the register's year to a complaint filed in that year.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueCaseNumber {
    pub complaint_id: ComplaintId,
    /// The year of the register stream the command is decided on.
    pub year: i32,
}

/// The `CaseRegister` aggregate; its state is the last number issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseRegister;

impl Aggregate for CaseRegister {
    type State = Option<CaseNumber>;
    type Command = IssueCaseNumber;
    type Event = CaseRegisterEvent;

    const STATE_FROM_LAST_EVENT: bool = true;

    fn decide(
        last: &Option<CaseNumber>,
        command: IssueCaseNumber,
        now: DateTime<Utc>,
    ) -> Result<Vec<CaseRegisterEvent>, DomainError> {
        let year = command.year;
        let foreign = last.filter(|last| last.year() != year).map(|last| last.year());
        if case_year(now) != year || foreign.is_some() {
            return Err(DomainError::RegisterYearMismatch {
                register: year,
                year: foreign.unwrap_or_else(|| case_year(now)),
            });
        }
        let case_number = next_case_number(year, *last)?;
        Ok(vec![CaseNumberIssued {
            case_number,
            complaint_id: command.complaint_id,
            issued_at: now,
        }
        .into()])
    }

    fn evolve(_: Option<CaseNumber>, event: &CaseRegisterEvent) -> Option<CaseNumber> {
        let CaseRegisterEvent::CaseNumberIssued(issued) = event;
        Some(issued.case_number)
    }
}
