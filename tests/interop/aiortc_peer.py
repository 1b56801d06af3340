"""An independent WebRTC stack (aiortc) against the SFU over WHIP/WHEP.

    python3 aiortc_peer.py whip-publish SERVER ROOM STREAM TOKEN SECONDS
    python3 aiortc_peer.py whep-play SERVER STREAM TOKEN SECONDS

whip-publish sends aiortc's synthetic video (VP8) and audio for SECONDS, then
DELETEs the resource (with the same bearer token: only its owner may); it prints "published" once connected. whep-play plays
for up to SECONDS and prints "decoded N video frames"; it exits non-zero if
no frame was decoded.
"""

import asyncio
import sys
import urllib.request

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack


# The tests run in a network namespace whose only interface is loopback, and
# aioice leaves 127.0.0.1 out of its host candidates: offer loopback only.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


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
    status, headers, answer = await asyncio.to_thread(
        http, "POST", url, pc.localDescription.sdp, token
    )
    if status != 201:
        raise RuntimeError(f"POST {url}: {status} {answer}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return headers.get("Location")


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
    try:
        await asyncio.wait_for(done.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
    print(f"decoded {frames['video']} video frames", flush=True)
    await asyncio.to_thread(http, "DELETE", f"{server}{location}", token=token)
    await pc.close()
    return frames["video"]


def main():
    mode = sys.argv[1]
    if mode == "whip-publish":
        server, room, stream, token, seconds = sys.argv[2:7]
        asyncio.run(whip_publish(server, room, stream, token, float(seconds)))
    elif mode == "whep-play":
        server, stream, token, seconds = sys.argv[2:6]
        if asyncio.run(whep_play(server, stream, token, float(seconds))) == 0:
            sys.exit(1)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
