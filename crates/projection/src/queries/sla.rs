//! R-T5: obligations at risk, before their deadline passes: every open deadline whose
//! warning point (its policy's `at_risk_percent` of its target, stored with the case,
//! R-T3) has passed as of `now`. Breaches are [`super::operations`]'.

use chrono::{DateTime, Utc};
use kefu_domain::{Policy, SlaRule, Tier};

use super::operations::{callback_owner, CALLBACK_PENDING};
use super::row_access::{case_columns, CUSTOMER_COLUMNS};
use super::{ReadModels, RowAccess, SlaKind};
use crate::error::ProjectionError;
use crate::params;

/// One obligation at risk: not yet due, past its warning point.
#[derive(Debug, Clone, PartialEq)]
pub struct AtRisk {
    pub kind: SlaKind,
    /// The complaint, customer or service request id.
    pub subject_id: String,
    /// The case number, for complaints.
    pub case_number: Option<String>,
    /// Who owns the obligation: the handler (if any) or the agent.
    pub owner: Option<String>,
    /// When the item became at risk.
    pub at_risk_from: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Who may see it.
    pub access: RowAccess,
}

impl ReadModels {
    /// Every obligation at risk as of `now` (R-T5), earliest deadline first. Cases
    /// are held to their stored warning points; customers' first contacts to `policy`,
    /// the one in force (R-C4).
    pub async fn sla_at_risk(
        &self,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<AtRisk>, ProjectionError> {
        let mut items = Vec::new();
        // Each rule: the rows still owing it, their start and their stored deadline.
        let access = case_columns("rm_complaints");
        let rules = [
            (
                SlaKind::FirstResponse,
                format!("SELECT {access}, complaint_id, case_number, handler, first_response_at_risk_at AS risk_at, \
                 first_response_due_at AS due_at FROM rm_complaints WHERE status = 'open' \
                 AND first_response_at IS NULL AND first_response_at_risk_at <= $1 \
                 AND first_response_due_at >= $1"),
            ),
            (
                SlaKind::ResolutionOverdue,
                format!("SELECT {access}, complaint_id, case_number, handler, resolution_at_risk_at AS risk_at, \
                 resolution_due_at AS due_at FROM rm_complaints WHERE status = 'open' \
                 AND resolution_at_risk_at <= $1 AND resolution_due_at >= $1"),
            ),
            (
                SlaKind::CallbackOverdue,
                format!("SELECT {access}, complaint_id, case_number, {} AS handler, \
                 callback_at_risk_at AS risk_at, \
                 callback_due_at AS due_at FROM rm_complaints WHERE {CALLBACK_PENDING} \
                 AND callback_at_risk_at <= $1 AND callback_due_at >= $1",
                 callback_owner("rm_complaints")),
            ),
        ];
        for (kind, sql) in rules {
            for row in self.db().fetch_all(&sql, &params![now]).await? {
                items.push(AtRisk {
                    kind,
                    subject_id: row.text("complaint_id")?,
                    case_number: Some(row.text("case_number")?),
                    owner: row.opt_text("handler")?,
                    at_risk_from: row.time("risk_at")?,
                    due_at: row.time("due_at")?,
                    access: RowAccess::of_case(&row)?,
                });
            }
        }
        for (request, access) in self.request_first_responses(now, true).await? {
            items.push(AtRisk {
                kind: SlaKind::RequestFirstResponse,
                subject_id: request.request_id,
                case_number: None,
                owner: request.agent,
                at_risk_from: request.first_response_at_risk_at,
                due_at: request.first_response_due_at,
                access,
            });
        }
        for callback in self.request_callbacks(super::requests::Window::AtRisk, now).await? {
            items.push(AtRisk {
                kind: SlaKind::RequestCallbackOverdue,
                subject_id: callback.request_id,
                case_number: None,
                owner: callback.owner,
                at_risk_from: callback.at_risk_at,
                due_at: callback.due_at,
                access: callback.access,
            });
        }
        let rows = self
            .db()
            .fetch_all(
                &format!(
                    "SELECT customer_id, agent, tier, registered_at, {CUSTOMER_COLUMNS} {}",
                    super::operations::NOT_CONTACTED
                ),
                &[],
            )
            .await?;
        for row in rows {
            let tier: Tier =
                row.text("tier")?.parse().map_err(|e| ProjectionError::Corrupt(format!("{e}")))?;
            let registered_at = row.time("registered_at")?;
            let deadline =
                policy.deadline(SlaRule::NewCustomerContact, registered_at, None, Some(tier));
            let (from, due_at) = (deadline.at_risk, deadline.due);
            if from <= now && now <= due_at {
                items.push(AtRisk {
                    kind: SlaKind::NewCustomerNotContacted,
                    subject_id: row.text("customer_id")?,
                    case_number: None,
                    owner: Some(row.text("agent")?),
                    at_risk_from: from,
                    due_at,
                    access: RowAccess::of_customer(&row)?,
                });
            }
        }
        items.sort_by(|a, b| a.due_at.cmp(&b.due_at).then_with(|| a.subject_id.cmp(&b.subject_id)));
        Ok(items)
    }

    /// How many obligations of each rule are at risk as of `now` (for the gauges).
    pub async fn sla_at_risk_counts(
        &self,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<(SlaKind, u64)>, ProjectionError> {
        let items = self.sla_at_risk(now, policy).await?;
        let kinds = [
            SlaKind::FirstResponse,
            SlaKind::ResolutionOverdue,
            SlaKind::CallbackOverdue,
            SlaKind::NewCustomerNotContacted,
            SlaKind::RequestFirstResponse,
            SlaKind::RequestCallbackOverdue,
        ];
        Ok(kinds
            .into_iter()
            .map(|kind| {
                let n = items.iter().filter(|item| item.kind == kind).count();
                (kind, u64::try_from(n).unwrap_or(u64::MAX))
            })
            .collect())
    }
}
