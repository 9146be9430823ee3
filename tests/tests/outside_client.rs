//! An outside client, Python grpcio with reflection and health checking, against a real
//! kefu. Skipped (with a message) where grpcio is not installed, except under `CI`.

use std::process::Command;

use kefu_testkit::Backend;
use kefu_tests::spawn_app;

fn python_has_grpcio() -> bool {
    Command::new("python3")
        .args(["-c", "import grpc, grpc_reflection, grpc_health"])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_lists_services_sees_serving_and_needs_a_token() {
    if !python_has_grpcio() {
        assert!(std::env::var_os("CI").is_none(), "CI must install grpcio (see .ci/run)");
        eprintln!("skipping: python3 with grpcio, grpcio-reflection, grpcio-health-checking is not installed");
        return;
    }
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/outside_client.py");
    let address = app.addr.to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3").arg(script).arg(address).output()
    })
    .await
    .expect("join")
    .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "outside client failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    app.stop().await;
}
