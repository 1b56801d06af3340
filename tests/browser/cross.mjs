// Firefox and Chromium through the SDK, one publishing, the other playing:
//   SERVER=... node cross.mjs firefox-plays    Chromium publishes, Firefox plays
//   SERVER=... node cross.mjs chromium-plays   Firefox publishes, Chromium plays
// The player's own RTCPeerConnection.getStats() (inbound-rtp video
// framesDecoded) must reach MIN_FRAMES within TIMEOUT_MS of the play call.
// A Firefox player also prints `firefox-stats {json}`: its inbound-rtp video
// packetsReceived and framesDecoded, and whether remote-outbound-rtp stats
// (from the server's RTCP sender reports) exist for the video and audio SSRC.
import { launch, sdkPage } from './common.mjs';
import { launchFirefox, firefoxSdkPage } from './firefox.mjs';

const MIN_FRAMES = 30;
const TIMEOUT_MS = 20000;
const STREAM = 'cross-cam';

const server = process.env.SERVER;
if (!server) throw new Error('SERVER is not set');
const mode = process.argv[2];
if (mode !== 'firefox-plays' && mode !== 'chromium-plays') {
  throw new Error(`usage: node cross.mjs firefox-plays|chromium-plays (got ${mode})`);
}
// Nothing below may hang the test: launches, page calls and the wait for
// frames all have their own limits, and this one covers them all.
setTimeout(() => {
  console.error('cross.mjs: still running after 120 s, giving up');
  process.exit(1);
}, 120000).unref();

// ---- page functions (run in either browser; no closures over node values)

// An Engine logged into the room; every RTCPeerConnection it makes is kept
// in window.pcs (through the SDK's injection option) for getStats().
async function install(user) {
  window.e = new window.sdk.Engine(1, location.origin, { RTCPeerConnection: window.RecordedPeerConnection });
  await window.e.loginRoom('cross', await window.token(user), { userID: user, userName: user });
}

async function publish(stream) {
  const ms = await window.e.createStream({ camera: { video: true, audio: true } });
  await window.e.startPublishingStream(stream, ms, { roomID: 'cross' });
}

async function play(stream) {
  await window.attach(await window.e.startPlayingStream(stream));
}

// The player's peer connection stats, straight from getStats().
async function playerStats() {
  const pc = window.pcs[window.pcs.length - 1];
  if (!pc) return { error: 'no peer connection' };
  const all = [...(await pc.getStats()).values()];
  const kindOf = (s) => s.kind || s.mediaType;
  const video = all.find((s) => s.type === 'inbound-rtp' && kindOf(s) === 'video');
  const audio = all.find((s) => s.type === 'inbound-rtp' && kindOf(s) === 'audio');
  const remoteOut = all.filter((s) => s.type === 'remote-outbound-rtp');
  const hasRemoteOut = (inbound) =>
    !!inbound && remoteOut.some((r) => r.ssrc === inbound.ssrc || r.id === inbound.remoteId);
  const byId = new Map(all.map((s) => [s.id, s]));
  const pair = all.find((s) => s.type === 'candidate-pair' && s.state === 'succeeded' && (s.nominated || s.selected));
  const addr = (c) => (c ? `${c.address || c.ip || c.ipAddress}:${c.port}` : '?');
  return {
    connectionState: pc.connectionState,
    packetsReceived: video ? video.packetsReceived || 0 : 0,
    framesDecoded: video ? video.framesDecoded || 0 : 0,
    remoteOutboundVideo: hasRemoteOut(video),
    remoteOutboundAudio: hasRemoteOut(audio),
    audioPacketsReceived: audio ? audio.packetsReceived || 0 : 0,
    pair: pair ? `${addr(byId.get(pair.localCandidateId))} -> ${addr(byId.get(pair.remoteCandidateId))}` : null,
  };
}

// ---- the run

const started = Date.now();
const [chromiumBrowser, firefoxBrowser] = await Promise.all([launch(), launchFirefox()]);
try {
  const [chromiumPage, firefoxPage] = await Promise.all([
    sdkPage(chromiumBrowser, server),
    firefoxSdkPage(firefoxBrowser, server),
  ]);
  const [publisher, player] = mode === 'firefox-plays' ? ['chromium', 'firefox'] : ['firefox', 'chromium'];
  const pages = { chromium: chromiumPage, firefox: firefoxPage };
  await pages[publisher].evaluate(install, `${publisher}-pub`);
  await pages[player].evaluate(install, `${player}-play`);
  await pages[publisher].evaluate(publish, STREAM);
  console.log(`${publisher} publishes ${STREAM}`);

  const t0 = Date.now();
  await pages[player].evaluate(play, STREAM);
  let last = null;
  for (;;) {
    last = await pages[player].evaluate(playerStats);
    if (last.framesDecoded >= MIN_FRAMES) break;
    if (Date.now() - t0 > TIMEOUT_MS) {
      throw new Error(
        `${player} decoded ${last.framesDecoded} frames of ${publisher}'s ${STREAM} in ${TIMEOUT_MS / 1000} s, ` +
          `needs ${MIN_FRAMES}; last getStats digest: ${JSON.stringify(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(
    `${player} decoded ${last.framesDecoded} frames (${last.packetsReceived} video packets) ` +
      `${Date.now() - t0} ms after the play call, over ${last.pair}`,
  );
  if (player === 'firefox') {
    // Sender reports come about once a second, so the first ones may not
    // have arrived by frame 30: give them a few seconds (reported, not
    // asserted).
    const srDeadline = Date.now() + 5000;
    while (!(last.remoteOutboundVideo && last.remoteOutboundAudio) && Date.now() < srDeadline) {
      await new Promise((r) => setTimeout(r, 200));
      last = await pages[player].evaluate(playerStats);
    }
    const { packetsReceived, framesDecoded, remoteOutboundVideo, remoteOutboundAudio } = last;
    console.log(`firefox-stats ${JSON.stringify({ packetsReceived, framesDecoded, remoteOutboundVideo, remoteOutboundAudio })}`);
  }
  console.log(`cross passed (${mode}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await Promise.allSettled([chromiumBrowser.close(), firefoxBrowser.close()]);
}
