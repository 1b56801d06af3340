//! Several nodes acting as one app (issue 16): what they share lives in
//! one Redis (`cluster.redis`). A node without it is a whole server on its
//! own, exactly as before; `--dev` never needs one.
//!
//! - [`registry`]: the node registry — each node's entry with its
//!   heartbeat, kept on Redis's clock, so a node that stops heartbeating
//!   is gone from every other node's view within its TTL; the Redis
//!   connection's health for `/readyz` and `/metrics`.
//!
//! Keys (one Redis per cluster, not Redis Cluster: scripts name keys they
//! derive):
//!
//! | key | type | lifetime |
//! |---|---|---|
//! | `sfu:nodes` | sorted set: node ID → its last heartbeat (Redis ms) | members older than the TTL are removed by every heartbeat |
//! | `sfu:node:{id}` | hash: `advertise`, `incarnation`, `started` | `PEXPIRE` node TTL, renewed by each heartbeat |

pub mod registry;

pub use registry::{Cluster, ClusterConfig, NodeInfo, RedisHealth, RedisState};
