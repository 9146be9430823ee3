//! The operations dashboard (R-R3): open cases, ageing, workload, SLA breaches, and the
//! callbacks and contacts that are due (R-C4, R-C5, R-P15). Time rules are evaluated
//! here, against the caller's clock, never stored: a case's deadlines are the ones its
//! policy gave it (R-T3, stored with the case), compared with `now`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use kefu_domain::time::{earlier, later};
use kefu_domain::{Policy, SlaRule, StarLevel, Tier};

use super::requests::{self, Window};
use super::row_access::{case_columns, CUSTOMER_COLUMNS};
use super::{ReadModels, RowAccess};
use crate::error::{non_negative, ProjectionError};
use crate::params;
use crate::projections::live_counts::{AGENT_CUSTOMERS, HANDLER_OPEN_CASES};

/// Which time rule a breach or a due item is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SlaKind {
    /// R-P7: an open case got no first response by its deadline.
    FirstResponse,
    /// An open case not closed by its resolution deadline.
    ResolutionOverdue,
    /// R-P15: a closed case had no callback within 3 days.
    CallbackOverdue,
    /// R-C4: a new customer was not contacted within 3 days.
    NewCustomerNotContacted,
    /// R-P7: an open service request got no first response by its deadline.
    RequestFirstResponse,
    /// R-P15: a resolved after-sales request had no callback by its deadline.
    RequestCallbackOverdue,
}

/// One breached obligation.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaBreach {
    pub kind: SlaKind,
    /// The complaint, customer or service request id.
    pub subject_id: String,
    /// The case number, for complaints.
    pub case_number: Option<String>,
    /// Who owns the obligation: the handler (if any) or the agent.
    pub owner: Option<String>,
    pub due_at: DateTime<Utc>,
    pub overdue_seconds: i64,
    /// Who may see it.
    pub access: RowAccess,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaBreachCounts {
    pub first_response: u64,
    pub resolution_overdue: u64,
    pub callback_overdue: u64,
    pub new_customer_not_contacted: u64,
    /// R-P7: open service requests with no first response by their deadline.
    pub request_first_response: u64,
    /// R-P15: resolved after-sales requests not called back by their deadline.
    pub request_callback_overdue: u64,
}

/// Load of one staff member: what balanced assignment (R-C3) and the dashboard need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerLoad {
    pub staff_id: String,
    /// `None` for someone holding work without a staff record.
    pub name: Option<String>,
    /// False for people who left, or who appear on records but were never registered.
    pub active: bool,
    pub roles: Vec<String>,
    pub open_cases: u64,
    pub open_major_cases: u64,
    pub customers: u64,
}

/// The R-R3 dashboard at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dashboard {
    /// Open cases by `(stage, severity)`.
    pub open_by_stage: Vec<(String, String, u64)>,
    /// Open cases by age since receipt: `0-1d`, `1-3d`, `3-7d`, `7-30d`, `30d+`.
    pub ageing: Vec<(&'static str, u64)>,
    pub workload: Vec<HandlerLoad>,
    pub breaches: SlaBreachCounts,
}

/// What kind of contact is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DueKind {
    /// R-P15: callback on a closed complaint.
    ComplaintCallback,
    /// R-C4: first contact with a new customer.
    NewCustomerContact,
    /// R-C5: routine callback by grade cadence.
    RoutineCallback,
    /// R-P15: callback after an after-sales request was resolved.
    RequestCallback,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DueCallback {
    pub kind: DueKind,
    pub customer_id: String,
    pub complaint_id: Option<String>,
    pub case_number: Option<String>,
    /// The service request it follows (R-P15), for a request callback.
    pub request_id: Option<String>,
    /// The handler or agent expected to make it.
    pub owner: Option<String>,
    pub due_at: DateTime<Utc>,
    pub overdue: bool,
    /// Who may see it.
    pub access: RowAccess,
}

const AGE_BUCKETS: [(&str, i64); 5] =
    [("0-1d", 1), ("1-3d", 3), ("3-7d", 7), ("7-30d", 30), ("30d+", i64::MAX)];

/// The open cases whose first response came late or not yet while due (R-P7), as of $1.
const FIRST_RESPONSE_BREACHED: &str = "FROM rm_complaints WHERE status = 'open' AND \
     ((first_response_at IS NULL AND first_response_due_at < $1) \
     OR first_response_at > first_response_due_at)";
/// The open cases past their resolution deadline as of $1.
const RESOLUTION_OVERDUE: &str =
    "FROM rm_complaints WHERE status = 'open' AND resolution_due_at < $1";
/// Closed cases whose callback is pending (R-P15): `status = 'closed' AND
/// callback_pending`, spelled as the partial index `rm_complaints_callback_pending` is
/// so that the query reads only them. Archived cases owe nothing more: archiving waits
/// for the callback or its window (R-P12).
macro_rules! callback_pending {
    () => {
        "callback_pending AND archived_at IS NULL"
    };
}
pub(super) const CALLBACK_PENDING: &str = callback_pending!();

/// Who makes the callback of a complaint row of `table` (an alias or the table's name):
/// the customer's own agent, to whom `LogCallback` of kind complaint belongs (R-C3, the
/// access table), a merged duplicate's survivor's agent; not the case's handler. Nobody
/// (NULL: a supervisor's to make) when that agent is the case's respondent (R-P4).
pub(super) fn callback_owner(table: &str) -> String {
    format!(
        "(SELECT NULLIF(COALESCE(sv.agent, m.agent), {table}.respondent) FROM rm_customers m \
         LEFT JOIN rm_customers sv ON sv.customer_id = m.merged_into \
         WHERE m.customer_id = {table}.customer_id)"
    )
}
/// Closed cases whose callback is pending past its deadline as of $1.
const CALLBACK_OVERDUE: &str =
    concat!("FROM rm_complaints WHERE ", callback_pending!(), " AND callback_due_at < $1");
/// Customers not contacted yet (R-C4); whether they are late depends on their tier's
/// target, decided in [`ReadModels::uncontacted`]. A merged duplicate is contacted as
/// its survivor.
pub(super) const NOT_CONTACTED: &str = "FROM rm_customers WHERE first_contact_at IS NULL \
     AND forgotten_at IS NULL AND merged_into IS NULL";

/// A customer awaiting their first contact, and when it is due.
struct Uncontacted {
    customer_id: String,
    agent: String,
    due_at: DateTime<Utc>,
    access: RowAccess,
}

impl ReadModels {
    pub async fn dashboard(
        &self,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Dashboard, ProjectionError> {
        let rows = self
            .db()
            .fetch_all(
                "SELECT stage, severity, COUNT(*) AS n FROM rm_complaints WHERE status = 'open' \
                 GROUP BY stage, severity ORDER BY stage, severity",
                &[],
            )
            .await?;
        let open_by_stage = rows
            .iter()
            .map(|row| {
                Ok((
                    row.text("stage")?,
                    row.text("severity")?,
                    non_negative("count", row.int("n")?)?,
                ))
            })
            .collect::<Result<Vec<_>, ProjectionError>>()?;

        let received: Vec<DateTime<Utc>> = self
            .db()
            .fetch_all("SELECT received_at FROM rm_complaints WHERE status = 'open'", &[])
            .await?
            .iter()
            .map(|row| row.time("received_at"))
            .collect::<Result<_, _>>()?;
        let mut ageing: Vec<(&'static str, u64)> =
            AGE_BUCKETS.iter().map(|(name, _)| (*name, 0)).collect();
        for received_at in received {
            let days = (now - received_at).num_seconds().max(0) / 86_400;
            let bucket = AGE_BUCKETS
                .iter()
                .position(|(_, below)| days < *below)
                .unwrap_or(AGE_BUCKETS.len() - 1);
            ageing[bucket].1 += 1;
        }

        let breaches = self.sla_breach_counts(now, policy).await?;
        Ok(Dashboard { open_by_stage, ageing, workload: self.workload().await?, breaches })
    }

    /// How many obligations of each rule are breached as of `now`: the rows
    /// [`ReadModels::sla_breaches`] lists, counted in the database (what a dashboard
    /// or a metrics scrape needs, at the cost of five counts).
    pub async fn sla_breach_counts(
        &self,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<SlaBreachCounts, ProjectionError> {
        let count = |from_where: &'static str| async move {
            let rows = self
                .db()
                .fetch_all(&format!("SELECT COUNT(*) AS n {from_where}"), &params![now])
                .await?;
            let n = rows.first().map(|row| row.int("n")).transpose()?.unwrap_or(0);
            non_negative("count", n)
        };
        let late_contacts =
            self.uncontacted(policy).await?.iter().filter(|c| c.due_at < now).count();
        Ok(SlaBreachCounts {
            first_response: count(FIRST_RESPONSE_BREACHED).await?,
            resolution_overdue: count(RESOLUTION_OVERDUE).await?,
            callback_overdue: count(CALLBACK_OVERDUE).await?,
            new_customer_not_contacted: u64::try_from(late_contacts)
                .map_err(|_| ProjectionError::Corrupt("count".into()))?,
            request_first_response: count(requests::FIRST_RESPONSE_BREACHED).await?,
            request_callback_overdue: count(requests::CALLBACK_OVERDUE).await?,
        })
    }

    /// Customers awaiting their first contact, with its deadline under `policy` for
    /// their tier (R-C4, R-T3), earliest registration first.
    async fn uncontacted(&self, policy: &Policy) -> Result<Vec<Uncontacted>, ProjectionError> {
        let rows = self
            .db()
            .fetch_all(
                &format!(
                    "SELECT customer_id, agent, tier, registered_at, {CUSTOMER_COLUMNS} \
                     {NOT_CONTACTED} ORDER BY registered_at"
                ),
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let tier: Tier = row
                    .text("tier")?
                    .parse()
                    .map_err(|e| ProjectionError::Corrupt(format!("{e}")))?;
                let registered_at = row.time("registered_at")?;
                Ok(Uncontacted {
                    customer_id: row.text("customer_id")?,
                    agent: row.text("agent")?,
                    due_at: policy.due(
                        SlaRule::NewCustomerContact,
                        registered_at,
                        None,
                        Some(tier),
                    ),
                    access: RowAccess::of_customer(row)?,
                })
            })
            .collect()
    }

    /// Every obligation whose deadline has passed unmet, as of `now`.
    pub async fn sla_breaches(
        &self,
        now: DateTime<Utc>,
        policy: &Policy,
    ) -> Result<Vec<SlaBreach>, ProjectionError> {
        let mut breaches = Vec::new();
        let access = case_columns("rm_complaints");
        let rows = self
            .db()
            .fetch_all(
                &format!(
                    "SELECT {access}, complaint_id, case_number, handler, first_response_due_at, \
                     first_response_at \
                     {FIRST_RESPONSE_BREACHED} ORDER BY received_at"
                ),
                &params![now],
            )
            .await?;
        for row in rows {
            let due_at = row.time("first_response_due_at")?;
            let met_at = row.opt_time("first_response_at")?.unwrap_or(now);
            breaches.push(SlaBreach {
                kind: SlaKind::FirstResponse,
                subject_id: row.text("complaint_id")?,
                case_number: Some(row.text("case_number")?),
                owner: row.opt_text("handler")?,
                due_at,
                overdue_seconds: (met_at - due_at).num_seconds(),
                access: RowAccess::of_case(&row)?,
            });
        }

        let rows = self
            .db()
            .fetch_all(
                &format!(
                    "SELECT {access}, complaint_id, case_number, handler, resolution_due_at \
                     {RESOLUTION_OVERDUE} \
                     ORDER BY received_at"
                ),
                &params![now],
            )
            .await?;
        for row in rows {
            let due_at = row.time("resolution_due_at")?;
            breaches.push(SlaBreach {
                kind: SlaKind::ResolutionOverdue,
                subject_id: row.text("complaint_id")?,
                case_number: Some(row.text("case_number")?),
                owner: row.opt_text("handler")?,
                due_at,
                overdue_seconds: (now - due_at).num_seconds(),
                access: RowAccess::of_case(&row)?,
            });
        }

        let rows = self
            .db()
            .fetch_all(
                &format!(
                    "SELECT {access}, complaint_id, case_number, {} AS handler, callback_due_at \
                     {CALLBACK_OVERDUE} \
                     ORDER BY closed_at",
                    callback_owner("rm_complaints")
                ),
                &params![now],
            )
            .await?;
        for row in rows {
            let due_at = row.time("callback_due_at")?;
            breaches.push(SlaBreach {
                kind: SlaKind::CallbackOverdue,
                subject_id: row.text("complaint_id")?,
                case_number: Some(row.text("case_number")?),
                owner: row.opt_text("handler")?,
                due_at,
                overdue_seconds: (now - due_at).num_seconds(),
                access: RowAccess::of_case(&row)?,
            });
        }

        for (request, access) in self.request_first_responses(now, false).await? {
            let due_at = request.first_response_due_at;
            breaches.push(SlaBreach {
                kind: SlaKind::RequestFirstResponse,
                subject_id: request.request_id,
                case_number: None,
                owner: request.agent,
                due_at,
                overdue_seconds: (now - due_at).num_seconds(),
                access,
            });
        }
        for callback in self.request_callbacks(Window::Breached, now).await? {
            breaches.push(SlaBreach {
                kind: SlaKind::RequestCallbackOverdue,
                subject_id: callback.request_id,
                case_number: None,
                owner: callback.owner,
                due_at: callback.due_at,
                overdue_seconds: (now - callback.due_at).num_seconds(),
                access: callback.access,
            });
        }

        for customer in self.uncontacted(policy).await? {
            if customer.due_at < now {
                breaches.push(SlaBreach {
                    kind: SlaKind::NewCustomerNotContacted,
                    subject_id: customer.customer_id,
                    case_number: None,
                    owner: Some(customer.agent),
                    due_at: customer.due_at,
                    overdue_seconds: (now - customer.due_at).num_seconds(),
                    access: customer.access,
                });
            }
        }
        Ok(breaches)
    }

    /// Open cases per handler and customers per agent, for every registered staff member
    /// (and anyone still holding work without a staff record).
    pub async fn workload(&self) -> Result<Vec<HandlerLoad>, ProjectionError> {
        let mut loads: BTreeMap<String, HandlerLoad> = BTreeMap::new();
        for row in
            self.db().fetch_all("SELECT staff_id, name, active, roles FROM rm_staff", &[]).await?
        {
            let staff_id = row.text("staff_id")?;
            let roles = row
                .text("roles")?
                .split(',')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
            loads.insert(
                staff_id.clone(),
                HandlerLoad {
                    staff_id,
                    name: Some(row.text("name")?),
                    active: row.bool("active")?,
                    roles,
                    ..HandlerLoad::default()
                },
            );
        }
        // The counts the projections keep (`live_counts`): one row per person.
        let cases = self
            .db()
            .fetch_all(
                &format!("SELECT handler, open_cases, open_major_cases FROM {HANDLER_OPEN_CASES}"),
                &[],
            )
            .await?;
        for row in cases {
            let handler = row.text("handler")?;
            let load = loads
                .entry(handler.clone())
                .or_insert_with(|| HandlerLoad { staff_id: handler, ..HandlerLoad::default() });
            load.open_cases = non_negative("count", row.int("open_cases")?)?;
            load.open_major_cases = non_negative("count", row.int("open_major_cases")?)?;
        }
        let customers = self
            .db()
            .fetch_all(&format!("SELECT agent, customers FROM {AGENT_CUSTOMERS}"), &[])
            .await?;
        for row in customers {
            let agent = row.text("agent")?;
            let load = loads
                .entry(agent.clone())
                .or_insert_with(|| HandlerLoad { staff_id: agent, ..HandlerLoad::default() });
            load.customers = non_negative("count", row.int("customers")?)?;
        }
        Ok(loads.into_values().collect())
    }

    /// Callbacks and contacts due before `now + horizon`, soonest first (R-C4, R-C5, R-P15).
    pub async fn due_callbacks(
        &self,
        now: DateTime<Utc>,
        horizon: TimeDelta,
        policy: &Policy,
    ) -> Result<Vec<DueCallback>, ProjectionError> {
        let until = later(now, horizon);
        let mut due = Vec::new();
        let rows = self
            .db()
            .fetch_all(
                // A merged duplicate's cases are called back as its survivor's.
                &format!(
                    "SELECT {}, c.complaint_id, c.case_number, \
                     COALESCE(m.merged_into, c.customer_id) AS customer_id, \
                     {} AS handler, c.callback_due_at FROM rm_complaints c \
                     LEFT JOIN rm_customers m ON m.customer_id = c.customer_id \
                     WHERE {CALLBACK_PENDING} AND c.callback_due_at <= $1",
                    case_columns("c"),
                    callback_owner("c")
                ),
                &params![until],
            )
            .await?;
        for row in rows {
            let due_at = row.time("callback_due_at")?;
            if due_at <= until {
                due.push(DueCallback {
                    kind: DueKind::ComplaintCallback,
                    customer_id: row.text("customer_id")?,
                    complaint_id: Some(row.text("complaint_id")?),
                    case_number: Some(row.text("case_number")?),
                    request_id: None,
                    owner: row.opt_text("handler")?,
                    due_at,
                    overdue: due_at < now,
                    access: RowAccess::of_case(&row)?,
                });
            }
        }
        self.request_callbacks_due(until, &mut due).await?;
        // R-C4: the customers awaiting their first contact (a partial index holds them).
        for customer in self.uncontacted(policy).await? {
            if customer.due_at <= until {
                due.push(DueCallback {
                    kind: DueKind::NewCustomerContact,
                    customer_id: customer.customer_id,
                    complaint_id: None,
                    case_number: None,
                    request_id: None,
                    owner: Some(customer.agent),
                    due_at: customer.due_at,
                    overdue: customer.due_at < now,
                    access: customer.access,
                });
            }
        }
        // R-C5: per grade with a cadence, the live customers whose cadence started early
        // enough to fall due by `until`: one range of `rm_customers_routine` each, so
        // customers called back on time are never read.
        for tier in Tier::ALL.iter().copied() {
            for stars in 0..=5u32 {
                let level = StarLevel::new(stars).ok();
                let Some(interval) = policy.callback_interval(tier, level) else { continue };
                self.routine_due(tier, stars, level, earlier(until, interval), policy, &mut due)
                    .await?;
            }
        }
        due.iter_mut().for_each(|item| item.overdue = item.due_at < now);
        due.retain(|item| item.due_at <= until);
        due.sort_by(|a, b| {
            (a.due_at, a.kind, &a.customer_id, &a.complaint_id).cmp(&(
                b.due_at,
                b.kind,
                &b.customer_id,
                &b.complaint_id,
            ))
        });
        Ok(due)
    }

    /// R-P15: the resolved after-sales requests whose callback is due by `until` and not
    /// yet made (a customer's after-sales callback settles them), owned by the
    /// customer's agent; a merged duplicate's are called back as its survivor's.
    async fn request_callbacks_due(
        &self,
        until: DateTime<Utc>,
        due: &mut Vec<DueCallback>,
    ) -> Result<(), ProjectionError> {
        for callback in self.request_callbacks(Window::DueBy, until).await? {
            due.push(DueCallback {
                kind: DueKind::RequestCallback,
                customer_id: callback.customer_id,
                complaint_id: None,
                case_number: None,
                request_id: Some(callback.request_id),
                owner: callback.owner,
                due_at: callback.due_at,
                overdue: false,
                access: callback.access,
            });
        }
        Ok(())
    }

    /// The routine callbacks (R-C5) of customers of `tier` with `stars` (0: none) whose
    /// cadence started by `started_by`, added to `due` with their exact due time.
    async fn routine_due(
        &self,
        tier: Tier,
        stars: u32,
        level: Option<StarLevel>,
        started_by: DateTime<Utc>,
        policy: &Policy,
        due: &mut Vec<DueCallback>,
    ) -> Result<(), ProjectionError> {
        let rows = self
            .db()
            .fetch_all(
                &format!(
                    "SELECT customer_id, agent, registered_at, last_callback_at, \
                     {CUSTOMER_COLUMNS} FROM rm_customers \
                     WHERE forgotten_at IS NULL AND merged_into IS NULL AND tier = $1 \
                     AND COALESCE(stars, 0) = $2 \
                     AND COALESCE(last_callback_at, registered_at) <= $3"
                ),
                &params![tier.to_string(), stars, started_by],
            )
            .await?;
        for row in rows {
            let Some(due_at) = policy.next_routine_callback_due(
                tier,
                level,
                row.time("registered_at")?,
                row.opt_time("last_callback_at")?,
            ) else {
                continue;
            };
            due.push(DueCallback {
                kind: DueKind::RoutineCallback,
                customer_id: row.text("customer_id")?,
                complaint_id: None,
                case_number: None,
                request_id: None,
                owner: Some(row.text("agent")?),
                due_at,
                overdue: false,
                access: RowAccess::of_customer(&row)?,
            });
        }
        Ok(())
    }
}
