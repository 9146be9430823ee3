//! TLS end to end: with a certificate configured kefu speaks only TLS (rustls); with a
//! client CA, only to clients holding a certificate it signed (mutual TLS).

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

/// A certificate authority and certificates it signs, for mutual TLS.
struct Authority {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages =
            vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let key = rcgen::KeyPair::generate().expect("CA key");
        Authority { issuer: rcgen::CertifiedIssuer::self_signed(params, key).expect("CA") }
    }

    /// `(certificate PEM, key PEM)` for `name`, for a server or a client.
    fn issue(&self, name: &str, purpose: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![purpose];
        let key = rcgen::KeyPair::generate().expect("key");
        let certificate = params.signed_by(&key, &self.issuer).expect("sign");
        (certificate.pem(), key.serialize_pem())
    }
}

/// With a client CA configured, a client needs a certificate that CA signed to connect
/// at all, and still its bearer token to be anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_wants_a_client_certificate_and_still_a_token_sqlite() {
    use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let authority = Authority::new("kefu test CA");
    let (server_pem, server_key) = authority.issue("localhost", ServerAuth);
    let (client_pem, client_key) = authority.issue("svc-web", ClientAuth);
    let ca_pem = authority.issuer.pem();
    let written = ca_pem.clone();
    let app = spawn_app_with(Backend::Sqlite, move |settings, dir| {
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        settings.tls = Some(TlsFiles {
            certificate: file("server.pem", &server_pem),
            key: file("server.key", &server_key),
            client_ca: Some(file("clients-ca.pem", &written)),
        });
    })
    .await
    .expect("app");
    let endpoint =
        || Channel::from_shared(format!("https://localhost:{}", app.addr.port())).expect("uri");
    let trusting = || {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca_pem))
            .domain_name("localhost")
    };

    let with_certificate =
        trusting().identity(tonic::transport::Identity::from_pem(&client_pem, &client_key));
    let channel =
        endpoint().tls_config(with_certificate).expect("tls").connect().await.expect("mTLS");
    let mut admin = TestApp::clients_on(channel.clone(), Some("admin"));
    admin.staff.list_staff(pb::ListStaffRequest::default()).await.expect("certificate and token");
    let mut anonymous = TestApp::clients_on(channel, None);
    let refused = anonymous.staff.list_staff(pb::ListStaffRequest::default()).await;
    assert_eq!(
        refused.expect_err("a certificate is not a principal").code(),
        tonic::Code::Unauthenticated
    );

    // No certificate, or one another CA signed: no connection.
    let stranger = Authority::new("another CA");
    let (other_pem, other_key) = stranger.issue("svc-web", ClientAuth);
    let strangers =
        trusting().identity(tonic::transport::Identity::from_pem(&other_pem, &other_key));
    for (who, tls) in [("no certificate", trusting()), ("another CA's", strangers)] {
        let connected = endpoint().tls_config(tls).expect("tls").connect().await;
        if let Ok(channel) = connected {
            let mut client = TestApp::clients_on(channel, Some("admin"));
            let call = client.staff.list_staff(pb::ListStaffRequest::default()).await;
            assert!(call.is_err(), "{who}: served without a client certificate it trusts");
        }
    }
    app.stop().await;
}
