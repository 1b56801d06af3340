//! Offer → answer CPU: what one `publish` or `play` costs the signaling
//! thread before a connection is parked (building the `rtc` peer
//! connection, applying the offer, writing the answer). Real offers from
//! `src/media/fixtures/`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use sfu_core::media::peer::{self, CandidateAddrs};

fn crlf(sdp: &str) -> String {
    sdp.lines().map(|l| format!("{l}\r\n")).collect()
}

fn candidates() -> CandidateAddrs {
    CandidateAddrs {
        addrs: vec![SocketAddr::from(([127, 0, 0, 1], 7882))],
        tcp_port: None,
        ice_disconnected: Duration::from_secs(15),
        ice_failed: Duration::from_secs(30),
        crypto: None,
        srtp_profiles: Vec::new(),
    }
}

const UFRAG: &str = "benchUfrag000001";
const PWD: &str = "benchPassword0000000000000000001";

fn offers(c: &mut Criterion) {
    let chromium = crlf(include_str!("../src/media/fixtures/chromium_publish.sdp"));
    let firefox = crlf(include_str!("../src/media/fixtures/firefox_publish.sdp"));
    let player = crlf(include_str!("../src/media/fixtures/chromium_play.sdp"));
    let cands = candidates();
    for (name, sdp) in [("chromium", &chromium), ("firefox", &firefox)] {
        if let Err(e) = peer::publisher(sdp, UFRAG, PWD, &cands, Instant::now()) {
            panic!("the {name} fixture is refused: {e:?}");
        }
    }
    let mut group = c.benchmark_group("offer");
    group.sample_size(30);
    group.bench_function("publish_chromium", |b| {
        b.iter(|| {
            let out = peer::publisher(black_box(&chromium), UFRAG, PWD, &cands, Instant::now());
            black_box(out.map(|(_, answer, _)| answer.len()).unwrap_or(0))
        })
    });
    group.bench_function("publish_firefox", |b| {
        b.iter(|| {
            let out = peer::publisher(black_box(&firefox), UFRAG, PWD, &cands, Instant::now());
            black_box(out.map(|(_, answer, _)| answer.len()).unwrap_or(0))
        })
    });
    let codecs = match peer::publisher(&chromium, UFRAG, PWD, &cands, Instant::now()) {
        Ok((_, _, codecs)) => codecs,
        Err(e) => panic!("the Chromium fixture is refused: {e:?}"),
    };
    if let Err(e) = peer::player(
        &player,
        "bench",
        &codecs,
        UFRAG,
        PWD,
        &cands,
        Instant::now(),
    ) {
        panic!("the player fixture is refused: {e:?}");
    }
    group.bench_function("play_chromium", |b| {
        b.iter(|| {
            let out = peer::player(
                black_box(&player),
                "bench",
                &codecs,
                UFRAG,
                PWD,
                &cands,
                Instant::now(),
            );
            black_box(out.map(|(_, answer, _)| answer.len()).unwrap_or(0))
        })
    });
    group.finish();
}

criterion_group!(benches, offers);
criterion_main!(benches);
