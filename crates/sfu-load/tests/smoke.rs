//! Smoke tests: an in-process server, 1 publisher × 3 players for ~3 s;
//! every player must receive packets with under 5 % loss (and with
//! simulcast, the top layer).

use std::net::SocketAddr;
use std::time::Duration;

async fn start_server() -> anyhow::Result<SocketAddr> {
    let server = sfu_core::Server::bind(sfu_core::ServerConfig {
        bind: "127.0.0.1:0".parse()?,
        signal: room_signal::SignalConfig::dev(),
        media: Some(sfu_core::media::MediaConfig {
            udp_bind: "127.0.0.1:0".parse()?,
            workers: 2,
            ..Default::default()
        }),
        http: Default::default(),
        dev: true,
        admin_token: None,
        webhooks: Default::default(),
        cluster: None,
    })
    .await?;
    let addr = server.local_addr()?;
    tokio::spawn(server.run(std::future::pending()));
    Ok(addr)
}

/// One publisher and three players for 3 s against a fresh server.
async fn run(rooms: usize, video_kbps: u32, simulcast: bool) -> anyhow::Result<sfu_load::Report> {
    let addr = start_server().await?;
    sfu_load::run(sfu_load::Config {
        server: addr.to_string(),
        publishers: 1,
        players: 3,
        rooms,
        video_kbps,
        audio_kbps: 32,
        simulcast,
        duration: Duration::from_secs(3),
        threads: 2,
        progress: false,
        connect_timeout: Duration::from_secs(10),
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_three_players() -> anyhow::Result<()> {
    let report = run(2, 500, false).await?;
    println!("{report}");
    assert_eq!(report.per_player.len(), 3, "{report}");
    for p in &report.per_player {
        assert!(p.connected, "{} never connected\n{report}", p.name);
        assert!(p.video_packets > 0, "{} got no video\n{report}", p.name);
        assert!(p.audio_packets > 0, "{} got no audio\n{report}", p.name);
        assert!(p.loss_pct < 5.0, "{} lost {:.2} %", p.name, p.loss_pct);
    }
    assert!(report.latency_p50_ms.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulcast_publisher_plays_its_top_layer() -> anyhow::Result<()> {
    let report = run(1, 1500, true).await?;
    println!("{report}");
    assert_eq!(report.per_player.len(), 3, "{report}");
    for p in &report.per_player {
        assert!(p.connected, "{} never connected\n{report}", p.name);
        assert!(p.loss_pct < 5.0, "{} lost {:.2} %", p.name, p.loss_pct);
        // At 30 frames/s the top layer (1.5 Mbit/s) takes 6 packets a
        // frame, 180/s; the middle one 90/s, the lowest 60/s; audio 50/s.
        assert!(
            p.video_packets * 10 > p.audio_packets * 25,
            "{}: {} video packets for {} audio: not the top layer\n{report}",
            p.name,
            p.video_packets,
            p.audio_packets
        );
    }
    Ok(())
}
