//! Publish and play through a fake SFU made of plain `webrtc` peer
//! connections (see `common/fake_sfu.rs`): the player receives exactly the
//! VP8 payloads the publisher wrote, in order; a PLI sent by the player
//! reaches the publisher, and a NACK reaches the server with its numbers.

mod common;

use std::time::Duration;

use common::fake_sfu::FakeSfu;
use sfu_client::media::{is_vp8_keyframe, pace, pace_frames};
use sfu_client::{Client, ClipSource, MediaKind, PlayOptions, PublishTracks, VideoCodec};

const WAIT: Duration = Duration::from_secs(10);

async fn wait_player_leg(fake: &FakeSfu) -> anyhow::Result<()> {
    let mut players = fake.players_connected.clone();
    tokio::time::timeout(WAIT, players.wait_for(|n| *n >= 1)).await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_receives_exactly_the_published_vp8_payloads() -> anyhow::Result<()> {
    let fake = FakeSfu::start().await?;
    let alice = Client::connect(&fake.addr, 1).await?;
    let publisher = alice
        .publish("s1", Some("r1"), PublishTracks::vp8_opus())
        .await?;
    assert!(publisher.is_connected());
    assert!(publisher.payload_type(MediaKind::Video).is_some());
    let bob = Client::connect(&fake.addr, 1).await?;
    let mut player = bob.play("s1").await?;
    wait_player_leg(&fake).await?;
    println!(
        "connect: publish {:?}, play {:?}",
        publisher.connect_time(),
        player.connect_time()
    );
    assert!(publisher.connect_time() < Duration::from_secs(2));
    assert!(player.connect_time() < Duration::from_secs(2));

    let frames: Vec<_> = ClipSource::vp8()?.take(45).collect();
    let expected: Vec<_> = frames
        .iter()
        .flat_map(|f| f.packets.iter().map(|p| p.payload.clone()))
        .collect();
    let sending = async {
        let mut audio = ClipSource::opus()?;
        let (video, audio) = tokio::join!(
            pace_frames(
                &publisher,
                MediaKind::Video,
                frames.into_iter(),
                Duration::from_secs(60)
            ),
            pace(&publisher, &mut audio, Duration::from_millis(1500)),
        );
        anyhow::Ok((video?, audio?))
    };
    let receiving = async {
        let mut video = Vec::new();
        let mut audio = 0;
        while video.len() < expected.len() {
            let Some(got) = player.recv_timeout(WAIT).await else {
                break;
            };
            match got.kind {
                MediaKind::Video => video.push(got.packet),
                MediaKind::Audio => audio += 1,
            }
        }
        (video, audio)
    };
    let (sent, (video, audio)) = tokio::join!(sending, receiving);
    let (sent_video, sent_audio) = sent?;
    assert_eq!(sent_video.frames, 45);
    assert_eq!(sent_video.keyframes, 2);
    assert_eq!(sent_video.packets as usize, expected.len());
    assert_eq!(
        publisher.packets_sent(MediaKind::Video) as usize,
        expected.len()
    );
    assert!(sent_audio.frames >= 70, "{sent_audio:?}");

    let payloads: Vec<_> = video.iter().map(|p| p.payload.clone()).collect();
    assert_eq!(payloads.len(), expected.len(), "video packets received");
    assert!(
        payloads == expected,
        "payloads differ from what was published"
    );
    assert!(is_vp8_keyframe(&video[0].payload));
    for pair in video.windows(2) {
        assert_eq!(
            pair[1].header.sequence_number,
            pair[0].header.sequence_number.wrapping_add(1)
        );
    }
    assert!(audio > 0, "no audio received");
    assert_eq!(player.codec(MediaKind::Video).as_deref(), Some("video/VP8"));
    assert_eq!(player.packets(MediaKind::Video) as usize, expected.len());
    assert_eq!(
        player.bytes(MediaKind::Video),
        expected.iter().map(|p| p.len() as u64).sum::<u64>()
    );

    player.stop().await?;
    publisher.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pli_reaches_the_publisher_and_nack_reaches_the_server() -> anyhow::Result<()> {
    let fake = FakeSfu::start().await?;
    let alice = Client::connect(&fake.addr, 1).await?;
    let mut publisher = alice
        .publish(
            "s2",
            Some("r1"),
            PublishTracks {
                video: Some(VideoCodec::Vp8),
                audio: false,
            },
        )
        .await?;
    let bob = Client::connect(&fake.addr, 1).await?;
    // Only the NACKs this test sends: no NACK generator, video only.
    let options = PlayOptions {
        video_codecs: vec![VideoCodec::Vp8],
        audio: false,
        auto_nack: false,
        server_addr: None,
    };
    let mut player = bob.play_with("s2", options).await?;
    wait_player_leg(&fake).await?;

    // Feedback needs a known media SSRC: send a few frames first.
    let mut source = ClipSource::vp8()?;
    pace(&publisher, &mut source, Duration::from_millis(300)).await?;
    let first = player
        .recv_timeout(WAIT)
        .await
        .ok_or_else(|| anyhow::anyhow!("no video"))?;
    assert_eq!(first.kind, MediaKind::Video);
    assert!(
        player.send_nack(MediaKind::Audio, &[1]).await.is_err(),
        "no audio track to NACK"
    );
    assert_eq!(player.packets(MediaKind::Audio), 0);

    player.send_pli().await?;
    let request = publisher.wait_keyframe_request(WAIT).await?;
    assert_eq!(request.kind, MediaKind::Video);
    assert!(publisher.pli_count() >= 1);

    // NACK two packets: the server side sees exactly those numbers for the
    // video leg's SSRC.
    let seq = first.packet.header.sequence_number;
    let ssrc = first.packet.header.ssrc;
    player
        .send_nack(MediaKind::Video, &[seq, seq.wrapping_add(3)])
        .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let want = [(ssrc, seq), (ssrc, seq.wrapping_add(3))];
    loop {
        let seen = fake.nacks.lock().map(|n| n.clone()).unwrap_or_default();
        if want.iter().all(|w| seen.contains(w)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "NACK not seen by the server: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Playing a stream the server does not know fails with its code.
    let err = bob.play("nope").await.err();
    assert_eq!(err.and_then(|e| e.code()), Some(1_005_001));
    Ok(())
}
