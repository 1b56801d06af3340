//! Layer events of the media plane reach exactly their client: a
//! publisher's paused simulcast layers as the RIDs its offer named
//! (`publisherVideoLayersUpdate`, once per change), a player's current
//! layer (`playerVideoLayerUpdate`).

mod common;

use std::sync::Arc;

use common::{answer as call, login, AcceptAll, NOW_MS};
use room_signal::media::{MediaEvent, MediaId};
use room_signal::outbox::Outbound;
use room_signal::{Hub, Session, SignalConfig};
use serde_json::{json, Value};

/// The frames a media event makes the session send.
fn on_event(s: &mut Session, id: MediaId, event: MediaEvent) -> Vec<Value> {
    s.on_outbound(Outbound::Media { id, event }, NOW_MS)
        .iter()
        .map(|f| serde_json::from_slice(f).unwrap())
        .collect()
}

fn on_layers(s: &mut Session, id: MediaId, paused: u8) -> Vec<Value> {
    on_event(s, id, MediaEvent::VideoLayers { paused })
}

#[test]
fn a_players_layer_reaches_that_player_with_its_stream_id() {
    let media = Arc::new(AcceptAll::default());
    let hub = Hub::with_media(SignalConfig::dev(), media.clone()).unwrap();
    let app = hub.app(1).unwrap();
    let (mut p, _p_in) = hub.try_connect(app.clone()).unwrap();
    login(&mut p, "p", "r1");
    let r = call(
        &mut p,
        json!({"id": 2, "op": "startPlayingStream", "streamID": "cam", "sdp": "v=0"}),
    );
    assert_eq!(r["code"], 0, "{r}");
    let play = *media.given.lock().unwrap().last().unwrap();
    let frames = on_event(&mut p, play, MediaEvent::PlayLayer { layer: 1 });
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["event"], "playerVideoLayerUpdate");
    assert_eq!(
        (&frames[0]["streamID"], &frames[0]["layer"]),
        (&json!("cam"), &json!(1))
    );
    // Not this session's play (or a publish's ID): nothing.
    assert!(on_event(&mut p, play + 100, MediaEvent::PlayLayer { layer: 1 }).is_empty());
}

#[test]
fn paused_layers_reach_their_publisher_by_rid_once_per_change() {
    let media = Arc::new(AcceptAll::default());
    let hub = Hub::with_media(SignalConfig::dev(), media.clone()).unwrap();
    let app = hub.app(1).unwrap();
    let (mut a, _a_in) = hub.try_connect(app.clone()).unwrap();
    login(&mut a, "a", "r1");
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
