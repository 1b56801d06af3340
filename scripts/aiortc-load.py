#!/usr/bin/env python3
"""Server CPU per forwarded packet with an independent WebRTC stack.

    python3 scripts/aiortc-load.py --server http://127.0.0.1:7880 \
        --server-pid PID --players 40 --seconds 10 [--token-url ...]

One aiortc WHIP publisher (aiortc's synthetic VP8 video + Opus audio) and
PLAYERS aiortc WHEP players, all in this process. The players are real
aiortc receivers (jitter buffer, receiver reports, NACK, PLI), except that
their decoder threads only drain their queues (decoding 40 videos would
take this machine's cores from the server). After every player is
connected and a 2 s warm-up, the window starts: server CPU is read from
/proc/PID/stat (user + system ticks) and RTP packets from the players'
inbound-rtp stats at both ends; the result is

    server CPU per forwarded packet = CPU seconds / packets received

and RSS growth per player (VmRSS before the players and after the window).
Tokens come from the server's /dev/token (run the server with --dev).
"""

import argparse
import asyncio
import json
import os
import sys
import time

import aiortc.rtcrtpreceiver as rtcrtpreceiver
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

# The WHIP/WHEP helpers of the interop tests (which also restrict aioice to
# 127.0.0.1).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "interop"))
from aiortc_peer import http, negotiate, wait_connected  # noqa: E402


def drain_only(loop, input_q, *rest):
    """Stands in for aiortc's decoder thread: takes frames, decodes none."""
    while True:
        task = input_q.get()
        if task is None:
            break


rtcrtpreceiver.decoder_worker = drain_only

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def token(server, user):
    _, _, body = http("GET", f"{server}/dev/token?appID=1&userID={user}")
    return json.loads(body)["token"]


async def packets(pcs):
    total = 0
    for pc in pcs:
        report = await pc.getStats()
        for s in report.values():
            if s.type == "inbound-rtp":
                total += s.packetsReceived
    return total


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", default="http://127.0.0.1:7880")
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--players", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    server, pid = args.server.rstrip("/"), args.server_pid

    pub = RTCPeerConnection()
    pub.addTransceiver(VideoStreamTrack(), direction="sendonly")
    pub.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pub_tok = await asyncio.to_thread(token, server, "load-pub")
    await negotiate(pub, f"{server}/whip/load/load-cam", pub_tok)
    await wait_connected(pub)
    await asyncio.sleep(1)
    rss0 = rss_kib(pid)

    players = []
    for i in range(args.players):
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")

        @pc.on("track")
        def on_track(track):
            async def consume():
                while True:
                    try:
                        await track.recv()
                    except Exception:
                        return

            asyncio.ensure_future(consume())

        tok = await asyncio.to_thread(token, server, f"load-play-{i}")
        await negotiate(pc, f"{server}/whep/load-cam", tok)
        players.append(pc)
    await asyncio.gather(*(wait_connected(pc, 30) for pc in players))
    await asyncio.sleep(2)

    cpu0, pk0, t0 = cpu_seconds(pid), await packets(players), time.monotonic()
    tool0 = time.process_time()
    await asyncio.sleep(args.seconds)
    cpu1, pk1, t1 = cpu_seconds(pid), await packets(players), time.monotonic()
    tool1 = time.process_time()
    rss1 = rss_kib(pid)
    received = pk1 - pk0
    result = {
        "players": args.players,
        "window_s": round(t1 - t0, 2),
        "packets_received": received,
        "packets_per_s": round(received / (t1 - t0)),
        "server_cpu_s": round(cpu1 - cpu0, 3),
        "server_us_per_packet": round((cpu1 - cpu0) * 1e6 / received, 2) if received else None,
        "server_core_use": round((cpu1 - cpu0) / (t1 - t0), 3),
        "tool_us_per_packet": round((tool1 - tool0) * 1e6 / received, 2) if received else None,
        "rss_kib_per_player": round((rss1 - rss0) / args.players, 1),
    }
    print(json.dumps(result), flush=True)
    for pc in players:
        await pc.close()
    await pub.close()


if __name__ == "__main__":
    asyncio.run(main())
