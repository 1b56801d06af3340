"""An independent WebRTC stack (aiortc) against the SFU over WHIP/WHEP.

    python3 aiortc_peer.py whip-publish SERVER ROOM STREAM TOKEN SECONDS
    python3 aiortc_peer.py whep-play SERVER STREAM TOKEN SECONDS
    python3 aiortc_peer.py whep-watch SERVER STREAM TOKEN

Any mode takes `--setup ROLE` (passive or active): the offer sent to the
server says `a=setup:ROLE` instead of aiortc's `actpass` (as FFmpeg's
WHIP muxer offers `passive`). Once connected, every mode prints "dtls
role R cipher C srtp P answer-setup S" (aiortc's DTLS role and what
OpenSSL negotiated).

whip-publish sends aiortc's synthetic video (VP8) and audio for SECONDS, then
DELETEs the resource (with the same bearer token: only its owner may); it prints "published" once connected. whep-play plays
for up to SECONDS and prints "decoded N video frames"; it exits non-zero if
no frame was decoded. whep-watch plays until its stdin closes, printing
"frames N" after every 5th decoded video frame, then "rtp KIND ssrcs N
max-seq-step S max-ts-step T ts-backwards B" per kind from the RTP it
received (through aiortc's receiver), and DELETEs the resource.
"""

import asyncio
import sys
import urllib.request

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack


# The tests run in a network namespace whose only interface is loopback, and
# aioice leaves 127.0.0.1 out of its host candidates: offer loopback only.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


# `--setup ROLE`: the a=setup value of the offers we send.
SETUP = None


def http(method, url, body=None, token=None, content_type="application/sdp"):
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
    if body is not None:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers, resp.read().decode()


async def negotiate(pc, url, token):
    offer = await pc.createOffer()
    await pc.setLocalDescription(offer)
    sdp = pc.localDescription.sdp
    if SETUP:
        sdp = sdp.replace("a=setup:actpass", f"a=setup:{SETUP}")
    status, headers, answer = await asyncio.to_thread(http, "POST", url, sdp, token)
    if status != 201:
        raise RuntimeError(f"POST {url}: {status} {answer}")
    pc._answer_setup = sorted(
        {line.split(":", 1)[1].strip() for line in answer.splitlines() if line.startswith("a=setup:")}
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return headers.get("Location")


def dtls_line(pc):
    """aiortc's DTLS role and what OpenSSL negotiated, from the first transceiver."""
    dtls = pc.getTransceivers()[0].sender.transport
    ssl = dtls._ssl
    profile = ssl.get_selected_srtp_profile().decode() if ssl else "-"
    cipher = ssl.get_cipher_name() if ssl else "-"
    setup = ",".join(pc._answer_setup) or "-"
    return f"dtls role {dtls._role} cipher {cipher} srtp {profile} answer-setup {setup}"


async def wait_connected(pc, seconds=10):
    for _ in range(seconds * 20):
        if pc.connectionState == "connected":
            return
        if pc.connectionState == "failed":
            raise RuntimeError("peer connection failed")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"not connected: {pc.connectionState}")


async def whip_publish(server, room, stream, token, seconds):
    pc = RTCPeerConnection()
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    location = await negotiate(pc, f"{server}/whip/{room}/{stream}", token)
    await wait_connected(pc)
    print("published", flush=True)
    print(dtls_line(pc), flush=True)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(http, "DELETE", f"{server}{location}", token=token)
    await pc.close()


async def whep_play(server, stream, token, seconds):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    frames = {"video": 0}
    done = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        async def read():
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                if track.kind == "video":
                    frames["video"] += 1
                    if frames["video"] >= 30:
                        done.set()

        asyncio.ensure_future(read())

    location = await negotiate(pc, f"{server}/whep/{stream}", token)
    await wait_connected(pc)
    print(dtls_line(pc), flush=True)
    try:
        await asyncio.wait_for(done.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
    print(f"decoded {frames['video']} video frames", flush=True)
    await asyncio.to_thread(http, "DELETE", f"{server}{location}", token=token)
    await pc.close()
    return frames["video"]


class RtpLog:
    """Every RTP packet aiortc's receivers handle: per kind, the largest
    sequence-number and timestamp steps, steps backwards, SSRCs seen."""

    def __init__(self):
        self.last = {}
        self.stats = {}

    def install(self):
        original = RTCRtpReceiver._handle_rtp_packet
        log = self

        async def handle(receiver, packet, arrival_time_ms):
            log.record(receiver._RTCRtpReceiver__kind, packet)
            return await original(receiver, packet, arrival_time_ms)

        RTCRtpReceiver._handle_rtp_packet = handle

    def record(self, kind, packet):
        s = self.stats.setdefault(kind, {"ssrcs": set(), "seq": 0, "ts": 0, "back": 0})
        s["ssrcs"].add(packet.ssrc)
        last = self.last.get(kind)
        self.last[kind] = (packet.sequence_number, packet.timestamp)
        if last is None:
            return
        dseq = (packet.sequence_number - last[0]) & 0xFFFF
        dts = (packet.timestamp - last[1]) & 0xFFFFFFFF
        if dseq >= 0x8000 or dts >= 0x80000000:
            s["back"] += 1
            return
        s["seq"] = max(s["seq"], dseq)
        s["ts"] = max(s["ts"], dts)

    def report(self):
        for kind, s in sorted(self.stats.items()):
            print(
                f"rtp {kind} ssrcs {len(s['ssrcs'])} max-seq-step {s['seq']} "
                f"max-ts-step {s['ts']} ts-backwards {s['back']}",
                flush=True,
            )


async def whep_watch(server, stream, token):
    log = RtpLog()
    log.install()
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    frames = {"video": 0}

    @pc.on("track")
    def on_track(track):
        async def read():
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                if track.kind == "video":
                    frames["video"] += 1
                    if frames["video"] % 5 == 0:
                        print(f"frames {frames['video']}", flush=True)

        asyncio.ensure_future(read())

    location = await negotiate(pc, f"{server}/whep/{stream}", token)
    await wait_connected(pc)
    print("connected", flush=True)
    print(dtls_line(pc), flush=True)
    # Until the test closes our stdin.
    await asyncio.to_thread(sys.stdin.read)
    print(f"connection {pc.connectionState}", flush=True)
    log.report()
    await asyncio.to_thread(http, "DELETE", f"{server}{location}", token=token)
    await pc.close()


def main():
    global SETUP
    if "--setup" in sys.argv:
        i = sys.argv.index("--setup")
        SETUP = sys.argv[i + 1]
        del sys.argv[i : i + 2]
    mode = sys.argv[1]
    if mode == "whip-publish":
        server, room, stream, token, seconds = sys.argv[2:7]
        asyncio.run(whip_publish(server, room, stream, token, float(seconds)))
    elif mode == "whep-play":
        server, stream, token, seconds = sys.argv[2:6]
        if asyncio.run(whep_play(server, stream, token, float(seconds))) == 0:
            sys.exit(1)
    elif mode == "whep-watch":
        server, stream, token = sys.argv[2:5]
        asyncio.run(whep_watch(server, stream, token))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
