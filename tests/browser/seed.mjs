// ZEGO's "multi-room login" guide (the seed), its samples as written, in one
// browser engine (two pages: the anchor and a viewer of another room):
//   SERVER=... node seed.mjs chromium|firefox
// import { ZegoExpressEngine } from '/sdk/engine.js'; enableMultiRoom(true);
// two loginRoom calls without awaiting the first; createZegoStream() passed
// to startPublishingStream unawaited; a user of the other room plays it and
// decodes frames; broadcast / barrage / custom command (an object) / room
// extra info reach exactly the right user, told apart by room ID; the sixth
// room is refused with 1000005022; switchRoom(from, to, {token});
// logoutRoom(room) and logoutRoom(); the viewer's play then waits.
import { launch, sdkPage, until, check } from './common.mjs';
import { launchFirefox, firefoxSdkPage } from './firefox.mjs';

const server = process.env.SERVER;
if (!server) throw new Error('SERVER is not set');
const engine = process.argv[2];
if (engine !== 'chromium' && engine !== 'firefox') throw new Error('usage: node seed.mjs chromium|firefox');
setTimeout(() => {
  console.error('seed.mjs: still running after 120 s, giving up');
  process.exit(1);
}, 120000).unref();

// Runs in the page: a ZegoExpressEngine recording every event of interest.
async function install(user) {
  const { ZegoExpressEngine } = await import('/sdk/engine.js');
  const zg = new ZegoExpressEngine(1, location.origin, { RTCPeerConnection: window.RecordedPeerConnection });
  window.zg = zg;
  window.got = [];
  const keep = (kind) => (...args) => window.got.push({ kind, args: JSON.parse(JSON.stringify(args)) });
  for (const name of ['roomStateChanged', 'roomStreamUpdate', 'IMRecvBroadcastMessage', 'IMRecvBarrageMessage',
    'IMRecvCustomCommand', 'roomExtraInfoUpdate', 'playerStateUpdate', 'publisherStateUpdate']) {
    zg.on(name, keep(name));
  }
  window.tok = await window.token(user);
  return zg.enableMultiRoom(true);
}

const browser = engine === 'chromium' ? await launch() : await launchFirefox();
const page = (b) => (engine === 'chromium' ? sdkPage(b, server) : firefoxSdkPage(b, server));
try {
  const a = await page(browser);
  const b = await page(browser);
  check((await a.evaluate(install, 'zegoUser')) === true, 'enableMultiRoom(true) is true');
  check((await b.evaluate(install, 'viewer')) === true, 'the viewer enables multi-room');
  check((await a.evaluate(() => window.zg.enableMultiRoom(true))) === false, 'a second enableMultiRoom is false');

  // The anchor: two logins without awaiting the first, then publish into
  // 'first' with the unawaited createZegoStream() as in the seed.
  const logins = await a.evaluate(async () => {
    const zg = window.zg;
    const token = window.tok;
    const p1 = zg.loginRoom('first', token, { userID: 'zegoUser' });
    const p2 = zg.loginRoom('second', token, { userID: 'zegoUser' });
    const results = await Promise.all([p1, p2]);
    const localStream = zg.createZegoStream();
    await zg.startPublishingStream('zegoUser', localStream, { roomID: 'first' });
    (await localStream).playVideo(document.body);
    return results;
  });
  check(JSON.stringify(logins) === '[true,true]', `loginRoom resolves true: ${JSON.stringify(logins)}`);
  check((await a.evaluate(() => window.zg.enableMultiRoom(false))) === false, 'enableMultiRoom after a login is false');

  // The viewer is only in 'second' and plays the stream of 'first' by ID.
  await b.evaluate(async () => {
    await window.zg.loginRoom('second', window.tok, { userID: 'viewer' }, { userUpdate: true });
    const remoteStream = await window.zg.startPlayingStream('zegoUser');
    await window.attach(remoteStream);
  });
  const frames = async () =>
    b.evaluate(async () => {
      const pc = window.pcs[window.pcs.length - 1];
      let n = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && (s.kind || s.mediaType) === 'video') n = s.framesDecoded || 0;
      });
      return n;
    });
  const decoded = await until('the viewer to decode 20 frames', async () => ((await frames()) >= 20 ? frames() : 0), 30000);
  console.log(`viewer decoded ${decoded} frames of zegoUser`);

  // Messages, each told apart by room: only 'second' is shared.
  await a.evaluate(async () => {
    const zg = window.zg;
    await zg.sendBroadcastMessage('first', 'to first');
    await zg.sendBroadcastMessage('second', 'to second');
    await zg.sendBarrageMessage('second', 'barrage in second');
    zg.sendCustomCommand('second', { text: 'rtc.sendCustomCommand test' }, []);
    await zg.setRoomExtraInfo('second', 'k', 'v');
  });
  const seen = await until('the viewer to get the room extra info', async () => {
    const got = await b.evaluate(() => window.got);
    return got.some((e) => e.kind === 'roomExtraInfoUpdate') ? got : null;
  });
  const of = (kind) => seen.filter((e) => e.kind === kind);
  const broadcasts = of('IMRecvBroadcastMessage').map((e) => [e.args[0], e.args[1].map((m) => m.message)]);
  check(JSON.stringify(broadcasts) === JSON.stringify([['second', ['to second']]]), `broadcasts: ${JSON.stringify(broadcasts)}`);
  const barrages = of('IMRecvBarrageMessage').map((e) => [e.args[0], e.args[1].map((m) => m.message)]);
  check(JSON.stringify(barrages) === JSON.stringify([['second', ['barrage in second']]]), `barrages: ${JSON.stringify(barrages)}`);
  const commands = of('IMRecvCustomCommand').map((e) => [e.args[0], e.args[1].userID, e.args[2]]);
  check(
    JSON.stringify(commands) === JSON.stringify([['second', 'zegoUser', '{"text":"rtc.sendCustomCommand test"}']]),
    `custom commands: ${JSON.stringify(commands)}`,
  );
  const extra = of('roomExtraInfoUpdate').map((e) => [e.args[0], e.args[1].map((x) => [x.key, x.value])]);
  check(JSON.stringify(extra) === JSON.stringify([['second', [['k', 'v']]]]), `extra info: ${JSON.stringify(extra)}`);
  const mine = (await a.evaluate(() => window.got)).filter((e) => e.kind.startsWith('IMRecv'));
  check(mine.length === 0, `the sender got its own messages: ${JSON.stringify(mine)}`);

  // The room limit, logoutRoom(room), switchRoom with {token}, logoutRoom().
  const rooms = await a.evaluate(async () => {
    const zg = window.zg;
    const token = window.tok;
    for (const r of ['third', 'fourth', 'fifth']) await zg.loginRoom(r, token, { userID: 'zegoUser' });
    let sixth = null;
    try {
      await zg.loginRoom('sixth', token, { userID: 'zegoUser' });
    } catch (e) {
      sixth = [e.code, typeof e.msg];
    }
    await zg.logoutRoom('fifth');
    const switched = await zg.switchRoom('fourth', 'sixth', { token });
    const states = window.got.filter((e) => e.kind === 'roomStateChanged').map((e) => `${e.args[0]}:${e.args[1]}`);
    await zg.logoutRoom();
    const after = window.got.filter((e) => e.kind === 'roomStateChanged' && e.args[1] === 'LOGOUT').map((e) => e.args[0]);
    return { sixth, switched, states, after };
  });
  check(JSON.stringify(rooms.sixth) === JSON.stringify([1000005022, 'string']), `sixth room: ${JSON.stringify(rooms.sixth)}`);
  check(rooms.switched === true, 'switchRoom resolves true');
  check(rooms.states.includes('fifth:LOGOUT') && rooms.states.includes('fourth:LOGOUT') && rooms.states.includes('sixth:LOGINED'),
    `room states: ${rooms.states}`);
  const left = [...rooms.after].sort();
  check(JSON.stringify(left) === JSON.stringify(['fifth', 'first', 'fourth', 'second', 'sixth', 'third']), `logged out of ${left}`);
  // The anchor left: the viewer's play waits for it on the same connection.
  const waiting = await until('the viewer play to wait', async () => {
    const got = await b.evaluate(() => window.got);
    return got.find((e) => e.kind === 'playerStateUpdate' && e.args[1] === 'PLAY_REQUESTING' && e.args[2] === 1004002);
  });
  check(waiting.args[0] === 'zegoUser', 'the waiting play is zegoUser');
  // The anchor comes back: the same play, on the same peer connection,
  // decodes again (its video element never had to be touched).
  const before = await frames();
  await a.evaluate(async () => {
    const zg = window.zg;
    await zg.loginRoom('first', window.tok, { userID: 'zegoUser' });
    await zg.startPublishingStream('zegoUser', zg.createZegoStream(), { roomID: 'first' });
  });
  const resumed = await until('the viewer to decode the republished stream', async () => {
    const n = await frames();
    return n >= before + 20 ? n : 0;
  }, 30000);
  const pcs = await b.evaluate(() => window.pcs.length);
  check(pcs === 1, `the viewer made ${pcs} peer connections`);
  const playing = (await b.evaluate(() => window.got)).filter((e) => e.kind === 'playerStateUpdate').map((e) => `${e.args[1]}:${e.args[2]}`);
  check(playing[playing.length - 1] === 'PLAYING:0', `player states: ${playing}`);
  console.log(`viewer decoded ${before} frames, then ${resumed} after the republish (${playing})`);
  console.log(`seed passed (${engine})`);
} finally {
  await browser.close();
}
