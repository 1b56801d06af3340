// Pausing simulcast layers nobody takes:
//   SERVER=... node pause.mjs chromium|firefox
// The named browser publishes its fake camera at 1280x720 as three
// simulcast layers (SDK option `simulcast`); one Chromium page plays it
// with `videoQuality: 'low'`. Within PAUSE_LIMIT_MS the server pauses the
// two upper layers: the publisher's SDK gets `publisherVideoLayersUpdate`
// naming h and f, its getStats shows h and f no longer encoding (no new
// frame for STILL_MS) while q goes on, and /metrics counts 2 paused
// layers. Then the player asks for 'high': it decodes 1280 px within
// RAISE_LIMIT_MS (the server resumes what the player's estimate climbs
// to) and the publisher encodes f again. The player never freezes (no
// second without a new frame) all along, and while low it decodes q at
// q's frame rate (a simulcast layer's temporal layers all reach it); its
// SDK is told layer 0 first and layer 2 last (`playerVideoLayerUpdate`).
// Prints `timeline {json}` rows and `pause-result {json}`.
import { launch, sdkPage } from './common.mjs';
import { launchFirefox, firefoxSdkPage } from './firefox.mjs';

const PAUSE_LIMIT_MS = 15000;
const STILL_MS = 2000;
const RAISE_LIMIT_MS = 15000;
const FREEZE_MS = 1000;
const TOP_WIDTH = 1280;
const STREAM = 'pause-cam';

const server = process.env.SERVER;
if (!server) throw new Error('SERVER is not set');
const publisherKind = process.argv[2] || 'chromium';
setTimeout(() => {
  console.error('pause.mjs: still running after 160 s, giving up');
  process.exit(1);
}, 160000).unref();

async function install(user) {
  window.e = new window.sdk.Engine(1, location.origin, { RTCPeerConnection: window.RecordedPeerConnection });
  window.layerUpdates = [];
  window.e.on('publisherVideoLayersUpdate', (streamID, paused) => window.layerUpdates.push({ streamID, paused }));
  window.playLayers = [];
  window.e.on('playerVideoLayerUpdate', (streamID, layer) => window.playLayers.push({ streamID, layer }));
  await window.e.loginRoom('pause', await window.token(user), { userID: user, userName: user });
}

async function publish(stream) {
  const ms = await window.e.createStream({
    camera: { video: { width: 1280, height: 720, frameRate: 30 }, audio: true },
  });
  await window.e.startPublishingStream(stream, ms, { roomID: 'pause', simulcast: true });
}

/** Frames encoded so far per RID. */
async function encoded() {
  const all = [...(await window.pcs[0].getStats()).values()];
  const out = {};
  for (const s of all) {
    if (s.type === 'outbound-rtp' && (s.kind || s.mediaType) === 'video' && s.rid) {
      out[s.rid] = { frames: s.framesEncoded || 0, width: s.frameWidth || 0 };
    }
  }
  return out;
}

async function play(stream) {
  await window.attach(await window.e.startPlayingStream(stream, { videoQuality: 'low' }));
}

async function playerStats() {
  const pc = window.pcs[window.pcs.length - 1];
  const all = [...(await pc.getStats()).values()];
  const v = all.find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
  return v ? { width: v.frameWidth || 0, frames: v.framesDecoded || 0 } : { width: 0, frames: 0 };
}

async function pausedMetric() {
  const text = await (await fetch(`${server}/metrics`)).text();
  const m = /^sfu_simulcast_layers\{state="paused"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : null;
}

const chromium = await launch();
const firefox = publisherKind === 'firefox' ? await launchFirefox() : null;
try {
  const pubPage = firefox ? await firefoxSdkPage(firefox, server) : await sdkPage(chromium, server);
  const pPage = await sdkPage(chromium, server);
  await pubPage.evaluate(install, 'pause-pub');
  await pPage.evaluate(install, 'pause-player');
  await pubPage.evaluate(publish, STREAM);
  await pPage.evaluate(play, STREAM);

  const t0 = Date.now();
  const player = { frames: 0, at: null, maxGap: 0, watching: false };
  // Per RID: frames encoded and since when that count stands still.
  const still = {};
  const sample = async (phase) => {
    const now = Date.now();
    const [p, enc] = await Promise.all([pPage.evaluate(playerStats), pubPage.evaluate(encoded)]);
    if (p.frames > player.frames || player.at === null) player.at = now;
    if (player.watching) player.maxGap = Math.max(player.maxGap, now - player.at);
    player.frames = p.frames;
    for (const [rid, e] of Object.entries(enc)) {
      const s = (still[rid] ||= { frames: -1, since: now });
      if (e.frames !== s.frames) {
        s.frames = e.frames;
        s.since = now;
      }
    }
    const stillMs = Object.fromEntries(Object.entries(still).map(([r, s]) => [r, now - s.since]));
    console.log(`timeline ${JSON.stringify({ t: (now - t0) / 1000, phase, width: p.width, frames: p.frames, encoded: enc, stillMs })}`);
    return { p, enc, stillMs };
  };
  const tick = () => new Promise((r) => setTimeout(r, 250));

  // The low player decodes (the fake camera at a quarter: 320 px), and
  // the publisher has encoded every layer (Firefox may start f only
  // after its own bandwidth estimate grew, 25 s and more).
  for (;;) {
    const { p, enc } = await sample('start');
    const all = ['q', 'h', 'f'].every((r) => enc[r] && enc[r].frames > 0);
    if (all && p.frames > 30 && p.width > 0 && p.width < TOP_WIDTH) break;
    if (Date.now() - t0 > 70000) {
      throw new Error(`no low play of three encodings after 70 s: ${JSON.stringify({ p, enc })}`);
    }
    await tick();
  }
  player.watching = true;
  const lowWidth = (await pPage.evaluate(playerStats)).width;

  // Paused: h and f stand still, q goes on.
  const startedAt = Date.now();
  const before = { played: player.frames, q: (await pubPage.evaluate(encoded)).q.frames };
  let frameRatio = null;
  let pauseMs = null;
  let stoppedAt = null;
  let metric = null;
  while (Date.now() - startedAt < PAUSE_LIMIT_MS + STILL_MS) {
    const { stillMs } = await sample('pausing');
    // (A layer paused before the phase began counts from its last frame.)
    if (stillMs.h >= STILL_MS && stillMs.f >= STILL_MS && stillMs.q < 1000) {
      pauseMs = Date.now() - startedAt - STILL_MS;
      stoppedAt = { h: (still.h.since - t0) / 1000, f: (still.f.since - t0) / 1000, playing: (startedAt - t0) / 1000 };
      metric = await pausedMetric();
      frameRatio = (player.frames - before.played) / Math.max(1, still.q.frames - before.q);
      break;
    }
    await tick();
  }
  const updates = await pubPage.evaluate(() => window.layerUpdates);
  const lastPaused = updates.length ? updates[updates.length - 1].paused.slice().sort().join() : '';

  // Raised to high: back at 1280 px, f encoding again.
  await pPage.evaluate((s) => window.e.setPlayVideoQuality(s, 'high'), STREAM);
  const raisedAt = Date.now();
  let raiseMs = null;
  while (Date.now() - raisedAt < RAISE_LIMIT_MS + 2000) {
    const { p, stillMs } = await sample('raised');
    if (raiseMs === null && p.width === TOP_WIDTH && stillMs.f < 1000) raiseMs = Date.now() - raisedAt;
    if (raiseMs !== null && Date.now() - raisedAt > raiseMs + 2000) break;
    await tick();
  }
  const finalUpdates = await pubPage.evaluate(() => window.layerUpdates);
  // What the player's SDK was told it receives: q while low, f at the end.
  const playLayers = (await pPage.evaluate(() => window.playLayers)).map((u) => u.layer);
  const result = {
    publisher: publisherKind,
    lowWidth,
    pauseMs,
    stoppedAt,
    pausedMetric: metric,
    updates: finalUpdates,
    raiseMs,
    maxFreeze: player.maxGap,
    frameRatio,
    playLayers,
  };
  console.log(`pause-result ${JSON.stringify(result)}`);
  const problems = [];
  if (pauseMs === null) problems.push(`h and f still encode ${PAUSE_LIMIT_MS} ms after the low player started`);
  if (lastPaused !== 'f,h') problems.push(`the publisher was last told ${JSON.stringify(updates)}, not h and f`);
  if (updates.some((u) => u.streamID !== STREAM)) problems.push(`updates of other streams: ${JSON.stringify(updates)}`);
  if (metric !== 2) problems.push(`sfu_simulcast_layers{state="paused"} was ${metric}, not 2`);
  if (raiseMs === null || raiseMs > RAISE_LIMIT_MS) problems.push(`not at ${TOP_WIDTH} px with f encoding within ${RAISE_LIMIT_MS} ms of asking for high`);
  if (player.maxGap > FREEZE_MS) problems.push(`the player froze for ${player.maxGap} ms`);
  if (frameRatio !== null && frameRatio < 0.8) problems.push(`the low player decoded ${frameRatio} of q's frames`);
  if (playLayers[0] !== 0 || playLayers[playLayers.length - 1] !== 2) problems.push(`the player was told layers ${playLayers}, not 0 first and 2 last`);
  if (problems.length) throw new Error(`${problems.join('; ')}: ${JSON.stringify(result)}`);
  console.log(`pause passed (${publisherKind}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} finally {
  await Promise.allSettled([chromium.close(), firefox ? firefox.close() : null]);
}
