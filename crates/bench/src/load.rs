//! The modes that drive a real kefu over gRPC: `append`, `lifecycle`, `lag`, `replay`
//! and `query`. Each prints its figures as one JSON object.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use kefu_api::pb;
use serde_json::{json, Value};

use crate::server::{rss_mib, Client, Server};
use crate::stats::{per_second, Latencies};
use crate::Common;

static REQUEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn rid() -> String {
    let n = REQUEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("bench-{}-{n}", std::process::id())
}

/// Registers the staff every mode needs: agent `a1`, handler `h1`, specialist `sp1`.
pub async fn prepare_staff(admin: &mut Client) -> anyhow::Result<()> {
    for (code, role) in [
        ("a1", pb::StaffRole::Agent),
        ("h1", pb::StaffRole::Handler),
        ("sp1", pb::StaffRole::Specialist),
    ] {
        let registered = admin
            .staff
            .register_staff(pb::RegisterStaffRequest {
                request_id: format!("bench-staff-{code}"),
                staff_id: code.into(),
                name: format!("Bench {code}"),
                roles: vec![role as i32, pb::StaffRole::Agent as i32],
            })
            .await;
        match registered {
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {} // rerun
            Err(status) => return Err(status).context("register staff"),
        }
    }
    Ok(())
}

pub async fn register_customer(admin: &mut Client, n: usize) -> anyhow::Result<String> {
    let response = admin
        .customers
        .register_customer(pb::RegisterCustomerRequest {
            request_id: rid(),
            name: format!("Bench Customer {n}"),
            kind: pb::CustomerKind::Individual as i32,
            contacts: Some(pb::Contacts {
                phones: vec![format!("+86 21 5555 {n:04}")],
                ..Default::default()
            }),
            tier: pb::Tier::Regular as i32,
            source_channel: "web".into(),
            confidentiality: pb::Confidentiality::Internal as i32,
            agent: "a1".into(),
            ..Default::default()
        })
        .await?;
    Ok(response.into_inner().result.context("result")?.id)
}

fn filing(customer_id: &str) -> pb::FileComplaintRequest {
    pb::FileComplaintRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        category: "billing".into(),
        cause: "overcharge".into(),
        severity: pb::Severity::Normal as i32,
        channel: pb::IntakeChannel::Phone as i32,
        description: "The customer reports being charged twice for the same visit and asks for a refund of the second charge.".into(),
        ..Default::default()
    }
}

fn investigation(complaint_id: &str) -> pb::RecordInvestigationRequest {
    pb::RecordInvestigationRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        findings: "called the branch; the second charge is confirmed".into(),
    }
}

/// Runs `op(client, iteration)` on `concurrency` clients until the deadline; the
/// latencies of the operations that finished, and the elapsed time.
pub(crate) async fn drive<F, Fut>(
    clients: Vec<Client>,
    duration: Duration,
    op: F,
) -> anyhow::Result<(Latencies, Duration)>
where
    F: Fn(usize, Client, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for (index, client) in clients.into_iter().enumerate() {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut iteration = 0;
            while Instant::now() < deadline {
                let began = Instant::now();
                op(index, client.clone(), iteration).await?;
                latencies.record(began.elapsed());
                iteration += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((all, started.elapsed()))
}

pub(crate) async fn clients(
    server: &Server,
    n: usize,
    handler: bool,
) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(server.client(handler).await?);
    }
    Ok(clients)
}

pub(crate) fn figures(
    mode: &str,
    common: &Common,
    backend: &str,
    commands: u64,
    events_per_command: u64,
    mut latencies: Latencies,
    elapsed: Duration,
) -> Value {
    let (rss_peak, rss_now) = rss_mib();
    json!({
        "mode": mode,
        "backend": backend,
        "concurrency": common.concurrency,
        "duration_s": elapsed.as_secs_f64(),
        "commands": commands,
        "commands_per_s": per_second(commands, elapsed),
        "events_per_s": per_second(commands * events_per_command, elapsed),
        "p50_ms": latencies.percentile_ms(50),
        "p99_ms": latencies.percentile_ms(99),
        // The whole bench process: the in-process server and its clients.
        "rss_peak_mib": rss_peak,
        "rss_end_mib": rss_now,
    })
}

/// `append`: `FileComplaint` (two events: the case number and the filing) from every client.
pub async fn append(server: &Server, common: &Common, backend: &str) -> anyhow::Result<Value> {
    let mut admin = server.client(false).await?;
    prepare_staff(&mut admin).await?;
    let mut customers = Vec::new();
    for n in 0..common.concurrency.max(1) {
        customers.push(register_customer(&mut admin, n).await?);
    }
    let customers = Arc::new(customers);
    let (latencies, elapsed) = drive(
        clients(server, common.concurrency.max(1), false).await?,
        common.duration(),
        move |index, mut client, _| {
            let customer = customers[index].clone();
            async move {
                client.complaints.file_complaint(filing(&customer)).await?;
                Ok(())
            }
        },
    )
    .await?;
    let commands = u64::try_from(latencies.len())?;
    Ok(figures("append", common, backend, commands, 2, latencies, elapsed))
}

/// One case per client brought to `history` events (filed, assigned, then investigations).
async fn cases_with_history(
    server: &Server,
    n: usize,
    history: u64,
) -> anyhow::Result<Vec<String>> {
    let mut admin = server.client(false).await?;
    prepare_staff(&mut admin).await?;
    let customer = register_customer(&mut admin, 0).await?;
    let mut cases = Vec::with_capacity(n);
    for _ in 0..n {
        let filed = admin.complaints.file_complaint(filing(&customer)).await?.into_inner();
        let id = filed.result.context("result")?.id;
        admin
            .complaints
            .assign_handler(pb::AssignHandlerRequest {
                request_id: rid(),
                complaint_id: id.clone(),
                expected_version: None,
                handler: "h1".into(),
                reason: String::new(),
            })
            .await?;
        cases.push(id);
    }
    let handlers = clients(server, n, true).await?;
    let mut tasks = Vec::new();
    for (id, mut handler) in cases.iter().cloned().zip(handlers) {
        tasks.push(tokio::spawn(async move {
            for _ in 2..history {
                handler.complaints.record_investigation(investigation(&id)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(cases)
}

/// `lifecycle`: handling commands on cases that already hold `history` events.
pub async fn lifecycle(
    server: &Server,
    common: &Common,
    backend: &str,
    history: u64,
) -> anyhow::Result<Value> {
    let n = common.concurrency.max(1);
    let cases = Arc::new(cases_with_history(server, n, history).await?);
    let (latencies, elapsed) =
        drive(clients(server, n, true).await?, common.duration(), move |index, mut client, _| {
            let case = cases[index].clone();
            async move {
                client.complaints.record_investigation(investigation(&case)).await?;
                Ok(())
            }
        })
        .await?;
    let commands = u64::try_from(latencies.len())?;
    let mut result = figures("lifecycle", common, backend, commands, 1, latencies, elapsed);
    result["history_events"] = json!(history);
    Ok(result)
}

/// `lag`: filings at a steady `rate` per second; for each, the time from its
/// acknowledgement until a read with `min_position` sees it.
pub async fn lag(
    server: &Server,
    common: &Common,
    backend: &str,
    rate: f64,
) -> anyhow::Result<Value> {
    let mut admin = server.client(false).await?;
    prepare_staff(&mut admin).await?;
    let customer = register_customer(&mut admin, 0).await?;
    let writer = server.client(false).await?;
    let reader = server.client(false).await?;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = Instant::now();
    let deadline = started + common.duration();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probes = Vec::new();
    let mut write_latencies = Latencies::default();
    let (done, mut finished) =
        tokio::sync::mpsc::unbounded_channel::<anyhow::Result<(Duration, Duration)>>();
    while Instant::now() < deadline {
        ticker.tick().await;
        let (mut writer, mut reader, customer, done) =
            (writer.clone(), reader.clone(), customer.clone(), done.clone());
        probes.push(tokio::spawn(async move {
            let outcome = async {
                let began = Instant::now();
                let filed = writer.complaints.file_complaint(filing(&customer)).await?.into_inner();
                let acked = Instant::now();
                let position = filed.result.context("result")?.position;
                reader
                    .complaints
                    .list_complaints(pb::ListComplaintsRequest {
                        page_size: 1,
                        min_position: position,
                        ..Default::default()
                    })
                    .await?;
                anyhow::Ok((acked - began, acked.elapsed()))
            }
            .await;
            let _ = done.send(outcome);
        }));
    }
    drop(done);
    let mut lags = Latencies::default();
    while let Some(outcome) = finished.recv().await {
        let (write, visible) = outcome?;
        write_latencies.record(write);
        lags.record(visible);
    }
    let elapsed = started.elapsed();
    let commands = u64::try_from(lags.len())?;
    let (rss_peak, _) = rss_mib();
    Ok(json!({
        "mode": "lag",
        "backend": backend,
        "concurrency": common.concurrency,
        "target_commands_per_s": rate,
        "duration_s": elapsed.as_secs_f64(),
        "commands": commands,
        "commands_per_s": per_second(commands, elapsed),
        "events_per_s": per_second(commands * 2, elapsed),
        // Acknowledgement → visible in the read models (a ListComplaints with min_position).
        "p50_ms": lags.percentile_ms(50),
        "p99_ms": lags.percentile_ms(99),
        "write_p50_ms": write_latencies.percentile_ms(50),
        "write_p99_ms": write_latencies.percentile_ms(99),
        "rss_peak_mib": rss_peak,
    }))
}

/// `replay`: `ReplayCase` of one case holding `history` events, from every client.
pub async fn replay(
    server: &Server,
    common: &Common,
    backend: &str,
    history: u64,
) -> anyhow::Result<Value> {
    let cases = cases_with_history(server, 1, history).await?;
    let case = Arc::new(cases[0].clone());
    let (latencies, elapsed) = drive(
        clients(server, common.concurrency.max(1), false).await?,
        common.duration(),
        move |_, mut client, _| {
            let case = case.clone();
            async move {
                let mut stream = client
                    .audit
                    .replay_case(pb::ReplayCaseRequest { complaint: case.to_string() })
                    .await?
                    .into_inner();
                let mut n = 0u64;
                while let Some(event) = stream.message().await? {
                    n += u64::from(event.event.is_some());
                }
                anyhow::ensure!(n >= history, "replayed {n} of {history} events");
                Ok(())
            }
        },
    )
    .await?;
    let replays = u64::try_from(latencies.len())?;
    let mut result = figures("replay", common, backend, replays, history, latencies, elapsed);
    result["history_events"] = json!(history);
    Ok(result)
}

/// `query`: every reporting RPC in a supervisor's mix over a seeded log: the dashboard
/// most often, then satisfaction (all time, by handler for the month), the monthly
/// summary, breaches, workload, referrals, due callbacks and the month's quality
/// metrics by handler and channel.
pub async fn query(
    server: &Server,
    common: &Common,
    backend: &str,
    seeded: u64,
) -> anyhow::Result<Value> {
    // The seed's newest cases are this month's.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    // Each RPC's latencies too, to see which one a percentile of the mix comes from.
    let per_rpc: Arc<std::sync::Mutex<BTreeMap<&'static str, Latencies>>> = Arc::default();
    let recorded = per_rpc.clone();
    let (latencies, elapsed) = drive(
        clients(server, common.concurrency.max(1), false).await?,
        common.duration(),
        move |_, mut client, iteration| {
            let month = month.clone();
            let recorded = recorded.clone();
            async move {
                const NAMES: [&str; 11] = [
                    "dashboard",
                    "dashboard",
                    "dashboard",
                    "satisfaction",
                    "satisfaction_by_handler",
                    "monthly_summary",
                    "sla_breaches",
                    "handler_workload",
                    "referral_report",
                    "due_callbacks",
                    "quality_by_handler",
                ];
                let slot = usize::try_from(iteration % 11)?;
                let began = Instant::now();
                let reports = &mut client.reports;
                match slot {
                    0..=2 => drop(reports.get_dashboard(pb::GetDashboardRequest::default()).await?),
                    3 => drop(
                        reports
                            .get_satisfaction_metrics(pb::GetSatisfactionMetricsRequest::default())
                            .await?,
                    ),
                    4 => drop(
                        reports
                            .get_satisfaction_metrics(pb::GetSatisfactionMetricsRequest {
                                group_by: pb::SatisfactionGrouping::Handler.into(),
                                from_month: month.clone(),
                                to_month: month,
                                ..Default::default()
                            })
                            .await?,
                    ),
                    5 => drop(
                        reports
                            .get_monthly_summary(pb::GetMonthlySummaryRequest {
                                month,
                                ..Default::default()
                            })
                            .await?,
                    ),
                    10 => drop(
                        reports
                            .get_quality_metrics(pb::GetQualityMetricsRequest {
                                from_month: month.clone(),
                                to_month: month,
                                group_by: vec![
                                    pb::QualityDimension::Handler.into(),
                                    pb::QualityDimension::Channel.into(),
                                ],
                                ..Default::default()
                            })
                            .await?,
                    ),
                    6 => drop(
                        reports.list_sla_breaches(pb::ListSlaBreachesRequest::default()).await?,
                    ),
                    7 => drop(
                        reports
                            .get_handler_workload(pb::GetHandlerWorkloadRequest::default())
                            .await?,
                    ),
                    8 => drop(
                        reports
                            .get_referral_report(pb::GetReferralReportRequest::default())
                            .await?,
                    ),
                    _ => drop(
                        client
                            .callbacks
                            .list_due_callbacks(pb::ListDueCallbacksRequest {
                                horizon_hours: 72,
                                ..Default::default()
                            })
                            .await?,
                    ),
                }
                if let Ok(mut recorded) = recorded.lock() {
                    recorded.entry(NAMES[slot]).or_default().record(began.elapsed());
                }
                Ok(())
            }
        },
    )
    .await?;
    let queries = u64::try_from(latencies.len())?;
    let mut result = figures("query", common, backend, queries, 0, latencies, elapsed);
    let mut split = serde_json::Map::new();
    if let Ok(mut per_rpc) = per_rpc.lock() {
        for (name, latencies) in per_rpc.iter_mut() {
            split.insert(
                (*name).to_owned(),
                json!({
                    "calls": latencies.len(),
                    "p50_ms": latencies.percentile_ms(50),
                    "p99_ms": latencies.percentile_ms(99),
                }),
            );
        }
    }
    result["per_rpc"] = Value::Object(split);
    result["queries_per_s"] = result["commands_per_s"].clone();
    result["log_events"] = json!(seeded);
    Ok(result)
}
