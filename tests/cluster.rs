//! Cluster mode on a real Redis (issue 16): the node registry. Three nodes
//! on one `redis-server` see each other; a node killed with `-9` is gone
//! from the others' view within 10 s, and comes back, restarted with the
//! same ID, as a new incarnation; a Redis restart leaves the nodes serving
//! their local traffic, and they register again once it answers.

mod common;

use std::time::{Duration, Instant};

use common::http::request;
use common::redis::Redis;
use common::{TestServer, APPS};
use serde_json::Value;

fn node_config(redis: &str, id: &str, timing: &str) -> String {
    format!(
        "[cluster]\nredis = \"{redis}\"\nnodeID = \"{id}\"\nadvertise = \"127.0.0.1:7990\"\n{timing}\n{APPS}"
    )
}

async fn readyz(server: &TestServer) -> (u16, Value) {
    let r = request(&server.addr, "GET", "/readyz", &[], "").await;
    (r.status, r.json())
}

fn node_ids(v: &Value) -> Vec<String> {
    v["cluster"]["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Poll `/readyz` (every 50 ms) until `done` holds; panics with the last
/// answer after `within`.
async fn wait_for(
    server: &TestServer,
    what: &str,
    within: Duration,
    done: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, v) = readyz(server).await;
        if done(status, &v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {within:?}; /readyz {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_see_each_other_and_a_killed_node_is_gone_within_10_s() {
    let redis = Redis::start();
    let url = redis.url();
    let mut nodes: Vec<TestServer> = (1..=3)
        .map(|i| TestServer::start_with(&node_config(&url, &format!("node-{i}"), "")))
        .collect();
    let all = ["node-1", "node-2", "node-3"];
    for n in &nodes {
        wait_for(n, "three nodes", Duration::from_secs(10), |s, v| {
            s == 200 && v["ready"] == true && node_ids(v) == all
        })
        .await;
    }
    let (_, v) = readyz(&nodes[1]).await;
    let first = v["cluster"]["incarnation"].as_str().unwrap().to_owned();

    nodes[1].kill_hard();
    let killed = Instant::now();
    for n in [&nodes[0], &nodes[2]] {
        let left = Duration::from_secs(10).saturating_sub(killed.elapsed());
        wait_for(n, "node-2 gone", left, |_, v| {
            node_ids(v) == ["node-1", "node-3"]
        })
        .await;
    }
    eprintln!(
        "node-2 gone from both views {:?} after kill -9",
        killed.elapsed()
    );

    // Restarted with the same ID: a new incarnation, seen by the others.
    nodes[1] = TestServer::start_with(&node_config(&url, "node-2", ""));
    let v = wait_for(&nodes[1], "node-2 back", Duration::from_secs(10), |s, v| {
        s == 200 && node_ids(v) == all
    })
    .await;
    let second = v["cluster"]["incarnation"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "a restart is a new incarnation");
    wait_for(&nodes[0], "node-2 back", Duration::from_secs(10), |_, v| {
        node_ids(v) == all
    })
    .await;
    // What Redis holds: exactly the three entries, node-2's the new one.
    assert_eq!(redis.command("ZCARD sfu:nodes").as_deref(), Some(":3\r\n"));
    let held = redis
        .command("HGET sfu:node:node-2 incarnation")
        .unwrap_or_default();
    assert!(held.contains(&second), "{held}");
    // The probe names no node-link address.
    let (_, v) = readyz(&nodes[0]).await;
    assert!(!v.to_string().contains("7990"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_keeps_nodes_serving_and_they_register_again() {
    let mut redis = Redis::start();
    let port = redis.port;
    let url = redis.url();
    let timing = "heartbeatMs = 200\nnodeTtlMs = 1000";
    let a = TestServer::start_with(&node_config(&url, "a", timing));
    let b = TestServer::start_with(&node_config(&url, "b", timing));
    for n in [&a, &b] {
        wait_for(n, "two nodes", Duration::from_secs(10), |s, v| {
            s == 200 && node_ids(v) == ["a", "b"]
        })
        .await;
    }

    redis.kill();
    // Not registered once the TTL passed without a heartbeat: not ready,
    // and says why.
    let v = wait_for(&a, "redis down", Duration::from_secs(10), |s, v| {
        s == 503 && v["cluster"]["redis"] == "down"
    })
    .await;
    assert_eq!(v["cluster"]["registered"], false, "{v}");
    // Local traffic goes on without Redis.
    let mut c = a.client(1).await;
    let r = c.login(1, "alice", "r1").await;
    assert_eq!(r["code"], 0, "{r}");

    // Redis back, empty (no persistence): both write their entries again.
    let redis = Redis::start_on(port);
    for n in [&a, &b] {
        wait_for(n, "registered again", Duration::from_secs(10), |s, v| {
            s == 200 && v["cluster"]["redis"] == "up" && node_ids(v) == ["a", "b"]
        })
        .await;
    }
    assert_eq!(redis.command("ZCARD sfu:nodes").as_deref(), Some(":2\r\n"));
    let text = common::metrics_blocking(&a);
    assert_eq!(common::sample(&text, "sfu_cluster_nodes"), 2, "{text}");
    assert_eq!(common::sample(&text, "sfu_redis_up"), 1);
    assert!(
        common::sample(&text, "sfu_redis_errors_total") > 0,
        "{text}"
    );
}

/// A node ID that is not an ID, a URL that is not Redis's, no advertise
/// address: the server refuses to start and says which key.
#[test]
fn bad_cluster_keys_are_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("sfu-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (keys, says) in [
        ("redis = \"redis://127.0.0.1:1\"\nnodeID = \"bad id\"\nadvertise = \"x:1\"", "cluster.nodeID"),
        ("redis = \"http://127.0.0.1:1\"\nnodeID = \"n1\"\nadvertise = \"x:1\"", "cluster.redis"),
        ("redis = \"redis://127.0.0.1:1\"\nnodeID = \"n1\"", "cluster.advertise"),
        ("redis = \"redis://127.0.0.1:1\"\nnodeID = \"n1\"\nadvertise = \"x:1\"\nheartbeatMs = 1000\nnodeTtlMs = 1000", "nodeTtlMs"),
    ] {
        let path = dir.join("sfu.toml");
        std::fs::write(&path, format!("[cluster]\n{keys}\n{APPS}")).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sfu"))
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{keys}: accepted");
        assert!(err.contains(says), "{keys}: {err}");
    }
}
