//! A plain HTTP/1.1 client for the console over a real socket (hyper), keeping cookies
//! like a browser, and the settings that serve the console in a test.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use kefu::Settings;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// Settings that serve the console on a free loopback port.
pub fn with_console(settings: &mut Settings, _: &std::path::Path) {
    settings.console_listen = Some("127.0.0.1:0".parse().expect("address"));
}

/// An answer of the console.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The `Set-Cookie` value of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The value of the first hidden `csrf` field of the page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a csrf field") + marker.len();
        let end = self.body[start..].find('"').expect("end of the csrf value");
        self.body[start..start + end].to_owned()
    }
}

/// How a client reaches the console over TLS.
#[derive(Clone)]
pub struct Tls(TlsConnector);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// A browser's worth of console client: one cookie jar, one language, over plain HTTP
/// or over TLS to `localhost`.
#[derive(Debug, Clone)]
pub struct Console {
    pub addr: SocketAddr,
    pub cookies: BTreeMap<String, String>,
    pub accept_language: Option<String>,
    pub tls: Option<Tls>,
}

impl Console {
    pub fn new(addr: SocketAddr) -> Self {
        Console { addr, cookies: BTreeMap::new(), accept_language: None, tls: None }
    }

    /// A client speaking TLS to the console, trusting only `certificate_pem` (issued for
    /// `localhost`).
    pub fn over_tls(addr: SocketAddr, certificate_pem: &str) -> Self {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(certificate_pem.as_bytes()) {
            roots.add(certificate.expect("a PEM certificate")).expect("a trusted root");
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = Tls(TlsConnector::from(std::sync::Arc::new(config)));
        Console { tls: Some(tls), ..Console::new(addr) }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        self.send(Method::GET, path, None, &[]).await
    }

    /// Posts a form (fields URL-encoded).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(Method::POST, path, Some(body), &[]).await
    }

    /// Sends a request with this client's cookies and `extra` headers; keeps the cookies
    /// the answer sets (an empty or expired one is dropped).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if !extra.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
            let host = match self.tls {
                Some(_) => format!("localhost:{}", self.addr.port()),
                None => self.addr.to_string(),
            };
            request = request.header("host", host);
        }
        if !self.cookies.is_empty() {
            let jar = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
            request = request.header("cookie", jar.join("; "));
        }
        if let Some(language) = &self.accept_language {
            request = request.header("accept-language", language.as_str());
        }
        if body.is_some() {
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let request =
            request.body(Full::new(Bytes::from(body.unwrap_or_default()))).expect("request");
        let stream =
            tokio::net::TcpStream::connect(self.addr).await.expect("connect to the console");
        let answer = match &self.tls {
            None => exchange(stream, request).await,
            Some(tls) => {
                let name = ServerName::try_from("localhost").expect("a server name");
                exchange(tls.0.connect(name, stream).await.expect("TLS handshake"), request).await
            }
        };
        for cookie in answer.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || cookie.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        answer
    }

    /// Opens `path` (plain HTTP) and returns once the headers are in: the status and
    /// the body still streaming (a live page), open until dropped.
    pub async fn open(&mut self, path: &str) -> (StatusCode, hyper::body::Incoming) {
        let stream =
            tokio::net::TcpStream::connect(self.addr).await.expect("connect to the console");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(connection);
        let jar = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
        let request = Request::get(path)
            .header("host", self.addr.to_string())
            .header("cookie", jar.join("; "))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = sender.send_request(request).await.expect("send");
        (response.status(), response.into_body())
    }

    /// Signs in with `token` through the sign-in form; the answer to the form.
    pub async fn sign_in(&mut self, token: &str) -> Answer {
        let form = self.get("/signin").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = form.csrf();
        self.post("/signin", &[("token", token), ("csrf", &csrf)]).await
    }
}

/// Sends `request` on `io` (one HTTP/1.1 exchange) and reads the whole answer.
async fn exchange<I>(io: I, request: Request<Full<Bytes>>) -> Answer
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.expect("handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The cases of the scripted history the console tests look at.
#[derive(Debug, Clone)]
pub struct Script {
    pub customer_id: String,
    /// Handled by h1, closed, then a satisfied callback (score 5).
    pub closed: (String, String),
    /// Assigned to h2 and left open; its first response is late.
    pub assigned: (String, String),
    /// Major, never assigned; its first response is late.
    pub major: (String, String),
    /// The log's head after the script, for read-your-writes.
    pub head: u64,
}

/// A small history: staff, a customer, three complaints (one closed with a callback,
/// one assigned, one major), then the clock moved 13 hours so that two first
/// responses are late (R-P7).
pub async fn script(app: &crate::TestApp, clock: &crate::TestClock) -> Script {
    use kefu_api::pb;

    use crate::flows;
    flows::standard_staff(app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer_id = flows::register_customer(&mut agent, "张三").await;
    let closed = flows::file(&mut agent, &customer_id, pb::Severity::Normal, "").await;
    let assigned = flows::file(&mut agent, &customer_id, pb::Severity::Normal, "").await;
    let major = flows::file(&mut agent, &customer_id, pb::Severity::Major, "").await;
    flows::handle_to_close(app, &closed.0).await;
    agent
        .callbacks
        .log_callback(flows::complaint_callback(&customer_id, &closed.0, "很满意"))
        .await
        .expect("callback");
    let mut supervisor = app.clients(Some("s1")).await;
    supervisor.complaints.assign_handler(flows::assign(&assigned.0, "h2")).await.expect("assign");
    clock.advance(chrono::TimeDelta::hours(13));
    let head = app.store.head_position().await.expect("head");
    Script { customer_id, closed, assigned, major, head }
}

/// A server with the console and a test clock set at `start`; `None` when PostgreSQL
/// cannot be had outside CI.
pub async fn spawn_clocked(
    backend: kefu_testkit::Backend,
    start: chrono::DateTime<chrono::Utc>,
) -> Option<(crate::TestApp, crate::TestClock)> {
    let clock = crate::TestClock::at(start);
    let server_clock = clock.clock();
    let app = crate::spawn_app_with(backend, move |settings, dir| {
        with_console(settings, dir);
        // Reports as inputs, not as load (console.rs tests the console under the limits).
        crate::without_read_rate(settings, dir);
        settings.clock = Some(server_clock);
        // The watch looks often, so a live item reaches the page soon.
        settings.sla_watch_interval = std::time::Duration::from_millis(200);
    })
    .await?;
    Some((app, clock))
}
