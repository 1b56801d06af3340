//! A publisher's simulcast encodings (`a=rid` / `a=simulcast`) as
//! layers: which RTP stream ID is which layer (0 = lowest resolution).
//! Both planes need it: the media plane to rank the encodings it receives,
//! the control plane to name the layers it tells a publisher to pause.
//!
//! SDP does not say which encoding is the small one. The names the SDK
//! and most stacks use do (`q`/`h`/`f`, `l`/`m`/`h`, `low`/`mid`/`high`,
//! `0`/`1`/`2`): when every RID of the section is one of a family, that
//! ranking is used. Otherwise the encodings are taken in the order the
//! offer lists them, lowest first, which is how browsers list
//! `sendEncodings` scaled down by 4, 2 and 1 (and what mediasoup assumes).

/// Simulcast layers a stream has at most (the router's `MAX_LAYERS`).
pub const MAX_LAYERS: usize = 3;

/// RID families, each lowest first.
const FAMILIES: &[&[&str]] = &[
    &["q", "h", "f"],
    &["l", "m", "h"],
    &["low", "mid", "high"],
    &["low", "medium", "high"],
    &["0", "1", "2"],
];

/// The layer of `rid` among the section's `rids` (in SDP order); `None`
/// if `rid` is not one of them or beyond [`MAX_LAYERS`].
pub fn layer_of(rid: &str, rids: &[&str]) -> Option<u8> {
    let family = FAMILIES.iter().find(|f| {
        !rids.is_empty()
            && rids
                .iter()
                .all(|r| f.iter().any(|n| n.eq_ignore_ascii_case(r)))
    });
    let layer = match family {
        Some(f) => {
            // Rank among the names present, so that `h`,`f` alone are 0, 1.
            let rank = |r: &str| f.iter().position(|n| n.eq_ignore_ascii_case(r));
            let mine = rank(rid)?;
            rids.iter()
                .filter(|r| rank(r).is_some_and(|x| x < mine))
                .count()
        }
        None => rids.iter().position(|r| *r == rid)?,
    };
    (layer < MAX_LAYERS).then_some(layer as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_rank_layers_whatever_the_order() {
        assert_eq!(layer_of("f", &["f", "h", "q"]), Some(2));
        assert_eq!(layer_of("q", &["f", "h", "q"]), Some(0));
        assert_eq!(layer_of("h", &["q", "h", "f"]), Some(1));
        assert_eq!(layer_of("high", &["low", "high"]), Some(1));
        // l/m/h: "h" ranks as high here, not half.
        assert_eq!(layer_of("h", &["l", "m", "h"]), Some(2));
        assert_eq!(layer_of("f", &["h", "f"]), Some(1));
    }

    #[test]
    fn unknown_names_keep_the_offer_order() {
        assert_eq!(layer_of("b", &["a", "b", "c"]), Some(1));
        assert_eq!(layer_of("z", &["a", "b", "c"]), None);
        assert_eq!(layer_of("d", &["a", "b", "c", "d"]), None);
        assert_eq!(layer_of("a", &[]), None);
    }
}
