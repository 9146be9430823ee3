//! `CustomerService`: customer records (R-C1..R-C8), each call through the access table
//! (roles, the customer's own agent, clearance and classification: R-C3, R-C6).

use std::collections::HashMap;

use kefu_domain::customer::*;
use kefu_domain::search_keys::KeyKind;
use kefu_domain::{balance, CustomerId, DomainError, StaffRole};
use kefu_event_store::Condition;
use kefu_projection::queries::CustomerFilter;
use kefu_projection::{confidentiality_rank, CustomerRow, Page};
use tonic::{Request, Response, Status};

use super::{lookup, Ctx};
use crate::access::{authorize, refusal, Access, Rpc};
use crate::auth::{principal, Principal};
use crate::commands::{self, stream, Fingerprint};
use crate::convert::{self as cv, present, Fields};
use crate::error::ApiError;
use crate::feed::Reader;
use crate::pb;
use crate::pb::customer_service_server::CustomerService;
use crate::withheld::customer::{list_rows, record_withheld};

#[derive(Debug, Clone)]
pub struct Customers {
    pub ctx: Ctx,
}

type Reply<T> = Result<Response<T>, Status>;

impl Customers {
    /// Runs one command on a customer's record, as the caller, once the access table's
    /// checks of the record as it stands pass (`access`, plus any more in `command`).
    async fn run(
        &self,
        access: &Access,
        request: &commands::Request<'_>,
        customer_id: CustomerId,
        command: impl Fn(&Option<CustomerRecord>) -> Result<CustomerCommand, ApiError>,
    ) -> Result<pb::WriteResult, ApiError> {
        self.run_if(access, request, customer_id, Vec::new(), command).await
    }

    /// [`Self::run`], written only while `conditions` on other streams hold.
    async fn run_if(
        &self,
        access: &Access,
        request: &commands::Request<'_>,
        customer_id: CustomerId,
        conditions: Vec<Condition>,
        command: impl Fn(&Option<CustomerRecord>) -> Result<CustomerCommand, ApiError>,
    ) -> Result<pb::WriteResult, ApiError> {
        // A merged duplicate is governed by its survivor's level (and accepts only an
        // erasure): checked at that level before anything says it was merged.
        let governing = self.ctx.customer_level(customer_id).await?;
        let customer_stream = stream(customer_id.stream_name())?;
        let written = self
            .ctx
            .commands
            .execute_if::<Customer>(&customer_stream, request, conditions, |state| {
                access.on_customer_state(state.as_ref(), governing, &customer_id)?;
                command(state)
            })
            .await?;
        Ok(cv::write_result(customer_id.to_string(), &written))
    }

    /// R-C3: a customer's named agent holds the agent role (an analyst or archivist on
    /// the staff owns no customer). One not registered or gone is left to the
    /// assignment's own check, which answers a retry of an earlier assignment first.
    async fn is_an_agent(&self, agent: &kefu_domain::StaffId) -> Result<(), ApiError> {
        match self.ctx.active_staff(agent).await {
            Ok((member, _)) if !member.roles.contains(&StaffRole::Agent) => {
                Err(DomainError::NotAnAgent.into())
            }
            _ => Ok(()),
        }
    }

    /// R-C3 with R-C6: the active agent with the fewest customers among those cleared
    /// for `level`; `AGENT_NOT_CLEARED` when agents are active but none is cleared.
    async fn least_loaded_agent(
        &self,
        level: kefu_domain::Confidentiality,
    ) -> Result<kefu_domain::StaffId, ApiError> {
        let active: Vec<(kefu_domain::StaffId, usize)> = self
            .ctx
            .models
            .workload()
            .await?
            .into_iter()
            .filter(|load| {
                load.active && load.roles.iter().any(|role| role == StaffRole::Agent.as_str())
            })
            .filter_map(|load| {
                Some((
                    kefu_domain::StaffId::new(&load.staff_id).ok()?,
                    usize::try_from(load.customers).ok()?,
                ))
            })
            .collect();
        if active.is_empty() {
            return Err(ApiError::field(
                "agent",
                "no active agent is registered to own the customer",
            ));
        }
        let cleared = active
            .into_iter()
            .filter(|(agent, _)| self.ctx.agent_clearance(agent).is_some_and(|c| level <= c))
            .collect();
        balance::least_loaded(&cleared).ok_or_else(|| DomainError::AgentNotCleared.into())
    }

    async fn register(
        &self,
        who: Principal,
        req: pb::RegisterCustomerRequest,
    ) -> Result<pb::RegisterCustomerResponse, ApiError> {
        let access = authorize(&who, Rpc::RegisterCustomer)?;
        let fingerprint = Fingerprint::of("RegisterCustomer", &req);
        let request = commands::Request::new(&who, fingerprint, &req.request_id, None)?;
        let region = self.ctx.contacts.phone_region;
        if let Some(earlier) = self.ctx.commands.earlier(&request).await? {
            let id = earlier.stream.trim_start_matches("customer-").to_owned();
            let mut f = Fields::new();
            let contacts = cv::contacts_in(&mut f, req.contacts.as_ref(), region);
            let duplicates = match (contacts, id.parse::<CustomerId>()) {
                (Some(contacts), Ok(own)) => {
                    self.duplicates_of(&access, &req.name, &contacts, Some(own)).await?
                }
                _ => Vec::new(),
            };
            return Ok(pb::RegisterCustomerResponse {
                result: Some(cv::write_result(id, &earlier)),
                duplicates: duplicates.iter().map(lookup::duplicate_out).collect(),
            });
        }
        let mut f = Fields::new();
        let name = f.text("name", &req.name);
        let kind = f.required("kind", cv::customer_kind(req.kind));
        let contacts = cv::contacts_in(&mut f, req.contacts.as_ref(), region);
        let tier = f.required("tier", cv::tier(req.tier));
        let stars = f.stars("stars", req.stars);
        let source =
            f.code("source_channel", &req.source_channel, kefu_domain::taxonomy::source_channel);
        let referred_by = f.opt_customer_id("referred_by", &req.referred_by);
        let confidentiality =
            f.required("confidentiality", cv::confidentiality(req.confidentiality));
        let agent = f.opt_staff("agent", &req.agent);
        f.finish()?;
        // R-C6: nobody files a record at a level they could not read back.
        let confidentiality = present(confidentiality)?;
        access.new_level(confidentiality)?;
        let agent = match present(agent)? {
            Some(agent) => {
                self.is_an_agent(&agent).await?;
                agent
            }
            None => self.least_loaded_agent(confidentiality).await?,
        };
        let referred_by = present(referred_by)?;
        // A referrer above the caller's clearance is as unknown as one never registered
        // (R-C6: the answer must not tell that they exist).
        let referrer_registered = match referred_by {
            Some(referrer) => {
                let (state, _, _) =
                    self.ctx.commands.load::<Customer>(&stream(referrer.stream_name())?).await?;
                match state.filter(|record| record.forgotten_at.is_none()) {
                    Some(record) => self.ctx.governing_level(&record).await? <= access.max_level(),
                    None => false,
                }
            }
            None => false,
        };
        let (name, contacts) = (present(name)?, present(contacts)?);
        let duplicates = self.duplicates_before_registering(&access, &name, &contacts).await?;
        let customer_id = CustomerId::generate();
        let command = RegisterCustomer {
            customer_id,
            name,
            kind: present(kind)?,
            contacts,
            tier: present(tier)?,
            stars: present(stars)?,
            source_channel: present(source)?,
            referred_by,
            referrer_registered,
            confidentiality,
            agent_clearance: self.ctx.agent_clearance(&agent),
            agent: agent.clone(),
        };
        // R-C3: the agent, chosen active, must still be when the record commits.
        let written = self
            .ctx
            .assign::<Customer>(&stream(customer_id.stream_name())?, &request, &agent, |_| {
                Ok(CustomerCommand::Register(command.clone()))
            })
            .await?;
        Ok(pb::RegisterCustomerResponse {
            result: Some(cv::write_result(customer_id.to_string(), &written)),
            duplicates: duplicates.iter().map(lookup::duplicate_out).collect(),
        })
    }

    /// The possible duplicates a registration answers with; with the refusal policy on,
    /// an exact phone or email match the caller may see refuses it (`ALREADY_EXISTS`
    /// naming that customer). A match above the caller's clearance neither refuses nor
    /// shows (R-C6). Checked against the read model caught up to the log's head as of
    /// the request (so a registration just made counts), waiting at most the read wait:
    /// a read model that stays behind (a stopped projection) delays registrations by
    /// that much, and they are checked against what it holds rather than refused.
    async fn duplicates_before_registering(
        &self,
        access: &Access,
        name: &kefu_domain::Text,
        contacts: &kefu_domain::Contacts,
    ) -> Result<Vec<kefu_projection::queries::Duplicate>, ApiError> {
        let head = self.ctx.commands.store().head_position().await.map_err(ApiError::from)?;
        match self.ctx.caught_up_in(head, "customers").await {
            Ok(()) => {}
            Err(ApiError::NotCaughtUp { wanted, reached }) => {
                tracing::warn!(
                    wanted,
                    reached,
                    "duplicates checked on a read model behind the log"
                );
            }
            Err(error) => return Err(error),
        }
        let duplicates = self.duplicates_of(access, name.as_str(), contacts, None).await?;
        if self.ctx.contacts.refuse_duplicates {
            if let Some(exact) = duplicates.iter().find(|d| d.exact()) {
                let field = if exact.shared.contains(&KeyKind::Phone) { "phone" } else { "email" };
                return Err(ApiError::DuplicateContact {
                    existing: exact.customer_id.clone(),
                    field,
                });
            }
        }
        Ok(duplicates)
    }

    async fn view(
        &self,
        who: &Principal,
        customer_id: CustomerId,
    ) -> Result<pb::Customer, ApiError> {
        let access = authorize(who, Rpc::GetCustomer)?;
        let (record, version, _) =
            self.ctx.commands.load::<Customer>(&stream(customer_id.stream_name())?).await?;
        let record = record
            .ok_or_else(|| ApiError::NotFound { what: "customer", id: customer_id.to_string() })?;
        // A merged duplicate is read as part of its survivor, at the survivor's level.
        let survivor = self.ctx.survivor_of(&record).await?;
        let level = survivor.as_ref().map_or(record.confidentiality, |s| s.confidentiality);
        access.on_customer_at(&record, level)?;
        // Erasing the survivor erased the duplicates merged into it (their keys are gone).
        let forgotten = record.forgotten_at.is_some()
            || survivor.as_ref().is_some_and(|s| s.forgotten_at.is_some());
        let contacts = if forgotten { kefu_domain::Contacts::default() } else { record.contacts };
        let mut customer = pb::Customer {
            customer_id: record.id.to_string(),
            name: record
                .name
                .as_ref()
                .filter(|_| !forgotten)
                .map(ToString::to_string)
                .unwrap_or_default(),
            kind: cv::customer_kind_out(record.kind),
            contacts: Some(cv::contacts_out(&contacts)),
            tier: cv::tier_out(record.tier),
            stars: record.stars.map_or(0, |stars| u32::from(stars.get())),
            source_channel: kefu_domain::taxonomy::source_channel_label(
                record.source_channel.as_str(),
            )
            .to_owned(),
            referred_by: record.referred_by.map(|id| id.to_string()).unwrap_or_default(),
            confidentiality: cv::confidentiality_out(level),
            // A merged duplicate is owned by whoever owns its survivor (R-C3): the
            // agent it had before the merge neither reads it nor answers for it.
            agent: survivor.as_ref().map_or(&record.agent, |s| &s.agent).to_string(),
            registered_at: Some(cv::timestamp(record.registered_at)),
            first_contact_at: cv::opt_timestamp(record.first_contact_at),
            last_callback_at: cv::opt_timestamp(record.last_callback_at),
            callbacks: record.callbacks,
            forgotten,
            version,
            merged_into: survivor.map(|s| s.id.to_string()).unwrap_or_default(),
            absorbed: record.absorbed.iter().map(ToString::to_string).collect(),
            redacted_fields: Vec::new(),
        };
        self.hide_referrers(&access, [&mut customer]).await?;
        // R-C6: what the feed withholds of the record's events (a raise the read model
        // has not reached yet, a field the caller's role does not read).
        let mut reader = Reader::new(self.ctx.clone(), who.clone());
        record_withheld(&self.ctx, &mut reader, access.max_level(), customer_id)
            .await?
            .view(&mut customer);
        Ok(customer)
    }

    /// R-C6: a referrer above the caller's clearance is as unknown as one never
    /// registered, so the records they referred name no referrer to that caller.
    pub(super) async fn hide_referrers<'a>(
        &self,
        access: &Access,
        customers: impl IntoIterator<Item = &'a mut pb::Customer>,
    ) -> Result<(), ApiError> {
        let mut shown: HashMap<String, bool> = HashMap::new();
        for customer in customers {
            if customer.referred_by.is_empty() {
                continue;
            }
            let visible = match shown.get(&customer.referred_by) {
                Some(visible) => *visible,
                None => {
                    let visible = match customer.referred_by.parse::<CustomerId>() {
                        Ok(id) => self.ctx.customer_level(id).await? <= access.max_level(),
                        Err(_) => false,
                    };
                    shown.insert(customer.referred_by.clone(), visible);
                    visible
                }
            };
            if !visible {
                customer.referred_by.clear();
            }
        }
        Ok(())
    }
}

/// A read-model row as lists and lookups answer it.
pub(super) fn listed(row: CustomerRow) -> pb::Customer {
    let contacts: Option<kefu_domain::Contacts> =
        row.contacts.as_deref().and_then(|json| serde_json::from_str(json).ok());
    pb::Customer {
        customer_id: row.customer_id,
        name: row.name.unwrap_or_default(),
        kind: cv::word_to(&row.kind, cv::customer_kind_out),
        contacts: contacts.as_ref().map(cv::contacts_out),
        tier: cv::word_to(&row.tier, cv::tier_out),
        stars: row.stars.and_then(|stars| u32::try_from(stars).ok()).unwrap_or(0),
        source_channel: row.source_channel,
        referred_by: row.referred_by.unwrap_or_default(),
        confidentiality: cv::word_to(&row.confidentiality, cv::confidentiality_out),
        agent: row.agent,
        registered_at: Some(cv::timestamp(row.registered_at)),
        first_contact_at: cv::opt_timestamp(row.first_contact_at),
        last_callback_at: cv::opt_timestamp(row.last_callback_at),
        callbacks: u32::try_from(row.callbacks).unwrap_or(u32::MAX),
        forgotten: row.forgotten_at.is_some(),
        version: 0,
        merged_into: row.merged_into.unwrap_or_default(),
        absorbed: Vec::new(),
        redacted_fields: Vec::new(),
    }
}

#[tonic::async_trait]
impl CustomerService for Customers {
    async fn register_customer(
        &self,
        request: Request<pb::RegisterCustomerRequest>,
    ) -> Reply<pb::RegisterCustomerResponse> {
        let who = principal(&request)?;
        Ok(Response::new(self.register(who, request.into_inner()).await?))
    }

    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> Reply<pb::UpdateCustomerResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        // R-C6: changing the level is classifying, a check of its own; the profile fields
        // are an update. Restating the current level changes nothing and classifies
        // nothing: which it is is known only once the record is read.
        let profile = req.name.is_some() || req.contacts.is_some();
        let classify_access = authorize(&who, Rpc::ClassifyCustomer).ok();
        let update_access = match (authorize(&who, Rpc::UpdateCustomer), &classify_access) {
            (Ok(update), _) => update,
            // Only a level: the classifying grant reads the record as well.
            (Err(_), Some(classify)) if !profile && req.confidentiality != 0 => classify.clone(),
            (Err(denied), _) => return Err(denied.into()),
        };
        let mut f = Fields::new();
        let customer_id = f.customer_id("customer_id", &req.customer_id);
        let name = match req.name.as_deref() {
            Some(name) => f.text("name", name).map(Some),
            None => Some(None),
        };
        let contacts = match &req.contacts {
            Some(contacts) => {
                cv::contacts_in(&mut f, Some(contacts), self.ctx.contacts.phone_region).map(Some)
            }
            None => Some(None),
        };
        let confidentiality = if req.confidentiality == 0 {
            Some(None)
        } else {
            f.required("confidentiality", cv::confidentiality(req.confidentiality)).map(Some)
        };
        f.finish()?;
        let update = UpdateCustomer {
            name: present(name)?,
            contacts: present(contacts)?,
            confidentiality: present(confidentiality)?,
            agent_clearance: None,
            open_work: Vec::new(),
        };
        let customer_id = present(customer_id)?;
        // R-C6 with R-C3: a level may change only within the clearance of whoever holds
        // the customer's open work, as read now and held so until the change commits.
        let open_work = match (&classify_access, update.confidentiality) {
            (Some(_), Some(_)) => Some(self.ctx.open_work(&who, customer_id).await?),
            _ => None,
        };
        let changes_level = open_work.is_some();
        let (open_work, held) = open_work.map_or((Vec::new(), Vec::new()), |o| (o.work, o.held));
        let fingerprint = Fingerprint::of("UpdateCustomer", &req);
        let request =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        let result = self
            .run_if(&update_access, &request, customer_id, held, |state| {
                // Nobody changes a record they may not read (checked by `run` first), nor
                // classifies without the grant or beyond their clearance, at either end.
                if let (Some(record), Some(level)) = (state, update.confidentiality) {
                    if level != record.confidentiality {
                        let classify = classify_access
                            .as_ref()
                            .ok_or_else(|| refusal(&who, Rpc::ClassifyCustomer))?;
                        classify.on_customer(record)?;
                        classify.classify(record, level)?;
                    }
                }
                // R-C6: a raise must stay within the clearance of the customer's agent.
                let agent_clearance =
                    state.as_ref().and_then(|record| self.ctx.agent_clearance(&record.agent));
                Ok(CustomerCommand::Update(UpdateCustomer {
                    agent_clearance,
                    open_work: open_work.clone(),
                    ..update.clone()
                }))
            })
            .await?;
        if changes_level {
            self.ctx.sweep_open_work(&who, &req.request_id, customer_id).await;
        }
        Ok(Response::new(pb::UpdateCustomerResponse { result: Some(result) }))
    }

    async fn grade_customer(
        &self,
        request: Request<pb::GradeCustomerRequest>,
    ) -> Reply<pb::GradeCustomerResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::GradeCustomer)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let customer_id = f.customer_id("customer_id", &req.customer_id);
        let tier = f.required("tier", cv::tier(req.tier));
        let stars = f.stars("stars", req.stars);
        let reason = f.opt_text("reason", &req.reason);
        f.finish()?;
        let grade = GradeCustomer {
            tier: present(tier)?,
            stars: present(stars)?,
            reason: present(reason)?,
        };
        let fingerprint = Fingerprint::of("GradeCustomer", &req);
        let request =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        let result = self
            .run(&access, &request, present(customer_id)?, |_| {
                Ok(CustomerCommand::Grade(grade.clone()))
            })
            .await?;
        Ok(Response::new(pb::GradeCustomerResponse { result: Some(result) }))
    }

    async fn assign_agent(
        &self,
        request: Request<pb::AssignAgentRequest>,
    ) -> Reply<pb::AssignAgentResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::AssignAgent)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let customer_id = f.customer_id("customer_id", &req.customer_id);
        let agent = f.staff("agent", &req.agent);
        let reason = f.opt_text("reason", &req.reason);
        f.finish()?;
        let agent = present(agent)?;
        let customer_id = present(customer_id)?;
        let fingerprint = Fingerprint::of("AssignAgent", &req);
        let request =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        let assign = AssignAgent {
            agent: agent.clone(),
            reason: present(reason)?,
            agent_clearance: self.ctx.agent_clearance(&agent),
        };
        // R-C6 first (before anything about the agent is told), then R-C3: conditioned
        // on the agent still being active when it commits.
        let governing = self.ctx.customer_level(customer_id).await?;
        let customer = stream(customer_id.stream_name())?;
        let (record, _, _) = self.ctx.commands.load_unopened::<Customer>(&customer).await?;
        access.on_customer_state(record.as_ref(), governing, &customer_id)?;
        self.is_an_agent(&agent).await?;
        let written = self
            .ctx
            .assign::<Customer>(&customer, &request, &agent, |state| {
                access.on_customer_state(state.as_ref(), governing, &customer_id)?;
                Ok(CustomerCommand::AssignAgent(assign.clone()))
            })
            .await?;
        let result = cv::write_result(customer_id.to_string(), &written);
        Ok(Response::new(pb::AssignAgentResponse { result: Some(result) }))
    }

    async fn record_contact(
        &self,
        request: Request<pb::RecordContactRequest>,
    ) -> Reply<pb::RecordContactResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::RecordContact)?;
        let by = who.staff_id()?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let customer_id = f.customer_id("customer_id", &req.customer_id);
        let channel = f.required("channel", cv::contact_channel(req.channel));
        let note = f.opt_text("note", &req.note);
        let contacted_at =
            f.time_or_now("contacted_at", req.contacted_at.as_ref(), self.ctx.commands.now());
        f.finish()?;
        let contact = RecordContact {
            by,
            channel: present(channel)?,
            note: present(note)?,
            contacted_at: present(contacted_at)?,
        };
        let fingerprint = Fingerprint::of("RecordContact", &req);
        let request =
            commands::Request::new(&who, fingerprint, &req.request_id, req.expected_version)?;
        let result = self
            .run(&access, &request, present(customer_id)?, |_| {
                Ok(CustomerCommand::RecordContact(contact.clone()))
            })
            .await?;
        Ok(Response::new(pb::RecordContactResponse { result: Some(result) }))
    }

    async fn forget_customer(
        &self,
        request: Request<pb::ForgetCustomerRequest>,
    ) -> Reply<pb::ForgetCustomerResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::ForgetCustomer)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let customer_id = f.customer_id("customer_id", &req.customer_id);
        let reason = f.text("reason", &req.reason);
        f.finish()?;
        let forget = ForgetCustomer { reason: present(reason)? };
        let customer_id = present(customer_id)?;
        let (record, _, _) =
            self.ctx.commands.load::<Customer>(&stream(customer_id.stream_name())?).await?;
        let Some(record) = record else {
            return Err(ApiError::NotFound { what: "customer", id: customer_id.to_string() }.into());
        };
        access.on_customer_at(&record, self.ctx.governing_level(&record).await?)?;
        // R-C8: the event first, then the keys, then the answer. A failed append changes
        // nothing; a failure after it leaves the customer recorded as forgotten (read
        // models scrubbed, no new data accepted) and the call failed, and its retry
        // finds the event and destroys the keys. So an acknowledged erasure never leaves
        // the person readable, and nothing is ever half-done for good.
        let fingerprint = Fingerprint::of(commands::FORGET_CUSTOMER, &req);
        let request = commands::Request::new(&who, fingerprint, &req.request_id, None)?;
        let result = self
            .run(&access, &request, customer_id, |_| Ok(CustomerCommand::Forget(forget.clone())))
            .await?;
        // Erasing a survivor erases the duplicates merged into it (the same person); a
        // duplicate erased on its own takes only its own data. Read as erased: a
        // forgotten record absorbs nothing more, so this list is final.
        let (erased, _, _) = self
            .ctx
            .commands
            .load_unopened::<Customer>(&stream(customer_id.stream_name())?)
            .await?;
        let merged = erased
            .filter(|record| record.merged_into.is_none())
            .map(|record| record.absorbed)
            .unwrap_or_default();
        let store = self.ctx.commands.store();
        for subject in std::iter::once(customer_id).chain(merged) {
            let destroyed =
                store.destroy_data_key(&subject.to_string()).await.map_err(ApiError::from)?;
            tracing::info!(customer = %subject, key_destroyed = destroyed, "customer data erased");
        }
        Ok(Response::new(pb::ForgetCustomerResponse { result: Some(result) }))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Reply<pb::GetCustomerResponse> {
        let who = principal(&request)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let customer_id = f.customer_id("customer_id", &req.customer_id);
        f.finish()?;
        let customer = self.view(&who, present(customer_id)?).await?;
        Ok(Response::new(pb::GetCustomerResponse { customer: Some(customer) }))
    }

    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Reply<pb::ListCustomersResponse> {
        let who = principal(&request)?;
        let access = authorize(&who, Rpc::ListCustomers)?;
        let req = request.into_inner();
        let mut f = Fields::new();
        let after = f.opt_customer_id("page_token", &req.page_token);
        let tier = if req.tier == 0 {
            Some(None)
        } else {
            f.required("tier", cv::tier(req.tier)).map(Some)
        };
        let agent = f.opt_staff("agent", &req.agent);
        let referred_by = f.opt_customer_id("referred_by", &req.referred_by);
        f.finish()?;
        self.ctx.caught_up_in(req.min_position, "customers").await?;
        // Those referred by someone above clearance: none, as for an unknown referrer.
        if let Some(referrer) = referred_by.flatten() {
            if self.ctx.customer_level(referrer).await? > access.max_level() {
                return Ok(Response::new(pb::ListCustomersResponse::default()));
            }
        }
        let filter = CustomerFilter {
            tier: present(tier)?.map(|tier| tier.to_string()),
            agent: present(agent)?.map(|agent| agent.to_string()),
            referred_by: present(referred_by)?.map(|id| id.to_string()),
            max_confidentiality_rank: Some(confidentiality_rank(access.max_level())),
            include_forgotten: false,
        };
        let page = Page { after: present(after)?.map(|id| id.to_string()), size: req.page_size };
        let paged = self.ctx.models.customers(&filter, &page).await.map_err(ApiError::from)?;
        let mut customers: Vec<pb::Customer> = paged.rows.into_iter().map(listed).collect();
        self.hide_referrers(&access, &mut customers).await?;
        let mut reader = Reader::new(self.ctx.clone(), who.clone());
        list_rows(&self.ctx, &mut reader, access.max_level(), &mut customers).await?;
        Ok(Response::new(pb::ListCustomersResponse {
            customers,
            next_page_token: paged.next.unwrap_or_default(),
        }))
    }

    async fn find_customers(
        &self,
        request: Request<pb::FindCustomersRequest>,
    ) -> Reply<pb::FindCustomersResponse> {
        let who = principal(&request)?;
        Ok(Response::new(self.find(&who, request.into_inner()).await?))
    }

    async fn merge_customers(
        &self,
        request: Request<pb::MergeCustomersRequest>,
    ) -> Reply<pb::MergeCustomersResponse> {
        let who = principal(&request)?;
        Ok(Response::new(self.merge(&who, request.into_inner()).await?))
    }
}
