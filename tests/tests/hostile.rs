//! Random requests at every RPC: nothing a caller sends may panic the server or be
//! answered `INTERNAL`/`UNKNOWN` (a caller's mistake is always named as such).

use kefu_api::pb;
use kefu_testkit::Backend;
use kefu_tests::{rid, spawn_app, spawn_app_with, without_read_rate, Clients, TestApp};
use proptest::prelude::*;
use tonic::Code;

/// A tiny deterministic generator driven by proptest's seeds: nasty strings, edge numbers.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<T: Clone>(&mut self, options: &[T]) -> T {
        let index = usize::try_from(self.next() % u64::try_from(options.len()).unwrap()).unwrap();
        options[index].clone()
    }

    fn string(&mut self, known: &[String]) -> String {
        let nasty = [
            String::new(),
            " ".into(),
            "a".into(),
            "'; DROP TABLE events; --".into(),
            "Robert'); DELETE FROM rm_complaints WHERE ('1'='1".into(),
            "😀".repeat(300),
            "x".repeat(20_000),
            "\u{0}\u{1}\u{7f}".into(),
            "2026-000001".into(),
            "9999-999999".into(),
            "h1".into(),
            "H1 ".into(),
            "not-a-uuid".into(),
            "00000000-0000-0000-0000-000000000000".into(),
            uuid::Uuid::now_v7().to_string(),
            "%s%s%n".into(),
            "../../etc/passwd".into(),
        ];
        if !known.is_empty() && self.next() % 3 == 0 {
            return self.pick(known);
        }
        self.pick(&nasty)
    }

    fn int(&mut self) -> i32 {
        self.pick(&[0, 1, 2, 3, 4, 5, 6, 7, 99, -1, i32::MAX, i32::MIN])
    }

    /// Valid extremes too: the years ArchiveCases takes and the longest due horizon.
    fn uint(&mut self) -> u32 {
        let this_year = u32::try_from(chrono::Datelike::year(&chrono::Utc::now())).unwrap_or(0);
        self.pick(&[
            0,
            1,
            2,
            5,
            6,
            500,
            501,
            1_999,
            2_000,
            this_year,
            9_999,
            10_000,
            8_784,
            8_785,
            u32::MAX,
        ])
    }

    fn u64(&mut self) -> u64 {
        self.pick(&[
            0,
            1,
            2,
            3,
            1_000,
            u64::from(u32::MAX),
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX,
        ])
    }

    fn opt_u64(&mut self) -> Option<u64> {
        if self.next() % 2 == 0 {
            None
        } else {
            Some(self.u64())
        }
    }

    /// Unset, malformed, and every valid extreme: chrono's first and last second, year
    /// -1, year 1, just before and at the floor (2000), now and just past the skew,
    /// the last second of 9999 and the first of 10000.
    fn timestamp(&mut self) -> Option<prost_types::Timestamp> {
        use chrono::{DateTime, TimeZone, Utc};
        let year = |y: i32| Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap().timestamp();
        let now = Utc::now().timestamp();
        let seconds = self.pick(&[
            DateTime::<Utc>::MIN_UTC.timestamp(),
            year(-1),
            year(1),
            year(2000) - 1,
            year(2000),
            1_700_000_000,
            now,
            now + 121,
            now + 86_400 * 366,
            year(10_000) - 1,
            year(10_000),
            DateTime::<Utc>::MAX_UTC.timestamp(),
        ]);
        match self.next() % 6 {
            0 => None,
            1 => Some(prost_types::Timestamp { seconds: i64::MAX, nanos: i32::MAX }),
            2 => Some(prost_types::Timestamp { seconds: -62_135_596_801, nanos: -5 }),
            3 => Some(prost_types::Timestamp { seconds, nanos: 999_999_999 }),
            _ => Some(prost_types::Timestamp { seconds, nanos: 0 }),
        }
    }

    fn strings(&mut self, known: &[String]) -> Vec<String> {
        (0..self.next() % 4).map(|_| self.string(known)).collect()
    }
}

/// A panicking handler ends its call `CANCELLED`: never acceptable either.
fn acceptable(code: Code) -> bool {
    !matches!(
        code,
        Code::Internal | Code::Unknown | Code::Unavailable | Code::DataLoss | Code::Cancelled
    )
}

async fn fire(clients: &mut Clients, g: &mut Gen, known: &[String]) -> Vec<(String, Code)> {
    let mut codes = Vec::new();
    macro_rules! call {
        ($client:ident . $method:ident ( $request:expr )) => {{
            let result = clients.$client.$method($request).await;
            let code = result.as_ref().map_or_else(|status| status.code(), |_| Code::Ok);
            if !acceptable(code) {
                let message =
                    result.as_ref().err().map(|s| s.message().to_owned()).unwrap_or_default();
                codes.push((format!("{}: {message}", stringify!($method)), code));
            }
        }};
    }
    let s = |g: &mut Gen| g.string(known);
    call!(customers.register_customer(pb::RegisterCustomerRequest {
        request_id: s(g),
        name: s(g),
        kind: g.int(),
        contacts: Some(pb::Contacts {
            phones: g.strings(known),
            emails: g.strings(known),
            address: s(g)
        }),
        tier: g.int(),
        stars: g.uint(),
        source_channel: s(g),
        referred_by: s(g),
        confidentiality: g.int(),
        agent: s(g),
    }));
    call!(customers.update_customer(pb::UpdateCustomerRequest {
        request_id: s(g),
        customer_id: s(g),
        expected_version: g.opt_u64(),
        name: Some(s(g)),
        contacts: None,
        confidentiality: g.int(),
    }));
    call!(customers.grade_customer(pb::GradeCustomerRequest {
        request_id: s(g),
        customer_id: s(g),
        expected_version: g.opt_u64(),
        tier: g.int(),
        stars: g.uint(),
        reason: s(g),
    }));
    call!(customers.assign_agent(pb::AssignAgentRequest {
        request_id: s(g),
        customer_id: s(g),
        expected_version: g.opt_u64(),
        agent: s(g),
        reason: s(g)
    }));
    call!(customers.record_contact(pb::RecordContactRequest {
        request_id: s(g),
        customer_id: s(g),
        expected_version: g.opt_u64(),
        channel: g.int(),
        note: s(g),
        contacted_at: g.timestamp(),
    }));
    call!(customers.forget_customer(pb::ForgetCustomerRequest {
        request_id: s(g),
        customer_id: s(g),
        reason: s(g)
    }));
    call!(customers.get_customer(pb::GetCustomerRequest { customer_id: s(g) }));
    call!(customers.list_customers(pb::ListCustomersRequest {
        page_size: g.uint(),
        page_token: s(g),
        tier: g.int(),
        agent: s(g),
        referred_by: s(g),
        min_position: 0,
    }));
    call!(customers.find_customers(pb::FindCustomersRequest {
        query: s(g),
        by: g.int(),
        page_size: g.uint(),
        page_token: s(g),
        min_position: 0,
    }));
    call!(customers.merge_customers(pb::MergeCustomersRequest {
        request_id: s(g),
        duplicate_id: s(g),
        survivor_id: s(g),
        reason: s(g),
        duplicate_expected_version: g.opt_u64(),
        survivor_expected_version: g.opt_u64(),
    }));
    call!(staff.register_staff(pb::RegisterStaffRequest {
        request_id: s(g),
        staff_id: s(g),
        name: s(g),
        roles: vec![g.int(), g.int()]
    }));
    call!(staff.record_departure(pb::RecordDepartureRequest {
        request_id: s(g),
        staff_id: s(g),
        reason: s(g)
    }));
    call!(staff
        .list_staff(pb::ListStaffRequest { include_departed: g.next() % 2 == 0, min_position: 0 }));
    call!(complaints.file_complaint(pb::FileComplaintRequest {
        request_id: s(g),
        customer_id: s(g),
        category: s(g),
        cause: s(g),
        severity: g.int(),
        channel: g.int(),
        description: s(g),
        respondent: s(g),
        attachments: vec![pb::AttachmentRef { reference: s(g), sha256: s(g) }],
        received_at: g.timestamp(),
    }));
    call!(complaints.assign_handler(pb::AssignHandlerRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        handler: s(g),
        reason: s(g)
    }));
    call!(complaints.recuse_handler(pb::RecuseHandlerRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        reason: s(g)
    }));
    call!(complaints.contact_complainant(pb::ContactComplainantRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        channel: g.int(),
        summary: s(g),
        contacted_at: g.timestamp(),
    }));
    call!(complaints.record_investigation(pb::RecordInvestigationRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        findings: s(g)
    }));
    call!(complaints.draft_opinion(pb::DraftOpinionRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        opinion: s(g)
    }));
    call!(complaints.escalate_complaint(pb::EscalateComplaintRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        to: g.int(),
        reason: s(g)
    }));
    call!(complaints.sign_opinion(pb::SignOpinionRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        capacity: g.int(),
        decision: s(g),
        remedy: s(g),
        meeting: (g.next() % 2 == 0).then(|| pb::CommitteeMeeting {
            held_at: g.timestamp(),
            members_present: g.strings(known),
            reported_to_authority: true,
        }),
    }));
    call!(complaints.send_reply(pb::SendReplyRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        kind: g.int(),
        channel: g.int(),
        summary: s(g),
    }));
    call!(complaints.close_complaint(pb::CloseComplaintRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        summary: s(g)
    }));
    call!(complaints.add_material(pb::AddMaterialRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        reference: s(g),
        media_type: s(g),
        size_bytes: g.u64(),
        sha256: s(g),
        supersedes: g.uint(),
        reason: s(g),
    }));
    call!(complaints.record_implementation(pb::RecordImplementationRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        summary: s(g),
        implemented_at: g.timestamp(),
    }));
    call!(complaints.reopen_complaint(pb::ReopenComplaintRequest {
        request_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        cause: s(g)
    }));
    call!(complaints.get_complaint(pb::GetComplaintRequest { complaint: s(g) }));
    call!(complaints.list_complaints(pb::ListComplaintsRequest {
        page_size: g.uint(),
        page_token: s(g),
        status: g.int(),
        severity: g.int(),
        handler: s(g),
        customer_id: s(g),
        category: s(g),
        year: g.uint(),
        min_position: 0,
    }));
    call!(callbacks.log_callback(pb::LogCallbackRequest {
        request_id: s(g),
        customer_id: s(g),
        complaint_id: s(g),
        expected_version: g.opt_u64(),
        kind: g.int(),
        channel: g.int(),
        party: g.int(),
        outcome: g.int(),
        score: g.uint(),
        comment: s(g),
        called_at: g.timestamp(),
    }));
    call!(callbacks.list_due_callbacks(pb::ListDueCallbacksRequest {
        horizon_hours: g.uint(),
        owner: s(g),
        min_position: 0,
        as_of: g.timestamp(),
    }));
    call!(reports.get_dashboard(pb::GetDashboardRequest { min_position: 0, as_of: g.timestamp() }));
    call!(reports.get_satisfaction_metrics(pb::GetSatisfactionMetricsRequest {
        min_position: 0,
        group_by: g.int(),
        from_month: s(g),
        to_month: s(g),
        kind: s(g),
        as_of: g.timestamp(),
    }));
    call!(
        reports.get_monthly_summary(pb::GetMonthlySummaryRequest { min_position: 0, month: s(g) })
    );
    call!(reports.list_sla_breaches(pb::ListSlaBreachesRequest {
        min_position: 0,
        as_of: g.timestamp(),
        include_at_risk: true
    }));
    call!(reports.get_handler_workload(pb::GetHandlerWorkloadRequest { min_position: 0 }));
    call!(reports.get_referral_report(pb::GetReferralReportRequest {
        min_position: 0,
        page_size: g.uint(),
        page_token: s(g),
    }));
    call!(reports.get_quality_metrics(pb::GetQualityMetricsRequest {
        min_position: 0,
        from_month: s(g),
        to_month: s(g),
        kind: s(g),
        channel: s(g),
        handler: s(g),
        group_by: vec![g.int(), g.int()],
    }));
    call!(events.read_all(pb::ReadAllRequest {
        from_position: g.u64(),
        limit: g.uint(),
        categories: g.strings(known)
    }));
    call!(events
        .subscribe(pb::SubscribeRequest { from_position: g.u64(), categories: g.strings(known) }));
    call!(audit.replay_case(pb::ReplayCaseRequest { complaint: s(g) }));
    let point = match g.next() % 3 {
        0 => None,
        1 => Some(pb::get_case_as_of_request::Point::Version(g.u64())),
        _ => g.timestamp().map(pb::get_case_as_of_request::Point::AsOf),
    };
    call!(audit.get_case_as_of(pb::GetCaseAsOfRequest { complaint: s(g), point }));
    call!(audit.verify_case(pb::VerifyCaseRequest { complaint: s(g) }));
    call!(audit.export_case(pb::ExportCaseRequest { complaint: s(g) }));
    call!(complaints.archive_cases(pb::ArchiveCasesRequest { request_id: s(g), year: g.uint() }));
    codes
}

#[test]
fn random_requests_never_panic_nor_answer_internal_sqlite() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Inputs, not load: 2,560 calls from one admin would meet the rate limit of
    // expensive reads (tests/tests/limits.rs), which is not what this test is about.
    let app =
        runtime.block_on(spawn_app_with(Backend::Sqlite, without_read_rate)).expect("sqlite app");
    let mut admin = runtime.block_on(app.clients(Some("admin")));
    // Some real records, so random requests also hit existing ids.
    let known: Vec<String> = runtime.block_on(async {
        let staff = pb::RegisterStaffRequest {
            request_id: rid(),
            staff_id: "h1".into(),
            name: "H".into(),
            roles: vec![1, 2],
        };
        admin.staff.register_staff(staff).await.unwrap();
        let customer = admin
            .customers
            .register_customer(pb::RegisterCustomerRequest {
                request_id: rid(),
                name: "Known".into(),
                kind: 1,
                contacts: None,
                tier: 1,
                stars: 0,
                source_channel: "web".into(),
                referred_by: String::new(),
                confidentiality: 1,
                agent: "h1".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap()
            .id;
        vec![customer, "h1".into()]
    });
    let tried = std::cell::Cell::new(0u64);
    proptest!(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() }, |(seed in 1u64..u64::MAX)| {
        let mut g = Gen(seed);
        let mut client = admin.clone();
        let bad = runtime.block_on(fire(&mut client, &mut g, &known));
        tried.set(tried.get() + 40);
        prop_assert!(bad.is_empty(), "{bad:?}");
    });
    let tried = tried.get();
    // The server is still up, and no accepted input stopped the projections: a read
    // waiting for a fresh write answers.
    let fresh = runtime.block_on(admin.staff.register_staff(pb::RegisterStaffRequest {
        request_id: rid(),
        staff_id: "fresh".into(),
        name: "Fresh".into(),
        roles: vec![1],
    }));
    let min_position = fresh.expect("a fresh write").into_inner().result.unwrap().position;
    let alive = runtime.block_on(
        admin.reports.get_handler_workload(pb::GetHandlerWorkloadRequest { min_position }),
    );
    assert!(alive.is_ok(), "{alive:?}");
    println!("hostile input: {tried} random requests across 40 RPCs, none INTERNAL, server alive");
    runtime.block_on(app.stop());
}

/// Guessing tokens is rate-limited per address: after 20 failures in a minute every call
/// from that address is refused (RESOURCE_EXHAUSTED), even one with a valid token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_lock_the_address_out() {
    let app = spawn_app(Backend::Sqlite).await.expect("sqlite");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for attempt in 0..kefu_api::auth::FAILURE_LIMIT {
        let mut guesser = TestApp::clients_on(channel.clone(), Some(&format!("guess{attempt}")));
        let status = guesser.staff.list_staff(pb::ListStaffRequest::default()).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "attempt {attempt}");
    }
    let mut admin = app.clients(Some("admin")).await;
    let status = admin.staff.list_staff(pb::ListStaffRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("too many failed authentications"), "{status:?}");
    app.stop().await;
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

/// The table of docs/security.md: each kind of hostile input and the answer it gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_get_the_documented_answers() {
    let app = spawn_app(Backend::Sqlite).await.expect("sqlite");
    let mut admin = app.clients(Some("admin")).await;
    let staff = pb::RegisterStaffRequest {
        request_id: rid(),
        staff_id: "h1".into(),
        name: "H".into(),
        roles: vec![pb::StaffRole::Agent as i32],
    };
    admin.staff.register_staff(staff).await.expect("staff");
    let register = |name: String| pb::RegisterCustomerRequest {
        request_id: rid(),
        name,
        kind: pb::CustomerKind::Individual as i32,
        tier: pb::Tier::Regular as i32,
        source_channel: "web".into(),
        confidentiality: pb::Confidentiality::Internal as i32,
        agent: "h1".into(),
        ..Default::default()
    };
    let customer = admin.customers.register_customer(register("Known".into())).await.unwrap();
    let customer = customer.into_inner().result.unwrap().id;
    let filing = |attachments: usize, severity: i32| pb::FileComplaintRequest {
        request_id: rid(),
        customer_id: customer.clone(),
        category: "billing".into(),
        cause: "overcharge".into(),
        severity,
        channel: pb::IntakeChannel::Phone as i32,
        description: "y".into(),
        attachments: (0..attachments)
            .map(|i| pb::AttachmentRef { reference: format!("doc://{i}"), sha256: String::new() })
            .collect(),
        ..Default::default()
    };
    let mut rows: Vec<(&str, Code)> = Vec::new();

    let huge = register("x".repeat(2 * 1024 * 1024));
    rows.push(("oversized message (2 MiB)", code(admin.customers.register_customer(huge).await)));
    let many = filing(50_000, pb::Severity::Normal as i32);
    rows.push((
        "huge list (50,000 attachments)",
        code(admin.complaints.file_complaint(many).await),
    ));
    rows.push(("unknown enum value", code(admin.complaints.file_complaint(filing(0, 99)).await)));
    let mut missing = filing(0, pb::Severity::Normal as i32);
    missing.category.clear();
    rows.push(("missing required field", code(admin.complaints.file_complaint(missing).await)));
    let get = |id: &str| pb::GetCustomerRequest { customer_id: id.to_owned() };
    rows.push(("invalid id", code(admin.customers.get_customer(get("not-a-uuid")).await)));
    rows.push((
        "nil id",
        code(admin.customers.get_customer(get("00000000-0000-0000-0000-000000000000")).await),
    ));
    let overflow = pb::RecordInvestigationRequest {
        request_id: rid(),
        complaint_id: uuid::Uuid::now_v7().to_string(),
        expected_version: Some(u64::MAX),
        findings: "f".into(),
    };
    rows.push((
        "overflowing expected version",
        code(admin.complaints.record_investigation(overflow).await),
    ));
    let far = pb::ReadAllRequest { from_position: u64::MAX, limit: 10, categories: vec![] };
    rows.push(("overflowing position", code(admin.events.read_all(far).await)));
    let page = pb::ListComplaintsRequest { page_size: 100_000, ..Default::default() };
    rows.push(("page size out of range", code(admin.complaints.list_complaints(page).await)));
    let sql = register("'; DROP TABLE events; --".into());
    rows.push((
        "SQL-looking string (stored as text)",
        code(admin.customers.register_customer(sql).await),
    ));
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut anonymous = TestApp::clients_on(channel, None);
    rows.push((
        "no token",
        code(anonymous.staff.list_staff(pb::ListStaffRequest::default()).await),
    ));
    let mut wrong = app.clients(Some("nobody")).await;
    rows.push((
        "unknown token",
        code(wrong.staff.list_staff(pb::ListStaffRequest::default()).await),
    ));

    for (input, answer) in &rows {
        println!("{input:<40} {answer:?}");
    }
    let expected = [
        Code::ResourceExhausted,
        Code::InvalidArgument,
        Code::InvalidArgument,
        Code::InvalidArgument,
        Code::InvalidArgument,
        Code::InvalidArgument,
        Code::InvalidArgument,
        Code::InvalidArgument,
        Code::InvalidArgument,
        Code::Ok,
        Code::Unauthenticated,
        Code::Unauthenticated,
    ];
    let answers: Vec<Code> = rows.iter().map(|(_, code)| *code).collect();
    assert_eq!(answers, expected, "{rows:?}");
    // The SQL-looking name is just a name, and the log is intact.
    let head = admin.events.read_all(pb::ReadAllRequest {
        from_position: 1,
        limit: 1_000,
        categories: vec![],
    });
    let events = head.await.unwrap().into_inner().events;
    let stored = events.iter().filter(|e| e.event_type == "CustomerRegistered").count();
    assert_eq!(stored, 2, "both customers, the SQL-looking one included, are in the log");
    app.stop().await;
}
