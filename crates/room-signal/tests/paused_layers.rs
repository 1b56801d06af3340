//! The media plane pausing a publisher's simulcast layers reaches exactly
//! that publisher, as the RIDs its offer named (`publisherVideoLayersUpdate`),
//! once per change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use room_signal::media::{
    Accepted, MediaControl, MediaEvent, MediaId, PlayRequest, PublishRequest,
};
use room_signal::outbox::Outbound;
use room_signal::token::{mint, Claims};
use room_signal::{Hub, Session, SignalConfig, SignalError};
use serde_json::{json, Value};

const NOW_MS: u64 = 1_900_000_000_000;

/// Accepts everything; remembers the media IDs it gave out.
#[derive(Default)]
struct FakeMedia {
    next: AtomicU64,
    given: Mutex<Vec<MediaId>>,
}

impl FakeMedia {
    fn accept(&self) -> Result<Accepted, SignalError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.given.lock().unwrap().push(id);
        Ok(Accepted {
            id,
            answer_sdp: "v=0".into(),
        })
    }
}

impl MediaControl for FakeMedia {
    fn publish(&self, _req: PublishRequest<'_>) -> Result<Accepted, SignalError> {
        self.accept()
    }
    fn play(&self, _req: PlayRequest<'_>) -> Result<Accepted, SignalError> {
        self.accept()
    }
    fn add_candidate(&self, _id: MediaId, _c: &str) -> Result<(), SignalError> {
        Ok(())
    }
    fn stop(&self, _id: MediaId) {}
}

fn call(s: &mut Session, req: Value) -> Value {
    let out = s.handle_text(&req.to_string(), NOW_MS).expect("an answer");
    serde_json::from_slice(&out).unwrap()
}

fn login(s: &mut Session, user: &str) {
    let token = mint(
        "devsecret",
        &Claims {
            app_id: 1,
            user_id: user.into(),
            iat: NOW_MS / 1000,
            exp: NOW_MS / 1000 + 3600,
            room_id: None,
            privilege: None,
            stream_id_list: None,
        },
    );
    let r = call(
        s,
        json!({"id": 1, "op": "loginRoom", "roomID": "r1", "token": token,
               "user": {"userID": user, "userName": user}}),
    );
    assert_eq!(r["code"], 0, "{r}");
}

/// The frames a media event makes the session send.
fn on_layers(s: &mut Session, id: MediaId, paused: u8) -> Vec<Value> {
    let item = Outbound::Media {
        id,
        event: MediaEvent::VideoLayers { paused },
    };
    s.on_outbound(item, NOW_MS)
        .iter()
        .map(|f| serde_json::from_slice(f).unwrap())
        .collect()
}

#[test]
fn paused_layers_reach_their_publisher_by_rid_once_per_change() {
    let media = Arc::new(FakeMedia::default());
    let hub = Hub::with_media(SignalConfig::dev(), media.clone()).unwrap();
    let app = hub.app(1).unwrap();
    let (mut a, _a_in) = hub.try_connect(app.clone()).unwrap();
    login(&mut a, "a");
    // Offer order f, h, q: the names rank them (q lowest).
    let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
               a=rid:f send\r\na=rid:h send\r\na=rid:q send\r\na=simulcast:send f;h;q\r\n";
    let r = call(
        &mut a,
        json!({"id": 2, "op": "startPublishingStream", "streamID": "cam", "sdp": sdp}),
    );
    assert_eq!(r["code"], 0, "{r}");
    let plain = call(
        &mut a,
        json!({"id": 3, "op": "startPublishingStream", "streamID": "plain", "sdp": "v=0"}),
    );
    assert_eq!(plain["code"], 0, "{plain}");
    let given = media.given.lock().unwrap().clone();
    let (cam, plain) = (given[0], given[1]);

    let frames = on_layers(&mut a, cam, 0b110);
    assert_eq!(
        frames,
        vec![
            json!({"event": "publisherVideoLayersUpdate", "streamID": "cam",
                    "pausedLayers": ["f", "h"], "seq": frames[0]["seq"]})
        ]
    );
    // The same state again says nothing; a resume says what stays paused.
    assert!(on_layers(&mut a, cam, 0b110).is_empty());
    let frames = on_layers(&mut a, cam, 0b010);
    assert_eq!(frames[0]["pausedLayers"], json!(["h"]));
    let frames = on_layers(&mut a, cam, 0);
    assert_eq!(frames[0]["pausedLayers"], json!([]));
    // A publish without simulcast, and media this session does not own.
    assert!(on_layers(&mut a, plain, 0b110).is_empty());
    assert!(on_layers(&mut a, 999, 0b110).is_empty());
}
