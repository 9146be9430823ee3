//! Finding the customer (issue 20), end to end over gRPC on both backends: normalised
//! contacts, `FindCustomers`, duplicates, `MergeCustomers`, and erasure of the index.

mod duplicates;
mod erasure;
mod find;
mod merge;

use kefu_api::pb;
use kefu_tests::{rid, Clients};
use tonic::Status;

/// The standard staff, and the agent cleared to own customers above `internal` (R-C6).
pub async fn staff(app: &kefu_tests::TestApp) {
    kefu_tests::flows::standard_staff(app).await;
    kefu_tests::flows::register_cleared_agent(app).await;
}

/// A registration of `name` with these contacts, at `level`, owned by agent a1 (up to
/// `internal`) or by the cleared agent (above).
pub fn registration(
    name: &str,
    phones: &[&str],
    emails: &[&str],
    address: &str,
    level: pb::Confidentiality,
) -> pb::RegisterCustomerRequest {
    pb::RegisterCustomerRequest {
        request_id: rid(),
        name: name.to_owned(),
        kind: pb::CustomerKind::Individual as i32,
        contacts: Some(pb::Contacts {
            phones: phones.iter().map(|p| (*p).to_owned()).collect(),
            emails: emails.iter().map(|e| (*e).to_owned()).collect(),
            address: address.to_owned(),
        }),
        tier: pb::Tier::Regular as i32,
        stars: 0,
        source_channel: "web".into(),
        referred_by: String::new(),
        confidentiality: level as i32,
        agent: kefu_tests::flows::owner_for(level).into(),
    }
}

/// Registers; returns the id and the position of the write.
pub async fn register(
    clients: &mut Clients,
    request: pb::RegisterCustomerRequest,
) -> (String, u64) {
    let name = request.name.clone();
    let response = clients
        .customers
        .register_customer(request)
        .await
        .unwrap_or_else(|status| panic!("register {name}: {status:?}"))
        .into_inner();
    let result = response.result.expect("result");
    (result.id, result.position)
}

/// One page of a lookup, after the read model reached `min_position`.
pub async fn find_page(
    clients: &mut Clients,
    query: &str,
    by: pb::FindBy,
    page_size: u32,
    page_token: &str,
    min_position: u64,
) -> Result<pb::FindCustomersResponse, Status> {
    clients
        .customers
        .find_customers(pb::FindCustomersRequest {
            query: query.to_owned(),
            by: by as i32,
            page_size,
            page_token: page_token.to_owned(),
            min_position,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Every match of a lookup (one big page), as `(customer id, how it matched)`.
pub async fn find(
    clients: &mut Clients,
    query: &str,
    min_position: u64,
) -> Vec<(String, pb::MatchKind)> {
    let page = find_page(clients, query, pb::FindBy::Unspecified, 500, "", min_position)
        .await
        .unwrap_or_else(|status| panic!("find {query:?}: {status:?}"));
    assert!(page.next_page_token.is_empty(), "one page holds every match of {query:?}");
    page.matches.into_iter().map(matched).collect()
}

pub fn matched(found: pb::CustomerMatch) -> (String, pb::MatchKind) {
    let kind = pb::MatchKind::try_from(found.matched).expect("a match kind");
    (found.customer.expect("customer").customer_id, kind)
}

/// The ids of `find`.
pub async fn find_ids(clients: &mut Clients, query: &str, min_position: u64) -> Vec<String> {
    find(clients, query, min_position).await.into_iter().map(|(id, _)| id).collect()
}

pub async fn get(clients: &mut Clients, customer_id: &str) -> Result<pb::Customer, Status> {
    clients
        .customers
        .get_customer(pb::GetCustomerRequest { customer_id: customer_id.to_owned() })
        .await
        .map(|response| response.into_inner().customer.expect("customer"))
}

pub fn merge_request(duplicate: &str, survivor: &str) -> pb::MergeCustomersRequest {
    pb::MergeCustomersRequest {
        request_id: rid(),
        duplicate_id: duplicate.to_owned(),
        survivor_id: survivor.to_owned(),
        reason: "same person: same mobile, registered twice".into(),
        duplicate_expected_version: None,
        survivor_expected_version: None,
    }
}

/// Merges; returns the position of the survivor's event (the later of the two).
pub async fn merge(clients: &mut Clients, duplicate: &str, survivor: &str) -> u64 {
    let merged = clients
        .customers
        .merge_customers(merge_request(duplicate, survivor))
        .await
        .unwrap_or_else(|status| panic!("merge: {status:?}"))
        .into_inner();
    let positions = [merged.duplicate, merged.survivor].map(|r| r.expect("result").position);
    positions[0].max(positions[1])
}
