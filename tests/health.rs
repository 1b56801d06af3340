//! Liveness and readiness for orchestrators: `GET /healthz` answers while
//! the process runs; `GET /readyz` is `200` only while every media worker
//! answers a ping within a second, else `503` naming the silent ones.

mod common;

use common::http::request;
use common::TestServer;

#[tokio::test]
async fn healthz_and_readyz_on_a_running_server() {
    let server = TestServer::start_with(&format!("[server]\nmediaWorkers = 2\n{}", common::APPS));
    let live = request(&server.addr, "GET", "/healthz", &[], "").await;
    assert_eq!((live.status, live.body.as_str()), (200, "ok"));
    let ready = request(&server.addr, "GET", "/readyz", &[], "").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(
        ready.json(),
        serde_json::json!({"ready": true, "mediaWorkers": 2, "unansweringWorkers": []})
    );
}

/// A worker whose loop is blocked (test hook: its first ping sleeps 3 s)
/// makes the server unready; it is ready again once the loop turns.
#[tokio::test]
async fn a_stalled_media_worker_makes_readyz_503_until_it_answers() {
    let config = format!("[server]\nmediaWorkers = 2\n{}", common::APPS);
    let server = TestServer::start_with_env(&config, &[("SFUTEST_STALL_ON_PING_MS", "3000")]);
    let started = std::time::Instant::now();
    let stalled = request(&server.addr, "GET", "/readyz", &[], "").await;
    assert_eq!(stalled.status, 503, "{}", stalled.body);
    assert_eq!(
        stalled.json(),
        serde_json::json!({"ready": false, "mediaWorkers": 2, "unansweringWorkers": [0, 1]})
    );
    // Liveness is not readiness: the process still answers.
    assert_eq!(
        request(&server.addr, "GET", "/healthz", &[], "")
            .await
            .status,
        200
    );
    // Ready again once the workers' loops turn (each stalls only once).
    let ready = loop {
        let r = request(&server.addr, "GET", "/readyz", &[], "").await;
        if r.status == 200 {
            break r;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(
            started.elapsed().as_secs() < 20,
            "never ready again: {}",
            r.body
        );
    };
    assert_eq!(ready.json()["unansweringWorkers"], serde_json::json!([]));
}
