//! R-C8 for the search index: erasing a customer removes every key that finds them, in
//! the transaction that scrubs the read model, and erasing a survivor erases the
//! duplicates merged into it.

use kefu_api::pb;
use kefu_api::pb::Confidentiality::Internal;
use kefu_tests::{rid, Clients, TestApp};

use super::{find_ids, get, merge, register, registration};

kefu_tests::on_both_backends!(erasing_a_survivor_erases_its_duplicate_and_every_search_key);

async fn forget(compliance: &mut Clients, customer_id: &str) -> u64 {
    compliance
        .customers
        .forget_customer(pb::ForgetCustomerRequest {
            request_id: rid(),
            customer_id: customer_id.to_owned(),
            reason: "erasure request".into(),
        })
        .await
        .expect("forget")
        .into_inner()
        .result
        .expect("result")
        .position
}

/// How the test's people are written and searched; each key unique in the database.
const SURVIVOR_PHONE: &str = "+86 139 5555 0723";
const DUPLICATE_PHONE: &str = "139-5555-0724";
const SURVIVOR_EMAIL: &str = "OuYang.QX9@Example.cn";
const DUPLICATE_EMAIL: &str = "nana.qx9@example.cn";
const ADDRESS: &str = "淮海路 88号 QX9";

async fn erasing_a_survivor_erases_its_duplicate_and_every_search_key(app: &TestApp) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut supervisor = app.clients(Some("s1")).await;
    let mut compliance = app.clients(Some("co1")).await;
    let (survivor, _) = register(
        &mut agent,
        registration("欧阳娜娜", &[SURVIVOR_PHONE], &[SURVIVOR_EMAIL], ADDRESS, Internal),
    )
    .await;
    let (duplicate, _) = register(
        &mut agent,
        registration("欧阳娜娜", &[DUPLICATE_PHONE], &[DUPLICATE_EMAIL], "", Internal),
    )
    .await;
    let (bystander, _) =
        register(&mut agent, registration("欧阳锋", &["13955550725"], &[], "", Internal)).await;
    let at = merge(&mut supervisor, &duplicate, &survivor).await;

    // Every way of finding the person, and the stored forms the index holds.
    let queries = [
        SURVIVOR_PHONE,
        DUPLICATE_PHONE,
        SURVIVOR_EMAIL,
        DUPLICATE_EMAIL,
        "欧阳娜娜",
        "娜娜",
        "阳娜",
        "ouyangnana",
        "ou yang na na",
        "nana",
        "oynn",
    ];
    for query in queries {
        assert_eq!(find_ids(&mut agent, query, at).await, [survivor.as_str()], "{query}");
    }
    let tokens = [
        "+8613955550723",
        "+8613955550724",
        "ouyang.qx9@example.cn",
        "OuYang.QX9@example.cn",
        "nana.qx9@example.cn",
        "欧阳娜娜",
        "ouyangnana",
        "淮海路 88号 qx9",
        "淮海路 88号 QX9",
    ];
    let scanned = kefu_tests::db::scan_files(&app.db).await;
    if let Some(scanned) = &scanned {
        let present: Vec<&str> = tokens.iter().copied().filter(|t| scanned.contains(*t)).collect();
        assert!(!present.is_empty(), "the scan sees the read model's copies before the erasure");
    }

    let at = forget(&mut compliance, &survivor).await;
    for query in queries {
        assert!(find_ids(&mut agent, query, at).await.is_empty(), "{query} after the erasure");
    }
    let shown = get(&mut agent, &duplicate).await.expect("the duplicate");
    assert!(shown.forgotten && shown.name.is_empty(), "erased with its survivor: {shown:?}");
    assert!(shown.contacts.is_some_and(|c| c.phones.is_empty() && c.emails.is_empty()));
    assert_eq!(find_ids(&mut agent, "欧阳", at).await, [bystander.as_str()], "others stay");
    kefu_tests::db::assert_absent_from_files(&app.db, &tokens, "after the erasure").await;
    if let Some(scanned) = kefu_tests::db::scan_files(&app.db).await {
        assert!(scanned.contains("欧阳锋"), "the bystander's name is still there");
    }

    // A duplicate erased on its own takes only its own keys; its survivor is still found.
    let (kept, _) =
        register(&mut agent, registration("司马光", &["13955550726"], &[], "", Internal)).await;
    let (gone, _) =
        register(&mut agent, registration("司马光", &["13955550727"], &[], "", Internal)).await;
    merge(&mut supervisor, &gone, &kept).await;
    let at = forget(&mut compliance, &gone).await;
    assert!(find_ids(&mut agent, "13955550727", at).await.is_empty());
    assert_eq!(find_ids(&mut agent, "13955550726", at).await, [kept.as_str()]);
    assert_eq!(find_ids(&mut agent, "司马光", at).await, [kept.as_str()]);
    assert!(!get(&mut agent, &kept).await.expect("kept").forgotten);
    kefu_tests::db::assert_absent_from_files(&app.db, &["+8613955550727"], "one erased").await;
    if let Some(scanned) = kefu_tests::db::scan_files(&app.db).await {
        assert!(scanned.contains("+8613955550726"), "one kept");
    }
}
