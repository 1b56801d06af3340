#!/usr/bin/env python3
"""Writes the seed corpora of the byte-input targets (signal_frame,
stun_demux, sdp_offer) into fuzz/corpus/<target>/ from real data: the
protocol's request frames, the browser/encoder SDP offers of
crates/sfu-core/src/media/fixtures, and STUN binding requests laid out as
Chromium and Firefox send them (signed with HMAC-SHA1, with FINGERPRINT).
The structured targets (session_ops, router_ops, whip_http) take
`arbitrary` input: their corpora are what short fuzzing runs kept, minimised
with `cargo fuzz cmin`. Re-run from the repository root:
    python3 fuzz/seeds/make_seeds.py
"""
import hashlib, hmac, json, os, struct, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
FIXTURES = os.path.join(ROOT, "crates", "sfu-core", "src", "media", "fixtures")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- signal_frame: one frame of each op of docs/protocol.md, and broken ones.
frames = [
    {"id": 1, "op": "enableMultiRoom", "enable": True},
    {"id": 2, "op": "loginRoom", "roomID": "room-1", "token": "eyJhbGciOiJIUzI1NiJ9.e30.x",
     "user": {"userID": "alice", "userName": "Alice"}, "config": {"userUpdate": True, "maxMemberCount": 10}},
    {"id": 3, "op": "switchRoom", "fromRoomID": "room-1", "toRoomID": "room-2", "token": "t"},
    {"id": 4, "op": "logoutRoom", "roomID": "room-1"},
    {"id": 5, "op": "logoutRoom"},
    {"id": 6, "op": "renewToken", "roomID": "room-1", "token": "t"},
    {"id": 7, "op": "sendBroadcastMessage", "roomID": "room-1", "message": "hello"},
    {"id": 8, "op": "sendBarrageMessage", "roomID": "room-1", "message": "\u00e9\u4e2d"},
    {"id": 9, "op": "sendCustomCommand", "roomID": "room-1", "command": "{\"k\":1}", "toUserIDs": ["bob", "carol"]},
    {"id": 10, "op": "setRoomExtraInfo", "roomID": "room-1", "key": "topic", "value": "v"},
    {"id": 11, "op": "startPublishingStream", "streamID": "alice-cam", "roomID": "room-1", "sdp": "v=0\r\n", "extraInfo": "x"},
    {"id": 12, "op": "stopPublishingStream", "streamID": "alice-cam"},
    {"id": 13, "op": "startPlayingStream", "streamID": "alice-cam", "sdp": "v=0\r\n"},
    {"id": 14, "op": "stopPlayingStream", "streamID": "alice-cam"},
    {"id": 15, "op": "iceCandidate", "streamID": "alice-cam", "candidate": "candidate:1 1 udp 2122260223 192.168.1.2 50000 typ host",
     "sdpMid": "0", "sdpMLineIndex": 0},
    {"id": 16, "op": "setStreamExtraInfo", "streamID": "alice-cam", "extraInfo": None},
    {"op": "heartbeat"},
    {"id": 18446744073709551615, "op": "heartbeat"},
]
for i, f in enumerate(frames):
    write("signal_frame", f"op-{i:02}.json", json.dumps(f))
for i, raw in enumerate([
    '{"id":-5,"op":"loginRoom"}', '{"id":5.0,"op":"heartbeat"}', '{"id":"7","op":"x"}',
    '{"id":1}', '{"id":1,"op":5}', '[1,2]', 'nope', '{"id":1,"op":"loginRoom","roomID":5}',
    '{"id":1,"op":"loginRoom","user":{"userID":null}}', '{"id":null,"op":"heartbeat"}',
]):
    write("signal_frame", f"bad-{i:02}.json", raw)


# --- sdp_offer: mode byte (0 publish, 1 play, 2 play with a live publisher)
#     then a real offer, CRLF as browsers send it.
offers = sorted(os.listdir(FIXTURES))
for name in offers:
    sdp = open(os.path.join(FIXTURES, name)).read()
    crlf = "".join(l + "\r\n" for l in sdp.splitlines())
    stem = name[:-4]
    modes = [1, 2] if "play" in stem else [0, 1, 2]
    for m in modes:
        write("sdp_offer", f"{stem}-mode{m}.sdp", bytes([m]) + crlf.encode())
    write("sdp_offer", f"{stem}-lf.sdp", bytes([0 if 'play' not in stem else 2]) + sdp.encode())


# --- stun_demux: binding requests as ICE agents send them.
COOKIE = b"\x21\x12\xa4\x42"


def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad


def binding(username, password, extra, txid, nominate=False, fingerprint=True, msg_type=1):
    attrs = attr(0x0006, username) + b"".join(extra)
    if nominate:
        attrs += attr(0x0025, b"")
    # MESSAGE-INTEGRITY over the header with the length up to it.
    hdr = struct.pack("!HH", msg_type, len(attrs) + 24) + COOKIE + txid
    mi = hmac.new(password, hdr + attrs, hashlib.sha1).digest()
    attrs += attr(0x0008, mi)
    if not fingerprint:
        return struct.pack("!HH", msg_type, len(attrs)) + COOKIE + txid + attrs
    hdr = struct.pack("!HH", msg_type, len(attrs) + 8) + COOKIE + txid
    crc = (zlib.crc32(hdr + attrs) ^ 0x5354554E) & 0xFFFFFFFF
    return hdr + attrs + attr(0x8028, struct.pack("!I", crc))


server = b"srvUfrag0000001"
pwd = b"serverPassword0000000000000001"
chrome_extra = [
    attr(0xC057, struct.pack("!HH", 1, 10)),          # GOOG-NETWORK-INFO
    attr(0x802A, bytes.fromhex("1a2b3c4d5e6f7081")),  # ICE-CONTROLLING
    attr(0x0024, struct.pack("!I", 1853817087)),      # PRIORITY
]
firefox_extra = [
    attr(0x0024, struct.pack("!I", 2122252543)),
    attr(0x802A, bytes.fromhex("0102030405060708")),
]
seeds = {
    "chrome-check": binding(server + b":Kp3x", pwd, chrome_extra, b"\x01" * 12),
    "chrome-nominate": binding(server + b":Kp3x", pwd, chrome_extra, b"\x02" * 12, nominate=True),
    "firefox-check": binding(server + b":4f1c0e2a", pwd, firefox_extra, b"\x03" * 12),
    "firefox-nominate": binding(server + b":4f1c0e2a", pwd, firefox_extra, b"\x04" * 12, nominate=True),
    "no-fingerprint": binding(server + b":abcd", pwd, firefox_extra, b"\x05" * 12, fingerprint=False),
    "empty-ufrag": binding(b":abcd", pwd, [], b"\x06" * 12),
    "no-colon": binding(server, pwd, [], b"\x07" * 12),
    "binding-success": struct.pack("!HH", 0x0101, 12) + COOKIE + b"\x08" * 12
        + attr(0x0020, struct.pack("!BBH4s", 0, 1, 0x1234 ^ 0x2112, bytes([127 ^ 0x21, 0 ^ 0x12, 0 ^ 0xA4, 1 ^ 0x42]))),
    "indication": struct.pack("!HH", 0x0011, 0) + COOKIE + b"\x09" * 12,
    "header-only": struct.pack("!HH", 0x0001, 0) + COOKIE + b"\x0a" * 12,
    "length-overrun": struct.pack("!HH", 0x0001, 400) + COOKIE + b"\x0b" * 12 + attr(0x0006, b"x:y"),
    # A DTLS 1.2 ClientHello record header and an RTP / RTCP packet: what else
    # reaches the media port.
    "dtls-clienthello": bytes.fromhex("16feff0000000000000000007a010000") + b"\0" * 40,
    "rtp-opus": bytes.fromhex("806f1a2b00003c001234567810fc") + b"\xaa" * 40,
    "rtcp-rr": bytes.fromhex("81c90007deadbeef") + b"\0" * 24,
}
for name, data in seeds.items():
    write("stun_demux", name + ".bin", data)
# The ICE-TCP byte stream: RFC 4571 frames back to back.
stream = b"".join(struct.pack("!H", len(seeds[k])) + seeds[k] for k in ["chrome-check", "dtls-clienthello", "rtp-opus"])
write("stun_demux", "tcp-stream.bin", stream)
