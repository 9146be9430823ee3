//! TLS end to end: with a certificate configured kefu speaks only TLS (rustls).

use kefu::TlsFiles;
use kefu_api::pb;
use kefu_testkit::Backend;
use kefu_tests::{rid, spawn_app_with, TestApp};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_end_to_end_sqlite() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("self-signed certificate");
    let certificate_pem = certified.cert.pem();
    let key_pem = certified.signing_key.serialize_pem();
    let written = certificate_pem.clone();
    let app = spawn_app_with(Backend::Sqlite, move |settings, dir| {
        let certificate = dir.join("server.pem");
        let key = dir.join("server.key");
        std::fs::write(&certificate, &written).expect("write certificate");
        std::fs::write(&key, &key_pem).expect("write key");
        settings.tls = Some(TlsFiles { certificate, key, client_ca: None });
    })
    .await
    .expect("app");

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&certificate_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{}", app.addr.port()))
        .expect("uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("TLS handshake");
    let mut admin = TestApp::clients_on(channel, Some("admin"));
    let registered = admin
        .staff
        .register_staff(pb::RegisterStaffRequest {
            request_id: rid(),
            staff_id: "t1".into(),
            name: "T".into(),
            roles: vec![1],
        })
        .await
        .expect("call over TLS");
    assert_eq!(registered.into_inner().result.expect("result").id, "t1");

    // A plaintext client gets nowhere.
    let plain = Channel::from_shared(format!("http://{}", app.addr)).expect("uri").connect().await;
    if let Ok(plain) = plain {
        let mut client = TestApp::clients_on(plain, Some("admin"));
        let refused = client.staff.list_staff(pb::ListStaffRequest::default()).await;
        assert!(refused.is_err(), "plaintext must not be served when TLS is configured");
    }
    app.stop().await;
}
