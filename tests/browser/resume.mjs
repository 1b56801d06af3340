// The SDK's resume in Chromium: alice publishes her camera in r1, bob plays
// it in r1, carol broadcasts into r1. Both alice's and bob's signaling
// sockets drop (closed from the page with code 4000, which the server
// treats as a drop, not a leave) while carol's messages flow. Each SDK
// emits RECONNECTING, resumes the server session, emits RECONNECTED; both
// get every broadcast exactly once in order; carol sees nobody leave; the
// publish and the play go on over the same peer connections and bob keeps
// decoding frames.
// Usage: SERVER=http://127.0.0.1:PORT node resume.mjs
import { launch, sdkPage, until, check } from './common.mjs';

const server = process.env.SERVER;
if (!server) throw new Error('SERVER is not set');
const started = Date.now();
const browser = await launch();
try {
  const [a, b, c] = await Promise.all([sdkPage(browser, server), sdkPage(browser, server), sdkPage(browser, server)]);
  const install = async (page, user) =>
    page.evaluate(async (user) => {
      const e = new window.sdk.Engine(1, location.origin);
      window.e = e;
      window.events = [];
      e.on('IMRecvBroadcastMessage', (roomID, list) =>
        list.forEach((m) => window.events.push({ kind: 'broadcast', roomID, message: m.message })));
      e.on('roomUserUpdate', (roomID, updateType, list) =>
        window.events.push({ kind: 'user', roomID, updateType, users: list.map((u) => u.userID) }));
      e.on('roomStreamUpdate', (roomID, updateType, list) =>
        window.events.push({ kind: 'stream', roomID, updateType, streams: list.map((s) => s.streamID) }));
      e.on('roomStateChanged', (roomID, reason) => window.events.push({ kind: 'room', roomID, reason }));
      e.on('publisherStateUpdate', (streamID, state, code) => window.events.push({ kind: 'publisher', streamID, state, code }));
      e.on('playerStateUpdate', (streamID, state, code) => window.events.push({ kind: 'player', streamID, state, code }));
      await e.loginRoom('r1', await window.token(user), { userID: user, userName: user }, { userUpdate: true });
    }, user);
  await install(c, 'carol');
  await install(a, 'alice');
  await install(b, 'bob');
  await a.evaluate(async () => {
    const stream = await window.e.createStream({ camera: { video: true, audio: true } });
    await window.e.startPublishingStream('alice-cam', stream);
    window.pc = window.e._publishers.get('alice-cam').pc;
  });
  await b.evaluate(async () => {
    const ms = await window.e.startPlayingStream('alice-cam');
    await window.attach(ms);
    window.pc = window.e._players.get('alice-cam').pc;
  });
  const decoded = async () => (await b.evaluate(async () => window.e.getStats('alice-cam')))?.framesDecoded ?? 0;
  await until('bob to decode frames', async () => (await decoded()) > 10);
  const before = await decoded();

  // Carol broadcasts 8 messages (the per-user limit is 2/s); after the
  // third, alice's and bob's sockets drop.
  const sent = [];
  for (let i = 0; i < 8; i++) {
    const text = `m${i}`;
    await c.evaluate(async (text) => window.e.sendBroadcastMessage('r1', text), text);
    sent.push(text);
    if (i === 2) {
      for (const p of [a, b]) await p.evaluate(() => window.e._conn._ws.close(4000));
    }
    await new Promise((r) => setTimeout(r, 600));
  }
  for (const [name, p] of [['alice', a], ['bob', b]]) {
    await until(`${name} to get every broadcast`, async () =>
      p.evaluate((n) => window.events.filter((e) => e.kind === 'broadcast').length >= n, sent.length));
    const got = await p.evaluate(() => window.events.filter((e) => e.kind === 'broadcast').map((e) => e.message));
    check(JSON.stringify(got) === JSON.stringify(sent), `${name} got ${JSON.stringify(got)}`);
    const states = await p.evaluate(() => window.events.filter((e) => e.kind === 'room').map((e) => e.reason));
    check(JSON.stringify(states) === JSON.stringify(['LOGINING', 'LOGINED', 'RECONNECTING', 'RECONNECTED']),
      `${name}'s room states: ${JSON.stringify(states)}`);
    const media = await p.evaluate(() => window.events.filter((e) => e.kind === 'publisher' || e.kind === 'player'));
    check(media.every((e) => e.state !== 'NO_PUBLISH' && e.state !== 'NO_PLAY'), `${name}: ${JSON.stringify(media)}`);
    const samePc = await p.evaluate(() => {
      const rec = window.e._publishers.get('alice-cam') || window.e._players.get('alice-cam');
      return !!rec && rec.pc === window.pc;
    });
    check(samePc, `${name}'s peer connection was replaced`);
  }
  const leaves = await c.evaluate(() => window.events.filter((e) => (e.kind === 'user' || e.kind === 'stream') && e.updateType === 'DELETE'));
  check(leaves.length === 0, `carol saw ${JSON.stringify(leaves)}`);
  await until('bob to keep decoding', async () => (await decoded()) > before + 30);
  console.log(`bob decoded ${(await decoded()) - before} more frames across the drop`);
  console.log(`resume passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await browser.close();
}
