//! Whether a player's codec line can carry a publisher's stream, beyond the
//! codec name: H.264 by profile and level (RFC 6184 §8.1, the profiles as
//! libwebrtc reads `profile-level-id`), VP9 by `profile-id`, AV1 by
//! `profile`. Each codec line is reduced to one `u32` key
//! ([`codec_profile`]), kept per publisher track and per player leg codec,
//! and [`accepts`] compares two keys.
//!
//! H.264 rules: the profiles must be the same (constrained baseline is not
//! baseline, as in libwebrtc and mediasoup: a player offering only another
//! profile is refused rather than sent a stream it may show black). The
//! level may differ when the player's line says
//! `level-asymmetry-allowed=1` (every browser's does); otherwise the
//! publisher's level must not be above the player's.

use stream_router::Codec;

/// H.264 profiles, from `profile_idc` and the constraint flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum H264Profile {
    ConstrainedBaseline = 1,
    Baseline = 2,
    Main = 3,
    ConstrainedHigh = 4,
    High = 5,
    PredictiveHigh444 = 6,
}

/// `(profile_idc, iop mask, iop value, profile)`: libwebrtc's table of
/// `profile-level-id` patterns (`x` bits in its notation are masked out).
const PATTERNS: &[(u8, u8, u8, H264Profile)] = &[
    (0x42, 0x4f, 0x40, H264Profile::ConstrainedBaseline), // x1xx0000
    (0x4d, 0x8f, 0x80, H264Profile::ConstrainedBaseline), // 1xxx0000
    (0x58, 0xcf, 0xc0, H264Profile::ConstrainedBaseline), // 11xx0000
    (0x42, 0x4f, 0x00, H264Profile::Baseline),            // x0xx0000
    (0x58, 0xcf, 0x80, H264Profile::Baseline),            // 10xx0000
    (0x4d, 0xaf, 0x00, H264Profile::Main),                // 0x0x0000
    (0x64, 0xff, 0x00, H264Profile::High),                // 00000000
    (0x64, 0xff, 0x0c, H264Profile::ConstrainedHigh),     // 00001100
    (0xf4, 0xff, 0x00, H264Profile::PredictiveHigh444),   // 00000000
];

/// A parsed `profile-level-id`: the profile and the level as a rank that
/// orders level 1b between 1 and 1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H264Level {
    pub profile: H264Profile,
    /// `level_idc * 2`, or 21 for level 1b.
    pub rank: u8,
}

/// Parse a `profile-level-id` value (6 hex digits). `None` for a value
/// that is malformed or names no profile we know.
pub fn parse_profile_level_id(value: &str) -> Option<H264Level> {
    if value.len() != 6 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let n = u32::from_str_radix(value, 16).ok()?;
    let [_, idc, iop, level] = n.to_be_bytes();
    let profile = PATTERNS
        .iter()
        .find(|(i, mask, v, _)| *i == idc && iop & mask == *v)
        .map(|p| p.3)?;
    // Level 1b: level_idc 11 with constraint_set3 in baseline/main-like
    // profiles (RFC 6184 §8.1), or level_idc 9.
    let one_b = level == 9
        || (level == 11
            && iop & 0x10 != 0
            && matches!(
                profile,
                H264Profile::Baseline | H264Profile::ConstrainedBaseline | H264Profile::Main
            ));
    let rank = if one_b { 21 } else { level.checked_mul(2)? };
    Some(H264Level { profile, rank })
}

fn param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// The key of a codec line (`fmtp` of a publisher's track or of a player
/// leg's accepted codec). H.264: `profile << 16 | rank << 8 | asymmetry`,
/// RFC 6184's default `420010` (baseline, level 1) when the line has no
/// `profile-level-id`, 0 for one we cannot read (it matches nothing but
/// itself). VP9 `profile-id`, AV1 `profile`; 0 otherwise.
pub fn codec_profile(codec: Codec, fmtp: &str) -> u32 {
    match codec {
        Codec::H264 => {
            let level = match param(fmtp, "profile-level-id") {
                Some(v) => parse_profile_level_id(v),
                None => parse_profile_level_id("42000a"),
            };
            let Some(level) = level else {
                return 0;
            };
            let asymmetry = u32::from(param(fmtp, "level-asymmetry-allowed") == Some("1"));
            u32::from(level.profile as u8) << 16 | u32::from(level.rank) << 8 | asymmetry
        }
        Codec::Vp9 => param(fmtp, "profile-id")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        Codec::Av1 => param(fmtp, "profile")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Whether a player codec line keyed `player` can carry a publisher's
/// stream keyed `publisher` (both [`codec_profile`] of `codec`).
pub fn accepts(codec: Codec, player: u32, publisher: u32) -> bool {
    if codec != Codec::H264 {
        return player == publisher;
    }
    if player == 0 || publisher == 0 {
        return player == publisher;
    }
    let profile = |k: u32| k >> 16;
    let rank = |k: u32| (k >> 8) & 0xff;
    let asymmetry = player & 1 == 1;
    profile(player) == profile(publisher) && (asymmetry || rank(player) >= rank(publisher))
}

/// How good a match `player` is for `publisher` among several accepted
/// lines (lower is better): the same level first, then higher levels.
pub fn distance(codec: Codec, player: u32, publisher: u32) -> u32 {
    if codec != Codec::H264 {
        return 0;
    }
    let rank = |k: u32| (k >> 8) & 0xff;
    rank(player).abs_diff(rank(publisher))
}

/// A short name of an H.264 key for messages (`constrained baseline 3.1`).
pub fn describe(codec: Codec, key: u32) -> String {
    if codec != Codec::H264 {
        return format!("{codec:?}");
    }
    let profile = match key >> 16 {
        1 => "constrained baseline",
        2 => "baseline",
        3 => "main",
        4 => "constrained high",
        5 => "high",
        6 => "predictive high 4:4:4",
        _ => return "H.264 of an unknown profile".to_string(),
    };
    let rank = (key >> 8) & 0xff;
    let level = if rank == 21 {
        "1b".to_string()
    } else {
        format!("{}.{}", rank / 20, (rank / 2) % 10)
    };
    format!("H.264 {profile} level {level}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fmtp: &str) -> u32 {
        codec_profile(Codec::H264, fmtp)
    }

    #[test]
    fn profiles_as_libwebrtc_reads_them() {
        let p = |v| parse_profile_level_id(v).map(|l| l.profile);
        assert_eq!(p("42e01f"), Some(H264Profile::ConstrainedBaseline));
        assert_eq!(p("42c01f"), Some(H264Profile::ConstrainedBaseline));
        assert_eq!(p("4d801f"), Some(H264Profile::ConstrainedBaseline));
        assert_eq!(p("42001f"), Some(H264Profile::Baseline));
        assert_eq!(p("4d001f"), Some(H264Profile::Main));
        assert_eq!(p("64001f"), Some(H264Profile::High));
        assert_eq!(p("640c1f"), Some(H264Profile::ConstrainedHigh));
        assert_eq!(p("f4001f"), Some(H264Profile::PredictiveHigh444));
        assert_eq!(p("6e001f"), None); // High 10: not a WebRTC profile
        assert_eq!(p("42e0"), None);
        assert_eq!(p("zze01f"), None);
        assert_eq!(p("+2e01f"), None);
    }

    #[test]
    fn levels_rank_with_1b_between_1_and_1_1() {
        let r = |v| parse_profile_level_id(v).map(|l| l.rank);
        assert_eq!(r("42e00a"), Some(20));
        assert_eq!(r("42f00b"), Some(21)); // constraint_set3: 1b
        assert_eq!(r("42e00b"), Some(22)); // 1.1
        assert_eq!(r("42e01f"), Some(62));
        assert_eq!(r("640033"), Some(102));
        assert_eq!(
            describe(Codec::H264, key("profile-level-id=42e01f")),
            "H.264 constrained baseline level 3.1"
        );
        assert_eq!(
            describe(Codec::H264, key("profile-level-id=42f00b")),
            "H.264 constrained baseline level 1b"
        );
        assert_eq!(
            describe(Codec::H264, key("profile-level-id=640028")),
            "H.264 high level 4.0"
        );
    }

    #[test]
    fn same_profile_any_level_with_asymmetry() {
        let ffmpeg = key("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f");
        let obs_1080 = key("packetization-mode=1;profile-level-id=42e028");
        let chromium_cb =
            key("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f");
        let chromium_b =
            key("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f");
        let high_only =
            key("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f");
        assert!(accepts(Codec::H264, chromium_cb, ffmpeg));
        assert!(accepts(Codec::H264, chromium_cb, obs_1080)); // asymmetry: 4.0 into 3.1
        assert!(!accepts(Codec::H264, chromium_b, ffmpeg)); // baseline is another profile
        assert!(!accepts(Codec::H264, high_only, ffmpeg));
        // Without level-asymmetry-allowed the player's level caps the stream.
        let strict_31 = key("packetization-mode=1;profile-level-id=42e01f");
        let strict_40 = key("packetization-mode=1;profile-level-id=42e028");
        assert!(!accepts(Codec::H264, strict_31, obs_1080));
        assert!(accepts(Codec::H264, strict_40, ffmpeg));
        // The publisher's own asymmetry flag does not matter.
        assert!(accepts(Codec::H264, strict_31, ffmpeg));
        // No profile-level-id: RFC 6184's baseline level 1.
        assert!(accepts(
            Codec::H264,
            key("profile-level-id=42001f"),
            key("packetization-mode=1")
        ));
        // Unreadable values match only themselves.
        assert_eq!(key("profile-level-id=nothex"), 0);
        assert!(!accepts(
            Codec::H264,
            key("profile-level-id=nothex"),
            ffmpeg
        ));
        assert!(
            distance(Codec::H264, strict_31, ffmpeg) < distance(Codec::H264, strict_40, ffmpeg)
        );
    }

    #[test]
    fn vp9_and_av1_by_profile() {
        let vp9 = |f| codec_profile(Codec::Vp9, f);
        assert!(accepts(Codec::Vp9, vp9("profile-id=0"), vp9("")));
        assert!(!accepts(
            Codec::Vp9,
            vp9("profile-id=2"),
            vp9("profile-id=0")
        ));
        let av1 = |f| codec_profile(Codec::Av1, f);
        assert!(accepts(
            Codec::Av1,
            av1("level-idx=5;profile=0;tier=0"),
            av1("")
        ));
    }
}
