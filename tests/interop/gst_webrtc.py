"""GStreamer's webrtcbin (Debian's gstreamer1.0-plugins-bad, libnice, its
OpenSSL DTLS) against the SFU over WHIP/WHEP. Runs under Debian's own
python3 (/usr/bin/python3, for python3-gst-1.0).

    gst_webrtc.py whip-publish URL TOKEN SECONDS [--h264]
    gst_webrtc.py whep-play URL TOKEN SECONDS

whip-publish sends videotestsrc (VP8, or with --h264 H.264 from x264's
baseline: constrained baseline `42c01e`) and an Opus tone for SECONDS,
printing "published" once the peer connection is up, then DELETEs the
resource. whep-play prints "decoded N
video frames" (N frames out of GStreamer's decoder) after 30 frames or
SECONDS, and exits non-zero if none came. Both print "answer-setup S"
(the server's a=setup for webrtcbin's actpass offer).
"""

import sys
import threading
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

Gst.init(None)

VP8 = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 "
    "! videoconvert ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 "
    "! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000 ! w."
)
H264 = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 "
    "! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bframes=0 "
    "! video/x-h264,profile=baseline ! rtph264pay config-interval=-1 pt=102 "
    "! application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000 ! w."
)
OPUS = (
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc "
    "! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,"
    "clock-rate=48000 ! w."
)


def http(method, url, body=None, token=None):
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/sdp")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers, resp.read().decode()


class Peer:
    def __init__(self, pipeline, url, token):
        self.loop = GLib.MainLoop()
        self.pipe = Gst.parse_launch(pipeline)
        if not isinstance(self.pipe, Gst.Pipeline):  # a lone webrtcbin
            element, self.pipe = self.pipe, Gst.Pipeline.new()
            self.pipe.add(element)
        self.w = self.pipe.get_by_name("w")
        # The tests' network namespace has only loopback, which libnice
        # leaves out when it gathers: give its agent 127.0.0.1 itself.
        # (Held: PyGObject drops a reference of the ICE object it returns.)
        self.ice = self.w.get_property("ice-agent")
        self.agent = self.ice.get_property("agent")
        loopback = Nice.Address.new()
        loopback.set_from_string("127.0.0.1")
        self.agent.add_local_address(loopback)
        self.url, self.token = url, token
        self.location = None
        self.failed = None
        self.w.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.w.connect("notify::connection-state", self.on_state)

    def fail(self, why):
        self.failed = why
        self.loop.quit()

    def on_negotiation_needed(self, _w):
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        self.w.emit("create-offer", None, promise)

    def on_offer(self, promise, _data):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None or offer.sdp is None:
            self.fail(f"webrtcbin made no offer: {reply.to_string() if reply else None}")
            return
        self.w.emit("set-local-description", offer, Gst.Promise.new())
        sdp = offer.sdp.as_text()
        threading.Thread(target=self.post, args=(sdp,), daemon=True).start()

    def post(self, sdp):
        try:
            status, headers, answer = http("POST", self.url, sdp, self.token)
        except Exception as e:  # noqa: BLE001 - the test prints it
            GLib.idle_add(self.fail, f"POST {self.url}: {e}")
            return
        if status != 201:
            GLib.idle_add(self.fail, f"POST {self.url}: {status} {answer}")
            return
        self.location = headers.get("Location")
        setups = sorted({l[8:].strip() for l in answer.splitlines() if l.startswith("a=setup:")})
        print(f"answer-setup {','.join(setups)}", flush=True)
        GLib.idle_add(self.set_answer, answer)

    def set_answer(self, answer):
        _, msg = GstSdp.SDPMessage.new_from_text(answer)
        desc = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        self.w.emit("set-remote-description", desc, Gst.Promise.new())

    def on_state(self, w, _pspec):
        state = w.get_property("connection-state")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            GLib.idle_add(self.connected)
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            GLib.idle_add(self.fail, "peer connection failed")

    def connected(self):
        pass

    def run(self, seconds):
        GLib.timeout_add(int(seconds * 1000), self.loop.quit)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", lambda _b, m: self.fail(f"gstreamer: {m.parse_error()[0].message}"))
        self.pipe.set_state(Gst.State.PLAYING)
        self.loop.run()
        if self.location:
            try:
                http("DELETE", self.url.split("/wh")[0] + self.location, token=self.token)
            except Exception:  # noqa: BLE001 - the resource may be gone already
                pass
        self.pipe.set_state(Gst.State.NULL)


class Publisher(Peer):
    def __init__(self, url, token, h264):
        super().__init__(f"webrtcbin name=w bundle-policy=max-bundle {H264 if h264 else VP8} {OPUS}", url, token)
        self.w.connect("on-new-transceiver", lambda _w, t: t.set_property(
            "direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY))

    def connected(self):
        print("published", flush=True)


class Player(Peer):
    def __init__(self, url, token):
        super().__init__("webrtcbin name=w bundle-policy=max-bundle", url, token)
        self.frames = 0
        recv = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
        for caps in (
            "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
            "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000",
        ):
            self.w.emit("add-transceiver", recv, Gst.Caps.from_string(caps))
        self.w.connect("pad-added", self.on_pad)

    def on_pad(self, _w, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", self.on_decoded)
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def on_decoded(self, _decode, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("async", False)
        if caps.to_string().startswith("video/"):
            sink.set_property("signal-handoffs", True)
            sink.connect("handoff", self.on_frame)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def on_frame(self, *_args):
        self.frames += 1
        if self.frames == 30:
            GLib.idle_add(self.loop.quit)


def main():
    mode, url, token, seconds = sys.argv[1:5]
    if mode == "whip-publish":
        peer = Publisher(url, token, "--h264" in sys.argv)
        peer.run(float(seconds))
    elif mode == "whep-play":
        peer = Player(url, token)
        peer.run(float(seconds))
        print(f"decoded {peer.frames} video frames", flush=True)
        if peer.frames == 0 and not peer.failed:
            peer.failed = "no frame decoded"
    else:
        sys.exit(f"unknown mode {mode}")
    if peer.failed:
        sys.exit(peer.failed)


if __name__ == "__main__":
    main()
