//! The matrix's world: its principals (every role at every clearance), the canaries
//! placed in every field of the target customer `T` and case `K`, the server and its
//! tokens, and the cases each cell's relationship needs.

use std::sync::atomic::{AtomicU32, Ordering};

use kefu_api::access::ROLES;
use kefu_api::auth::{hash_token, Principal};
use kefu_api::pb;
use kefu_domain::Confidentiality;
use kefu_tests::{rid, spawn_app_with, Clients, TestApp};

/// Every role of the table at every clearance, as `m-<role>-<clearance>`.
pub const CLEARANCES: [Confidentiality; 4] = [
    Confidentiality::Public,
    Confidentiality::Internal,
    Confidentiality::Confidential,
    Confidentiality::Secret,
];
/// The target customer's level: half the clearances are below it.
pub const TARGET_LEVEL: Confidentiality = Confidentiality::Confidential;

/// A canary in one field of the target customer `T` or its case `K`: the text, the
/// stream category and the event field it is stored in.
pub struct Canary {
    pub text: &'static str,
    pub category: &'static str,
    pub event_type: &'static str,
    pub field: &'static str,
}

pub const fn canary(
    text: &'static str,
    category: &'static str,
    event_type: &'static str,
    field: &'static str,
) -> Canary {
    Canary { text, category, event_type, field }
}

pub const CANARIES: &[Canary] = &[
    canary("CanaryName QZ71", "customer", "CustomerRegistered", "name"),
    canary("+8613944447171", "customer", "CustomerRegistered", "contacts"),
    canary("canary.qz71@example.cn", "customer", "CustomerRegistered", "contacts"),
    canary("Canary Road 71 QZ", "customer", "CustomerRegistered", "contacts"),
    // A code (R-C8: no prose), the rarest one: restricted like any fact of the customer.
    canary("social_media", "customer", "CustomerRegistered", "source_channel"),
    canary("CanaryGrade-QZ73", "customer", "CustomerGraded", "reason"),
    canary("CanaryNote-QZ74", "customer", "CustomerContacted", "note"),
    canary("CanaryCallback-QZ75", "customer", "CallbackLogged", "comment"),
    canary("CanaryAgentReason-QZ76", "customer", "AgentAssigned", "reason"),
    // Codes of the taxonomy (R-P3), the rarest two: restricted like any complaint detail.
    canary("privacy", "complaint", "ComplaintFiled", "category"),
    canary("misinformation", "complaint", "ComplaintFiled", "cause"),
    canary("CanaryDescription-QZ83", "complaint", "ComplaintFiled", "description"),
    canary("doc://canary-QZ84", "complaint", "ComplaintFiled", "attachments"),
    canary("CanaryAssignReason-QZ85", "complaint", "HandlerAssigned", "reason"),
    canary("CanaryContact-QZ86", "complaint", "ComplainantContacted", "summary"),
    canary("CanaryFindings-QZ87", "complaint", "InvestigationRecorded", "findings"),
    canary("CanaryOpinion-QZ88", "complaint", "OpinionDrafted", "opinion"),
    canary("CanaryReply-QZ89", "complaint", "ReplySent", "summary"),
    canary("doc://canary-material-QZ90", "complaint", "MaterialAdded", "reference"),
    canary(
        "c0ffee51c0ffee51c0ffee51c0ffee51c0ffee51c0ffee51c0ffee51c0ffee51",
        "complaint",
        "MaterialAdded",
        "sha256",
    ),
    canary("CanaryRequest-QZ92", "request", "RequestReceived", "description"),
];

pub fn principals() -> Vec<Principal> {
    let mut all = Vec::new();
    for role in ROLES {
        for clearance in CLEARANCES {
            all.push(Principal {
                id: format!("m-{}-{clearance}", role.as_str()),
                roles: vec![role],
                clearance,
            });
        }
    }
    all
}

/// A server whose tokens are the matrix's principals plus `admin` (token `token-<id>`).
pub async fn spawn(backend: kefu_testkit::Backend) -> Option<TestApp> {
    spawn_app_with(backend, |settings, dir| {
        use std::os::unix::fs::PermissionsExt;
        let mut entries = vec![
            format!(
                r#"{{"sha256":"{}","principal":"admin","roles":["admin"],"clearance":"secret"}}"#,
                hash_token("token-admin")
            ),
            // The other handler, cleared for every case it is given (R-C6).
            format!(
                r#"{{"sha256":"{}","principal":"h-other","roles":["agent"],"clearance":"secret"}}"#,
                hash_token("token-h-other")
            ),
        ];
        // The targets' owners: an agent owns only customers they are cleared for (R-C6).
        for owner in ["a-first", "a-owner"] {
            entries.push(format!(
                r#"{{"sha256":"{}","principal":"{owner}","roles":["agent"],"clearance":"secret"}}"#,
                hash_token(&format!("token-{owner}"))
            ));
        }
        for principal in principals() {
            entries.push(format!(
                r#"{{"sha256":"{}","principal":"{}","roles":["{}"],"clearance":"{}"}}"#,
                hash_token(&format!("token-{}", principal.id)),
                principal.id,
                principal.roles[0].as_str(),
                principal.clearance
            ));
        }
        let path = dir.join("matrix-tokens.json");
        std::fs::write(&path, format!(r#"{{"tokens":[{}]}}"#, entries.join(","))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        settings.tokens_file = Some(path);
        // Every principal calls every report, audit and feed RPC, as inputs: under the
        // per-principal rate of expensive reads (tests/tests/limits.rs) a surplus would
        // answer RESOURCE_EXHAUSTED before the table is asked, failing a denied cell and
        // passing an allowed one unchecked.
        kefu_tests::without_read_rate(settings, dir);
    })
    .await
}

/// The targets: customer `T` and its open case `K`, every field a canary; `fresh`, a
/// customer at the same level with plain texts, for cases that relationships need.
pub struct World {
    pub admin: Clients,
    pub t: String,
    pub k: String,
    pub fresh: String,
    /// T's service request, held by `a-owner`, its description a canary.
    pub r: String,
    pub serial: AtomicU32,
    /// The server's log, for the one state the API no longer makes (below).
    pub store: kefu_event_store::EventStore,
}

pub fn contacts(phone: &str, email: &str, address: &str) -> Option<pb::Contacts> {
    Some(pb::Contacts {
        phones: vec![phone.into()],
        emails: vec![email.into()],
        address: address.into(),
    })
}

pub fn customer(name: &str, level: Confidentiality, agent: &str) -> pb::RegisterCustomerRequest {
    let mut request = kefu_tests::flows::customer_request(name, level_pb(level), agent);
    request.contacts = contacts("+86 139 0000 1111", "plain@example.cn", "");
    request
}

pub fn level_pb(level: Confidentiality) -> pb::Confidentiality {
    match level {
        Confidentiality::Public => pb::Confidentiality::Public,
        Confidentiality::Internal => pb::Confidentiality::Internal,
        Confidentiality::Confidential => pb::Confidentiality::Confidential,
        Confidentiality::Secret => pb::Confidentiality::Secret,
    }
}

pub fn filing(customer_id: &str) -> pb::FileComplaintRequest {
    kefu_tests::flows::file_request(customer_id, pb::Severity::Normal, "r-resp")
}

impl World {
    pub async fn build(app: &TestApp) -> World {
        use pb::StaffRole::{Agent, Handler};
        let mut staff: Vec<String> = principals().into_iter().map(|p| p.id).collect();
        staff.extend(["admin", "a-first", "a-owner", "h-other", "r-resp"].map(String::from));
        let roles: &[pb::StaffRole] = &[Agent, Handler];
        let staff: Vec<(&str, &[pb::StaffRole])> =
            staff.iter().map(|id| (id.as_str(), roles)).collect();
        kefu_tests::flows::register_staff(app, &staff).await;
        let mut admin = app.clients(Some("admin")).await;

        let mut register = customer(CANARIES[0].text, TARGET_LEVEL, "a-first");
        register.contacts = contacts(CANARIES[1].text, CANARIES[2].text, CANARIES[3].text);
        register.source_channel = CANARIES[4].text.into();
        let t = admin.customers.register_customer(register).await.unwrap().into_inner();
        let t = t.result.unwrap().id;
        admin
            .customers
            .grade_customer(pb::GradeCustomerRequest {
                request_id: rid(),
                customer_id: t.clone(),
                expected_version: None,
                tier: pb::Tier::Vip as i32,
                stars: 5,
                reason: CANARIES[5].text.into(),
            })
            .await
            .unwrap();
        admin
            .customers
            .record_contact(pb::RecordContactRequest {
                request_id: rid(),
                customer_id: t.clone(),
                expected_version: None,
                channel: pb::ContactChannel::Phone as i32,
                note: CANARIES[6].text.into(),
                contacted_at: None,
            })
            .await
            .unwrap();
        admin.callbacks.log_callback(customer_callback(&t, CANARIES[7].text)).await.unwrap();
        admin
            .customers
            .assign_agent(pb::AssignAgentRequest {
                request_id: rid(),
                customer_id: t.clone(),
                expected_version: None,
                agent: "a-owner".into(),
                reason: CANARIES[8].text.into(),
            })
            .await
            .unwrap();
        // A customer T referred, so the referral report names T.
        let mut referred = customer("Referred Plain", Confidentiality::Public, "a-owner");
        referred.referred_by = t.clone();
        admin.customers.register_customer(referred).await.unwrap();

        let mut file = filing(&t);
        file.category = CANARIES[9].text.into();
        file.cause = CANARIES[10].text.into();
        file.description = CANARIES[11].text.into();
        file.attachments =
            vec![pb::AttachmentRef { reference: CANARIES[12].text.into(), sha256: String::new() }];
        let k = admin.complaints.file_complaint(file).await.unwrap().into_inner();
        let k = k.result.unwrap().id;
        let mut assign = kefu_tests::flows::assign(&k, "h-other");
        assign.reason = CANARIES[13].text.into();
        admin.complaints.assign_handler(assign).await.unwrap();
        admin.complaints.contact_complainant(contact(&k, CANARIES[14].text)).await.unwrap();
        admin.complaints.record_investigation(investigate(&k, CANARIES[15].text)).await.unwrap();
        admin
            .complaints
            .draft_opinion(pb::DraftOpinionRequest {
                request_id: rid(),
                complaint_id: k.clone(),
                expected_version: None,
                opinion: CANARIES[16].text.into(),
            })
            .await
            .unwrap();
        let mut ack =
            kefu_tests::flows::reply(&k, pb::ReplyKind::Acknowledgement, pb::ContactChannel::Phone);
        ack.summary = CANARIES[17].text.into();
        admin.complaints.send_reply(ack).await.unwrap();
        let mut material = add_material(&k);
        material.reference = CANARIES[18].text.into();
        material.sha256 = CANARIES[19].text.into();
        admin.complaints.add_material(material).await.unwrap();

        let fresh = admin
            .customers
            .register_customer(customer("Fresh Plain", TARGET_LEVEL, "a-owner"))
            .await
            .unwrap()
            .into_inner()
            .result
            .unwrap()
            .id;
        let mut world = World {
            admin,
            t,
            k,
            fresh,
            r: String::new(),
            serial: AtomicU32::new(0),
            store: app.store.clone(),
        };
        let t = world.t.clone();
        let said = CANARIES.iter().find(|c| c.category == "request").map(|c| c.text).unwrap();
        world.r = world.request_of(&t, "a-owner", said).await;
        world
    }

    /// A new service request of `customer` held by `agent`, saying `description`.
    pub async fn request_of(&mut self, customer: &str, agent: &str, description: &str) -> String {
        let mut receive = receive_request(customer, agent);
        receive.description = description.into();
        let received = self.admin.requests.receive_request(receive).await.unwrap();
        received.into_inner().result.unwrap().id
    }

    /// A new request held by `agent` when they may hold it (cleared for the target's
    /// level, R-C6), else by `a-owner`; of a plain customer at the target's level.
    pub async fn request_held_by(&mut self, agent: &Principal) -> String {
        let holder =
            if agent.clearance >= TARGET_LEVEL { agent.id.clone() } else { "a-owner".into() };
        let customer = self.fresh.clone();
        self.request_of(&customer, &holder, "plain").await
    }

    pub fn next(&self) -> u32 {
        self.serial.fetch_add(1, Ordering::Relaxed)
    }

    /// A new case of a plain customer at the target's level, handled by `handler`. One
    /// not cleared for that level is assigned while the customer is public, which is then
    /// raised past them: the handler of a case they may no longer read (R-C6), written to
    /// the log directly as the API refuses that raise (`flows::raise_past_the_holders`).
    pub async fn case_handled_by(&mut self, handler: &Principal) -> String {
        let cleared = handler.clearance >= TARGET_LEVEL;
        let customer = if cleared {
            self.fresh.clone()
        } else {
            let request = customer("Raised Person", Confidentiality::Public, "a-owner");
            let registered = self.admin.customers.register_customer(request).await.unwrap();
            registered.into_inner().result.unwrap().id
        };
        let filed = self.admin.complaints.file_complaint(filing(&customer)).await.unwrap();
        let id = filed.into_inner().result.unwrap().id;
        let assign = kefu_tests::flows::assign(&id, &handler.id);
        self.admin.complaints.assign_handler(assign).await.unwrap();
        if !cleared {
            kefu_tests::flows::raise_past_the_holders(&self.store, &customer, TARGET_LEVEL).await;
        }
        id
    }

    /// A new case of `T` against `respondent` (R-P4), handled by someone else.
    pub async fn case_against(&mut self, respondent: &str) -> String {
        let mut against = filing(&self.t);
        against.respondent = respondent.into();
        let filed = self.admin.complaints.file_complaint(against).await.unwrap();
        let id = filed.into_inner().result.unwrap().id;
        let assign = kefu_tests::flows::assign(&id, "h-other");
        self.admin.complaints.assign_handler(assign).await.unwrap();
        id
    }

    /// A new plain customer at the target's level.
    pub async fn plain_customer(&mut self) -> String {
        let request = customer("Plain Person", TARGET_LEVEL, "a-owner");
        let registered = self.admin.customers.register_customer(request).await.unwrap();
        registered.into_inner().result.unwrap().id
    }

    pub async fn set_agent(&mut self, agent: &str) {
        self.admin.customers.assign_agent(self.assign_t(agent)).await.unwrap();
    }

    /// R-C6: `agent`, not cleared for T's level, cannot be made T's own agent
    /// (`AGENT_NOT_CLEARED`); T stays with whoever owned it.
    pub async fn refuse_agent(&mut self, agent: &str) {
        let status = self.admin.customers.assign_agent(self.assign_t(agent)).await.unwrap_err();
        assert_eq!(kefu_tests::reason(&status).as_deref(), Some("AGENT_NOT_CLEARED"), "{status:?}");
    }

    fn assign_t(&self, agent: &str) -> pb::AssignAgentRequest {
        pb::AssignAgentRequest {
            request_id: rid(),
            customer_id: self.t.clone(),
            expected_version: None,
            agent: agent.into(),
            reason: String::new(),
        }
    }
}

/// R-P2: a plain material for case `complaint_id`.
pub fn receive_request(customer_id: &str, agent: &str) -> pb::ReceiveRequestRequest {
    pb::ReceiveRequestRequest {
        request_id: rid(),
        customer_id: customer_id.to_owned(),
        kind: pb::RequestKind::AfterSale as i32,
        channel: pb::IntakeChannel::Phone as i32,
        category: "product".into(),
        description: "plain".into(),
        received_at: None,
        agent: agent.to_owned(),
    }
}

pub fn add_material(complaint_id: &str) -> pb::AddMaterialRequest {
    pb::AddMaterialRequest {
        request_id: rid(),
        complaint_id: complaint_id.to_owned(),
        expected_version: None,
        reference: "doc://plain".into(),
        media_type: "application/pdf".into(),
        size_bytes: 1,
        sha256: "0".repeat(64),
        supersedes: 0,
        reason: String::new(),
    }
}

pub fn customer_callback(customer_id: &str, comment: &str) -> pb::LogCallbackRequest {
    pb::LogCallbackRequest {
        kind: pb::CallbackKind::Routine as i32,
        complaint_id: String::new(),
        ..kefu_tests::flows::complaint_callback(customer_id, "", comment)
    }
}

pub fn contact(complaint_id: &str, summary: &str) -> pb::ContactComplainantRequest {
    pb::ContactComplainantRequest {
        request_id: rid(),
        complaint_id: complaint_id.into(),
        expected_version: None,
        channel: pb::ContactChannel::Phone as i32,
        summary: summary.into(),
        contacted_at: None,
    }
}

pub fn investigate(complaint_id: &str, findings: &str) -> pb::RecordInvestigationRequest {
    pb::RecordInvestigationRequest {
        request_id: rid(),
        complaint_id: complaint_id.into(),
        expected_version: None,
        findings: findings.into(),
    }
}
