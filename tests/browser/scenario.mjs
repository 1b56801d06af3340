// Browser end to end (issue scenario): browser A logs into r1 and r2 and
// publishes its camera into r1; browser B logs into r3, plays A's stream by
// ID and decodes frames; A and B exchange broadcast messages and only the
// right rooms receive them; B logs out and A sees the user leave.
// Usage: SERVER=http://127.0.0.1:PORT node scenario.mjs
import { launch, sdkPage, until, check } from './common.mjs';

const server = process.env.SERVER;
if (!server) throw new Error('SERVER is not set');
const started = Date.now();
const [browserA, browserB] = await Promise.all([launch(), launch()]);
try {
  const [a, b] = await Promise.all([sdkPage(browserA, server), sdkPage(browserB, server)]);
  const install = async (page, user) =>
    page.evaluate(async (user) => {
      const e = new window.sdk.Engine(1, location.origin);
      window.e = e;
      window.events = [];
      e.on('IMRecvBroadcastMessage', (roomID, list) =>
        list.forEach((m) => window.events.push({ kind: 'broadcast', roomID, from: m.fromUser.userID, message: m.message })));
      e.on('roomUserUpdate', (roomID, updateType, list) =>
        window.events.push({ kind: 'user', roomID, updateType, users: list.map((u) => u.userID) }));
      await e.enableMultiRoom(true);
      window.login = async (room) =>
        e.loginRoom(room, await window.token(user), { userID: user, userName: user }, { userUpdate: true });
    }, user);
  await install(a, 'alice');
  await install(b, 'bob');

  await a.evaluate(async () => {
    await window.login('r1');
    await window.login('r2');
    const stream = await window.e.createStream({ camera: { video: true, audio: true } });
    await window.e.startPublishingStream('alice-cam', stream, { roomID: 'r1' });
  });
  const ttff = await b.evaluate(async () => {
    await window.login('r3');
    const t0 = performance.now();
    const ms = await window.e.startPlayingStream('alice-cam');
    await window.attach(ms);
    // Time to first decoded frame, from the play call.
    for (let i = 0; i < 200; i++) {
      const s = await window.e.getStats('alice-cam');
      if (s && s.framesDecoded > 0) return Math.round(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 25));
    }
    return -1;
  });
  console.log(`B's time to first frame: ${ttff} ms`);
  const stats = await until('B to decode frames of alice-cam', async () => {
    const s = await b.evaluate(async () => window.e.getStats('alice-cam'));
    return s && s.framesDecoded > 10 ? s : null;
  });
  console.log(`B decoded ${stats.framesDecoded} frames of alice-cam (fps ${stats.fps}, ${stats.bitrateKbps} kbps)`);

  // Messages: B joins r2 too; A and B exchange in r2, A also talks in r1.
  await b.evaluate(async () => window.login('r2'));
  await until('A to see bob join r2', async () =>
    a.evaluate(() => window.events.some((e) => e.kind === 'user' && e.roomID === 'r2' && e.updateType === 'ADD' && e.users.includes('bob'))));
  await a.evaluate(async () => {
    await window.e.sendBroadcastMessage('r1', 'a-in-r1');
    await window.e.sendBroadcastMessage('r2', 'a-in-r2');
  });
  await b.evaluate(async () => {
    await window.e.sendBroadcastMessage('r3', 'b-in-r3');
    await window.e.sendBroadcastMessage('r2', 'b-in-r2');
  });
  await until('the r2 messages to cross', async () => {
    const gotA = await a.evaluate(() => window.events.some((e) => e.kind === 'broadcast' && e.message === 'b-in-r2'));
    const gotB = await b.evaluate(() => window.events.some((e) => e.kind === 'broadcast' && e.message === 'a-in-r2'));
    return gotA && gotB;
  });
  await new Promise((r) => setTimeout(r, 500));
  const msgsA = await a.evaluate(() => window.events.filter((e) => e.kind === 'broadcast'));
  const msgsB = await b.evaluate(() => window.events.filter((e) => e.kind === 'broadcast'));
  check(JSON.stringify(msgsA) === JSON.stringify([{ kind: 'broadcast', roomID: 'r2', from: 'bob', message: 'b-in-r2' }]),
    `A received ${JSON.stringify(msgsA)}`);
  check(JSON.stringify(msgsB) === JSON.stringify([{ kind: 'broadcast', roomID: 'r2', from: 'alice', message: 'a-in-r2' }]),
    `B received ${JSON.stringify(msgsB)}`);
  console.log('broadcasts: A got only b-in-r2, B got only a-in-r2');

  // B logs out: A (userUpdate on) sees bob leave r2; r1 never had bob.
  await b.evaluate(async () => window.e.logoutRoom());
  await until('A to see bob leave r2', async () =>
    a.evaluate(() => window.events.some((e) => e.kind === 'user' && e.roomID === 'r2' && e.updateType === 'DELETE' && e.users.includes('bob'))));
  const r1Users = await a.evaluate(() => window.events.filter((e) => e.kind === 'user' && e.roomID === 'r1'));
  check(r1Users.every((e) => !e.users.includes('bob')), `bob showed up in r1: ${JSON.stringify(r1Users)}`);
  console.log('A saw bob leave r2');
  console.log(`scenario passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await Promise.all([browserA.close(), browserB.close()]);
}
