"""FFmpeg's own WHIP muxer (libavformat `whip`, FFmpeg 8, through PyAV)
publishing H.264 (libx264, constrained baseline, no B-frames) and Opus
(libopus) to the SFU, as `ffmpeg -f whip` does.

    python3 ffmpeg_whip.py URL TOKEN SECONDS [--dtls-active]

URL is the WHIP endpoint (`http://HOST:PORT/whip/ROOM/STREAM`). FFmpeg
offers `a=setup:passive` (it is the DTLS server) unless `--dtls-active`
(FFmpeg's `whip_flags=dtls_active`). The muxer's header does the whole
exchange (POST, ICE, DTLS, SRTP), so once the first packet is written the
publish is up: the script prints "publishing", then sends SECONDS of a
moving 640x360 picture at 30 fps and a 440 Hz tone in real time, prints
"sent V video A audio packets", and closes the muxer (FFmpeg DELETEs the
resource). A failure exits non-zero with FFmpeg's message.
"""

import math
import sys
import time

import av

WIDTH, HEIGHT, FPS, RATE = 640, 360, 30, 48000


def picture(i):
    """A frame whose luma gradient moves every frame (so every frame costs
    bits and a decoder has real content), chroma flat."""
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    row = bytes((x + 4 * i) & 0xFF for x in range(WIDTH))
    y = frame.planes[0]
    y.update(b"".join(row for _ in range(HEIGHT)) if y.line_size == WIDTH else
             b"".join(row + bytes(y.line_size - WIDTH) for _ in range(HEIGHT)))
    for p in frame.planes[1:]:
        p.update(bytes([128]) * (p.line_size * (HEIGHT // 2)))
    frame.pts = i
    return frame


def tone(n, samples):
    """`samples` stereo s16 samples of a 440 Hz tone, the n-th such block."""
    out = bytearray()
    for k in range(samples):
        t = (n * samples + k) / RATE
        v = int(8000 * math.sin(2 * math.pi * 440 * t)).to_bytes(2, "little", signed=True)
        out += v + v
    frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
    frame.planes[0].update(bytes(out))
    frame.sample_rate = RATE
    frame.pts = n * samples
    return frame


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    url, token, seconds = args[0], args[1], float(args[2])
    options = {"authorization": token}
    if "--dtls-active" in sys.argv:
        options["whip_flags"] = "dtls_active"
    out = av.open(url, mode="w", format="whip", options=options)
    video = out.add_stream(
        "libx264",
        rate=FPS,
        options={"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "g": "30", "bf": "0"},
    )
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.bit_rate = 800_000
    audio = out.add_stream("libopus", rate=RATE, layout="stereo")
    audio.bit_rate = 64_000
    sent = {"video": 0, "audio": 0}
    started = None
    n_audio = 0
    for i in range(int(seconds * FPS)):
        if started is not None:
            wait = started + i / FPS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        for packet in video.encode(picture(i)):
            out.mux(packet)
            sent["video"] += 1
        # Audio up to the video's clock, in 20 ms Opus frames.
        while n_audio * 960 < (i + 1) * RATE // FPS:
            for packet in audio.encode(tone(n_audio, 960)):
                out.mux(packet)
                sent["audio"] += 1
            n_audio += 1
        if started is None and sent["video"]:
            started = time.monotonic() - i / FPS
            print("publishing", flush=True)
    for packet in video.encode(None):
        out.mux(packet)
    out.close()
    print(f"sent {sent['video']} video {sent['audio']} audio packets", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # FFmpeg's message, for the test's failure text
        sys.exit(f"ffmpeg whip failed: {e}")
