//! SIGTERM against the real binary, with a client holding an `EventService.Subscribe`
//! stream open: the stream ends with UNAVAILABLE "server shutting down", the process
//! exits cleanly, and its JSON log lines say what happened.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kefu_api::pb;
use tonic::transport::Channel;

#[allow(dead_code)] // each test binary uses its part of the shared support
mod support;

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

async fn connect(addr: SocketAddr) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let endpoint = Channel::from_shared(format!("http://{addr}")).expect("uri");
        if let Ok(channel) = endpoint.connect().await {
            return channel;
        }
        assert!(Instant::now() < deadline, "kefu did not come up at {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_streams_and_the_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("kefu.db").display());
    let tokens = support::write_tokens(dir.path());
    let addr = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["serve", "--database-url", &url, "--listen", &addr.to_string()])
        .args(["--console-listen", "off"])
        .arg("--tokens-file")
        .arg(&tokens)
        .env("KEFU_LOG_FORMAT", "json")
        .env("KEFU_SHUTDOWN_GRACE", "3s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kefu serve");
    let channel = connect(addr).await;
    support::agent_and_customer(&channel, "Ma Jun SIG").await;
    let mut events =
        pb::event_service_client::EventServiceClient::with_interceptor(channel, support::Bearer);
    let mut stream = events
        .subscribe(pb::SubscribeRequest { from_position: 1, categories: vec![] })
        .await
        .expect("subscribe")
        .into_inner();
    stream.message().await.expect("an event").expect("open");

    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(terminated.success());
    // (The bounds keep a server that never stops from hanging the suite.)
    let ended = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => break status,
            }
        }
    })
    .await
    .expect("the stream ended");
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert_eq!(ended.message(), "server shutting down");

    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = server.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "kefu did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().expect("stderr"), &mut logs)
        .expect("logs");
    let messages: Vec<String> = logs
        .lines()
        .map(|line| {
            let line: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            line["message"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    for said in ["kefu is serving", "shutting down", "kefu stopped"] {
        assert!(messages.iter().any(|m| m.starts_with(said)), "{said:?} not in {messages:?}");
    }
}
