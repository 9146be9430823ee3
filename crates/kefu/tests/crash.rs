//! Nothing acknowledged is lost: a real `kefu serve` under concurrent filings is killed
//! with SIGKILL at random moments, again and again, on SQLite and PostgreSQL. Clients
//! keep every acknowledged request id and retry the unacknowledged ones (same id, same
//! request) after each restart. Then: every acknowledged filing is stored exactly once,
//! retries made no duplicates, every stream's hash chain verifies, and the read models
//! equal a rebuild from zero.
//!
//! This lives in the `kefu` package because only its tests can name the binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kefu_event_store::{EventStore, StoreOptions, StreamId, Verification};
use kefu_projection::{all_projections, Runner};
use tonic::transport::Channel;

mod support;
use support::{agent_and_customer, complaints, filing, write_tokens};

const KILLS: usize = 20;
const CLIENTS: usize = 4;

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn spawn(url: &str, addr: SocketAddr, tokens: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(["serve", "--database-url", url, "--listen", &addr.to_string()])
        // Two servers run at once; neither needs the console (its default port is shared).
        .args(["--console-listen", "off"])
        .arg("--tokens-file")
        .arg(tokens)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kefu serve")
}

async fn connect(addr: SocketAddr) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let endpoint = Channel::from_shared(format!("http://{addr}")).expect("uri");
        if let Ok(channel) = endpoint.connect().await {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
            let serving = health
                .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                .await
                .is_ok_and(|r| r.into_inner().status == 1);
            if serving {
                return channel;
            }
        }
        assert!(Instant::now() < deadline, "kefu did not come up at {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the clients know: acknowledged request ids (with the case number they got),
/// and requests sent but never answered.
#[derive(Default)]
struct Ledger {
    acked: BTreeMap<String, String>,
    unacked: BTreeSet<String>,
}

/// Files complaints from every client until `until`; a failed call (the server died)
/// leaves its request unacknowledged.
async fn load(
    channel: &Channel,
    customer: &str,
    ledger: &Arc<Mutex<Ledger>>,
    until: Instant,
    round: usize,
) {
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (mut complaints, customer, ledger) =
            (complaints(channel), customer.to_owned(), ledger.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < until {
                let request_id = format!("crash-{round}-{client}-{n}");
                n += 1;
                ledger.lock().unwrap().unacked.insert(request_id.clone());
                match complaints
                    .file_complaint(filing(
                        &request_id,
                        &customer,
                        &format!("charged twice ({request_id})"),
                    ))
                    .await
                {
                    Ok(answer) => {
                        let mut ledger = ledger.lock().unwrap();
                        ledger.unacked.remove(&request_id);
                        ledger.acked.insert(request_id, answer.into_inner().case_number);
                    }
                    Err(_) => break, // the server is gone; the request stays unacknowledged
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Retries every unacknowledged request with its own id; each must now succeed.
async fn retry_unacked(channel: &Channel, customer: &str, ledger: &Arc<Mutex<Ledger>>) -> usize {
    let pending: Vec<String> = ledger.lock().unwrap().unacked.iter().cloned().collect();
    let mut complaints = complaints(channel);
    for request_id in &pending {
        let answer = complaints
            .file_complaint(filing(request_id, customer, &format!("charged twice ({request_id})")))
            .await
            .unwrap_or_else(|status| panic!("retry of {request_id}: {status:?}"));
        let mut ledger = ledger.lock().unwrap();
        ledger.unacked.remove(request_id);
        ledger.acked.insert(request_id.clone(), answer.into_inner().case_number);
    }
    pending.len()
}

async fn crash_and_recover(url: &str, dir: &Path, backend: &str) {
    let tokens = write_tokens(dir);
    let addr = free_port();
    let mut child = spawn(url, addr, &tokens);
    let channel = connect(addr).await;
    let customer = agent_and_customer(&channel, "Crash Test Customer").await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut retried = 0;
    for round in 0..KILLS {
        let channel = connect(addr).await;
        retried += retry_unacked(&channel, &customer, &ledger).await;
        // Kill at a random moment of a burst of concurrent filings.
        let burst = Duration::from_millis(150 + (rand_u64() % 250));
        let until = Instant::now() + burst * 2;
        let loader = {
            let (channel, customer, ledger) = (channel.clone(), customer.clone(), ledger.clone());
            tokio::spawn(async move { load(&channel, &customer, &ledger, until, round).await })
        };
        tokio::time::sleep(burst).await;
        child.kill().expect("SIGKILL kefu");
        child.wait().expect("reap kefu");
        loader.await.expect("load task");
        child = spawn(url, addr, &tokens);
    }
    let channel = connect(addr).await;
    retried += retry_unacked(&channel, &customer, &ledger).await;
    drop(channel);
    child.kill().expect("stop kefu");
    child.wait().expect("reap kefu");

    // Every acknowledged filing is stored exactly once, under the number it was given.
    let store = EventStore::open(url, StoreOptions::default()).await.expect("open store");
    let acked = std::mem::take(&mut ledger.lock().unwrap().acked);
    let mut filed: HashMap<String, usize> = HashMap::new();
    let mut streams: BTreeSet<String> = BTreeSet::new();
    let mut from = 1;
    let mut events = 0u64;
    loop {
        let page = store.read_all(from, 1_000).await.expect("read");
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for event in page {
            events += 1;
            streams.insert(event.stream_id.clone());
            if event.event_type == "ComplaintFiled" {
                let request_id = event.metadata.request_id.clone().expect("request id");
                *filed.entry(request_id).or_default() += 1;
            }
        }
    }
    for (request_id, case_number) in &acked {
        assert_eq!(filed.get(request_id), Some(&1), "{request_id} ({case_number}) stored once");
    }
    assert!(filed.values().all(|n| *n == 1), "a retry created a duplicate");
    let numbers: BTreeSet<&String> = acked.values().collect();
    assert_eq!(numbers.len(), acked.len(), "case numbers are unique");

    // Every stream's chain verifies.
    for stream in &streams {
        let verified = store.verify_stream(&StreamId::new(stream.clone()).unwrap()).await.unwrap();
        assert!(matches!(verified, Verification::Intact { .. }), "{stream}: {verified:?}");
    }

    // The read models, caught up after the crashes, equal a rebuild from zero.
    let runner = Runner::new(store.clone(), all_projections());
    runner.catch_up().await.expect("catch up");
    let incremental = runner.dump().await.expect("dump");
    assert!(incremental.iter().any(|line| line.starts_with("rm_complaints: ")), "nothing dumped");
    runner.rebuild_all(|_, _| {}).await.expect("rebuild");
    let rebuilt = runner.dump().await.expect("dump");
    assert_eq!(incremental, rebuilt, "read models after crashes differ from a rebuild");
    println!(
        "{backend}: survived {KILLS} SIGKILLs; {} filings acknowledged ({retried} after a retry), \
         {events} events in {} streams verified, read models equal a rebuild",
        acked.len(),
        streams.len()
    );
}

/// A little randomness without a dependency: the clock's low bits.
fn rand_u64() -> u64 {
    u64::from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loses_no_acknowledged_write_through_sigkills() {
    let db = kefu_testkit::sqlite();
    crash_and_recover(db.url(), db.scratch_dir().expect("dir"), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_loses_no_acknowledged_write_through_sigkills() {
    let Some(db) = kefu_testkit::postgres().await else { return };
    crash_and_recover(db.url(), db.scratch_dir().expect("dir"), "postgres").await;
}
