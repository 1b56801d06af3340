//! The data plane driven by a sequence of ops: streams, tracks and
//! down-tracks come and go, RTP packets (built from fuzzed fields, or raw
//! datagrams) are pushed, players send PLI/FIR/NACK, output is drained or
//! polled, sender reports translated. Invariants, checked on every packet
//! out: no panic; it goes to a live down-track with that down-track's SSRC
//! and payload type, its header says what the packet says; its payload came
//! from a stream the down-track was attached to since its queue was last
//! empty (never a packet to a player of another stream); a first
//! transmission's sequence number is strictly greater (RFC 3550 serial
//! order) than every earlier one of that down-track, and a retransmission
//! repeats one that was sent.

#![no_main]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use stream_router::{
    nack_sequence_numbers, Codec, DownTrackConfig, DownTrackHandle, ExtKind, ExtMap, Feedback,
    MediaKind, Router, RtpPacket, StreamHandle, StreamKey, TrackHandle, TrackInfo,
};

const STREAMS: usize = 3;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Audio,
    /// Video, simulcast layer 0 (or the only one).
    Video,
    /// Video, simulcast layers 1 and 2.
    VideoMid,
    VideoTop,
}

impl Kind {
    fn media(self) -> MediaKind {
        match self {
            Kind::Audio => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }
    /// The model's track slot (the router's: audio, then each layer).
    fn index(self) -> usize {
        self as usize
    }
    fn layer(self) -> u8 {
        self.index().saturating_sub(1) as u8
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzCodec {
    Opus,
    Vp8,
    Vp9,
    H264,
    Av1,
    Other,
}

impl FuzzCodec {
    fn codec(self) -> Codec {
        match self {
            FuzzCodec::Opus => Codec::Opus,
            FuzzCodec::Vp8 => Codec::Vp8,
            FuzzCodec::Vp9 => Codec::Vp9,
            FuzzCodec::H264 => Codec::H264,
            FuzzCodec::Av1 => Codec::Av1,
            FuzzCodec::Other => Codec::Other,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FuzzExt {
    AudioLevel,
    VideoOrientation,
    PlayoutDelay,
    AbsCaptureTime,
    TransportCc,
    AbsSendTime,
    Mid,
    DependencyDescriptor,
}

impl FuzzExt {
    fn kind(self) -> ExtKind {
        match self {
            FuzzExt::AudioLevel => ExtKind::AudioLevel,
            FuzzExt::VideoOrientation => ExtKind::VideoOrientation,
            FuzzExt::PlayoutDelay => ExtKind::PlayoutDelay,
            FuzzExt::AbsCaptureTime => ExtKind::AbsCaptureTime,
            FuzzExt::TransportCc => ExtKind::TransportCc,
            FuzzExt::AbsSendTime => ExtKind::AbsSendTime,
            FuzzExt::Mid => ExtKind::Mid,
            FuzzExt::DependencyDescriptor => ExtKind::DependencyDescriptor,
        }
    }
}

fn ext_map(exts: &[(u8, FuzzExt)]) -> ExtMap {
    let mut m = ExtMap::new();
    for (id, kind) in exts.iter().take(6) {
        m.insert(*id % 16, kind.kind());
    }
    m
}

#[derive(Arbitrary, Debug)]
enum Fb {
    Pli,
    Fir,
    /// PID counted back from the down-track's last number.
    Nack {
        back: u8,
        blp: u16,
    },
    NackRaw(Vec<u16>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    AddStream(u8),
    RemoveStream(u8),
    AddTrack {
        stream: u8,
        kind: Kind,
        codec: FuzzCodec,
        ssrc: u32,
        payload_type: u8,
        exts: Vec<(u8, FuzzExt)>,
    },
    RemoveTrack {
        stream: u8,
        kind: Kind,
    },
    Subscribe {
        stream: u8,
        kind: Kind,
        by_key: bool,
        ssrc: u32,
        payload_type: u8,
        queue: u8,
        exts: Vec<(u8, FuzzExt)>,
    },
    Unsubscribe(u8),
    Attach {
        downtrack: u8,
        stream: u8,
    },
    SetPayloadType {
        downtrack: u8,
        payload_type: u8,
    },
    /// Cap a video down-track's simulcast layer.
    SetMaxLayer {
        downtrack: u8,
        layer: u8,
    },
    Push {
        stream: u8,
        kind: Kind,
        seq_step: u16,
        ts_step: u16,
        marker: bool,
        keyframe: bool,
        csrcs: u8,
        padding: u8,
        /// (id, value) one-byte extensions.
        exts: Vec<(u8, Vec<u8>)>,
        wrong_ssrc: bool,
        payload: Vec<u8>,
    },
    /// A raw datagram; when it parses, its number is made the track's next.
    PushRaw {
        stream: u8,
        kind: Kind,
        seq_step: u16,
        keep_ssrc: bool,
        data: Vec<u8>,
    },
    Feedback {
        downtrack: u8,
        fb: Fb,
    },
    /// A bandwidth probe's padding on a down-track.
    Padding {
        downtrack: u8,
        count: u8,
    },
    Drain,
    Poll(u8),
    PollDowntrack(u8),
    ClearQueue(u8),
    Upstream,
    SenderReport {
        stream: u8,
        kind: Kind,
        ntp: u64,
        rtp_time: u32,
    },
    Advance(u16),
}

struct TrackModel {
    handle: TrackHandle,
    info: TrackInfo,
    seq: u16,
    ts: u32,
}

struct DtModel {
    handle: DownTrackHandle,
    kind: Kind,
    /// The stream key (index) it plays.
    key: usize,
    /// Streams whose packets may be in its queue.
    allowed: BTreeSet<usize>,
    ssrc: u32,
    payload_type: u8,
    last_seq: Option<u16>,
    sent: BTreeSet<u16>,
    /// Numbered packets were dropped unsent (full queue, `clear_queue`):
    /// a NACK may then bring one of them as a retransmission.
    dropped: bool,
}

struct Model {
    router: Router,
    streams: [Option<StreamHandle>; STREAMS],
    tracks: [[Option<TrackModel>; 4]; STREAMS],
    dts: Vec<DtModel>,
    /// Every payload buffer pushed, with its stream (kept alive so that
    /// addresses are unique).
    payloads: Vec<(Bytes, usize)>,
    now: Instant,
}

fn key(i: usize) -> StreamKey {
    StreamKey::new(1, format!("s{i}"))
}

/// A codec's keyframe start (for gated video).
fn keyframe_prefix(codec: Codec) -> &'static [u8] {
    match codec {
        Codec::Vp8 => &[0x10, 0x00, 0x9d, 0x01, 0x2a],
        Codec::Vp9 => &[0x08],
        Codec::H264 => &[0x67, 0x42],
        Codec::Av1 => &[0x18],
        Codec::Opus | Codec::Other => &[],
    }
}

fn build_datagram(
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    csrcs: u8,
    exts: &[(u8, Vec<u8>)],
    payload: &[u8],
    padding: u8,
) -> Vec<u8> {
    let csrcs = csrcs % 4;
    let exts: Vec<_> = exts
        .iter()
        .take(4)
        .filter(|(_, v)| !v.is_empty())
        .map(|(id, v)| (1 + id % 14, &v[..v.len().min(16)]))
        .collect();
    let pad = padding % 8;
    let mut b = vec![
        0x80 | if pad > 0 { 0x20 } else { 0 } | if exts.is_empty() { 0 } else { 0x10 } | csrcs,
        (u8::from(marker) << 7) | (pt & 0x7f),
    ];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ssrc.to_be_bytes());
    for i in 0..csrcs {
        b.extend_from_slice(&u32::from(i).to_be_bytes());
    }
    if !exts.is_empty() {
        let mut block = Vec::new();
        for (id, v) in &exts {
            block.push((id << 4) | (v.len() as u8 - 1));
            block.extend_from_slice(v);
        }
        while block.len() % 4 != 0 {
            block.push(0);
        }
        b.extend_from_slice(&[0xBE, 0xDE]);
        b.extend_from_slice(&((block.len() / 4) as u16).to_be_bytes());
        b.extend_from_slice(&block);
    }
    b.extend_from_slice(payload);
    if pad > 0 {
        b.extend(std::iter::repeat_n(0, usize::from(pad) - 1));
        b.push(pad);
    }
    b
}

impl Model {
    fn dt(&self, i: u8) -> Option<usize> {
        (!self.dts.is_empty()).then(|| usize::from(i) % self.dts.len())
    }

    fn check_out(
        &mut self,
        h: DownTrackHandle,
        ssrc: u32,
        pt: u8,
        seq: u16,
        rtx: bool,
        header: Option<&[u8]>,
        payload: &Bytes,
        padding: bool,
    ) {
        let dt = self
            .dts
            .iter_mut()
            .find(|d| d.handle == h)
            .expect("a packet to a down-track that was removed");
        assert_eq!(ssrc, dt.ssrc, "another player's SSRC");
        assert_eq!(pt, dt.payload_type, "not the player's payload type");
        if let Some(hdr) = header {
            assert!(hdr.len() >= 12);
            assert_eq!(hdr[0] >> 6, 2);
            assert_eq!(hdr[1] & 0x7f, dt.payload_type);
            assert_eq!(u16::from_be_bytes([hdr[2], hdr[3]]), seq);
            assert_eq!(u32::from_be_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]), ssrc);
            assert_eq!(hdr[0] & 0x20 != 0, padding, "the P bit is set on padding only");
        }
        if padding {
            // A probe's padding: on video, never a retransmission, only
            // padding bytes (the count last) or none.
            assert_eq!(dt.kind.media(), MediaKind::Video, "padding on audio");
            assert!(!rtx);
            assert!(payload.is_empty() || payload.last() == Some(&(payload.len() as u8)));
        } else if !payload.is_empty() {
            let p = payload.as_ptr();
            let stream = self
                .payloads
                .iter()
                .find(|(b, _)| b.as_ptr_range().contains(&p))
                .map(|(_, s)| *s)
                .expect("a payload that was never pushed");
            assert!(
                dt.allowed.contains(&stream),
                "a packet of stream {stream} to a player of {:?}",
                dt.allowed
            );
        }
        if rtx {
            assert!(
                dt.dropped || dt.sent.contains(&seq),
                "retransmission of an unsent number {seq}"
            );
        } else {
            if let Some(last) = dt.last_seq {
                let d = seq.wrapping_sub(last);
                assert!(
                    d != 0 && d < 0x8000,
                    "sequence number {seq} after {last} is not increasing"
                );
            }
            dt.last_seq = Some(seq);
            dt.sent.insert(seq);
        }
    }

    fn drain(&mut self) {
        let mut out = Vec::new();
        self.router.drain_output(|h, o| {
            // The VP8 numbers apply to the payload they were made for.
            if let Some(v) = o.vp8 {
                let mut copy = o.payload.to_vec();
                assert!(v.apply(&mut copy), "a VP8 patch for a payload without numbers");
            }
            out.push((
                h,
                o.ssrc,
                o.header.get(1).map_or(0, |b| b & 0x7f),
                o.sequence_number,
                o.is_retransmission,
                o.header.to_vec(),
                o.payload.clone(),
                o.padding,
            ))
        });
        for (h, ssrc, pt, seq, rtx, header, payload, padding) in out {
            self.check_out(h, ssrc, pt, seq, rtx, Some(&header), &payload, padding);
        }
        self.queues_emptied();
    }

    /// Every queue is empty: only the current stream's packets come next.
    fn queues_emptied(&mut self) {
        for d in &mut self.dts {
            assert_eq!(self.router.pending(d.handle), 0);
            d.allowed = BTreeSet::from([d.key]);
        }
    }

    fn push(&mut self, s: usize, kind: Kind, pkt: RtpPacket, whole: Bytes) {
        let Some(t) = &self.tracks[s][kind.index()] else {
            return;
        };
        self.payloads.push((whole, s));
        let subs = self
            .dts
            .iter()
            .filter(|d| d.key == s && d.kind.media() == kind.media())
            .count() as u32;
        let summary = self
            .router
            .push_rtp(t.handle, pkt, self.now)
            .expect("a live track");
        assert!(summary.enqueued + summary.dropped_queue + summary.gated + summary.late <= subs);
        if summary.dropped_queue > 0 {
            for d in self
                .dts
                .iter_mut()
                .filter(|d| d.key == s && d.kind.media() == kind.media())
            {
                d.dropped = true;
            }
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut m = Model {
        router: Router::new(),
        streams: [None; STREAMS],
        tracks: Default::default(),
        dts: Vec::new(),
        payloads: Vec::new(),
        now: Instant::now(),
    };
    for op in ops.iter().take(512) {
        match op {
            Op::AddStream(s) => {
                let s = usize::from(*s) % STREAMS;
                if m.streams[s].is_none() {
                    m.streams[s] = Some(m.router.add_stream(key(s)).expect("a new key"));
                    for d in m.dts.iter_mut().filter(|d| d.key == s) {
                        d.allowed.insert(s);
                    }
                } else {
                    assert!(m.router.add_stream(key(s)).is_err(), "a key added twice");
                }
            }
            Op::RemoveStream(s) => {
                let s = usize::from(*s) % STREAMS;
                if let Some(h) = m.streams[s].take() {
                    m.router.remove_stream(h).expect("a live stream");
                    m.tracks[s] = Default::default();
                    assert!(m.router.find_stream(&key(s)).is_none());
                }
            }
            Op::AddTrack {
                stream,
                kind,
                codec,
                ssrc,
                payload_type,
                exts,
            } => {
                let s = usize::from(*stream) % STREAMS;
                let Some(h) = m.streams[s] else { continue };
                let info = TrackInfo {
                    kind: kind.media(),
                    codec: codec.codec(),
                    clock_rate: if matches!(kind, Kind::Audio) {
                        48_000
                    } else {
                        90_000
                    },
                    ssrc: *ssrc,
                    payload_type: payload_type & 0x7f,
                    extensions: ext_map(exts),
                    layer: kind.layer(),
                };
                let handle = m.router.add_track(h, info).expect("a live stream");
                m.tracks[s][kind.index()] = Some(TrackModel {
                    handle,
                    info,
                    seq: ssrc.wrapping_mul(7) as u16,
                    ts: *ssrc,
                });
            }
            Op::RemoveTrack { stream, kind } => {
                let s = usize::from(*stream) % STREAMS;
                if let Some(t) = m.tracks[s][kind.index()].take() {
                    m.router.remove_track(t.handle).expect("a live track");
                }
            }
            Op::Subscribe {
                stream,
                kind,
                by_key,
                ssrc,
                payload_type,
                queue,
                exts,
            } => {
                if m.dts.len() >= 8 {
                    continue;
                }
                let s = usize::from(*stream) % STREAMS;
                let config = DownTrackConfig {
                    ssrc: *ssrc,
                    payload_type: payload_type & 0x7f,
                    extensions: ext_map(exts),
                    queue_capacity: usize::from(*queue % 64),
                };
                let handle = match (by_key, m.streams[s]) {
                    (false, Some(h)) => m.router.subscribe(h, kind.media(), config),
                    (false, None) => continue,
                    (true, _) => Ok(m.router.subscribe_key(&key(s), kind.media(), config)),
                }
                .expect("a live stream");
                m.dts.push(DtModel {
                    handle,
                    kind: *kind,
                    key: s,
                    allowed: BTreeSet::from([s]),
                    ssrc: *ssrc,
                    payload_type: payload_type & 0x7f,
                    last_seq: None,
                    sent: BTreeSet::new(),
                    dropped: false,
                });
            }
            Op::Unsubscribe(d) => {
                if let Some(i) = m.dt(*d) {
                    let d = m.dts.swap_remove(i);
                    m.router.unsubscribe(d.handle).expect("a live down-track");
                    assert!(m.router.unsubscribe(d.handle).is_err(), "a stale handle");
                }
            }
            Op::Attach { downtrack, stream } => {
                let s = usize::from(*stream) % STREAMS;
                if let (Some(i), Some(h)) = (m.dt(*downtrack), m.streams[s]) {
                    m.router.attach(m.dts[i].handle, h).expect("live handles");
                    m.dts[i].key = s;
                    m.dts[i].allowed.insert(s);
                }
            }
            Op::Padding { downtrack, count } => {
                if let Some(i) = m.dt(*downtrack) {
                    let h = m.dts[i].handle;
                    let before = m.router.pending(h);
                    let n = m.router.queue_padding(h, usize::from(*count));
                    assert!(n <= usize::from(*count));
                    if m.dts[i].kind.media() == MediaKind::Audio {
                        assert_eq!(n, 0, "padding on audio");
                    }
                    assert_eq!(m.router.pending(h), before + n);
                }
            }
            Op::SetMaxLayer { downtrack, layer } => {
                if let Some(i) = m.dt(*downtrack) {
                    let h = m.dts[i].handle;
                    let state = m.router.set_max_layer(h, *layer);
                    let video = m.dts[i].kind.media() == MediaKind::Video;
                    assert_eq!(state.is_some(), video, "layers are for video only");
                    if let Some(st) = state {
                        assert_eq!(st.max, *layer);
                        assert!(st.current.is_none_or(|l| l < 3) && st.target.is_none_or(|l| l < 3));
                    }
                }
            }
            Op::SetPayloadType {
                downtrack,
                payload_type,
            } => {
                if let Some(i) = m.dt(*downtrack) {
                    let pt = payload_type & 0x7f;
                    // Queued packets leave with the new type too.
                    if m.router.set_payload_type(m.dts[i].handle, pt).is_ok() {
                        m.dts[i].payload_type = pt;
                    }
                }
            }
            Op::Push {
                stream,
                kind,
                seq_step,
                ts_step,
                marker,
                keyframe,
                csrcs,
                padding,
                exts,
                wrong_ssrc,
                payload,
            } => {
                let s = usize::from(*stream) % STREAMS;
                let Some(t) = &mut m.tracks[s][kind.index()] else {
                    continue;
                };
                t.seq = t.seq.wrapping_add(1 + seq_step % 300);
                t.ts = t.ts.wrapping_add(u32::from(*ts_step));
                let mut body = Vec::new();
                if *keyframe {
                    body.extend_from_slice(keyframe_prefix(t.info.codec));
                }
                body.extend_from_slice(&payload[..payload.len().min(1200)]);
                let ssrc = if *wrong_ssrc {
                    !t.info.ssrc
                } else {
                    t.info.ssrc
                };
                let raw = build_datagram(
                    *marker,
                    t.info.payload_type,
                    t.seq,
                    t.ts,
                    ssrc,
                    *csrcs,
                    exts,
                    &body,
                    *padding,
                );
                let whole = Bytes::from(raw);
                let pkt = RtpPacket::parse(whole.clone()).expect("a datagram built to the RFC");
                assert_eq!(pkt.sequence_number, t.seq);
                assert_eq!(pkt.timestamp, t.ts);
                assert_eq!(pkt.ssrc, ssrc);
                assert_eq!(pkt.marker, *marker);
                assert_eq!(
                    &pkt.payload[..],
                    &body[..],
                    "payload after CSRCs/extensions/padding"
                );
                if *keyframe && matches!(t.info.codec, Codec::Vp8 | Codec::Vp9 | Codec::H264) {
                    assert!(t.info.codec.is_keyframe_start(&pkt.payload));
                }
                m.push(s, *kind, pkt, whole);
            }
            Op::PushRaw {
                stream,
                kind,
                seq_step,
                keep_ssrc,
                data,
            } => {
                let whole = Bytes::from(data.clone());
                let Ok(mut pkt) = RtpPacket::parse(whole.clone()) else {
                    continue;
                };
                let s = usize::from(*stream) % STREAMS;
                let Some(t) = &mut m.tracks[s][kind.index()] else {
                    continue;
                };
                t.seq = t.seq.wrapping_add(1 + seq_step % 300);
                pkt.sequence_number = t.seq;
                if !keep_ssrc {
                    pkt.ssrc = t.info.ssrc;
                    pkt.payload_type = t.info.payload_type;
                }
                m.push(s, *kind, pkt, whole);
            }
            Op::Feedback { downtrack, fb } => {
                let Some(i) = m.dt(*downtrack) else { continue };
                let h = m.dts[i].handle;
                let r = match fb {
                    Fb::Pli => m.router.handle_player_feedback(h, Feedback::Pli, m.now),
                    Fb::Fir => m.router.handle_player_feedback(h, Feedback::Fir, m.now),
                    Fb::Nack { back, blp } => {
                        let pid = m.dts[i]
                            .last_seq
                            .unwrap_or(0)
                            .wrapping_sub(u16::from(*back));
                        let seqs: Vec<u16> = nack_sequence_numbers(pid, *blp).collect();
                        assert_eq!(seqs.len(), 1 + blp.count_ones() as usize);
                        m.router
                            .handle_player_feedback(h, Feedback::Nack(&seqs), m.now)
                    }
                    Fb::NackRaw(seqs) => m.router.handle_player_feedback(
                        h,
                        Feedback::Nack(&seqs[..seqs.len().min(64)]),
                        m.now,
                    ),
                };
                r.expect("a live down-track");
            }
            Op::Drain => m.drain(),
            Op::Poll(n) => {
                for _ in 0..*n {
                    let Some((h, p)) = m.router.poll_output() else {
                        m.queues_emptied();
                        break;
                    };
                    let mut header = vec![0; stream_router::MAX_HEADER_LEN];
                    let len = p.write_header(&mut header);
                    header.truncate(len);
                    m.check_out(
                        h,
                        p.ssrc,
                        p.payload_type,
                        p.sequence_number,
                        p.is_retransmission,
                        Some(&header),
                        &p.payload,
                        p.padding,
                    );
                }
            }
            Op::PollDowntrack(d) => {
                let Some(i) = m.dt(*d) else { continue };
                let h = m.dts[i].handle;
                if let Some(p) = m.router.poll_downtrack(h) {
                    m.check_out(
                        h,
                        p.ssrc,
                        p.payload_type,
                        p.sequence_number,
                        p.is_retransmission,
                        None,
                        &p.payload,
                        p.padding,
                    );
                }
            }
            Op::ClearQueue(d) => {
                if let Some(i) = m.dt(*d) {
                    assert!(m.router.clear_queue(m.dts[i].handle));
                    m.dts[i].dropped = true;
                    assert_eq!(m.router.pending(m.dts[i].handle), 0);
                }
            }
            Op::Upstream => {
                while let Some((track, _)) = m.router.poll_upstream(m.now) {
                    let live = m
                        .tracks
                        .iter()
                        .flatten()
                        .flatten()
                        .any(|t| t.handle == track);
                    assert!(live, "a keyframe request for a removed track");
                }
                if let Some(at) = m.router.poll_timeout() {
                    assert!(at >= m.now - Duration::from_secs(1));
                }
            }
            Op::SenderReport {
                stream,
                kind,
                ntp,
                rtp_time,
            } => {
                let s = usize::from(*stream) % STREAMS;
                let Some(t) = &m.tracks[s][kind.index()] else {
                    continue;
                };
                let dts = &m.dts;
                m.router
                    .for_each_sender_report(t.handle, *ntp, *rtp_time, |h, sr| {
                        let d = dts
                            .iter()
                            .find(|d| d.handle == h)
                            .expect("a live down-track");
                        assert_eq!(sr.ssrc, d.ssrc);
                        assert_eq!(sr.ntp, *ntp);
                        assert_eq!(d.key, s, "a sender report of another stream");
                    });
            }
            Op::Advance(ms) => m.now += Duration::from_millis(u64::from(*ms)),
        }
    }
    m.drain();
    let (streams, tracks, downtracks) = m.router.counts();
    let _ = (streams, tracks);
    assert_eq!(downtracks, m.dts.len());
});
