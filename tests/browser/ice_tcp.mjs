// ICE-TCP end to end (tests/ice_tcp.rs runs this in a network namespace
// whose firewall drops every UDP packet): Chromium and Firefox each publish
// through the SDK and each plays the other's stream. Every peer connection
// must select a candidate pair whose local and remote candidates are TCP,
// and each player's inbound video must decode frames (framesDecoded above
// zero, then growing). The server's /metrics must count the ICE-TCP
// connections while they are open. Prints `ice-tcp passed` at the end.
import { launch, sdkPage, until, check } from './common.mjs';
import { launchFirefox, firefoxSdkPage } from './firefox.mjs';

const server = process.env.SERVER;
if (!server) throw new Error('SERVER is not set');
// Nothing below may hang the test.
setTimeout(() => {
  console.error('ice_tcp.mjs: still running after 150 s, giving up');
  process.exit(1);
}, 150000).unref();

const ROOM = 'ice-tcp';

// ---- page functions (run in either browser; no closures over node values)

async function install([room, user]) {
  window.e = new window.sdk.Engine(1, location.origin, { RTCPeerConnection: window.RecordedPeerConnection });
  await window.e.loginRoom(room, await window.token(user), { userID: user, userName: user });
}

async function publish([room, stream]) {
  const ms = await window.e.createStream({ camera: { video: true, audio: true } });
  await window.e.startPublishingStream(stream, ms, { roomID: room });
  window.pubPc = window.pcs[window.pcs.length - 1];
}

async function play(stream) {
  await window.attach(await window.e.startPlayingStream(stream));
  window.playPc = window.pcs[window.pcs.length - 1];
}

// A peer connection's selected candidate pair and video counters, from
// getStats(): the transport's selectedCandidatePairId (Chromium), else the
// pair marked selected (Firefox), else a nominated succeeded one.
async function pcStats(which) {
  const pc = window[which];
  if (!pc) return { error: `no ${which}` };
  const all = [...(await pc.getStats()).values()];
  const byId = new Map(all.map((s) => [s.id, s]));
  const transport = all.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
  let pair = transport ? byId.get(transport.selectedCandidatePairId) : undefined;
  if (!pair) pair = all.find((s) => s.type === 'candidate-pair' && s.selected);
  if (!pair) pair = all.find((s) => s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated);
  const cand = (id) => {
    const c = id && byId.get(id);
    if (!c) return null;
    return {
      protocol: c.protocol,
      tcpType: c.tcpType || null,
      type: c.candidateType,
      addr: `${c.address || c.ip || c.ipAddress}:${c.port}`,
    };
  };
  const kindOf = (s) => s.kind || s.mediaType;
  const inVideo = all.find((s) => s.type === 'inbound-rtp' && kindOf(s) === 'video');
  const outVideo = all.find((s) => s.type === 'outbound-rtp' && kindOf(s) === 'video');
  return {
    connectionState: pc.connectionState,
    local: pair ? cand(pair.localCandidateId) : null,
    remote: pair ? cand(pair.remoteCandidateId) : null,
    framesDecoded: inVideo ? inVideo.framesDecoded || 0 : 0,
    packetsSent: outVideo ? outVideo.packetsSent || 0 : 0,
  };
}

async function iceTcpGauge() {
  const text = await (await fetch('/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith('sfu_ice_tcp_connections '));
  return line ? Number(line.split(' ')[1]) : -1;
}

// ---- the run

const overTcp = (s) => s.local && s.remote && s.local.protocol === 'tcp' && s.remote.protocol === 'tcp';

const started = Date.now();
const [chromiumBrowser, firefoxBrowser] = await Promise.all([launch(), launchFirefox()]);
try {
  const [chromium, firefox] = await Promise.all([
    sdkPage(chromiumBrowser, server),
    firefoxSdkPage(firefoxBrowser, server),
  ]);
  await chromium.evaluate(install, [ROOM, 'chromium-user']);
  await firefox.evaluate(install, [ROOM, 'firefox-user']);
  await chromium.evaluate(publish, [ROOM, 'tcp-chromium']);
  await firefox.evaluate(publish, [ROOM, 'tcp-firefox']);
  console.log('both browsers publish');
  await firefox.evaluate(play, 'tcp-chromium');
  await chromium.evaluate(play, 'tcp-firefox');

  const legs = [
    ['firefox', firefox, 'tcp-chromium'],
    ['chromium', chromium, 'tcp-firefox'],
  ];
  for (const [name, page, stream] of legs) {
    let last = null;
    const stats = async () => (last = await page.evaluate(pcStats, 'playPc'));
    const withLast = (e) => {
      throw new Error(`${e.message}; last getStats digest: ${JSON.stringify(last)}`);
    };
    const first = await until(
      `${name} decoding ${stream}`,
      async () => (await stats()).framesDecoded > 0 && last,
      30000,
    ).catch(withLast);
    const later = await until(
      `${name} decoding more of ${stream}`,
      async () => (await stats()).framesDecoded > first.framesDecoded && last,
      30000,
    ).catch(withLast);
    check(overTcp(later), `${name} plays ${stream} over a TCP pair: ${JSON.stringify(later)}`);
    console.log(
      `${name} plays ${stream}: framesDecoded ${first.framesDecoded} -> ${later.framesDecoded}, ` +
        `pair ${later.local.protocol} ${later.local.addr} (${later.local.tcpType}) -> ` +
        `${later.remote.protocol} ${later.remote.addr} (${later.remote.tcpType})`,
    );
  }
  for (const [name, page] of [['chromium', chromium], ['firefox', firefox]]) {
    const s = await until(`${name} publisher's selected pair`, async () => {
      const st = await page.evaluate(pcStats, 'pubPc');
      return st.local && st.remote && st.packetsSent > 0 && st;
    });
    check(overTcp(s), `${name} publishes over a TCP pair: ${JSON.stringify(s)}`);
    console.log(
      `${name} publishes: ${s.packetsSent} video packets, pair ${s.local.protocol} ${s.local.addr} -> ` +
        `${s.remote.protocol} ${s.remote.addr}`,
    );
  }
  // Four peer connections, each on its own ICE-TCP connection (at least).
  const gauge = await chromium.evaluate(iceTcpGauge);
  check(gauge >= 4, `sfu_ice_tcp_connections ${gauge}, expected at least 4`);
  console.log(`sfu_ice_tcp_connections ${gauge}`);
  console.log(`ice-tcp passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await Promise.allSettled([chromiumBrowser.close(), firefoxBrowser.close()]);
}
