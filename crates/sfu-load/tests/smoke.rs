//! Smoke test: an in-process server, 1 publisher × 3 players for ~3 s;
//! every player must receive packets with under 5 % loss.

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_three_players() -> anyhow::Result<()> {
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
    })
    .await?;
    let addr = server.local_addr()?;
    tokio::spawn(server.run(std::future::pending()));

    let report = sfu_load::run(sfu_load::Config {
        server: addr.to_string(),
        publishers: 1,
        players: 3,
        rooms: 2,
        video_kbps: 500,
        audio_kbps: 32,
        duration: Duration::from_secs(3),
        threads: 2,
        progress: false,
        connect_timeout: Duration::from_secs(10),
        ..Default::default()
    })
    .await?;
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
