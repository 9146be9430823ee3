//! The console over HTTP on a real socket (issue 21): sessions, CSRF, security headers,
//! failed sign-ins counted with gRPC's, the loopback rule, and pages that refuse and
//! record exactly what the services refuse and record.

use http::{Method, StatusCode};
use kefu_api::pb;
use kefu_tests::console::{script, with_console, Console};
use kefu_tests::{on_both_backends, TestApp, TestClock};
use tonic::Code;

/// The instant the scripted tests start at (business time: 10:00 in Shanghai).
fn start() -> chrono::DateTime<chrono::Utc> {
    "2026-11-10T02:00:00Z".parse().expect("instant")
}

fn console(app: &TestApp) -> Console {
    Console::new(app.console_addr.expect("the console is served"))
}

on_both_backends!(configure = kefu_tests::console::with_console;
    signing_in_opens_a_session_that_signing_out_ends,
    forms_without_their_token_change_nothing,
    every_answer_carries_the_security_headers,
    failed_sign_ins_are_counted_with_grpcs_and_lock_the_address_out,
    language_is_chinese_unless_asked_and_the_toggle_stays_here,
);

async fn signing_in_opens_a_session_that_signing_out_ends(app: &TestApp) {
    let mut browser = console(app);
    let home = browser.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.header("location"), "/signin");
    let page = browser.get("/operations").await;
    assert_eq!(page.header("location"), "/signin", "no session, no page");

    let signed = browser.sign_in("token-s1").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(signed.header("location"), "/operations");
    let cookie = signed.set_cookie(kefu_console::SESSION_COOKIE).expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback: {cookie}");
    assert!(!cookie.contains("token-s1"), "the token is never in a cookie");

    let page = browser.get("/operations").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"id="principal">s1<"#), "{}", page.body);

    // A stolen cookie is worth nothing after sign-out.
    let mut thief = browser.clone();
    let csrf = page.csrf();
    let out = browser.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.header("location"), "/signin");
    assert!(out.set_cookie(kefu_console::SESSION_COOKIE).unwrap().contains("Max-Age=0"));
    let after = thief.get("/operations").await;
    assert_eq!(after.header("location"), "/signin", "the session ended on the server");
    let made_up = Console {
        cookies: [(kefu_console::SESSION_COOKIE.to_owned(), "0".repeat(64))].into(),
        ..console(app)
    }
    .get("/operations")
    .await;
    assert_eq!(made_up.header("location"), "/signin", "ids are issued, not accepted");
}

/// Sessions end at their expiry on the server's clock (injected, never slept on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_expiry() {
    let clock = TestClock::at(start());
    let server_clock = clock.clock();
    let app = kefu_tests::spawn_app_with(kefu_testkit::Backend::Sqlite, move |settings, dir| {
        with_console(settings, dir);
        settings.clock = Some(server_clock);
        settings.console_session_ttl = std::time::Duration::from_secs(3_600);
    })
    .await
    .expect("sqlite");
    let mut browser = console(&app);
    browser.sign_in("token-s1").await;
    clock.advance(chrono::TimeDelta::seconds(3_599));
    assert_eq!(browser.get("/operations").await.status, StatusCode::OK, "a second before");
    clock.advance(chrono::TimeDelta::seconds(1));
    let expired = browser.get("/operations").await;
    assert_eq!(expired.header("location"), "/signin", "at its expiry");
    app.stop().await;
}

async fn forms_without_their_token_change_nothing(app: &TestApp) {
    // A sign-in posted without the form's token (a login CSRF from another site) opens
    // nothing, even with a valid bearer token.
    let mut forged = console(app);
    let answer = forged.post("/signin", &[("token", "token-s1"), ("csrf", "guess")]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.set_cookie(kefu_console::SESSION_COOKIE).is_none());
    let mut mismatched = console(app);
    mismatched.get("/signin").await;
    let answer =
        mismatched.post("/signin", &[("token", "token-s1"), ("csrf", &"a".repeat(64))]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.set_cookie(kefu_console::SESSION_COOKIE).is_none());

    // Signing out needs the session's token: another site cannot sign anyone out.
    let mut browser = console(app);
    browser.sign_in("token-s1").await;
    for bad in ["", "x", &"0".repeat(64)] {
        let refused = browser.post("/signout", &[("csrf", bad)]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{bad:?}");
    }
    let refused = browser.send(Method::POST, "/signout", Some(String::new()), &[]).await;
    assert!(refused.status.is_client_error(), "{:?}", refused.status);
    assert_eq!(browser.get("/operations").await.status, StatusCode::OK, "still signed in");
    // Every form of a signed-in page carries the token.
    let page = browser.get("/operations").await;
    let forms = page.body.matches("<form").count();
    let tokens = page.body.matches(r#"name="csrf""#).count();
    assert!(forms >= 1 && tokens >= forms, "{forms} forms, {tokens} tokens");
}

async fn every_answer_carries_the_security_headers(app: &TestApp) {
    let mut browser = console(app);
    let mut answers = vec![
        browser.get("/signin").await,
        browser.get("/nowhere").await,
        browser.get("/static/console.css").await,
        browser.get("/").await,
    ];
    browser.sign_in("token-s1").await;
    answers.push(browser.get("/operations").await);
    answers.push(browser.get("/cases/2026-999999").await);
    for answer in &answers {
        assert_eq!(
            answer.header("content-security-policy"),
            kefu_console_csp(),
            "{:?}",
            answer.status
        );
        assert_eq!(answer.header("x-content-type-options"), "nosniff");
        assert_eq!(answer.header("x-frame-options"), "DENY");
        assert_eq!(answer.header("referrer-policy"), "no-referrer");
        assert_eq!(answer.header("cache-control"), "no-store");
        assert_eq!(answer.header("strict-transport-security"), "", "not over plain HTTP");
    }
    assert_eq!(answers[1].status, StatusCode::NOT_FOUND);
    let page = &answers[4].body;
    assert!(!page.contains("style=") && !page.contains("<style"), "no inline style");
    assert!(
        !page.contains("<script>") && !page.contains("http://") && !page.contains("https://"),
        "no inline script, nothing from elsewhere"
    );
}

fn kefu_console_csp() -> &'static str {
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

async fn failed_sign_ins_are_counted_with_grpcs_and_lock_the_address_out(app: &TestApp) {
    let mut browser = console(app);
    for attempt in 0..kefu_api::auth::FAILURE_LIMIT {
        let refused = browser.sign_in(&format!("guess-{attempt}")).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert!(refused.set_cookie(kefu_console::SESSION_COOKIE).is_none());
        assert!(!refused.body.contains(&format!("guess-{attempt}")), "the token is not echoed");
    }
    let locked = browser.sign_in("token-s1").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{}", locked.body);
    assert!(locked.set_cookie(kefu_console::SESSION_COOKIE).is_none());
    // The same count as gRPC's: the address is locked out there too.
    let mut grpc = app.clients(Some("s1")).await;
    let status = grpc
        .reports
        .get_dashboard(pb::GetDashboardRequest::default())
        .await
        .expect_err("locked out over gRPC too");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
}

async fn language_is_chinese_unless_asked_and_the_toggle_stays_here(app: &TestApp) {
    let mut browser = console(app);
    let page = browser.get("/signin").await;
    assert!(page.body.contains(r#"<html lang="zh-CN">"#) && page.body.contains("登录"));
    browser.accept_language = Some("en-US,en;q=0.9".into());
    let page = browser.get("/signin").await;
    assert!(page.body.contains(r#"<html lang="en">"#) && page.body.contains("Sign in"));
    let toggled = browser.get("/lang/zh?next=/signin").await;
    assert_eq!(toggled.header("location"), "/signin");
    let page = browser.get("/signin").await;
    assert!(page.body.contains(r#"<html lang="zh-CN">"#), "the toggle wins over the browser");
    // Browsers drop tabs and newlines from a URL: `/<tab>/evil.example` is `//evil.example`.
    let away = ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example"];
    for away in away.into_iter().chain(["/\n/evil.example", "/\r\n/evil.example"]) {
        let toggled =
            browser.get(&format!("/lang/en?next={}", kefu_tests::console::encode(away))).await;
        assert_eq!(toggled.header("location"), "/", "{away}: never sent elsewhere");
    }
}

/// Beyond loopback the console needs real tokens and TLS, like the gRPC port's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_stays_on_loopback_without_tls_and_tokens() {
    let db = kefu_testkit::database(kefu_testkit::Backend::Sqlite).await.expect("sqlite");
    let mut settings = kefu::Settings::new(db.url(), "127.0.0.1:0".parse().unwrap());
    settings.console_listen = Some("0.0.0.0:0".parse().unwrap());
    let error = kefu::Application::build(settings.clone()).await.expect_err("refused");
    assert!(error.to_string().contains("needs a tokens file and TLS"), "{error:#}");
    settings.tokens_file = Some(db.scratch_dir().unwrap().join("none.json"));
    let error = kefu::Application::build(settings).await.expect_err("refused without TLS");
    assert!(
        format!("{error:#}").contains("TLS") || format!("{error:#}").contains("tokens"),
        "{error:#}"
    );
}

/// Declares `sqlite::name` and `postgres::name` over a console with a test clock.
macro_rules! with_clock {
    ($($name:ident),*) => {
        mod sqlite_clocked { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (app, clock) = kefu_tests::console::spawn_clocked(kefu_testkit::Backend::Sqlite, super::start())
                    .await
                    .expect("sqlite");
                super::$name(&app, &clock).await;
                app.stop().await;
            }
        )* }
        mod postgres_clocked { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let spawned = kefu_tests::console::spawn_clocked(kefu_testkit::Backend::Postgres, super::start());
                let Some((app, clock)) = spawned.await else { return };
                super::$name(&app, &clock).await;
                app.stop().await;
            }
        )* }
    };
}

with_clock!(pages_refuse_what_the_table_refuses_and_record_what_it_records);

async fn pages_refuse_what_the_table_refuses_and_record_what_it_records(
    app: &TestApp,
    clock: &TestClock,
) {
    let history = script(app, clock).await;
    let (_, case) = &history.closed;
    let mut grpc = app.clients(Some("co1")).await;
    grpc.reports
        .get_dashboard(pb::GetDashboardRequest { min_position: history.head, ..Default::default() })
        .await
        .expect("caught up");

    // An analyst sees aggregates only, and no case file (R-P11): refused before anything
    // is recorded.
    let mut analyst = console(app);
    analyst.sign_in("token-an1").await;
    let ops = analyst.get("/operations").await;
    assert_eq!(ops.status, StatusCode::OK);
    assert!(
        ops.body.contains("id=\"workload-withheld\"")
            && ops.body.contains("id=\"sla-items-refused\"")
    );
    assert!(!ops.body.contains("data-staff="), "no per-staff row for an analyst");
    let before = app.store.head_position().await.expect("head");
    let refused = analyst.get(&format!("/cases/{case}")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains("张三") && !refused.body.contains("the front desk was rude"));
    let dossier = analyst.get(&format!("/cases/{case}/dossier.json")).await;
    assert_eq!(dossier.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.head_position().await.expect("head"), before, "nothing recorded");
    // An agent is refused the reports as over gRPC.
    let mut agent = console(app);
    agent.sign_in("token-a1").await;
    for path in ["/operations", "/satisfaction", "/summary"] {
        assert_eq!(agent.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }

    // Compliance reads the case file; the view is recorded as inspections from the
    // console, like the gRPC audit calls.
    let mut compliance = console(app);
    compliance.sign_in("token-co1").await;
    let file = compliance.get(&format!("/cases/{case}")).await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.body);
    assert!(file.body.contains(r#"data-intact="true""#));
    assert!(
        file.body.contains(r#"data-type="OpinionSigned""#)
            && file.body.contains(r#"data-type="CallbackLogged""#)
    );
    let inspections = grpc
        .events
        .read_all(pb::ReadAllRequest {
            from_position: 1,
            limit: 1_000,
            categories: vec!["caseaudit".into()],
        })
        .await
        .expect("audit records")
        .into_inner()
        .events;
    let by_console: Vec<_> = inspections
        .iter()
        .filter_map(|e| e.metadata.as_ref())
        .filter(|m| m.source == "console" && m.actor == "co1")
        .collect();
    assert_eq!(by_console.len(), 2, "the replay and the verification: {inspections:?}");
    let csv = compliance.get("/summary.csv?month=2026-11").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").starts_with("text/csv"));
    let summary = grpc
        .reports
        .get_monthly_summary(pb::GetMonthlySummaryRequest {
            month: "2026-11".into(),
            min_position: history.head,
        })
        .await
        .expect("summary")
        .into_inner();
    assert!(csv.body.contains(&format!("complaints,,{}\r\n", summary.complaints)), "{}", csv.body);
    for count in &summary.by_category {
        assert!(csv.body.contains(&format!("category,{},{}\r\n", count.label, count.count)));
    }
    let unknown = compliance.get("/cases/2026-999999").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // A supervisor may read a complaint's details (R-P11) but not replay it: the case as
    // it stands, no timeline, nothing recorded as an inspection.
    let mut supervisor = console(app);
    supervisor.sign_in("token-s1").await;
    let before = app.store.head_position().await.expect("head");
    let file = supervisor.get(&format!("/cases/{case}")).await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.body);
    assert!(file.body.contains(r#"id="state-only""#) && file.body.contains(case.as_str()));
    assert!(!file.body.contains(r#"id="timeline""#) && !file.body.contains(r#"id="dossier""#));
    assert_eq!(app.store.head_position().await.expect("head"), before, "nothing recorded");
}

/// DNS rebinding: a page of another site whose name it points at 127.0.0.1 would be
/// the console's own origin, reading its pages and guessing tokens from this machine's
/// address. Over plain HTTP (loopback only) a request naming any other host is refused,
/// and it opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_naming_another_host_is_refused() {
    let app = kefu_tests::spawn_app_with(kefu_testkit::Backend::Sqlite, with_console)
        .await
        .expect("sqlite");
    let mut browser = console(&app);
    let port = app.console_addr.expect("console").port();
    let evil = format!("rebound.evil.example:{port}");
    let form = browser.send(Method::GET, "/signin", None, &[("host", &evil)]).await;
    assert_eq!(form.status, StatusCode::MISDIRECTED_REQUEST, "{}", form.body);
    assert!(form.set_cookie("kefu_signin").is_none(), "no sign-in form for another site");
    assert_eq!(form.header("content-security-policy"), kefu_console_csp());
    browser.sign_in("token-s1").await;
    for path in ["/operations", "/summary.csv", "/static/live.js"] {
        let read = browser.send(Method::GET, path, None, &[("host", &evil)]).await;
        assert_eq!(read.status, StatusCode::MISDIRECTED_REQUEST, "{path}");
        assert!(!read.body.contains("principal"), "{path}: nothing of the page");
    }
    for here in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), format!("[::1]:{port}")]
    {
        let page = browser.send(Method::GET, "/operations", None, &[("host", &here)]).await;
        assert_eq!(page.status, StatusCode::OK, "{here}");
    }
    app.stop().await;
}

/// A self-signed certificate for `localhost`: `(certificate PEM, key PEM)`.
fn certificate() -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("self-signed certificate");
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

/// Writes `identity` into `dir` and configures kefu's TLS with it.
fn with_tls(settings: &mut kefu::Settings, dir: &std::path::Path, identity: &(String, String)) {
    let certificate = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&certificate, &identity.0).expect("write certificate");
    std::fs::write(&key, &identity.1).expect("write key");
    settings.tls = Some(kefu::TlsFiles { certificate, key, client_ca: None });
}

/// Over TLS every cookie the console sets is `Secure` (the session's with the `__Host-`
/// prefix) and every answer tells browsers to keep to HTTPS; plain HTTP gets nothing.
/// (Without TLS neither: `signing_in_opens_a_session_that_signing_out_ends`,
/// `every_answer_carries_the_security_headers`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_every_cookie_is_secure_and_browsers_keep_to_https() {
    let identity = certificate();
    let written = identity.clone();
    let app = kefu_tests::spawn_app_with(kefu_testkit::Backend::Sqlite, move |settings, dir| {
        with_console(settings, dir);
        with_tls(settings, dir, &written);
    })
    .await
    .expect("sqlite");
    let addr = app.console_addr.expect("console");
    let mut browser = Console::over_tls(addr, &identity.0);
    let form = browser.get("/signin").await;
    assert!(form.set_cookie("__Host-kefu_signin").is_some(), "{:?}", form.set_cookies());
    let mut answers = vec![form];
    let signed = browser.sign_in("token-s1").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let session = signed.set_cookie(kefu_console::SESSION_COOKIE_SECURE).expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(session.contains(attribute), "{attribute} missing: {session}");
    }
    assert!(signed.set_cookie(kefu_console::SESSION_COOKIE).is_none(), "only the __Host- name");
    answers.push(signed);
    answers.push(browser.get("/operations").await);
    answers.push(browser.get("/lang/en?next=/operations").await);
    answers.push(browser.get("/nowhere").await);
    assert_eq!(answers[2].status, StatusCode::OK);
    for answer in &answers {
        assert_eq!(answer.header("strict-transport-security"), "max-age=31536000");
        for cookie in answer.set_cookies() {
            assert!(cookie.contains("; Secure"), "a cookie without Secure over TLS: {cookie}");
        }
    }
    assert_eq!(answers[3].set_cookies().len(), 1, "the language toggle set its cookie");
    // The console speaks TLS only: a plain request gets no page.
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let plain =
        hyper::client::conn::http1::handshake::<_, http_body_util::Empty<hyper::body::Bytes>>(
            hyper_util::rt::TokioIo::new(stream),
        )
        .await;
    if let Ok((mut sender, connection)) = plain {
        tokio::spawn(connection);
        let request = http::Request::get("/signin")
            .header("host", addr.to_string())
            .body(http_body_util::Empty::new())
            .expect("request");
        assert!(sender.send_request(request).await.is_err(), "plain HTTP is not served");
    }
    app.stop().await;
}

/// Beyond loopback the console needs a tokens file and TLS, each alone is refused at
/// start with a message naming both; with both it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_the_console_needs_both_tokens_and_tls() {
    use std::os::unix::fs::PermissionsExt;
    let identity = certificate();
    let db = kefu_testkit::database(kefu_testkit::Backend::Sqlite).await.expect("sqlite");
    let dir = db.scratch_dir().expect("scratch").to_path_buf();
    let tokens_file = dir.join("tokens.json");
    let hash = kefu_api::auth::hash_token("token-s1");
    let entry = format!(
        r#"{{"sha256":"{hash}","principal":"s1","roles":["supervisor"],"clearance":"internal"}}"#
    );
    std::fs::write(&tokens_file, format!(r#"{{"tokens":[{entry}]}}"#)).expect("tokens");
    std::fs::set_permissions(&tokens_file, std::fs::Permissions::from_mode(0o600)).expect("0600");
    let mut settings = kefu::Settings::new(db.url(), "127.0.0.1:0".parse().unwrap());
    settings.console_listen = Some("0.0.0.0:0".parse().unwrap());
    settings.tokens_file = Some(tokens_file.clone());
    let error = kefu::Application::build(settings.clone()).await.expect_err("no TLS: refused");
    assert!(format!("{error:#}").contains("needs a tokens file and TLS"), "{error:#}");
    let mut with_only_tls = settings.clone();
    with_only_tls.tokens_file = None;
    with_tls(&mut with_only_tls, &dir, &identity);
    let error = kefu::Application::build(with_only_tls).await.expect_err("no tokens: refused");
    assert!(format!("{error:#}").contains("needs a tokens file and TLS"), "{error:#}");
    with_tls(&mut settings, &dir, &identity);
    let served = kefu::Application::build(settings).await.expect("tokens and TLS: served");
    assert!(served.console_addr().is_some_and(|addr| addr.ip().is_unspecified()));
    drop(served);
}

/// The console's calls go through the gRPC port's limiter as their principal: one share
/// of running calls per principal (a live page holds it like a gRPC stream), so a
/// browser is no way around a limit, and one principal's use never refuses another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_calls_take_the_principals_share_of_the_grpc_limits() {
    let app = kefu_tests::spawn_app_with(kefu_testkit::Backend::Sqlite, |settings, dir| {
        with_console(settings, dir);
        settings.limits.max_concurrent_calls_per_principal = 1;
    })
    .await
    .expect("sqlite");
    // s1's one running call: a gRPC stream, open until dropped.
    let mut grpc = app.clients(Some("s1")).await;
    let watch = grpc.reports.watch_sla(pb::WatchSlaRequest::default()).await.expect("watch");
    let mut s1 = console(&app);
    s1.sign_in("token-s1").await;
    for path in ["/operations", "/summary", "/satisfaction", "/customers?q=x", "/callbacks"] {
        let refused = s1.get(path).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{path}: {}", refused.body);
        assert!(refused.body.contains("calls running"), "{path}: {}", refused.body);
    }
    let mut d1 = console(&app);
    d1.sign_in("token-d1").await;
    assert_eq!(d1.get("/operations").await.status, StatusCode::OK, "another principal goes on");
    drop(watch);

    // d1's live page holds d1's share for as long as it is open, as a gRPC stream does.
    let (status, live) = d1.open("/operations/live").await;
    assert_eq!(status, StatusCode::OK);
    let mut grpc = app.clients(Some("d1")).await;
    let refused = grpc
        .reports
        .get_dashboard(pb::GetDashboardRequest::default())
        .await
        .expect_err("d1 already has a call running: the live page");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    drop(live);
    app.stop().await;
}

/// Whatever a caller writes over gRPC is shown as text on every page that shows it:
/// customer names (search, record), a complaint's description and material references
/// (the case file's timeline), never markup, never a link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_written_over_grpc_is_shown_as_text() {
    const HOSTILE: &str =
        r#""'><script>alert(1)</script><img src=x onerror=alert(2)><svg onload=alert(3)>"#;
    let app = kefu_tests::spawn_app_with(kefu_testkit::Backend::Sqlite, with_console)
        .await
        .expect("sqlite");
    kefu_tests::flows::standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer_id = kefu_tests::flows::register_customer(&mut agent, HOSTILE).await;
    let mut filing = kefu_tests::flows::file_request(&customer_id, pb::Severity::Normal, "");
    filing.description = HOSTILE.to_owned();
    filing.attachments[0].reference = "javascript:alert(4)".to_owned();
    let filed = agent.complaints.file_complaint(filing).await.expect("file").into_inner();
    let mut compliance = console(&app);
    compliance.sign_in("token-co1").await;
    let pages = [
        format!("/customers?q={}&by=name", kefu_tests::console::encode("script")),
        format!("/customers/{customer_id}"),
        format!("/cases/{}", filed.case_number),
        "/operations".to_owned(),
        "/callbacks".to_owned(),
    ];
    for path in &pages {
        let page = compliance.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        for markup in ["<script>alert", "<img src=x", "<svg onload", "href=\"javascript:"] {
            assert!(!page.body.contains(markup), "{path} carries {markup}");
        }
    }
    let record = compliance.get(&format!("/customers/{customer_id}")).await;
    assert!(record.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "shown, as text");
    app.stop().await;
}
