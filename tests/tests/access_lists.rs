//! R-C6 and R-P4 on the operational lists: breaches, items at risk (also as `WatchSla`
//! pushes them) and due callbacks show a supervisor only the rows of customers within
//! their clearance, and never a case against them. Lists are read paths too.

use kefu_api::pb;
use kefu_tests::flows::*;
use kefu_tests::{db, Clients, TestApp};

kefu_tests::on_both_backends!(operational_lists_show_no_row_above_clearance_nor_against_the_caller,);

/// A complaint filed `hours_ago` (its clocks start then), as the admin.
async fn filed_ago(
    admin: &mut Clients,
    customer: &str,
    respondent: &str,
    hours_ago: i64,
) -> String {
    let mut request = file_request(customer, pb::Severity::Normal, respondent);
    request.received_at = Some(prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() - hours_ago * 3_600,
        nanos: 0,
    });
    let filed = admin.complaints.file_complaint(request).await.expect("file");
    filed.into_inner().result.expect("result").id
}

/// The subject ids `who` is shown by ListSlaBreaches (with items at risk), by WatchSla
/// up to its `caught_up`, and by ListDueCallbacks over the next 30 days.
async fn shown(app: &TestApp, who: &str, head: u64) -> [Vec<String>; 3] {
    let mut clients = app.clients(Some(who)).await;
    let listed = clients
        .reports
        .list_sla_breaches(pb::ListSlaBreachesRequest {
            min_position: head,
            as_of: None,
            include_at_risk: true,
        })
        .await
        .expect("breaches")
        .into_inner();
    let listed = listed.breaches.into_iter().map(|item| item.subject_id).collect();
    let request = pb::WatchSlaRequest { min_position: head, ..Default::default() };
    let mut watch = clients.reports.watch_sla(request).await.expect("watch").into_inner();
    let mut pushed = Vec::new();
    loop {
        let message = watch.message().await.expect("watch").expect("open");
        if message.caught_up {
            break;
        }
        pushed.extend(message.item.map(|item| item.subject_id));
    }
    let due = clients
        .callbacks
        .list_due_callbacks(pb::ListDueCallbacksRequest {
            horizon_hours: 24 * 30,
            min_position: head,
            ..Default::default()
        })
        .await
        .expect("due")
        .into_inner();
    let due = due
        .due
        .into_iter()
        .map(|item| if item.complaint_id.is_empty() { item.customer_id } else { item.complaint_id })
        .collect();
    [listed, pushed, due]
}

async fn operational_lists_show_no_row_above_clearance_nor_against_the_caller(app: &TestApp) {
    standard_staff(app).await;
    register_staff(app, &[("s-resp", &[pb::StaffRole::Supervisor])]).await;
    register_cleared_agent(app).await;
    let mut admin = app.clients(Some("admin")).await;
    let internal = register_customer(&mut admin, "Internal Lists Person").await;
    let request =
        customer_request("Secret Lists Person", pb::Confidentiality::Secret, CLEARED_AGENT);
    let secret = admin.customers.register_customer(request).await.expect("register");
    let secret = secret.into_inner().result.expect("result").id;

    // Breached (first response, 12 h) and at risk (11 h of 12), against s-resp or not.
    let plain = filed_ago(&mut admin, &internal, "", 48).await;
    let against = filed_ago(&mut admin, &internal, "s-resp", 48).await;
    let against_at_risk = filed_ago(&mut admin, &internal, "s-resp", 11).await;
    let of_secret = filed_ago(&mut admin, &secret, "", 48).await;
    // A callback due on a closed case against s-resp (R-P15).
    let closed_against = filed_ago(&mut admin, &internal, "s-resp", 0).await;
    handle_to_close(app, &closed_against).await;
    let head = db::head(app.db.url()).await;

    // s1 is cleared for confidential: nothing of the secret customer, not even its id.
    for (list, rows) in ["ListSlaBreaches", "WatchSla", "ListDueCallbacks"]
        .into_iter()
        .zip(shown(app, "s1", head).await)
    {
        assert!(!rows.contains(&of_secret) && !rows.contains(&secret), "s1 {list}: {rows:?}");
        if list != "ListDueCallbacks" {
            assert!(rows.contains(&plain) && rows.contains(&against), "s1 {list}: {rows:?}");
        }
    }
    // s-resp is cleared for secret but is the respondent of three cases: none of them.
    for (list, rows) in ["ListSlaBreaches", "WatchSla", "ListDueCallbacks"]
        .into_iter()
        .zip(shown(app, "s-resp", head).await)
    {
        for own in [&against, &against_at_risk, &closed_against] {
            assert!(!rows.contains(own), "s-resp {list} shows a case against them: {rows:?}");
        }
        if list == "ListDueCallbacks" {
            assert!(rows.contains(&secret), "s-resp {list}: {rows:?}");
        } else {
            assert!(rows.contains(&plain) && rows.contains(&of_secret), "s-resp {list}: {rows:?}");
        }
    }
}
