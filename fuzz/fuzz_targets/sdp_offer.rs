//! An SDP offer through offer validation and answer building, as a publish
//! (`peer::publisher`) or a play (`peer::player`, with and without a live
//! publisher). First byte: mode; the rest: the offer. Invariants: no panic;
//! every refusal is a `1005001`; an offer `offer_check` refuses is never
//! answered; an answer carries our ICE credentials and the DTLS role the
//! offer leaves us; a publish negotiates at least one codec, a play at
//! least one leg whose starting payload type is one of its codecs.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use room_signal::code;
use sfu_core::media::offer_check::{self, Setup};
use sfu_core::media::peer::{self, CandidateAddrs, Negotiated};

const UFRAG: &str = "fuzzUfrag0000001";
const PWD: &str = "fuzzPassword00000000000000000001";

fn candidates() -> &'static CandidateAddrs {
    static C: OnceLock<CandidateAddrs> = OnceLock::new();
    C.get_or_init(|| CandidateAddrs {
        addrs: vec![SocketAddr::from(([127, 0, 0, 1], 7882))],
        tcp_port: Some(7882),
        ice_disconnected: Duration::from_secs(15),
        ice_failed: Duration::from_secs(30),
        crypto: None,
        srtp_profiles: Vec::new(),
    })
}

fn crlf(sdp: &str) -> String {
    sdp.lines().map(|l| format!("{l}\r\n")).collect()
}

/// What a Chromium publisher negotiates (the stream a play joins).
fn live_publisher() -> &'static [Negotiated] {
    static N: OnceLock<Vec<Negotiated>> = OnceLock::new();
    N.get_or_init(|| {
        let offer = crlf(include_str!(
            "../../crates/sfu-core/src/media/fixtures/chromium_publish.sdp"
        ));
        peer::publisher(&offer, UFRAG, PWD, candidates(), Instant::now())
            .expect("the chromium fixture is answered")
            .2
    })
}

fn check_answer(answer: &str, setup: Setup) {
    assert!(answer.starts_with("v=0"), "{answer}");
    assert!(answer.contains(&format!("a=ice-ufrag:{UFRAG}")), "{answer}");
    assert!(answer.contains(&format!("a=ice-pwd:{PWD}")), "{answer}");
    let want = match setup {
        Setup::Active => "a=setup:passive",
        Setup::Passive => "a=setup:active",
        Setup::ActPass => "a=setup:passive",
    };
    assert!(answer.contains(want), "offer {setup:?}, answer {answer}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(offer) = std::str::from_utf8(rest) else {
        return;
    };
    let checked = offer_check::check(offer);
    let now = Instant::now();
    match mode % 3 {
        0 => match peer::publisher(offer, UFRAG, PWD, candidates(), now) {
            Ok((_pc, answer, negotiated)) => {
                let setup = checked.expect("an offer offer_check refuses was answered");
                check_answer(&answer, setup);
                assert!(!negotiated.is_empty());
                assert!(negotiated.len() <= 2, "one codec per kind");
            }
            Err(e) => assert_eq!(e.code, code::BAD_SDP, "{e:?}"),
        },
        m => {
            let publishing: &[Negotiated] = if m == 1 { &[] } else { live_publisher() };
            match peer::player(
                offer,
                "fuzz-stream",
                publishing,
                UFRAG,
                PWD,
                candidates(),
                now,
            ) {
                Ok((_pc, answer, legs)) => {
                    let setup = checked.expect("an offer offer_check refuses was answered");
                    check_answer(&answer, setup);
                    assert!(!legs.is_empty());
                    for leg in &legs {
                        assert!(leg
                            .codecs
                            .iter()
                            .any(|c| c.payload_type == leg.payload_type));
                        assert_ne!(leg.ssrc, 0);
                    }
                }
                Err(e) => assert_eq!(e.code, code::BAD_SDP, "{e:?}"),
            }
        }
    }
});
