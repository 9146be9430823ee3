//! What must hold at the end of every sequence: the read models equal a rebuild from
//! the log, every chain verifies, case numbers are unique within their year, every
//! acknowledged write is in the log, and nobody who left owns anything.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::DateTime;
use kefu_api::pb;
use kefu_domain::case_register::{self, case_year, CaseRegisterEvent};
use kefu_domain::DomainEvent;
use kefu_event_store::{RecordedEvent, StreamId, Verification};

use super::world::World;

impl World {
    pub async fn final_checks(&mut self) {
        for rebuild in std::mem::take(&mut self.rebuilds) {
            rebuild.await.expect("a rebuild racing the steps completes");
        }
        let log = self.whole_log().await;
        self.read_models_equal_a_rebuild().await;
        self.every_projection_serving().await;
        self.chains_verify(&log).await;
        self.case_numbers_unique_in_their_year(&log).await;
        self.acknowledged_writes_in_the_log(&log);
        self.customers_listed_unless_forgotten().await;
        let head = self.head().await;
        let leavers: Vec<String> =
            self.staff.iter().filter(|s| s.departed).map(|s| s.code.clone()).collect();
        for leaver in leavers {
            self.owns_nothing(&leaver, head).await;
        }
    }

    async fn whole_log(&self) -> Vec<RecordedEvent> {
        let mut log = Vec::new();
        loop {
            let from = log.last().map_or(1, |e: &RecordedEvent| e.position + 1);
            let page = self.store.read_all(from, 1_000).await.expect("read the log");
            if page.is_empty() {
                return log;
            }
            log.extend(page);
        }
    }

    /// Waits until every projection has applied the whole log (none stopped).
    async fn caught_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let statuses = self.runner.status().await.expect("status");
            for status in &statuses {
                assert!(status.stopped.is_none(), "stopped at the end: {status:?}");
            }
            if statuses.iter().all(|s| s.lag == 0) {
                return;
            }
            assert!(Instant::now() < deadline, "projections never caught up: {statuses:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The read models the live runner built, step by step and across the rebuilds
    /// that raced it, equal a rebuild from zero of the same log (the aggregate tables
    /// among them, which also equal a scan of their rows).
    async fn read_models_equal_a_rebuild(&self) {
        self.caught_up().await;
        let live = self.runner.dump().await.expect("dump");
        // The aggregates the reports read (monthly figures, open cases per handler,
        // customers per agent, referrals) hold exactly what a scan of the rows they
        // summarise gives (issue 18); the rebuild below compares them too.
        let scanned = self.runner.aggregates_by_scan().await.expect("scan");
        let aggregates = self.runner.aggregates_stored().await.expect("aggregates");
        assert_eq!(aggregates, scanned, "the aggregates differ from a scan of the rows");
        self.runner.rebuild_all(|_, _| {}).await.expect("rebuild");
        self.caught_up().await;
        let rebuilt = self.runner.dump().await.expect("dump");
        if live != rebuilt {
            let live_only: Vec<_> = live.iter().filter(|l| !rebuilt.contains(l)).collect();
            let rebuilt_only: Vec<_> = rebuilt.iter().filter(|l| !live.contains(l)).collect();
            panic!(
                "the read models differ from a rebuild:\nlive only: {live_only:#?}\n\
                 rebuilt only: {rebuilt_only:#?}"
            );
        }
    }

    /// Health says every projection and the node serve (the runner's checkpoints say
    /// none stopped; this is what an operator's probe sees).
    async fn every_projection_serving(&self) {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
        let channel = tonic::transport::Channel::from_shared(format!("http://{}", self.app.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let mut health = HealthClient::new(channel);
        let services =
            self.runner.names().into_iter().map(|name| format!("kefu.projection.{name}"));
        for service in std::iter::once(String::new()).chain(services) {
            // Health looks at the projections every second: a stop shows within a few.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let request = HealthCheckRequest { service: service.clone() };
                let status = health.check(request).await.expect("health").into_inner().status();
                if status == ServingStatus::Serving {
                    break;
                }
                assert!(Instant::now() < deadline, "health of {service:?}: {status:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Every stream's hash chain verifies, and VerifyCase says so of every case.
    async fn chains_verify(&mut self, log: &[RecordedEvent]) {
        let streams: BTreeSet<&str> = log.iter().map(|e| e.stream_id.as_str()).collect();
        for stream in streams {
            let stream_id = StreamId::new(stream.to_owned()).expect("a stream id");
            let verified = self.store.verify_stream(&stream_id).await.expect("verify");
            assert!(matches!(verified, Verification::Intact { .. }), "{stream}: {verified:?}");
        }
        let mut compliance = self.clients("co1").await;
        for case in &self.cases {
            let verified = compliance
                .audit
                .verify_case(pb::VerifyCaseRequest { complaint: case.number.clone() })
                .await
                .unwrap_or_else(|s| panic!("verify {}: {s:?}", case.number))
                .into_inner();
            assert!(verified.intact, "{}: {verified:?}", case.number);
        }
    }

    /// R-P1: one number per case, never issued twice, each in its own year's register
    /// and in the year the case was filed (the one function `case_year` says which, in
    /// the business zone: R-T1).
    async fn case_numbers_unique_in_their_year(&mut self, log: &[RecordedEvent]) {
        let mut issued: HashMap<String, i32> = HashMap::new();
        for event in log.iter().filter(|e| e.category() == case_register::CATEGORY) {
            let register_year: i32 = event.stream_id[case_register::CATEGORY.len() + 1..]
                .parse()
                .expect("a register's year");
            let decoded = CaseRegisterEvent::from_stored(
                &event.event_type,
                event.schema_version,
                &event.payload,
            );
            let CaseRegisterEvent::CaseNumberIssued(number) = decoded.expect("a register event");
            let text = number.case_number.to_string();
            assert_eq!(number.case_number.year(), register_year, "{text} in {register_year}");
            assert_eq!(
                case_year(number.issued_at, self.zone),
                register_year,
                "{text} issued in its year"
            );
            assert!(issued.insert(text.clone(), register_year).is_none(), "{text} twice");
        }
        let numbers: BTreeSet<&str> = self.cases.iter().map(|c| c.number.as_str()).collect();
        assert_eq!(numbers.len(), self.cases.len(), "a number answered for two cases");
        let head = self.head().await;
        for case in self.cases.clone() {
            assert!(issued.contains_key(&case.number), "{} not in a register", case.number);
            let listed = self.listed_case(&case.id, head).await;
            let listed = listed.unwrap_or_else(|| panic!("{} not listed", case.number));
            assert_eq!(listed.case_number, case.number);
            let filed_at = listed.filed_at.expect("filed_at");
            let filed_at = DateTime::from_timestamp(filed_at.seconds, 0).expect("a time");
            assert_eq!(case.number[..4], case_year(filed_at, self.zone).to_string(), "{listed:?}");
        }
    }

    /// Every customer registered is listed, but none who was forgotten (R-C8).
    async fn customers_listed_unless_forgotten(&mut self) {
        let head = self.head().await;
        let listed = self.listed_customers(head, "").await;
        for customer in &self.customers {
            let shown = listed.iter().any(|c| c.customer_id == customer.id);
            assert_eq!(shown, !customer.forgotten, "{customer:?}");
        }
    }

    /// Every accepted write that moved the log is at its position under its key.
    fn acknowledged_writes_in_the_log(&self, log: &[RecordedEvent]) {
        let at: HashMap<u64, &RecordedEvent> = log.iter().map(|e| (e.position, e)).collect();
        for accepted in self.accepted.iter().filter(|a| a.wrote) {
            let Some(result) = &accepted.ack.result else { continue };
            let event = at.get(&result.position);
            let event = event.unwrap_or_else(|| panic!("lost: {:?}", accepted.sent));
            if !matches!(accepted.sent.call, super::calls::Call::RecordDeparture(_)) {
                let key = event.metadata.request_id.as_deref();
                assert_eq!(key, Some(accepted.sent.call.request_id()), "{:?}", accepted.sent);
            }
        }
    }
}
