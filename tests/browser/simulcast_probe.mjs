import { launch, sdkPage } from './common.mjs';
const server = process.env.SERVER;
setTimeout(() => { console.error('probe timeout'); process.exit(1); }, 90000).unref();
async function install(user) {
  const Base = window.RTCPeerConnection;
  window.pcs = [];
  class Recorded extends Base { constructor(c) { super(c); window.pcs.push(this); } }
  window.e = new window.sdk.Engine(1, location.origin, { RTCPeerConnection: Recorded });
  await window.e.loginRoom('sim', await window.token(user), { userID: user, userName: user });
}
async function publish(stream) {
  const ms = await window.e.createStream({ camera: { video: { width: 1280, height: 720, frameRate: 30 }, audio: true } });
  await window.e.startPublishingStream(stream, ms, { roomID: 'sim', simulcast: true });
}
async function pubStats() {
  const pc = window.pcs[0];
  const all = [...(await pc.getStats()).values()];
  return all.filter((s) => s.type === 'outbound-rtp' && s.kind === 'video').map((s) => ({ rid: s.rid, w: s.frameWidth, h: s.frameHeight, bytes: s.bytesSent, q: s.qualityLimitationReason, active: s.active }));
}
async function play(stream) { await window.attach(await window.e.startPlayingStream(stream)); }
async function playStats() {
  const pc = window.pcs[window.pcs.length - 1];
  const all = [...(await pc.getStats()).values()];
  const v = all.find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
  return v ? { w: v.frameWidth, frames: v.framesDecoded, bytes: v.bytesReceived } : null;
}
const b = await launch();
try {
  const pub = await sdkPage(b, server);
  const pl = await sdkPage(b, server);
  await pub.evaluate(install, 'pub');
  await pl.evaluate(install, 'play');
  await pub.evaluate(publish, 'simcam');
  await pl.evaluate(play, 'simcam');
  for (let i = 0; i < 12; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    console.log(i, JSON.stringify(await pub.evaluate(pubStats)), JSON.stringify(await pl.evaluate(playStats)));
  }
  const r = await fetch(`${server}/metrics`); const t = await r.text();
  console.log(t.split('\n').filter((l) => /layer|keyframe|pli/i.test(l) && !l.startsWith('#')).join('\n'));
} finally { await b.close(); }
