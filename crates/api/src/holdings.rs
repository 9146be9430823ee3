//! R-C6 at start: owners and handlers whose tokens no longer clear them for what they
//! hold. Clearance lives in the tokens file, outside the log, so lowering a token's
//! clearance between starts changes nobody's customers or cases; kefu names each such
//! holder when it starts (a warning per holder), and the remedy is an assignment
//! (`AssignAgent`, `AssignHandler`) or a departure, which hand work only to someone
//! cleared (docs/security.md, docs/operations.md). Meanwhile the holder reads nothing
//! above their clearance: every read checks the reader's token.

use kefu_domain::Confidentiality;
use kefu_projection::queries::Holding;
use kefu_projection::{ProjectionError, ReadModels};

use crate::access::{duty_clearance, Duty};
use crate::auth::Tokens;

/// What one staff member holds above the clearance their tokens give them for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncleared {
    pub staff: String,
    /// `customers` (as their agent) or `cases` (open, as their handler).
    pub what: &'static str,
    pub count: i64,
    /// The highest level among them.
    pub level: Confidentiality,
    /// Their clearance for that work (`None`: no token lets them do it).
    pub clearance: Option<Confidentiality>,
}

const LEVELS: [Confidentiality; 4] = [
    Confidentiality::Public,
    Confidentiality::Internal,
    Confidentiality::Confidential,
    Confidentiality::Secret,
];

/// Every holder the read models show holding customers or open cases above their
/// clearance, by staff member and kind of work.
pub async fn uncleared(
    models: &ReadModels,
    tokens: &Tokens,
) -> Result<Vec<Uncleared>, ProjectionError> {
    Ok(of(&models.holdings().await?, tokens))
}

fn of(holdings: &[Holding], tokens: &Tokens) -> Vec<Uncleared> {
    let mut found: Vec<Uncleared> = Vec::new();
    for holding in holdings {
        let level = usize::try_from(holding.rank)
            .ok()
            .and_then(|rank| LEVELS.get(rank).copied())
            .unwrap_or(Confidentiality::Secret);
        let duty = if holding.cases { Duty::HandleCase } else { Duty::OwnCustomer };
        let clearance = duty_clearance(tokens, &holding.staff, duty);
        if clearance.is_some_and(|clearance| level <= clearance) {
            continue;
        }
        let what = if holding.cases { "cases" } else { "customers" };
        match found.iter_mut().find(|u| u.staff == holding.staff && u.what == what) {
            Some(known) => {
                known.count += holding.count;
                known.level = known.level.max(level);
            }
            None => found.push(Uncleared {
                staff: holding.staff.clone(),
                what,
                count: holding.count,
                level,
                clearance,
            }),
        }
    }
    found
}
