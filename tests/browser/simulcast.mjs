// Simulcast (or SVC) under a constrained link:
//   SERVER=... node simulcast.mjs chromium|firefox [simulcast|vp9-svc]
// The named browser publishes its fake camera at 1280x720 as three
// simulcast layers (SDK option `simulcast`), or with `vp9-svc` as one VP9
// encoding with three spatial and three temporal layers (SDK options
// `videoCodec: 'VP9', scalabilityMode: 'L3T3_KEY'`). Two Chromium pages play it:
// U directly, C through a shaping relay in this script (the answer's UDP
// candidate is rewritten to the relay; its TCP candidate is dropped). The
// relay forwards everything at once until it is told a rate, then paces
// what the server sends to C through a token bucket with a 150 ms (8.5 kB) drop-tail
// queue. Phases: both players on 1280 px; C's link at RATE_KBPS: C must
// decode a smaller frame within DROP_LIMIT_MS; link restored: C must be
// back at 1280 px within RECOVER_LIMIT_MS; U decodes 1280 px and never
// freezes (no second without a new frame) all along.
// Prints `timeline {json}` rows (every 250 ms: C's frame width, received
// kbit/s, the relay's rate) and `simulcast-result {json}`.
import dgram from 'node:dgram';
import { launch, sdkPage } from './common.mjs';
import { launchFirefox, firefoxSdkPage } from './firefox.mjs';

const RATE_KBPS = 450;
const DROP_LIMIT_MS = 5000;
const RECOVER_LIMIT_MS = 15000;
const CONSTRAINED_MS = 8000;
const FREEZE_MS = 1000;
const TOP_WIDTH = 1280;
const STREAM = 'sim-cam';

const server = process.env.SERVER;
if (!server) throw new Error('SERVER is not set');
const publisherKind = process.argv[2] || 'chromium';
const mode = process.argv[3] || 'simulcast';
if (!['simulcast', 'vp9-svc'].includes(mode)) throw new Error(`unknown mode ${mode}`);
const publishOptions =
  mode === 'simulcast' ? { simulcast: true } : { videoCodec: 'VP9', scalabilityMode: 'L3T3_KEY' };
setTimeout(() => {
  console.error('simulcast.mjs: still running after 200 s, giving up');
  process.exit(1);
}, 200000).unref();

// ---- the shaping relay

class Shaper {
  constructor(host, port) {
    this.target = { host, port };
    this.rate = Infinity; // bits per second
    this.queue = [];
    this.queued = 0;
    this.limit = 8500; // 150 ms at 450 kbit/s
    this.tokens = 0;
    this.dropped = 0;
    this.client = null;
    this.front = dgram.createSocket('udp4');
    this.back = dgram.createSocket('udp4');
    this.front.on('message', (m, r) => {
      this.client = r;
      this.back.send(m, this.target.port, this.target.host);
    });
    this.back.on('message', (m) => this.fromServer(m));
    this.last = performance.now();
    this.timer = setInterval(() => this.pump(), 2);
  }
  async start() {
    await Promise.all([
      new Promise((r) => this.front.bind(0, '127.0.0.1', r)),
      new Promise((r) => this.back.bind(0, '127.0.0.1', r)),
    ]);
    return this.front.address().port;
  }
  fromServer(m) {
    if (!this.client) return;
    if (this.rate === Infinity && this.queue.length === 0) {
      this.front.send(m, this.client.port, this.client.address);
    } else if (this.queued + m.length <= this.limit) {
      this.queue.push(m);
      this.queued += m.length;
    } else {
      this.dropped++;
    }
  }
  pump() {
    const now = performance.now();
    const dt = (now - this.last) / 1000;
    this.last = now;
    if (this.rate === Infinity) {
      this.tokens = Infinity;
    } else {
      this.tokens = Math.min((this.tokens === Infinity ? 0 : this.tokens) + (this.rate / 8) * dt, 3000);
    }
    while (this.queue.length && this.tokens >= this.queue[0].length) {
      const m = this.queue.shift();
      this.queued -= m.length;
      this.tokens -= m.length;
      this.front.send(m, this.client.port, this.client.address);
    }
  }
  close() {
    clearInterval(this.timer);
    this.front.close();
    this.back.close();
  }
}

// ---- page functions

async function install({ user, shaped }) {
  // Recorded (common.mjs), and for C the answer's candidates rewritten.
  class Recorded extends window.RecordedPeerConnection {
    async setRemoteDescription(desc) {
      if (shaped && desc && desc.type === 'answer') {
        const lines = desc.sdp.split('\r\n').filter((l) => !/^a=candidate:\S+ \d+ tcp /i.test(l));
        const out = [];
        for (const l of lines) {
          const m = /^(a=candidate:\S+ \d+ udp \d+ )(\S+) (\d+)( typ host.*)$/i.exec(l);
          if (m) {
            const port = await window.shapeTo(m[2], Number(m[3]));
            out.push(`${m[1]}127.0.0.1 ${port}${m[4]}`);
          } else {
            out.push(l);
          }
        }
        desc = { type: desc.type, sdp: out.join('\r\n') };
      }
      return super.setRemoteDescription(desc);
    }
  }
  window.e = new window.sdk.Engine(1, location.origin, { RTCPeerConnection: Recorded });
  window.listed = {};
  window.e.on('roomStreamUpdate', (roomID, type, list) => {
    for (const s of list) if (type === 'ADD') window.listed[s.streamID] = s;
  });
  await window.e.loginRoom('sim', await window.token(user), { userID: user, userName: user });
}

async function publish({ stream, options }) {
  const ms = await window.e.createStream({
    camera: { video: { width: 1280, height: 720, frameRate: 30 }, audio: true },
  });
  await window.e.startPublishingStream(stream, ms, { roomID: 'sim', ...options });
}

async function publisherStats() {
  const all = [...(await window.pcs[0].getStats()).values()];
  return all
    .filter((s) => s.type === 'outbound-rtp' && (s.kind || s.mediaType) === 'video')
    .map((s) => ({
      rid: s.rid,
      mode: s.scalabilityMode,
      width: s.frameWidth,
      height: s.frameHeight,
      frames: s.framesEncoded,
      bytesSent: s.bytesSent,
      limitation: s.qualityLimitationReason,
    }));
}

async function play(stream) {
  await window.attach(await window.e.startPlayingStream(stream));
}

async function playerStats() {
  const pc = window.pcs[window.pcs.length - 1];
  const all = [...(await pc.getStats()).values()];
  const v = all.find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
  return v
    ? { width: v.frameWidth || 0, frames: v.framesDecoded || 0, bytes: v.bytesReceived || 0 }
    : { width: 0, frames: 0, bytes: 0 };
}

// ---- the run

const shapers = [];
const chromium = await launch();
const firefox = publisherKind === 'firefox' ? await launchFirefox() : null;
try {
  const pubPage = firefox ? await firefoxSdkPage(firefox, server) : await sdkPage(chromium, server);
  const uPage = await sdkPage(chromium, server);
  const cPage = await sdkPage(chromium, server);
  await cPage.exposeFunction('shapeTo', async (host, port) => {
    const s = new Shaper(host, port);
    shapers.push(s);
    return s.start();
  });
  await pubPage.evaluate(install, { user: 'sim-pub', shaped: false });
  await uPage.evaluate(install, { user: 'sim-u', shaped: false });
  await cPage.evaluate(install, { user: 'sim-c', shaped: true });
  await pubPage.evaluate(publish, { stream: STREAM, options: publishOptions });
  await uPage.evaluate(play, STREAM);
  await cPage.evaluate(play, STREAM);

  const t0 = Date.now();
  const track = {
    u: { frames: 0, at: null, maxGap: 0, widths: new Set(), bytes: 0 },
    c: { frames: 0, at: null, maxGap: 0, widths: new Set(), bytes: 0 },
  };
  let phase = 'warmup';
  let sampleNo = 0;
  // One sample of both players; freezes are counted from warm-up's end.
  const sample = async () => {
    const now = Date.now();
    const [u, c, pub] = await Promise.all([
      uPage.evaluate(playerStats),
      cPage.evaluate(playerStats),
      phase === 'warmup' ? null : pubPage.evaluate(publisherStats),
    ]);
    for (const [name, st] of [
      ['u', u],
      ['c', c],
    ]) {
      const t = track[name];
      if (st.frames > t.frames || t.at === null) t.at = now;
      if (phase !== 'warmup' && now - t.at > t.maxGap) {
        t.maxGap = now - t.at;
        t.maxGapAt = (now - t0) / 1000;
      }
      if (phase !== 'warmup') t.widths.add(st.width);
      t.kbps = ((st.bytes - t.bytes) * 8) / 250;
      t.frames = st.frames;
      t.bytes = st.bytes;
    }
    if (sampleNo++ % 1 === 0) {
      const rate = shapers[0] ? shapers[0].rate : Infinity;
      console.log(
        `timeline ${JSON.stringify({
          t: (now - t0) / 1000,
          wall: now,
          phase,
          cWidth: c.width,
          cKbps: Math.round(track.c.kbps),
          uWidth: u.width,
          uFrames: u.frames,
          cFrames: c.frames,
          linkKbps: rate === Infinity ? null : rate / 1000,
          dropped: shapers[0] ? shapers[0].dropped : 0,
          pub: pub && pub.map((p) => `${p.rid || p.mode}:${p.width}:${p.frames}:${p.limitation}`).join(' '),
        })}`,
      );
    }
    return { u, c };
  };
  const tick = () => new Promise((r) => setTimeout(r, 250));

  // Warm-up: both on the top layer.
  for (;;) {
    const { u, c } = await sample();
    if (u.width === TOP_WIDTH && c.width === TOP_WIDTH && u.frames > 30 && c.frames > 30) break;
    if (Date.now() - t0 > 70000) {
      throw new Error(`players not on ${TOP_WIDTH} px after 70 s: u=${JSON.stringify(u)} c=${JSON.stringify(c)}`);
    }
    await tick();
  }
  console.log(`publisher sends ${JSON.stringify(await pubPage.evaluate(publisherStats))}`);
  if (mode === 'simulcast') {
    // The listing shows the stream's layers (the RIDs of the offer).
    const listed = await uPage.evaluate((id) => window.listed[id], STREAM);
    const layers = ((listed && listed.videoLayers) || []).slice().sort();
    if (layers.join() !== 'f,h,q') throw new Error(`roomStreamUpdate lists ${JSON.stringify(listed)}`);
    console.log(`listed layers ${JSON.stringify(listed.videoLayers)}`);
  } else {
    const sent = await pubPage.evaluate(publisherStats);
    if (sent.length !== 1 || sent[0].mode !== 'L3T3_KEY') throw new Error(`publisher does not send L3T3_KEY: ${JSON.stringify(sent)}`);
  }
  if (!shapers.length) throw new Error('the constrained player did not go through the relay');
  // Let both settle on the top layer for a moment.
  for (let i = 0; i < 8; i++) {
    await sample();
    await tick();
  }

  phase = 'constrained';
  shapers[0].rate = RATE_KBPS * 1000;
  const constrainedAt = Date.now();
  let dropMs = null;
  while (Date.now() - constrainedAt < CONSTRAINED_MS) {
    const { c } = await sample();
    if (dropMs === null && c.width > 0 && c.width < TOP_WIDTH) dropMs = Date.now() - constrainedAt;
    await tick();
  }
  const lowWidth = [...track.c.widths].filter((w) => w > 0 && w < TOP_WIDTH);

  phase = 'restored';
  shapers[0].rate = Infinity;
  const restoredAt = Date.now();
  let recoverMs = null;
  while (Date.now() - restoredAt < RECOVER_LIMIT_MS + 3000) {
    const { c } = await sample();
    if (recoverMs === null && c.width === TOP_WIDTH) recoverMs = Date.now() - restoredAt;
    if (recoverMs !== null && Date.now() - restoredAt > recoverMs + 2000) break;
    await tick();
  }
  const result = {
    publisher: publisherKind,
    mode,
    dropMs,
    recoverMs,
    cWidths: [...track.c.widths].sort((a, b) => a - b),
    uWidths: [...track.u.widths].sort((a, b) => a - b),
    maxFreezeU: track.u.maxGap,
    maxFreezeUAt: track.u.maxGapAt,
    maxFreezeC: track.c.maxGap,
    maxFreezeCAt: track.c.maxGapAt,
    relayDropped: shapers[0].dropped,
  };
  console.log(`simulcast-result ${JSON.stringify(result)}`);
  const problems = [];
  if (dropMs === null || dropMs > DROP_LIMIT_MS) problems.push(`C did not drop below ${TOP_WIDTH} px within ${DROP_LIMIT_MS} ms`);
  if (!lowWidth.length) problems.push('C never decoded a lower layer');
  if (recoverMs === null || recoverMs > RECOVER_LIMIT_MS) problems.push(`C not back at ${TOP_WIDTH} px within ${RECOVER_LIMIT_MS} ms`);
  if (result.uWidths.some((w) => w !== TOP_WIDTH)) problems.push(`U left the top layer: ${result.uWidths}`);
  if (track.u.maxGap > FREEZE_MS) problems.push(`U froze for ${track.u.maxGap} ms`);
  if (track.c.maxGap > FREEZE_MS) problems.push(`C froze for ${track.c.maxGap} ms`);
  if (problems.length) throw new Error(`${problems.join('; ')}: ${JSON.stringify(result)}`);
  console.log(`${mode} passed (${publisherKind}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} finally {
  for (const s of shapers) s.close();
  await Promise.allSettled([chromium.close(), firefox ? firefox.close() : null]);
}
