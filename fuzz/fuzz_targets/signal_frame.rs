//! One signaling text frame through the wire decoder: the envelope, then
//! every op's field struct. Invariants: no panic; an envelope without an id
//! is a heartbeat; the error response always parses back as JSON with the
//! id it was given and a non-zero code.

#![no_main]

use libfuzzer_sys::fuzz_target;
use room_signal::wire::{self, *};
use serde_json::Value;

fn check_error(id: Option<u64>, e: &room_signal::SignalError) {
    let bytes = wire::error_response(id, e);
    let v: Value = serde_json::from_slice(&bytes).expect("error response is JSON");
    assert_eq!(v["id"].as_u64(), id);
    assert!(v["code"].as_u64().is_some_and(|c| c != 0), "{v}");
}

fn try_fields<T: serde::de::DeserializeOwned>(id: Option<u64>, body: &Value) {
    if let Err(e) = wire::fields::<T>(body) {
        assert_eq!(e.code, room_signal::code::MALFORMED);
        check_error(id, &e);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match wire::parse_envelope(text) {
        Err(rej) => {
            assert_eq!(rej.error.code, room_signal::code::MALFORMED);
            check_error(rej.id, &rej.error);
        }
        Ok(env) => {
            assert!(env.id.is_some() || env.op == "heartbeat");
            assert!(env.body.is_object());
            let id = env.id;
            let b = &env.body;
            try_fields::<EnableMultiRoom>(id, b);
            try_fields::<LoginRoom>(id, b);
            try_fields::<SwitchRoom>(id, b);
            try_fields::<LogoutRoom>(id, b);
            try_fields::<RenewToken>(id, b);
            try_fields::<SendMessage>(id, b);
            try_fields::<SendCustomCommand>(id, b);
            try_fields::<SetRoomExtraInfo>(id, b);
            try_fields::<StartPublishing>(id, b);
            try_fields::<StartPlaying>(id, b);
            try_fields::<StreamOnly>(id, b);
            try_fields::<IceCandidate>(id, b);
            try_fields::<SetStreamExtraInfo>(id, b);
            let ok = wire::ok_response(id, b.as_object().cloned());
            let v: Value = serde_json::from_slice(&ok).expect("ok response is JSON");
            assert_eq!(v["id"].as_u64(), id);
            assert_eq!(v["code"], 0);
        }
    }
});
