//! The client examples of `examples/python/` (grpcio, generated stubs) run against a
//! real kefu: an idempotent filing retry, ABORTED and `expected_version`, reading a
//! write with `min_position`, following the event feed and resuming it. Skipped (with
//! a message) where grpcio-tools is not installed, except under `CI`.

use std::path::Path;
use std::process::Command;

use kefu_testkit::Backend;
use kefu_tests::{flows, spawn_app};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/python");

fn python_has_the_tools() -> bool {
    Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, grpc_status"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs `script ARGS` as `principal`; its output, or a failure with it.
async fn run(
    script: &str,
    args: &[&str],
    address: &str,
    principal: &str,
    generated: &Path,
) -> String {
    let mut command = Command::new("python3");
    command
        .arg(Path::new(EXAMPLES).join(script))
        .args(args)
        .env("KEFU_ADDRESS", address)
        .env("KEFU_TOKEN", format!("token-{principal}"))
        .env("KEFU_GENERATED", generated);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    println!("$ {script} {}\n{stdout}", args.join(" "));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_examples_run_against_kefu() {
    if !python_has_the_tools() {
        assert!(std::env::var_os("CI").is_none(), "CI must install grpcio-tools (see .ci/run)");
        eprintln!("skipping: python3 with grpcio, grpcio-tools and grpcio-status is not installed");
        return;
    }
    let generated = tempfile::tempdir().expect("temp dir");
    let generate = Command::new("python3")
        .arg(Path::new(EXAMPLES).join("generate.py"))
        .arg(generated.path())
        .output()
        .expect("run generate.py");
    assert!(generate.status.success(), "{}", String::from_utf8_lossy(&generate.stderr));

    let app = spawn_app(Backend::Sqlite).await.expect("app");
    flows::standard_staff(&app).await;
    let mut agent = app.clients(Some("a1")).await;
    let customer = flows::register_customer(&mut agent, "P").await;
    let address = app.addr.to_string();
    let dir = generated.path();

    let filed = run("file_complaint.py", &[&customer], &address, "a1", dir).await;
    assert!(filed.contains("nothing filed twice"), "{filed}");
    let graded = run("expected_version.py", &[&customer], &address, "a1", dir).await;
    assert!(graded.contains("ABORTED (WRONG_EXPECTED_VERSION)"), "{graded}");
    let read = run("read_your_write.py", &["a1"], &address, "a1", dir).await;
    assert!(read.contains("the new customer is there"), "{read}");
    // Everything above is in the log by now: 8 staff, 2 customers, a case and more.
    let followed = run("follow_feed.py", &["12"], &address, "svc-web", dir).await;
    assert!(followed.contains("12 events, each exactly once, in order"), "{followed}");
    app.stop().await;
}
