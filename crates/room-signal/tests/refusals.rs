//! Every refusal by a resource limit is counted per app (`Hub::refusals`),
//! whichever side refuses: the session's per-connection limits, the app's
//! session limit, or the media plane's peer-connection limit.

mod common;

use std::sync::Arc;

use common::{answer as call, login, AcceptAll};

use room_signal::{code, Hub, Session, SignalConfig};
use serde_json::json;

fn publish(s: &mut Session, stream: &str) -> u64 {
    let r = call(
        s,
        json!({"id": 2, "op": "startPublishingStream", "streamID": stream, "sdp": "v=0"}),
    );
    r["code"].as_u64().unwrap()
}

fn count(hub: &Hub, code: u32) -> u64 {
    hub.refusals(1)
        .into_iter()
        .find(|(c, _)| *c == code)
        .map_or(0, |(_, n)| n)
}

#[test]
fn limit_refusals_are_counted_per_app() {
    let mut config = SignalConfig::dev();
    config.limits.max_publishes_per_connection = 2;
    config.limits.max_sessions_per_app = 3;
    let media = Arc::new(AcceptAll::up_to(3));
    let hub = Hub::with_media(config, media).unwrap();
    let app = hub.app(1).unwrap();
    let (mut a, _a_in) = hub.try_connect(app.clone()).unwrap();
    login(&mut a, "a", "r1");
    assert_eq!(publish(&mut a, "s1"), 0);
    assert_eq!(publish(&mut a, "s2"), 0);
    assert_eq!(publish(&mut a, "s3"), u64::from(code::TOO_MANY_PUBLISHES));
    assert_eq!(publish(&mut a, "s4"), u64::from(code::TOO_MANY_PUBLISHES));
    let (mut b, _b_in) = hub.try_connect(app.clone()).unwrap();
    login(&mut b, "b", "r1");
    assert_eq!(publish(&mut b, "s5"), 0);
    assert_eq!(publish(&mut b, "s6"), u64::from(code::PEER_LIMIT));
    let (_c, _c_in) = hub.try_connect(app.clone()).unwrap();
    let refused = hub.try_connect(app.clone()).map(|_| ()).unwrap_err();
    assert_eq!(refused.code, code::APP_SESSION_LIMIT);
    assert_eq!(count(&hub, code::TOO_MANY_PUBLISHES), 2);
    assert_eq!(count(&hub, code::PEER_LIMIT), 1);
    assert_eq!(count(&hub, code::APP_SESSION_LIMIT), 1);
    assert_eq!(count(&hub, code::TOO_MANY_PLAYS), 0);
    // Another app's counters are its own.
    assert!(hub.refusals(2).is_empty());
}
