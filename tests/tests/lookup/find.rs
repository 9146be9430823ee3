//! `FindCustomers`: phones in any common writing, emails in any case, Chinese names by any
//! run of 汉字, pinyin and initials, Latin names; ranked, paged, within the clearance.

use kefu_api::pb;
use kefu_api::pb::Confidentiality::{Confidential, Internal, Secret};
use kefu_api::pb::MatchKind as M;
use kefu_tests::{reason, rid, violated_fields, TestApp};
use tonic::Code;

use super::{find, find_ids, find_page, get, register, registration};

kefu_tests::on_both_backends!(
    phone_numbers_in_any_common_writing_are_one_number,
    invalid_phone_numbers_are_refused_with_a_field_violation_and_change_nothing,
    emails_are_found_whatever_their_case,
    chinese_names_are_found_by_any_run_of_their_hanzi,
    pinyin_with_or_without_spaces_and_tones_and_initials_finds_chinese_names,
    latin_names_are_found_in_any_case,
    matches_come_best_first_and_pages_cover_each_once,
    a_caller_never_finds_a_customer_above_their_clearance,
);

async fn phone_numbers_in_any_common_writing_are_one_number(app: &TestApp) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let (id, at) =
        register(&mut agent, registration("王芳", &["+86 138-0013-8000"], &[], "", Internal)).await;
    let shown = get(&mut agent, &id).await.expect("get");
    assert_eq!(shown.contacts.expect("contacts").phones, ["+8613800138000"], "stored as E.164");
    for written in [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "0086 138 0013 8000",
        "+86 (138) 0013-8000",
        "+8613800138000",
    ] {
        assert_eq!(find(&mut agent, written, at).await, [(id.clone(), M::Phone)], "{written}");
    }
    assert!(find_ids(&mut agent, "13800138001", at).await.is_empty(), "another number");
    // An update's numbers are normalised too, and the old one no longer finds the customer.
    let updated = agent
        .customers
        .update_customer(pb::UpdateCustomerRequest {
            request_id: rid(),
            customer_id: id.clone(),
            expected_version: None,
            name: None,
            contacts: Some(pb::Contacts {
                phones: vec!["(021) 5555-0101".into()],
                ..Default::default()
            }),
            confidentiality: 0,
        })
        .await
        .expect("update")
        .into_inner()
        .result
        .expect("result");
    let shown = get(&mut agent, &id).await.expect("get");
    assert_eq!(shown.contacts.expect("contacts").phones, ["+862155550101"]);
    assert_eq!(find_ids(&mut agent, "+86 21 5555 0101", updated.position).await, [id.as_str()]);
    assert!(find_ids(&mut agent, "13800138000", updated.position).await.is_empty());
}

async fn invalid_phone_numbers_are_refused_with_a_field_violation_and_change_nothing(
    app: &TestApp,
) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let (id, at) =
        register(&mut agent, registration("李雷", &["13800138000"], &[], "", Internal)).await;
    // Digit counts the old check let through, but no region has such numbers.
    for bad in ["12345", "1380013800", "+86 1", "138001380001234", "call me"] {
        let status = agent
            .customers
            .register_customer(registration("韩梅梅", &[bad], &[], "", Internal))
            .await
            .expect_err(bad);
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}: {status:?}");
        assert_eq!(violated_fields(&status), ["contacts.phones"], "{bad}");
        let status = agent
            .customers
            .update_customer(pb::UpdateCustomerRequest {
                request_id: rid(),
                customer_id: id.clone(),
                expected_version: None,
                name: None,
                contacts: Some(pb::Contacts { phones: vec![bad.into()], ..Default::default() }),
                confidentiality: 0,
            })
            .await
            .expect_err(bad);
        assert_eq!(violated_fields(&status), ["contacts.phones"], "{bad}");
    }
    let shown = get(&mut agent, &id).await.expect("get");
    assert_eq!(shown.version, 1, "nothing was written");
    assert!(find_ids(&mut agent, "韩梅梅", at).await.is_empty(), "nobody was registered");
    let listed = agent
        .customers
        .list_customers(pb::ListCustomersRequest { min_position: at, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.customers.len(), 1);

    // A lookup's query is checked as what it says it is.
    let long = "王".repeat(201);
    for (query, by, field) in [
        ("", pb::FindBy::Unspecified, "query"),
        ("   ", pb::FindBy::Name, "query"),
        ("call me", pb::FindBy::Phone, "query"),
        ("no-at-sign", pb::FindBy::Email, "query"),
        ("12 - 34", pb::FindBy::Name, "query"),
        (long.as_str(), pb::FindBy::Name, "query"),
    ] {
        let status = find_page(&mut agent, query, by, 0, "", 0).await.expect_err(query);
        assert_eq!(status.code(), Code::InvalidArgument, "{query:?}: {status:?}");
        assert_eq!(violated_fields(&status), [field], "{query:?}");
    }
    let mut bad_kind =
        pb::FindCustomersRequest { query: "李雷".into(), by: 99, ..Default::default() };
    let status = agent.customers.find_customers(bad_kind.clone()).await.expect_err("by 99");
    assert_eq!(violated_fields(&status), ["by"]);
    bad_kind.by = 0;
    bad_kind.page_size = 501;
    let status = agent.customers.find_customers(bad_kind.clone()).await.expect_err("page 501");
    assert_eq!(violated_fields(&status), ["page_size"]);
    bad_kind.page_size = 0;
    for token in [
        "x",
        "10.zz.a.b",
        "99.00.0193a5e0-0000-7000-8000-000000000001.0193a5e0-0000-7000-8000-000000000001",
    ] {
        bad_kind.page_token = token.into();
        let status = agent.customers.find_customers(bad_kind.clone()).await.expect_err(token);
        assert_eq!(violated_fields(&status), ["page_token"], "{token}");
    }
}

async fn emails_are_found_whatever_their_case(app: &TestApp) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let (id, at) =
        register(&mut agent, registration("王芳", &[], &[" Wang.Fang@Example.CN "], "", Internal))
            .await;
    let shown = get(&mut agent, &id).await.expect("get");
    assert_eq!(
        shown.contacts.expect("contacts").emails,
        ["Wang.Fang@example.cn"],
        "domain lowercased"
    );
    for written in ["wang.fang@example.cn", "WANG.FANG@EXAMPLE.CN", " Wang.Fang@Example.cn"] {
        assert_eq!(find(&mut agent, written, at).await, [(id.clone(), M::Email)], "{written}");
    }
    assert!(find_ids(&mut agent, "wang.fang@example.com", at).await.is_empty());
    let status = agent
        .customers
        .register_customer(registration("王芳", &[], &["wang fang@example.cn"], "", Internal))
        .await
        .expect_err("an email with a space");
    assert_eq!(violated_fields(&status), ["contacts.emails"]);
}

async fn chinese_names_are_found_by_any_run_of_their_hanzi(app: &TestApp) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut ids = std::collections::HashMap::new();
    let mut at = 0;
    for name in
        ["王芳", "王小芳", "李芳芳", "欧阳娜娜", "北京市海淀区某某科技有限公司", "Fang Wang"]
    {
        let (id, position) = register(&mut agent, registration(name, &[], &[], "", Internal)).await;
        ids.insert(name, id);
        at = position;
    }
    let id = |name: &str| ids[name].clone();
    assert_eq!(find(&mut agent, "王芳", at).await, [(id("王芳"), M::NameExact)]);
    assert_eq!(
        find(&mut agent, " 王 芳 ", at).await,
        [(id("王芳"), M::NameExact)],
        "spaces ignored"
    );
    // A single character of a two-character name finds it (芳 in 王芳).
    let mut by_fang = find(&mut agent, "芳", at).await;
    by_fang.sort();
    let mut expected =
        vec![(id("王芳"), M::NamePart), (id("王小芳"), M::NamePart), (id("李芳芳"), M::NamePart)];
    expected.sort();
    assert_eq!(by_fang, expected, "each once, 李芳芳 too");
    let mut by_wang = find_ids(&mut agent, "王", at).await;
    by_wang.sort();
    let mut expected = vec![id("王芳"), id("王小芳")];
    expected.sort();
    assert_eq!(by_wang, expected, "not Fang Wang: 汉字 find 汉字");
    assert_eq!(find(&mut agent, "小芳", at).await, [(id("王小芳"), M::NamePart)]);
    assert_eq!(find(&mut agent, "阳娜", at).await, [(id("欧阳娜娜"), M::NamePart)]);
    assert_eq!(find(&mut agent, "欧阳", at).await, [(id("欧阳娜娜"), M::NameStart)]);
    // Longer than the indexed substrings: found by its start, then checked whole.
    let org = id("北京市海淀区某某科技有限公司");
    assert_eq!(find(&mut agent, "海淀区某某科技有限", at).await, [(org.clone(), M::NamePart)]);
    assert_eq!(find(&mut agent, "北京市海淀区某某科技有限公司", at).await, [(org, M::NameExact)]);
    assert!(
        find_ids(&mut agent, "海淀区某某科技无限", at).await.is_empty(),
        "same start, other end"
    );
    assert!(find_ids(&mut agent, "芳王", at).await.is_empty());
}

async fn pinyin_with_or_without_spaces_and_tones_and_initials_finds_chinese_names(app: &TestApp) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut ids = std::collections::HashMap::new();
    let mut at = 0;
    for name in ["王芳", "王小芳", "单田芳", "吕布"] {
        let (id, position) = register(&mut agent, registration(name, &[], &[], "", Internal)).await;
        ids.insert(name, id);
        at = position;
    }
    let id = |name: &str| ids[name].clone();
    for query in ["wangfang", "wang fang", "Wáng Fāng", "WANG2 FANG1", "Wang-Fang"] {
        assert_eq!(find(&mut agent, query, at).await, [(id("王芳"), M::SpellingStart)], "{query}");
    }
    assert_eq!(find(&mut agent, "wf", at).await, [(id("王芳"), M::InitialsStart)]);
    assert_eq!(find(&mut agent, "wxf", at).await, [(id("王小芳"), M::InitialsStart)]);
    assert_eq!(find(&mut agent, "xiao fang", at).await, [(id("王小芳"), M::SpellingPart)]);
    let mut by_fang = find_ids(&mut agent, "fang", at).await;
    by_fang.sort();
    let mut expected = vec![id("王芳"), id("王小芳"), id("单田芳")];
    expected.sort();
    assert_eq!(by_fang, expected);
    // 单 is dān in most words but Shàn as a surname: both readings find 单田芳.
    for query in ["shantianfang", "dan tian fang", "Shàn Tiánfāng", "stf"] {
        assert_eq!(find_ids(&mut agent, query, at).await, [id("单田芳")], "{query}");
    }
    // ü typed as u or v (or with its marks).
    for query in ["lvbu", "lubu", "lǚ bù", "LÜBU"] {
        assert_eq!(find_ids(&mut agent, query, at).await, [id("吕布")], "{query}");
    }
    assert!(find_ids(&mut agent, "wangxiaofangx", at).await.is_empty());
}

async fn latin_names_are_found_in_any_case(app: &TestApp) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let (anna, _) =
        register(&mut agent, registration("Anna-Lena O'Brien", &[], &[], "", Internal)).await;
    let (zoe, at) = register(&mut agent, registration("Zoë SMITH", &[], &[], "", Internal)).await;
    for (query, kind) in [
        ("anna lena", M::SpellingStart),
        ("ANNA-LENA O'BRIEN", M::SpellingStart),
        ("obrien", M::SpellingPart),
        ("O'Brien", M::SpellingPart),
        ("alo", M::InitialsStart),
    ] {
        assert_eq!(find(&mut agent, query, at).await, [(anna.clone(), kind)], "{query}");
    }
    for query in ["zoe", "ZOË", "zoe smith", "Smith"] {
        assert_eq!(find_ids(&mut agent, query, at).await, [zoe.as_str()], "{query}");
    }
}

async fn matches_come_best_first_and_pages_cover_each_once(app: &TestApp) {
    super::staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let mut ids = std::collections::HashMap::new();
    let mut at = 0;
    for name in ["李王", "王小芳", "王", "王芳", "王王", "赵钱"] {
        let (id, position) = register(&mut agent, registration(name, &[], &[], "", Internal)).await;
        ids.insert(name, id);
        at = position;
    }
    let id = |name: &str| ids[name].clone();
    let found = find(&mut agent, "王", at).await;
    let kinds: Vec<M> = found.iter().map(|(_, kind)| *kind).collect();
    assert_eq!(kinds, [M::NameExact, M::NameStart, M::NameStart, M::NameStart, M::NamePart]);
    assert_eq!(found[0].0, id("王"), "the whole name first");
    assert_eq!(found[4].0, id("李王"), "a character inside the name last");
    let starts: std::collections::HashSet<String> =
        found[1..4].iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(starts, [id("王小芳"), id("王芳"), id("王王")].into_iter().collect(), "王王 once");
    // Spellings: a name spelled from its start before one matching from a later syllable;
    // 王王 matches both ways and is listed once, at its best.
    let spelled = find(&mut agent, "wang", at).await;
    let count = |name: &str| spelled.iter().filter(|(i, _)| *i == id(name)).count();
    assert_eq!(count("王王"), 1);
    assert_eq!(
        spelled.iter().find(|(i, _)| *i == id("王王")).map(|(_, k)| *k),
        Some(M::SpellingStart)
    );
    assert_eq!(spelled.last().map(|(i, k)| (i.clone(), *k)), Some((id("李王"), M::SpellingPart)));

    // Pages of one, following the tokens, give the same list.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page =
            find_page(&mut agent, "王", pb::FindBy::Name, 1, &token, at).await.expect("page");
        assert!(page.matches.len() <= 1);
        paged.extend(page.matches.into_iter().map(super::matched));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, found);
}

async fn a_caller_never_finds_a_customer_above_their_clearance(app: &TestApp) {
    super::staff(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let phone = "+86 139 0000 0001";
    let (secret, _) =
        register(&mut admin, registration("王芳", &[phone], &["wf@example.cn"], "", Secret)).await;
    let (confidential, _) =
        register(&mut admin, registration("王芳", &[phone], &[], "", Confidential)).await;
    let (internal, at) =
        register(&mut admin, registration("王芳", &[phone], &[], "", Internal)).await;
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    for (who, visible) in [
        ("a1", vec![internal.clone()]),
        ("svc-web", vec![internal.clone()]),
        ("s1", vec![internal.clone(), confidential.clone()]),
        ("d1", vec![internal.clone(), confidential.clone(), secret.clone()]),
    ] {
        let mut clients = app.clients(Some(who)).await;
        for query in ["王芳", "芳", "wangfang", "wf", phone, "13900000001"] {
            let found = find_ids(&mut clients, query, at).await;
            assert_eq!(sorted(found), sorted(visible.clone()), "{who} {query}");
        }
        // Pages of one end where the visible ones end: no token hints at more.
        let page =
            find_page(&mut clients, "王芳", pb::FindBy::Name, 1, "", at).await.expect("page");
        assert_eq!(page.next_page_token.is_empty(), visible.len() == 1, "{who}");
    }
    let mut agent = app.clients(Some("a1")).await;
    assert!(find_ids(&mut agent, "wf@example.cn", at).await.is_empty(), "the secret one's email");
    let mut analyst = app.clients(Some("an1")).await;
    let status =
        find_page(&mut analyst, "王芳", pb::FindBy::Name, 0, "", at).await.expect_err("analyst");
    assert_eq!(status.code(), Code::PermissionDenied, "analysts never see personal data");
    let mut anonymous = app.clients(None).await;
    let status =
        find_page(&mut anonymous, "王芳", pb::FindBy::Name, 0, "", at).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let _ = reason(&status);
}
