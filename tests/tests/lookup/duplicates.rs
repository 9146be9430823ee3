//! Possible duplicates on `RegisterCustomer`, and the policy that refuses exact ones.

use kefu_api::pb;
use kefu_api::pb::Confidentiality::{Internal, Secret};
use kefu_tests::{reason, TestApp};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::{find_ids, register, registration};

kefu_tests::on_both_backends!(
    registration_answers_with_possible_duplicates,
    duplicates_above_the_callers_clearance_are_neither_shown_nor_refused,
);

mod refusing {
    use super::*;

    kefu_tests::on_both_backends!(
        configure = |settings: &mut kefu::Settings, _: &std::path::Path| {
            settings.refuse_duplicate_contacts = true;
        };
        the_refusal_policy_refuses_exact_matches_naming_the_customer,
    );
}

/// A registration's new id and the duplicates it answered with, sorted:
/// `(id, shared contacts, same name)`.
async fn duplicates_of(
    clients: &mut kefu_tests::Clients,
    request: pb::RegisterCustomerRequest,
) -> (String, Vec<(String, Vec<pb::ContactMatch>, bool)>) {
    let response = clients.customers.register_customer(request).await.expect("register");
    let response = response.into_inner();
    let mut duplicates: Vec<_> = response
        .duplicates
        .into_iter()
        .map(|d| {
            let shared =
                d.shared.iter().map(|s| pb::ContactMatch::try_from(*s).expect("kind")).collect();
            (d.customer_id, shared, d.same_name)
        })
        .collect();
    duplicates.sort();
    (response.result.expect("result").id, duplicates)
}

fn sorted<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    values
}

async fn registration_answers_with_possible_duplicates(app: &TestApp) {
    use pb::ContactMatch::{Address, Email, Phone};
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let address = "88 Huaihai Rd.";
    let (a, _) = register(
        &mut agent,
        registration("王芳", &["+86 138-0013-8000"], &["Wang@Example.cn"], address, Internal),
    )
    .await;
    // Shares only the address, under another name; shares only the name.
    register(&mut agent, registration("李雷", &[], &[], address, Internal)).await;
    register(&mut agent, registration("王芳", &[], &[], "", Internal)).await;

    // Each registration below is registered (the policy is off) and so becomes a
    // possible duplicate of the next ones.
    let same_everything =
        registration("王 芳", &["13800138000"], &["WANG@example.CN"], " 88 huaihai rd ", Internal);
    let (b, found) = duplicates_of(&mut agent, same_everything).await;
    assert_eq!(
        found,
        [(a.clone(), vec![Phone, Email, Address], true)],
        "the same phone, email and address in other writings; not 李雷 nor the other 王芳"
    );
    let phone_only = registration("韩梅梅", &["0086 138 0013 8000"], &[], "", Internal);
    let (_, found) = duplicates_of(&mut agent, phone_only).await;
    assert_eq!(
        found,
        sorted(vec![(a.clone(), vec![Phone], false), (b.clone(), vec![Phone], false)])
    );
    let email_only = registration("Han Meimei", &[], &["wang@example.cn"], "", Internal);
    let (_, found) = duplicates_of(&mut agent, email_only).await;
    assert_eq!(
        found,
        sorted(vec![(a.clone(), vec![Email], false), (b.clone(), vec![Email], false)])
    );
    // The same name and a shared address: the name tells them from 李雷's address.
    let name_and_address = registration("王芳", &[], &[], "88 HUAIHAI RD", Internal);
    let (_, found) = duplicates_of(&mut agent, name_and_address).await;
    assert_eq!(found, sorted(vec![(a.clone(), vec![Address], true), (b, vec![Address], true)]));
    let address_only = registration("赵四", &[], &[], address, Internal);
    assert!(
        duplicates_of(&mut agent, address_only).await.1.is_empty(),
        "an address alone is no match"
    );
    let strangers = registration("赵四", &["13900139000"], &["zhao@example.cn"], "", Internal);
    assert!(duplicates_of(&mut agent, strangers).await.1.is_empty());
}

async fn duplicates_above_the_callers_clearance_are_neither_shown_nor_refused(app: &TestApp) {
    super::staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let (secret, _) =
        register(&mut admin, registration("王芳", &["13900139000"], &[], "", Secret)).await;
    let mut agent = app.clients(Some("a1")).await;
    let same = || registration("王芳", &["139 0013 9000"], &[], "", Internal);
    assert!(
        duplicates_of(&mut agent, same()).await.1.is_empty(),
        "an internal agent learns nothing"
    );
    // The administrator (cleared for secret) sees it, and the agent's new registration.
    let (_, found) = duplicates_of(&mut admin, same()).await;
    assert!(found.iter().any(|(id, _, _)| *id == secret), "cleared callers see it: {found:?}");
    assert_eq!(found.len(), 2, "{found:?}");
}

fn existing_of(status: &Status) -> Option<String> {
    status.get_details_error_info().and_then(|info| info.metadata.get("customer_id").cloned())
}

async fn the_refusal_policy_refuses_exact_matches_naming_the_customer(app: &TestApp) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let (a, _) = register(
        &mut agent,
        registration("王芳", &["13800138000"], &["wang@example.cn"], "88 Huaihai Rd", Internal),
    )
    .await;
    for refused in [
        registration("韩梅梅", &["+86 138 0013 8000"], &[], "", Internal),
        registration("韩梅梅", &[], &["WANG@EXAMPLE.CN"], "", Internal),
    ] {
        let status = agent.customers.register_customer(refused).await.expect_err("a duplicate");
        assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
        assert_eq!(reason(&status).as_deref(), Some("DUPLICATE_CONTACT"));
        assert_eq!(existing_of(&status), Some(a.clone()), "names the existing customer");
    }
    // Nothing was written: nobody is found by the refused name.
    let (_, at) =
        register(&mut agent, registration("王芳", &[], &[], "88 huaihai rd", Internal)).await;
    assert!(find_ids(&mut agent, "韩梅梅", at).await.is_empty());
    // A customer the caller may not see refuses nothing and is named nowhere.
    let mut admin = app.clients(Some("admin")).await;
    let (secret, _) =
        register(&mut admin, registration("赵四", &["13900139000"], &[], "", Secret)).await;
    let response = agent
        .customers
        .register_customer(registration("赵四", &["13900139000"], &[], "", Internal))
        .await
        .expect("the agent cannot see the secret customer")
        .into_inner();
    assert!(response.duplicates.is_empty());
    let internal = response.result.expect("result").id;
    let status = admin
        .customers
        .register_customer(registration("赵四", &["13900139000"], &[], "", Internal))
        .await
        .expect_err("the administrator sees both holders of the number");
    assert_eq!(status.code(), Code::AlreadyExists);
    let existing = existing_of(&status).expect("named");
    assert!(existing == secret || existing == internal, "{existing}");
}
