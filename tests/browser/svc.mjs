// SVC: players capped to different layers of one scalable encoding.
//   SERVER=... node svc.mjs vp9|av1|vp8 [chromium|firefox]
// (the publisher's browser; players are Chromium pages)
// vp9: Chromium publishes its fake camera at 1280x720 as one VP9 encoding
// with three spatial and three temporal layers (SDK options
// `videoCodec: 'VP9', scalabilityMode: 'L3T3_KEY'`). Three Chromium pages
// play it with `videoQuality` low, medium and auto: they must decode 320,
// 640 and 1280 px wide frames. Then the low player asks for 'high' and
// must reach 1280 px (the switch up waits for a keyframe, which the
// server requests) without a freeze longer than a second.
// av1: the same with one AV1 encoding (L3T3_KEY; the server reads the
// layers from the dependency descriptor header extension and forwards it;
// the SDK adds it to the players' offers, which Chromium does not).
// vp8: one VP8 encoding with three temporal layers ('L1T3'); a player
// capped 'low' decodes the base layer only: a quarter of the frame rate
// of an uncapped player (under half is asserted), at the same width.
// Prints `svc-result {json}`.
import { launch, sdkPage, until } from './common.mjs';
import { launchFirefox, firefoxSdkPage } from './firefox.mjs';

const STREAM = 'svc-cam';
const FREEZE_MS = 1000;
const server = process.env.SERVER;
if (!server) throw new Error('SERVER is not set');
const codec = process.argv[2] || 'vp9';
if (!['vp9', 'av1', 'vp8'].includes(codec)) throw new Error(`unknown codec ${codec}`);
const publisherKind = process.argv[3] || 'chromium';
setTimeout(() => {
  console.error('svc.mjs: still running after 150 s, giving up');
  process.exit(1);
}, 150000).unref();

async function install(user) {
  window.e = new window.sdk.Engine(1, location.origin, { RTCPeerConnection: window.RecordedPeerConnection });
  await window.e.loginRoom('svc', await window.token(user), { userID: user, userName: user });
}

async function publish({ stream, options }) {
  const ms = await window.e.createStream({
    camera: { video: { width: 1280, height: 720, frameRate: 30 }, audio: false },
  });
  await window.e.startPublishingStream(stream, ms, { roomID: 'svc', ...options });
}

async function publisherStats() {
  const all = [...(await window.pcs[0].getStats()).values()];
  const byId = new Map(all.map((s) => [s.id, s]));
  return all
    .filter((s) => s.type === 'outbound-rtp' && (s.kind || s.mediaType) === 'video')
    .map((s) => ({
      mode: s.scalabilityMode,
      codec: (byId.get(s.codecId) || {}).mimeType,
      width: s.frameWidth,
      fps: s.framesPerSecond,
      limitation: s.qualityLimitationReason,
      kbps: Math.round((s.targetBitrate || 0) / 1000),
    }));
}

async function play({ stream, quality }) {
  const options = quality === 'auto' ? {} : { videoQuality: quality };
  await window.attach(await window.e.startPlayingStream(stream, options));
}

async function playerStats() {
  const pc = window.pcs[window.pcs.length - 1];
  const all = [...(await pc.getStats()).values()];
  const v = all.find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
  return v ? { width: v.frameWidth || 0, frames: v.framesDecoded || 0 } : { width: 0, frames: 0 };
}

const browser = await launch();
const firefox = publisherKind === 'firefox' ? await launchFirefox() : null;
try {
  const pubPage = firefox ? await firefoxSdkPage(firefox, server) : await sdkPage(browser, server);
  await pubPage.evaluate(install, 'svc-pub');
  const options = {
    vp9: { videoCodec: 'VP9', scalabilityMode: 'L3T3_KEY' },
    av1: { videoCodec: 'AV1', scalabilityMode: 'L3T3_KEY' },
    vp8: { videoCodec: 'VP8', scalabilityMode: 'L1T3' },
  }[codec];
  await pubPage.evaluate(publish, { stream: STREAM, options });
  const qualities = codec !== 'vp8' ? ['low', 'medium', 'auto'] : ['low', 'auto'];
  const players = [];
  for (const quality of qualities) {
    const page = await sdkPage(browser, server);
    await page.evaluate(install, `svc-${quality}`);
    await page.evaluate(play, { stream: STREAM, quality });
    players.push({ quality, page });
  }
  const sent = await until('the publisher encodes', async () => {
    const s = await pubPage.evaluate(publisherStats);
    return s.length === 1 && s[0].width > 0 && s;
  });
  console.log(`publisher sends ${JSON.stringify(sent)}`);
  const want = codec !== 'vp8' ? 'L3T3_KEY' : 'L1T3';
  if (sent[0].mode !== want) throw new Error(`the publisher does not send ${want}: ${JSON.stringify(sent)}`);
  const widths = codec !== 'vp8' ? [320, 640, 1280] : [1280, 1280];
  let seen = null;
  await until(
    `players decode ${widths}`,
    async () => {
      const st = await Promise.all(players.map((p) => p.page.evaluate(playerStats)));
      const pub = await pubPage.evaluate(publisherStats);
      const now = JSON.stringify({ players: st.map((s) => s.width), pub });
      if (now !== seen) console.log(`waiting ${now}`);
      seen = now;
      // VP8: one spatial layer, both at the width the publisher encodes
      // (which its own bandwidth estimate raises slowly).
      if (codec === 'vp8') return st.every((s) => s.width > 0 && s.width === st[1].width && s.frames > 10);
      return st.every((s, i) => s.width === widths[i] && s.frames > 10);
    },
    40000,
  );
  // Frame rates over 4 s.
  const before = await Promise.all(players.map((p) => p.page.evaluate(playerStats)));
  const t = Date.now();
  await new Promise((r) => setTimeout(r, 4000));
  const after = await Promise.all(players.map((p) => p.page.evaluate(playerStats)));
  const fps = after.map((a, i) => ((a.frames - before[i].frames) * 1000) / (Date.now() - t));
  const result = { codec, publisher: publisherKind, sent, widths: after.map((a) => a.width), fps: fps.map((f) => Math.round(f * 10) / 10) };
  const problems = [];
  if (codec !== 'vp8' && after.some((a, i) => a.width !== widths[i])) problems.push(`widths ${result.widths}, want ${widths}`);
  if (codec === 'vp8' && after[0].width !== after[1].width) problems.push(`widths ${result.widths} differ`);
  if (codec === 'vp8') {
    // The base layer of L1T3 is a quarter of the frames.
    if (!(fps[0] > 0 && fps[0] < 0.5 * fps[1])) problems.push(`capped ${fps[0]} fps vs ${fps[1]} fps`);
  } else {
    // The low player asks for high: a keyframe brings S1 and S2.
    const low = players[0].page;
    await low.evaluate((id) => window.e.setPlayVideoQuality(id, 'high'), STREAM);
    const asked = Date.now();
    let last = await low.evaluate(playerStats);
    let lastAt = Date.now();
    let maxGap = 0;
    for (;;) {
      const s = await low.evaluate(playerStats);
      const now = Date.now();
      if (s.frames > last.frames) lastAt = now;
      maxGap = Math.max(maxGap, now - lastAt);
      last = s;
      if (s.width === 1280) break;
      if (now - asked > 10000) {
        problems.push(`the low player did not reach 1280 px within 10 s (width ${s.width})`);
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    result.upMs = Date.now() - asked;
    result.upMaxFreezeMs = maxGap;
    if (maxGap > FREEZE_MS) problems.push(`froze for ${maxGap} ms while switching up`);
  }
  console.log(`svc-result ${JSON.stringify(result)}`);
  if (problems.length) throw new Error(problems.join('; '));
  console.log(`svc passed (${codec})`);
} finally {
  await Promise.allSettled([browser.close(), firefox ? firefox.close() : null]);
}
