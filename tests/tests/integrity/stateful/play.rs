//! Playing one step: the requests it makes from what the world holds, and what the
//! model learns from the answers.

use chrono::{DateTime, TimeDelta, Utc};
use kefu_api::pb;
use kefu_domain::case_register::case_year;
use kefu_domain::time::{floor, MAX_SKEW};
use kefu_tests::rid;
use prost_types::Timestamp;
use tonic::Code;

use super::calls::{send, Call};
use super::steps::{Act, Actor, Advance, Name, Race, Step, When, Who};
use super::world::{allowed, principal, truncated, CaseModel, CustomerModel, StaffModel, World};

impl World {
    pub async fn play(&mut self, step: &Step) {
        match step.clone() {
            Step::RegisterCustomer { .. }
            | Step::UpdateCustomer { .. }
            | Step::GradeCustomer { .. }
            | Step::AssignAgent { .. }
            | Step::RecordContact { .. }
            | Step::Forget { .. }
            | Step::RegisterStaff => self.people(step.clone()).await,
            Step::File { .. }
            | Step::AssignHandler { .. }
            | Step::Callback { .. }
            | Step::Archive { .. } => self.cases(step.clone()).await,
            Step::Act { case, by, act } => self.act(case, by, act).await,
            Step::Handle { case } => self.handle(case).await,
            Step::Depart { staff, race } => self.depart(staff, race).await,
            Step::Rebuild => {
                let url = self.app.db.url().to_owned();
                self.rebuilds.push(tokio::spawn(async move {
                    kefu_tests::db::rebuild_projections(&url).await;
                }));
            }
            Step::Retry { write } => self.retry(write).await,
            Step::ReuseKey { write } => self.reuse_key(write).await,
            Step::Report { as_of } => self.report(as_of).await,
            Step::Advance(advance) => self.advance(advance),
        }
        self.no_projection_stopped().await;
    }

    /// The steps about customers and staff.
    async fn people(&mut self, step: Step) {
        match step {
            Step::RegisterCustomer { name, agent } => {
                let agent = self.who(agent);
                let request = pb::RegisterCustomerRequest {
                    name: name_text(name),
                    ..kefu_tests::flows::customer_request("", pb::Confidentiality::Internal, &agent)
                };
                let ack = self.write("a1", Call::RegisterCustomer(request)).await;
                if let Some(result) = ack.and_then(|ack| ack.result) {
                    self.customers.push(CustomerModel { id: result.id, forgotten: false });
                }
            }
            Step::UpdateCustomer { customer, name } => {
                let Some(customer) = self.customer(customer) else { return };
                let request = pb::UpdateCustomerRequest {
                    request_id: rid(),
                    customer_id: customer,
                    expected_version: None,
                    name: Some(name_text(name)),
                    contacts: None,
                    confidentiality: 0,
                };
                self.write("a1", Call::UpdateCustomer(request)).await;
            }
            Step::GradeCustomer { customer, tier, stars } => {
                let Some(customer) = self.customer(customer) else { return };
                let request = pb::GradeCustomerRequest {
                    request_id: rid(),
                    customer_id: customer,
                    expected_version: None,
                    tier,
                    stars,
                    reason: "graded".into(),
                };
                self.write("s1", Call::GradeCustomer(request)).await;
            }
            Step::AssignAgent { customer, agent } => {
                let Some(customer) = self.customer(customer) else { return };
                let call = Call::AssignAgent(assign_agent(customer, self.who(agent)));
                self.write("s1", call).await;
            }
            Step::RecordContact { customer, at } => {
                let Some(customer) = self.customer(customer) else { return };
                let request = pb::RecordContactRequest {
                    request_id: rid(),
                    customer_id: customer,
                    expected_version: None,
                    channel: pb::ContactChannel::Phone as i32,
                    note: "called".into(),
                    contacted_at: self.time(at),
                };
                self.timed("a1", Call::RecordContact(request), at).await;
            }
            Step::Forget { customer } => {
                let Some(index) = self.customer_index(customer) else { return };
                let request = pb::ForgetCustomerRequest {
                    request_id: rid(),
                    customer_id: self.customers[index].id.clone(),
                    reason: "erasure request".into(),
                };
                if self.write("co1", Call::ForgetCustomer(request)).await.is_some() {
                    self.customers[index].forgotten = true;
                }
            }
            Step::RegisterStaff => {
                let code = format!("x{}", self.staff.len());
                let request = pb::RegisterStaffRequest {
                    request_id: rid(),
                    staff_id: code.clone(),
                    name: format!("Staff {code}"),
                    roles: vec![pb::StaffRole::Agent as i32, pb::StaffRole::Handler as i32],
                };
                if self.write("admin", Call::RegisterStaff(request)).await.is_some() {
                    self.staff.push(StaffModel { code, departed: false });
                }
            }
            // The others are played by `play`.
            _ => {}
        }
    }

    /// The steps that file, assign, call back about and archive cases.
    async fn cases(&mut self, step: Step) {
        match step {
            Step::File { customer, major, respondent, received } => {
                let Some(customer) = self.customer(customer) else { return };
                let severity = if major { pb::Severity::Major } else { pb::Severity::Normal };
                let respondent = respondent.map(|who| self.who(who)).unwrap_or_default();
                let mut request = kefu_tests::flows::file_request(&customer, severity, &respondent);
                request.received_at = self.time(received);
                let call = Call::FileComplaint(request);
                if let Some(ack) = self.timed("a1", call, received).await {
                    let result = ack.result.expect("a filing's result");
                    if self.cases.iter().all(|c| c.id != result.id) {
                        self.cases.push(CaseModel {
                            id: result.id,
                            number: ack.case_number.expect("a case number"),
                            customer,
                            handler: None,
                            respondent: Some(respondent).filter(|r| !r.is_empty()),
                        });
                    }
                }
            }
            Step::AssignHandler { case, handler } => {
                let Some(case) = self.case(case) else { return };
                let handler = self.who(handler);
                let request = kefu_tests::flows::assign(&case.id, &handler);
                if self.write("s1", Call::AssignHandler(request)).await.is_some() {
                    self.set_handler(&case.id, Some(handler));
                }
            }
            Step::Callback { case, outcome, score, at } => {
                let Some(case) = self.case(case) else { return };
                let request = pb::LogCallbackRequest {
                    outcome,
                    score,
                    called_at: self.time(at),
                    ..kefu_tests::flows::complaint_callback(&case.customer, &case.id, "noted")
                };
                self.timed("a1", Call::LogCallback(request), at).await;
            }
            Step::Archive { last_year } => {
                let year = case_year(self.clock.now(), self.zone) - i32::from(last_year);
                let year = u32::try_from(year).expect("a year of our era");
                let request = pb::ArchiveCasesRequest { request_id: rid(), year };
                self.write("s1", Call::ArchiveCases(request)).await;
            }
            _ => {}
        }
    }

    /// A staff code for `who`: one the sequence knows (departed ones too), or not.
    fn who(&self, who: Who) -> String {
        match who {
            Who::Staff(n) => self.staff[n % self.staff.len()].code.clone(),
            Who::Unknown => "nobody".into(),
            Who::Empty => String::new(),
        }
    }

    fn customer_index(&self, n: usize) -> Option<usize> {
        (!self.customers.is_empty()).then(|| n % self.customers.len())
    }

    fn customer(&self, n: usize) -> Option<String> {
        self.customer_index(n).map(|index| self.customers[index].id.clone())
    }

    fn case(&self, n: usize) -> Option<CaseModel> {
        (!self.cases.is_empty()).then(|| self.cases[n % self.cases.len()].clone())
    }

    fn set_handler(&mut self, case_id: &str, handler: Option<String>) {
        if let Some(case) = self.cases.iter_mut().find(|c| c.id == case_id) {
            case.handler = handler;
        }
    }

    /// The wire form of `when`, relative to the clock's next reading.
    fn time(&self, when: When) -> Option<Timestamp> {
        let at = |t: DateTime<Utc>| Some(Timestamp { seconds: t.timestamp(), nanos: 0 });
        let now = self.clock.now();
        match when {
            When::Unset => None,
            When::Now => at(now),
            When::HoursAgo(hours) => at(now - TimeDelta::hours(i64::from(hours))),
            When::AtSkew => at(now + MAX_SKEW),
            When::PastSkew => at(now + MAX_SKEW + TimeDelta::seconds(1)),
            When::Floor => at(floor()),
            When::Year(year) => {
                let first = chrono::NaiveDate::from_ymd_opt(year, 1, 1).expect("a date");
                at(first.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
            }
            When::Seconds(seconds) => Some(Timestamp { seconds, nanos: 0 }),
            When::Nanos(nanos) => Some(Timestamp { seconds: now.timestamp() - 60, nanos }),
        }
    }

    /// A write stating `at`: refused naming its field when `at` is outside the domain
    /// (unless the caller may not make the call at all).
    async fn timed(
        &mut self,
        principal: &'static str,
        call: Call,
        at: When,
    ) -> Option<super::calls::Ack> {
        if !at.must_be_refused() {
            return self.write(principal, call).await;
        }
        let field = call.stated_time_field().expect("a call stating a time");
        let what = truncated(&format!("step {}: {call:?}", self.step));
        let before = self.head().await;
        let mut clients = self.clients(principal).await;
        match send(&mut clients, call).await {
            Ok(ack) => panic!("{what}: a time outside the domain was accepted: {ack:?}"),
            // Who may call the RPC at all is looked at first.
            Err(status) if status.code() == Code::PermissionDenied => {}
            Err(status) => World::refused_time(&status, field, &what),
        }
        assert_eq!(self.head().await, before, "{what}: a refusal moved the log");
        None
    }

    /// Who acts on `case` as `by`: a principal of the tokens file.
    fn actor(&self, case: &CaseModel, by: Actor) -> &'static str {
        let named = |code: Option<&String>, fallback| {
            code.and_then(|code| principal(code)).unwrap_or(fallback)
        };
        match by {
            Actor::Handler => named(case.handler.as_ref(), "h1"),
            Actor::Supervisor => "s1",
            Actor::Director => "d1",
            Actor::Specialist => "sp1",
            Actor::Agent => "a1",
            Actor::Respondent => named(case.respondent.as_ref(), "r1"),
        }
    }

    async fn act(&mut self, case: usize, by: Actor, act: Act) {
        let Some(case) = self.case(case) else { return };
        let principal = self.actor(&case, by);
        let id = case.id.clone();
        let call = match act {
            Act::Contact(at) => {
                let request = pb::ContactComplainantRequest {
                    request_id: rid(),
                    complaint_id: id,
                    expected_version: None,
                    channel: pb::ContactChannel::Phone as i32,
                    summary: "we called".into(),
                    contacted_at: self.time(at),
                };
                self.timed(principal, Call::ContactComplainant(request), at).await;
                return;
            }
            Act::Investigate => Call::RecordInvestigation(pb::RecordInvestigationRequest {
                request_id: rid(),
                complaint_id: id,
                expected_version: None,
                findings: "the facts".into(),
            }),
            Act::Draft => Call::DraftOpinion(pb::DraftOpinionRequest {
                request_id: rid(),
                complaint_id: id,
                expected_version: None,
                opinion: "refund".into(),
            }),
            Act::Sign(capacity) => {
                let mut request = kefu_tests::flows::sign(&id, pb::SignerCapacity::Handler);
                request.capacity = capacity;
                Call::SignOpinion(request)
            }
            Act::Reply { last } => {
                let kind = if last { pb::ReplyKind::Final } else { pb::ReplyKind::Acknowledgement };
                Call::SendReply(kefu_tests::flows::reply(&id, kind, pb::ContactChannel::Letter))
            }
            Act::Implement => Call::RecordImplementation(kefu_tests::flows::implement(&id)),
            Act::Close => Call::CloseComplaint(pb::CloseComplaintRequest {
                request_id: rid(),
                complaint_id: id,
                expected_version: None,
                summary: String::new(),
            }),
            Act::Reopen => Call::ReopenComplaint(pb::ReopenComplaintRequest {
                request_id: rid(),
                complaint_id: id,
                expected_version: None,
                cause: "not satisfied".into(),
            }),
            Act::Escalate(to) => Call::EscalateComplaint(pb::EscalateComplaintRequest {
                request_id: rid(),
                complaint_id: id,
                expected_version: None,
                to,
                reason: "major".into(),
            }),
            Act::Recuse => Call::RecuseHandler(pb::RecuseHandlerRequest {
                request_id: rid(),
                complaint_id: id,
                expected_version: None,
                reason: "conflict".into(),
            }),
        };
        let recusal = matches!(call, Call::RecuseHandler(_));
        if self.write(principal, call).await.is_some() && recusal {
            self.set_handler(&case.id, None);
        }
    }

    /// A case taken through handling to closure, each step a checked write (one refused
    /// leaves the rest to be refused or accepted as the case then stands).
    async fn handle(&mut self, case: usize) {
        let Some(model) = self.case(case) else { return };
        if model.handler.is_none() {
            let request = kefu_tests::flows::assign(&model.id, "h1");
            if self.write("s1", Call::AssignHandler(request)).await.is_some() {
                self.set_handler(&model.id, Some("h1".into()));
            }
        }
        let by = Actor::Handler;
        for act in [
            Act::Contact(When::Unset),
            Act::Investigate,
            Act::Draft,
            Act::Sign(pb::SignerCapacity::Handler as i32),
            Act::Reply { last: true },
            Act::Implement,
            Act::Close,
        ] {
            let by =
                if matches!(act, Act::Draft | Act::Implement) { Actor::Specialist } else { by };
            self.act(case, by, act).await;
        }
    }

    /// A departure, alone or racing an assignment to the leaver; when it is recorded,
    /// the leaver owns nothing afterwards whichever committed first (R-C3).
    async fn depart(&mut self, staff: Who, race: Option<Race>) {
        let leaver = self.who(staff);
        let departure = Call::RecordDeparture(pb::RecordDepartureRequest {
            request_id: rid(),
            staff_id: leaver.clone(),
            reason: "left".into(),
        });
        let assignment = match race {
            None => None,
            Some(Race::Customer(n)) => {
                self.customer(n).map(|c| Call::AssignAgent(assign_agent(c, leaver.clone())))
            }
            Some(Race::Case(n)) => {
                self.case(n).map(|c| Call::AssignHandler(kefu_tests::flows::assign(&c.id, &leaver)))
            }
        };
        let Some(assignment) = assignment else {
            if let Some(ack) = self.write("s1", departure).await {
                self.departed(&leaver, &ack).await;
            }
            return;
        };
        let what = format!("step {}: {leaver} departs racing {assignment:?}", self.step);
        let mut one = self.clients("s1").await;
        let mut two = self.app.clients(Some("s1")).await;
        let was_departed = self.staff.iter().any(|s| s.code == leaver && s.departed);
        let before = self.head().await;
        let (departed, assigned) =
            tokio::join!(send(&mut one, departure.clone()), send(&mut two, assignment.clone()));
        if let Err(status) = &assigned {
            allowed(status, &what);
        }
        if let Ok(ack) = &assigned {
            assert!(!was_departed, "{what}: work assigned to a leaver: {ack:?}");
            if let (Call::AssignHandler(request), Some(result)) = (&assignment, &ack.result) {
                self.set_handler(&result.id, Some(request.handler.clone()));
            }
        }
        match departed {
            Err(status) => allowed(&status, &what),
            Ok(ack) => {
                let sent = super::calls::Sent { principal: "s1", call: departure };
                // A departure recorded before is resumed under any key, writing nothing.
                let wrote = ack.result.as_ref().is_some_and(|r| r.position > before);
                self.accepted.push(super::world::Accepted { sent, ack: ack.clone(), wrote });
                self.departed(&leaver, &ack).await;
            }
        }
    }

    /// What a recorded departure leaves: the leaver owns no customer and no open case
    /// once the reads reach the departure, and the model knows the new handlers.
    async fn departed(&mut self, leaver: &str, ack: &super::calls::Ack) {
        let answer = ack.departure.clone().expect("a departure's answer");
        for moved in &answer.cases {
            self.set_handler(&moved.id, Some(moved.new_owner.clone()));
        }
        for member in self.staff.iter_mut().filter(|s| s.code == leaver) {
            member.departed = true;
        }
        // Read at the head: the departure's position, and any later handovers of work
        // assigned to the leaver while it was recorded, even with a rebuild racing.
        let position = answer.result.map_or(0, |r| r.position).max(self.head().await);
        // With a rebuild racing, the final checks look instead (see `World::visible`).
        if !self.rebuilding() {
            self.owns_nothing(leaver, position).await;
        }
    }

    /// `leaver` owns no customer and no open case in the reads at `position`.
    pub async fn owns_nothing(&mut self, leaver: &str, position: u64) {
        let step = self.step;
        let kept = self.listed_customers(position, leaver).await;
        assert!(kept.is_empty(), "step {step}: {leaver} left and still owns customers {kept:?}");
        let mut supervisor = self.clients("s1").await;
        let open = supervisor
            .complaints
            .list_complaints(pb::ListComplaintsRequest {
                page_size: 500,
                handler: leaver.to_owned(),
                status: pb::ComplaintStatus::Open as i32,
                min_position: position,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("step {step}: list complaints: {s:?}"))
            .into_inner();
        // R-C8 over R-C3: an erased customer's case takes no new handler (the departure
        // names it as unassigned).
        let forgotten: Vec<&str> =
            self.customers.iter().filter(|c| c.forgotten).map(|c| c.id.as_str()).collect();
        let open: Vec<&str> = open
            .complaints
            .iter()
            .filter(|c| !forgotten.contains(&c.customer_id.as_str()))
            .map(|c| c.case_number.as_str())
            .collect();
        assert!(open.is_empty(), "step {step}: {leaver} left and still handles {open:?}");
    }

    /// An accepted write sent again as it was: its first answer, and nothing written.
    async fn retry(&mut self, write: usize) {
        let written: Vec<_> = self.accepted.iter().filter(|a| a.wrote).cloned().collect();
        let Some(first) = written.get(write % written.len().max(1)).cloned() else { return };
        let what = truncated(&format!("step {}: retry of {:?}", self.step, first.sent));
        // R-C8: a request about someone forgotten since can no longer be confirmed as
        // the same request (its fingerprint's key is destroyed): it fails closed. The
        // erasure itself is keyed with the installation's key and is answered.
        let forgotten =
            !matches!(first.sent.call, Call::ForgetCustomer(_)) && self.forgotten_subject(&first);
        let before = self.head().await;
        let mut clients = self.clients(first.sent.principal).await;
        let again = match send(&mut clients, first.sent.call.clone()).await {
            Err(status) if forgotten => {
                World::refused_for(
                    &status,
                    Code::FailedPrecondition,
                    "REQUEST_SUBJECT_ERASED",
                    &what,
                );
                assert_eq!(self.head().await, before, "{what}: a refusal wrote");
                return;
            }
            again => again.unwrap_or_else(|status| panic!("{what}: refused: {status:?}")),
        };
        if let (Some(first), Some(again)) = (&first.ack.archive, &again.archive) {
            // A batch: the retry names again every case the first call archived, and
            // archives what became archivable since; its counts are as of now.
            let named = first.archived.iter().all(|n| again.archived.contains(n));
            assert!(named, "{what}: first {first:?}, again {again:?}");
            if again.archived.len() == first.archived.len() {
                assert_eq!(again.position, first.position, "{what}");
                assert_eq!(self.head().await, before, "{what}: a retry wrote");
            }
            return;
        }
        if matches!(first.sent.call, Call::RegisterCustomer(_)) {
            // The write is the first one; its possible duplicates are a reading of the
            // register as of the retry (customers registered since are listed too).
            assert_eq!(again.result, first.ack.result, "{what}: not its first write");
            assert_eq!(self.head().await, before, "{what}: a retry wrote");
            return;
        }
        assert_eq!(again.answer, first.ack.answer, "{what}: not its first answer");
        assert_eq!(self.head().await, before, "{what}: a retry wrote");
    }

    /// An accepted write's key with another body: refused, never answered as the first.
    /// Where the write's data subject has been forgotten since, its fingerprint was keyed
    /// with the destroyed key, so nothing can tell the two requests apart any more: the
    /// reuse fails closed, `REQUEST_SUBJECT_ERASED` (R-C8), and nothing is written.
    ///
    /// `ArchiveCases` is left out: each case it archives is keyed by the request's key
    /// and the case number, so the same key for another year shares no key with the
    /// first and is carried out, not refused (a known gap, docs/security.md).
    async fn reuse_key(&mut self, write: usize) {
        let written: Vec<_> = self
            .accepted
            .iter()
            .filter(|a| a.wrote && !matches!(a.sent.call, Call::ArchiveCases(_)))
            .cloned()
            .collect();
        let Some(first) = written.get(write % written.len().max(1)).cloned() else { return };
        let other = first.sent.call.altered();
        let what = truncated(&format!("step {}: key reused for {other:?}", self.step));
        let forgotten = self.forgotten_subject(&first);
        let before = self.head().await;
        let mut clients = self.clients(first.sent.principal).await;
        match send(&mut clients, other).await {
            Err(status) if forgotten && status.code() == Code::FailedPrecondition => {
                World::refused_for(
                    &status,
                    Code::FailedPrecondition,
                    "REQUEST_SUBJECT_ERASED",
                    &what,
                )
            }
            Err(status) => {
                World::refused_for(&status, Code::AlreadyExists, "REQUEST_ID_REUSED", &what)
            }
            Ok(ack) => panic!("{what}: answered as the first request: {ack:?}"),
        }
        assert_eq!(self.head().await, before, "{what}: a refusal wrote");
    }

    /// Whether the customer an accepted write is about has been forgotten since.
    fn forgotten_subject(&self, write: &super::world::Accepted) -> bool {
        self.subject(write)
            .is_some_and(|subject| self.customers.iter().any(|c| c.id == subject && c.forgotten))
    }

    /// The customer whose data an accepted write is about, if any.
    fn subject(&self, write: &super::world::Accepted) -> Option<String> {
        let case_customer =
            |id: &str| self.cases.iter().find(|c| c.id == id).map(|c| c.customer.clone());
        match &write.sent.call {
            Call::RegisterCustomer(_) => write.ack.result.as_ref().map(|r| r.id.clone()),
            Call::UpdateCustomer(r) => Some(r.customer_id.clone()),
            Call::GradeCustomer(r) => Some(r.customer_id.clone()),
            Call::AssignAgent(r) => Some(r.customer_id.clone()),
            Call::RecordContact(r) => Some(r.customer_id.clone()),
            Call::ForgetCustomer(r) => Some(r.customer_id.clone()),
            Call::FileComplaint(r) => Some(r.customer_id.clone()),
            Call::LogCallback(r) => Some(r.customer_id.clone()),
            Call::AssignHandler(r) => case_customer(&r.complaint_id),
            Call::RecuseHandler(r) => case_customer(&r.complaint_id),
            Call::ContactComplainant(r) => case_customer(&r.complaint_id),
            Call::RecordInvestigation(r) => case_customer(&r.complaint_id),
            Call::DraftOpinion(r) => case_customer(&r.complaint_id),
            Call::EscalateComplaint(r) => case_customer(&r.complaint_id),
            Call::SignOpinion(r) => case_customer(&r.complaint_id),
            Call::SendReply(r) => case_customer(&r.complaint_id),
            Call::RecordImplementation(r) => case_customer(&r.complaint_id),
            Call::CloseComplaint(r) => case_customer(&r.complaint_id),
            Call::ReopenComplaint(r) => case_customer(&r.complaint_id),
            Call::RegisterStaff(_) | Call::RecordDeparture(_) | Call::ArchiveCases(_) => None,
        }
    }

    /// Reports as of a stated time: answered, or refused naming `as_of` when outside
    /// the window; never an error of the server's.
    async fn report(&mut self, as_of: When) {
        let must_refuse = matches!(as_of, When::Year(_) | When::Seconds(_) | When::Nanos(_));
        let what = format!("step {}: reports as of {as_of:?}", self.step);
        let position = self.head().await;
        let mut supervisor = self.clients("s1").await;
        let at = self.time(as_of);
        let answers = [
            supervisor
                .reports
                .list_sla_breaches(pb::ListSlaBreachesRequest {
                    min_position: position,
                    as_of: at,
                    include_at_risk: false,
                })
                .await
                .map(|_| ()),
            supervisor
                .reports
                .get_dashboard(pb::GetDashboardRequest { min_position: position, as_of: at })
                .await
                .map(|_| ()),
        ];
        for answer in answers {
            match answer {
                Ok(()) => assert!(!must_refuse, "{what}: accepted"),
                Err(status) if must_refuse => World::refused_time(&status, "as_of", &what),
                Err(status) => panic!("{what}: refused: {status:?}"),
            }
        }
    }

    fn advance(&mut self, advance: Advance) {
        let now = self.clock.now();
        let to = match advance {
            Advance::Hours(hours) => now + TimeDelta::hours(i64::from(hours)),
            Advance::Days(days) => now + TimeDelta::days(i64::from(days)),
            Advance::NewYearsEve => next_case_year(now, self.zone) - TimeDelta::milliseconds(2),
        };
        self.clock.jump_to(to);
    }
}

/// The first instant after `now` in another case year of the business zone `zone`
/// ([`case_year`] decides): found by bisection over the next 400 days.
fn next_case_year(now: DateTime<Utc>, zone: chrono_tz::Tz) -> DateTime<Utc> {
    let year = case_year(now, zone);
    let (mut low, mut high) = (now, now + TimeDelta::days(400));
    while high - low > TimeDelta::microseconds(1) {
        let middle = low + (high - low) / 2;
        if case_year(middle, zone) == year {
            low = middle;
        } else {
            high = middle;
        }
    }
    high
}

fn assign_agent(customer_id: String, agent: String) -> pb::AssignAgentRequest {
    pb::AssignAgentRequest {
        request_id: rid(),
        customer_id,
        expected_version: None,
        agent,
        reason: "balance".into(),
    }
}

fn name_text(name: Name) -> String {
    match name {
        Name::Plain => "Li Wei".into(),
        Name::Unicode => "张伟 👩‍💼 O'Brien".into(),
        Name::Huge => "x".repeat(200_000),
        Name::Empty => String::new(),
    }
}
