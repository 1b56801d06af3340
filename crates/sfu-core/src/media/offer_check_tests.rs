use super::*;

const CHROMIUM: &str = include_str!("fixtures/chromium_publish.sdp");
const CHROMIUM_PLAY: &str = include_str!("fixtures/chromium_play.sdp");
const FIREFOX: &str = include_str!("fixtures/firefox_publish.sdp");
const AIORTC: &str = include_str!("fixtures/aiortc_publish.sdp");
const GSTREAMER: &str = include_str!("fixtures/gstreamer_whip.sdp");
const FFMPEG: &str = include_str!("fixtures/ffmpeg_whip.sdp");
const RTC_CLIENT: &str = include_str!("fixtures/rtc_client_publish.sdp");

fn crlf(sdp: &str) -> String {
    sdp.lines().map(|l| format!("{l}\r\n")).collect()
}

fn refused(sdp: &str) -> String {
    match check(sdp) {
        Ok(_) => panic!("accepted:\n{sdp}"),
        Err(e) => e,
    }
}

/// The Chromium offer with its first line matching `from` replaced.
fn with(from: &str, to: &str) -> String {
    CHROMIUM.replacen(from, to, 1)
}

const FP: &str = "a=fingerprint:sha-256 5D:41:8B:0C:7F:92:3A:E4:11:6B:C8:20:D9:5E:A7:34:FF:02:8E:61:B3:4C:9A:17:E0:55:2D:C6:78:1F:A9:03";

#[test]
fn real_offers_pass_with_lf_and_crlf() {
    for (name, sdp) in [
        ("chromium", CHROMIUM),
        ("chromium play", CHROMIUM_PLAY),
        ("firefox", FIREFOX),
        ("aiortc", AIORTC),
        ("gstreamer", GSTREAMER),
        ("ffmpeg", FFMPEG),
        ("rtc client", RTC_CLIENT),
    ] {
        assert!(check(sdp).is_ok(), "{name}");
        assert!(check(&crlf(sdp)).is_ok(), "{name} (CRLF)");
    }
}

#[test]
fn refuses_an_offer_over_64_kib() {
    let big = format!("{CHROMIUM}{}", "a=x-pad:0123456789\n".repeat(4000));
    assert!(refused(&big).contains("bytes, over the limit of 65536"));
}

#[test]
fn refuses_more_than_16_m_sections() {
    let section = "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\n";
    assert!(check(&format!("{CHROMIUM}{}", section.repeat(14))).is_ok());
    let e = refused(&format!("{CHROMIUM}{}", section.repeat(15)));
    assert!(e.contains("more than 16 m-sections"), "{e}");
}

#[test]
fn refuses_many_or_bad_ssrc_lines() {
    let many = format!("{CHROMIUM}{}", "a=ssrc:1234 cname:x\n".repeat(60));
    assert!(refused(&many).contains("more than 64 a=ssrc lines"));
    let e = refused(&format!("{CHROMIUM}a=ssrc:4294967296 cname:x\n"));
    assert!(
        e.contains("a=ssrc `4294967296` is not a 32-bit SSRC"),
        "{e}"
    );
    assert!(refused(&format!("{CHROMIUM}a=ssrc:-1 cname:x\n")).contains("`-1`"));
}

#[test]
fn refuses_bad_fingerprints() {
    let e = refused(&with(
        FP,
        "a=fingerprint:md5 5D:41:8B:0C:7F:92:3A:E4:11:6B:C8:20:D9:5E:A7:34",
    ));
    assert!(e.contains("algorithm `md5` is not one of"), "{e}");
    let short = &FP[..FP.len() - 3];
    let e = refused(&with(FP, short));
    assert!(
        e.contains("sha-256 fingerprint has 31 bytes, expected 32"),
        "{e}"
    );
    let e = refused(&with(FP, &FP.replacen("5D", "GG", 1)));
    assert!(e.contains("byte `GG` is not a hex pair"), "{e}");
    let e = refused(&with(FP, "a=fingerprint:sha-256 xyz 12:34"));
    assert!(e.contains("more than an algorithm and a value"), "{e}");
    let e = refused(&with(FP, "a=fingerprint:sha-1 xyz"));
    assert!(e.contains("byte `xyz` is not a hex pair"), "{e}");
    // Upper-case algorithm names are accepted.
    assert!(check(&with("sha-256", "SHA-256")).is_ok());
}

#[test]
fn refuses_setup_roles_other_than_actpass_active_passive() {
    let e = refused(&with("a=setup:actpass", "a=setup:holdconn"));
    assert!(e.contains("setup role `holdconn`"), "{e}");
    assert!(refused(&with("a=setup:actpass", "a=setup:")).contains("setup role ``"));
}

#[test]
fn returns_the_offers_dtls_role() {
    let all = |role: &str| CHROMIUM.replace("a=setup:actpass", role);
    assert_eq!(check(CHROMIUM), Ok(Setup::ActPass));
    assert_eq!(check(&all("a=setup:active")), Ok(Setup::Active));
    assert_eq!(check(&all("a=setup:passive")), Ok(Setup::Passive));
    assert_eq!(check(FFMPEG), Ok(Setup::Passive));
    // A missing a=setup is RFC 4145's default: the offerer is active.
    assert_eq!(
        check(&CHROMIUM.replace("a=setup:actpass\n", "")),
        Ok(Setup::Active)
    );
    // One transport (BUNDLE), one role: sections may not disagree.
    let mixed = with("a=setup:actpass", "a=setup:passive");
    assert!(refused(&mixed).contains("a=setup differs between media sections"));
}

#[test]
fn refuses_bad_ice_credentials() {
    let e = refused(&with("a=ice-ufrag:Kp3x", "a=ice-ufrag:Kp:3x"));
    assert!(
        e.contains("ice-ufrag `Kp:3x` has characters other than"),
        "{e}"
    );
    let e = refused(&with("a=ice-ufrag:Kp3x", "a=ice-ufrag:Kp3"));
    assert!(
        e.contains("ice-ufrag is 3 characters long, not 4 to 256"),
        "{e}"
    );
    let long = format!("a=ice-ufrag:{}", "a".repeat(257));
    assert!(refused(&with("a=ice-ufrag:Kp3x", &long)).contains("257 characters"));
    let e = refused(&with(
        "a=ice-pwd:q0Vh2mYxT8rG1nB7cLzA5wE4",
        "a=ice-pwd:short",
    ));
    assert!(
        e.contains("ice-pwd is 5 characters long, not 22 to 256"),
        "{e}"
    );
    let e = refused(&with(
        "a=ice-pwd:q0Vh2mYxT8rG1nB7cLzA5wE4",
        "a=ice-pwd:q0Vh2mYxT8rG1nB7cLzA5w-_",
    ));
    assert!(e.contains("ice-pwd"), "{e}");
    // `+` and `/` are ice-chars.
    assert!(check(&with("a=ice-ufrag:Kp3x", "a=ice-ufrag:K+/x")).is_ok());
}

#[test]
fn every_live_section_needs_a_fingerprint_and_credentials() {
    let no_fp = CHROMIUM.replace(&format!("{FP}\n"), "");
    assert!(refused(&no_fp).contains("m-section 0 (audio) has no a=fingerprint"));
    // Only the video section loses its credentials.
    let pos = CHROMIUM.find("m=video").unwrap_or_default();
    let (audio, video) = CHROMIUM.split_at(pos);
    let video = video.replace("a=ice-ufrag:Kp3x\n", "");
    let e = refused(&format!("{audio}{video}"));
    assert_eq!(e, "m-section 1 (video) has no a=ice-ufrag");
    let video_no_pwd = CHROMIUM[pos..].replace("a=ice-pwd:q0Vh2mYxT8rG1nB7cLzA5wE4\n", "");
    assert!(refused(&format!("{audio}{video_no_pwd}")).contains("has no a=ice-pwd"));
    // Session-level credentials and fingerprint count for every section.
    let session = format!(
        "v=0\ns=-\nt=0 0\n{FP}\na=ice-ufrag:abcd\na=ice-pwd:abcdefghijklmnopqrstuv\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111\na=rtpmap:111 opus/48000/2\n"
    );
    assert!(check(&session).is_ok());
}

#[test]
fn rejected_and_bundle_only_sections_need_nothing() {
    let extra = "m=video 0 UDP/TLS/RTP/SAVPF 96\na=mid:2\n\
                 m=video 9 UDP/TLS/RTP/SAVPF 96\na=bundle-only\na=mid:3\n";
    assert!(check(&format!("{CHROMIUM}{extra}")).is_ok());
    let live = "m=video 9 UDP/TLS/RTP/SAVPF 96\na=mid:2\n";
    assert_eq!(
        refused(&format!("{CHROMIUM}{live}")),
        "m-section 2 (video) has no a=fingerprint"
    );
}

#[test]
fn client_text_in_messages_is_clipped() {
    let e = refused(&with(
        "a=setup:actpass",
        &format!("a=setup:{}", "x".repeat(10_000)),
    ));
    assert!(e.len() < 120, "{e}");
}
