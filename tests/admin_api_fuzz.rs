//! A property-based API fuzzer (PyPI `schemathesis`, installed by
//! `scripts/test`) against the admin API's own OpenAPI document: every
//! operation, generated and mutated paths, parameters and bodies, with a
//! room and a user present so that some calls find what they ask for. No
//! response may be a 5xx, and every response must match the document
//! (status code, content type, body schema).

mod common;

use std::process::Command;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_5xx_and_no_schema_mismatch() {
    let server = TestServer::start_with(&format!(
        "[server]\nmediaWorkers = 1\nadminToken = \"admin\"\n{}",
        common::APPS
    ));
    let mut alice = server.client(1).await;
    alice.login(1, "alice", "r1").await;
    let mut bob = server.client(1).await;
    bob.login(1, "bob", "r1").await;
    let spec = format!("http://{}/admin/v1/openapi.json", server.addr);
    let addr = server.addr.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("schemathesis")
            .current_dir(std::env::temp_dir())
            .args([
                "run",
                &spec,
                "--url",
                &format!("http://{addr}"),
                "-H",
                "Authorization: Bearer secret-one",
                "-c",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "-n",
                "60",
                "--seed",
                "7",
                "--no-color",
            ])
            .output()
            .expect("schemathesis (scripts/test installs it: pip install schemathesis)")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis failed");
    // "N generated, N passed": cases actually ran, and all passed.
    let line = text
        .lines()
        .find(|l| l.contains(" generated, "))
        .expect("a summary line");
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(numbers.len() >= 2 && numbers[0] > 200, "{line}");
    assert_eq!(numbers[0], numbers[1], "{line}");
    assert!(text.contains("Tested: 10"), "every operation tested");
    // The server survived it, and the members are as they were or kicked
    // by a generated call — never a crash.
    let r = common::http::request(&server.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(r.status, 200);
}
