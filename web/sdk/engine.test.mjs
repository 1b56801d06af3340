// Pure-logic tests of the SDK with a fake WebSocket and RTCPeerConnection.
// Run: node --test web/sdk/
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, ZegoExpressEngine, ErrorCode, EVENTS, deriveWsURL, digestStats } from './engine.js';
import { DEPENDENCY_DESCRIPTOR, withDependencyDescriptor } from './media.js';

// Destroy every engine at the end even when a test failed midway (no stray timers).
const engines = [];
const track = (e) => (engines.push(e), e);
after(() => engines.forEach((e) => e.destroy()));

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
async function until(cond, ms = 2000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await tick(2);
  }
}

// A fake server: each socket answers requests through `handler(msg, ws)`,
// which returns a result object (code 0), an {code, message} error, or
// undefined (no answer).
function fakeNet(handler = () => ({})) {
  const sockets = [];
  class FakeWS {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      sockets.push(this);
      setTimeout(() => !this.closed && this.onopen && this.onopen({}), 0);
    }
    send(text) {
      const msg = JSON.parse(text);
      this.sent.push(msg);
      if (this.silent || (msg.op === 'heartbeat' && msg.id === undefined)) return;
      const out = msg.op === 'heartbeat' ? {} : net.handler(msg, this);
      if (out === undefined) return;
      const frame = out.code ? { id: msg.id, ...out } : { id: msg.id, code: 0, ...out };
      setTimeout(() => this.push(frame), 0);
    }
    push(obj) {
      if (!this.closed && this.onmessage) this.onmessage({ data: JSON.stringify(obj) });
    }
    close() {
      this.closed = true;
    }
    drop(code = 1006) {
      this.closed = true;
      if (this.onclose) this.onclose({ code, reason: '' });
    }
    ops() {
      return this.sent.filter((m) => m.op !== 'heartbeat').map((m) => m.op);
    }
  }
  const net = { sockets, handler, WebSocket: FakeWS };
  return net;
}

function loginHandler(extra = {}) {
  return (msg) => {
    if (msg.op === 'loginRoom') {
      return {
        streamList: [{ streamID: `s-${msg.roomID}`, user: { userID: 'bob', userName: 'Bob' }, extraInfo: '' }],
        extraInfoList: [],
        userList: [{ userID: 'bob', userName: 'Bob' }],
      };
    }
    if (extra[msg.op]) return extra[msg.op](msg);
    return {};
  };
}

function recorder(engine) {
  const log = [];
  for (const name of EVENTS) engine.on(name, (...args) => log.push([name, ...args]));
  return log;
}

test('deriveWsURL maps http(s)/ws(s)/bare host and keeps a base path', () => {
  assert.equal(deriveWsURL('http://127.0.0.1:7880', 1), 'ws://127.0.0.1:7880/ws?appID=1');
  assert.equal(deriveWsURL('https://sfu.example.com/', 7), 'wss://sfu.example.com/ws?appID=7');
  assert.equal(deriveWsURL('ws://h:1/ws', 2), 'ws://h:1/ws?appID=2');
  assert.equal(deriveWsURL('wss://h/base', 3), 'wss://h/base/ws?appID=3');
  assert.equal(deriveWsURL('localhost:7880', 4), 'ws://localhost:7880/ws?appID=4');
  assert.throws(() => deriveWsURL('ftp://x', 1), (e) => e.code === ErrorCode.INVALID_PARAMETER);
  assert.throws(() => deriveWsURL('', 1), (e) => e.code === ErrorCode.INVALID_PARAMETER);
});

test('import does not need browser globals; constructor uses injected WebSocket', () => {
  const net = fakeNet();
  const e = track(new Engine(1, 'http://x:1', { WebSocket: net.WebSocket }));
  assert.equal(e._url, 'ws://x:1/ws?appID=1');
  assert.equal(e.on('nope', () => {}), false);
  const cb = () => {};
  assert.equal(e.on('roomStateChanged', cb), true);
  assert.equal(e.off('roomStateChanged', cb), true);
  assert.equal(e.off('roomStateChanged', cb), false);
  e.destroy();
});

test('enableMultiRoom goes first, ids increment, responses match by id', async () => {
  const net = fakeNet(loginHandler());
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket }));
  const log = recorder(e);
  e.enableMultiRoom(true);
  const [r1, r2] = await Promise.all([
    e.loginRoom('r1', 'tok', { userID: 'alice', userName: 'Alice' }, { userUpdate: true }),
    e.loginRoom('r2', 'tok', { userID: 'alice' }),
  ]);
  const ws = net.sockets[0];
  assert.equal(net.sockets.length, 1);
  assert.deepEqual(ws.ops(), ['enableMultiRoom', 'loginRoom', 'loginRoom']);
  const ids = ws.sent.map((m) => m.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual(ws.sent[1], {
    id: ws.sent[1].id,
    op: 'loginRoom',
    roomID: 'r1',
    token: 'tok',
    user: { userID: 'alice', userName: 'Alice' },
    config: { userUpdate: true },
  });
  assert.equal(ws.sent[2].user.userName, 'alice', 'userName defaults to userID');
  // ZEGO's loginRoom resolves true; the lists are the room's state.
  assert.equal(r1, true);
  assert.equal(r2, true);
  assert.equal(e.getRoomInfo('r1').streamList[0].streamID, 's-r1');
  assert.equal(e.getRoomInfo('r2').streamList[0].streamID, 's-r2');
  assert.deepEqual(e.getRoomInfo('r1').userList, [{ userID: 'bob', userName: 'Bob' }]);
  // Once per lifetime, before any login (ZEGO's FAQ): false afterwards.
  assert.equal(e.enableMultiRoom(true), false);
  await tick(5);
  const states = log.filter((l) => l[0] === 'roomStateChanged').map((l) => `${l[1]}:${l[2]}`);
  assert.deepEqual(states, ['r1:LOGINING', 'r2:LOGINING', 'r1:LOGINED', 'r2:LOGINED']);
  // The existing streams/users are replayed locally as ADD events.
  const adds = log.filter((l) => l[0] === 'roomStreamUpdate');
  assert.deepEqual(adds.map((l) => [l[1], l[2], l[3][0].streamID, l[4]]), [
    ['r1', 'ADD', 's-r1', '{}'],
    ['r2', 'ADD', 's-r2', '{}'],
  ]);
  e.destroy();
});

test('errors reject with {code, message} and emit LOGIN_FAILED', async () => {
  const net = fakeNet((m) => (m.op === 'loginRoom' ? { code: 1002033, message: 'token invalid' } : {}));
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket }));
  const log = recorder(e);
  await assert.rejects(e.loginRoom('r1', 'bad', { userID: 'a' }), { code: 1002033, message: 'token invalid' });
  assert.deepEqual(log.at(-1), ['roomStateChanged', 'r1', 'LOGIN_FAILED', 1002033, '{}']);
  e.destroy();
});

test('events are dispatched positionally in contract field order', async () => {
  const net = fakeNet(loginHandler());
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, emitInitialUpdates: false }));
  const log = recorder(e);
  await e.loginRoom('r1', 't', { userID: 'alice' });
  const ws = net.sockets[0];
  const carol = { userID: 'carol', userName: 'Carol' };
  ws.push({ event: 'IMRecvCustomCommand', roomID: 'r1', fromUser: carol, command: 'hi' });
  ws.push({ event: 'roomStreamUpdate', roomID: 'r1', updateType: 'DELETE', streamList: [{ streamID: 's-r1' }], extendedData: '{"stream_delete_reason":[]}' });
  ws.push({ event: 'IMRecvBroadcastMessage', roomID: 'r1', messageList: [{ fromUser: carol, message: 'yo', sendTime: 1, messageID: 9 }] });
  ws.push({ event: 'tokenWillExpire', roomID: 'r1' });
  ws.push({ event: 'roomOnlineUserCountUpdate', roomID: 'r1', count: 3 });
  const got = log.filter((l) => l[0] !== 'roomStateChanged');
  assert.deepEqual(got[0], ['IMRecvCustomCommand', 'r1', carol, 'hi']);
  assert.deepEqual(got[1], ['roomStreamUpdate', 'r1', 'DELETE', [{ streamID: 's-r1' }], '{"stream_delete_reason":[]}']);
  assert.equal(got[2][0], 'IMRecvBroadcastMessage');
  assert.equal(got[2][2][0].message, 'yo');
  assert.deepEqual(got[3], ['tokenWillExpire', 'r1']);
  assert.deepEqual(got[4], ['roomOnlineUserCountUpdate', 'r1', 3]);
  assert.equal(e._rooms.get('r1').streams.size, 0);
  e.destroy();
});

test('messages resolve with messageID; custom command defaults to everyone', async () => {
  const net = fakeNet(loginHandler({ sendBroadcastMessage: () => ({ messageID: 42 }), sendBarrageMessage: () => ({ messageID: 'ab-1' }) }));
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket }));
  await e.loginRoom('r1', 't', { userID: 'alice' });
  assert.deepEqual(await e.sendBroadcastMessage('r1', 'hello'), { messageID: 42 });
  assert.deepEqual(await e.sendBarrageMessage('r1', 'wow'), { messageID: 'ab-1' });
  await e.sendCustomCommand('r1', 'ping');
  const cmd = net.sockets[0].sent.find((m) => m.op === 'sendCustomCommand');
  assert.deepEqual(cmd.toUserIDs, []);
  e.destroy();
});

test('heartbeats are sent, and a silent server counts as a lost link', async () => {
  const net = fakeNet(loginHandler());
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, heartbeatInterval: 10, heartbeatTimeout: 80 }));
  const log = recorder(e);
  await e.loginRoom('r1', 't', { userID: 'alice' });
  await until(() => net.sockets[0].sent.filter((m) => m.op === 'heartbeat').length >= 3);
  assert.ok(net.sockets[0].sent.filter((m) => m.op === 'heartbeat').every((m) => Number.isInteger(m.id)));
  net.sockets[0].silent = true; // this socket stops answering; the next one is fine
  await until(() => log.some((l) => l[0] === 'roomStateChanged' && l[2] === 'RECONNECTING'));
  await until(() => log.some((l) => l[0] === 'roomStateChanged' && l[2] === 'RECONNECTED'));
  assert.equal(net.sockets.length, 2);
  e.destroy();
});

test('a request without answer times out with TIMEOUT', async () => {
  const net = fakeNet(() => undefined);
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, requestTimeout: 30 }));
  await assert.rejects(e.loginRoom('r1', 't', { userID: 'a' }), { code: ErrorCode.TIMEOUT });
  e.destroy();
});

test('unknown appID: the error event code rejects the pending login', async () => {
  const net = fakeNet((msg, ws) => {
    ws.push({ event: 'error', code: 1001004, message: 'unknown appID' });
    ws.drop(1008);
    return undefined;
  });
  const e = track(new Engine(9, 'http://x', { WebSocket: net.WebSocket }));
  await assert.rejects(e.loginRoom('r1', 't', { userID: 'a' }), { code: 1001004 });
  await tick(5);
  assert.equal(net.sockets.length, 1, 'no reconnect on a fatal error');
  e.destroy();
});

test('unexpected close: RECONNECTING, re-enable multi-room, re-login, RECONNECTED + diff', async () => {
  let round = 0;
  const net = fakeNet((msg) => {
    if (msg.op !== 'loginRoom') return {};
    if (round > 0 && msg.roomID === 'r2') return { code: 1002078, message: 'expired' };
    return { streamList: round === 0 ? [{ streamID: 'old' }] : [{ streamID: 'new' }], extraInfoList: [] };
  });
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, emitInitialUpdates: false }));
  const log = recorder(e);
  await e.enableMultiRoom(true);
  await e.loginRoom('r1', 't1', { userID: 'alice' });
  await e.loginRoom('r2', 't2', { userID: 'alice' });
  log.length = 0;
  round = 1;
  net.sockets[0].drop(1006);
  await until(() => log.filter((l) => l[0] === 'roomStateChanged').length >= 4);
  const states = log.filter((l) => l[0] === 'roomStateChanged').map((l) => `${l[1]}:${l[2]}:${l[3]}`);
  assert.deepEqual(states, [
    `r1:RECONNECTING:${ErrorCode.NETWORK}`,
    `r2:RECONNECTING:${ErrorCode.NETWORK}`,
    'r1:RECONNECTED:0',
    'r2:RECONNECT_FAILED:1002078',
  ]);
  assert.deepEqual(net.sockets[1].ops(), ['enableMultiRoom', 'loginRoom', 'loginRoom']);
  assert.equal(net.sockets[1].sent[1].token, 't1');
  const su = log.filter((l) => l[0] === 'roomStreamUpdate').map((l) => [l[2], l[3][0].streamID]);
  assert.deepEqual(su, [['DELETE', 'old'], ['ADD', 'new']]);
  assert.deepEqual([...e._rooms.keys()], ['r1']);
  // Requests work again on the new socket.
  await e.sendBroadcastMessage('r1', 'back');
  assert.equal(net.sockets.length, 2);
  e.destroy();
});

test('reconnect retries with backoff while the server is down, then gives up', async () => {
  const net = fakeNet(loginHandler());
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, reconnectTimeout: 1600, reconnectMaxDelay: 400 }));
  const log = recorder(e);
  await e.loginRoom('r1', 't', { userID: 'alice' });
  net.handler = (msg, ws) => {
    ws.drop(1006);
    return undefined;
  };
  net.sockets[0].drop(1006);
  await until(() => log.some((l) => l[0] === 'roomStateChanged' && l[2] === 'RECONNECT_FAILED'), 4000);
  assert.ok(net.sockets.length >= 3, `retried (${net.sockets.length} sockets)`);
  assert.equal(e._rooms.size, 0);
  e.destroy();
});

test('KICKOUT forgets the room and ends its publishes once', async () => {
  const net = fakeNet(loginHandler());
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, emitInitialUpdates: false }));
  const log = recorder(e);
  await e.loginRoom('r1', 't', { userID: 'alice' });
  e._publishers.set('cam', { role: 'publisher', streamID: 'cam', roomID: 'r1', pc: null, state: 'PUBLISHING' });
  const ws = net.sockets[0];
  ws.push({ event: 'roomStateChanged', roomID: 'r1', reason: 'KICKOUT', errorCode: 1002050, extendedData: '{}' });
  ws.push({ event: 'publisherStateUpdate', streamID: 'cam', state: 'NO_PUBLISH', errorCode: 1002050 });
  const tail = log.slice(-2);
  assert.deepEqual(tail, [
    ['roomStateChanged', 'r1', 'KICKOUT', 1002050, '{}'],
    ['publisherStateUpdate', 'cam', 'NO_PUBLISH', 1002050],
  ]);
  assert.equal(e._rooms.size, 0);
  e.destroy();
});

// --- resume after a drop (protocol.md "Resume after a dropped connection")

// A server whose logins carry resume credentials; `resume` answers with
// `resumeResult(msg)` (a result, or an {code, message} error).
function resumableNet(resumeResult) {
  return fakeNet((msg) => {
    if (msg.op === 'loginRoom') {
      return { streamList: [{ streamID: 'a' }], extraInfoList: [], sessionID: 'sess', resumeToken: 'tok' };
    }
    if (msg.op === 'resume') return resumeResult(msg);
    return {};
  });
}

async function droppedAfterTwoEvents(net) {
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, emitInitialUpdates: false }));
  const log = recorder(e);
  e.enableMultiRoom(true);
  await e.loginRoom('r1', 't1', { userID: 'alice' });
  e._publishers.set('cam', { role: 'publisher', streamID: 'cam', roomID: 'r1', pc: null, state: 'PUBLISHING' });
  const ws = net.sockets[0];
  ws.push({ event: 'IMRecvBroadcastMessage', roomID: 'r1', seq: 1, messageList: [{ message: 'one' }] });
  ws.push({ event: 'IMRecvBroadcastMessage', roomID: 'r1', seq: 2, messageList: [{ message: 'two' }] });
  log.length = 0;
  ws.drop(1006);
  return { e, log };
}

test('a drop resumes the session: resume first with lastSeq, RECONNECTED, media kept, replay delivered', async () => {
  const net = resumableNet(() => ({ rooms: [{ roomID: 'r1', streamList: [{ streamID: 'a' }], extraInfoList: [] }], publishing: ['cam'], playing: [], gap: false }));
  const { e, log } = await droppedAfterTwoEvents(net);
  await until(() => log.some((l) => l[0] === 'roomStateChanged' && l[2] === 'RECONNECTED'));
  const ws = net.sockets[1];
  assert.deepEqual(ws.ops(), ['resume'], 'resume is the first and only request: no re-login');
  assert.deepEqual(
    { sessionID: ws.sent[0].sessionID, resumeToken: ws.sent[0].resumeToken, lastSeq: ws.sent[0].lastSeq },
    { sessionID: 'sess', resumeToken: 'tok', lastSeq: 2 },
  );
  assert.ok(e._publishers.has('cam'), 'the publish goes on');
  // Replayed events arrive after the result; a repeated seq is dropped.
  ws.push({ event: 'IMRecvBroadcastMessage', roomID: 'r1', seq: 3, messageList: [{ message: 'three' }] });
  ws.push({ event: 'IMRecvBroadcastMessage', roomID: 'r1', seq: 3, messageList: [{ message: 'three' }] });
  const got = log.filter((l) => l[0] === 'IMRecvBroadcastMessage').map((l) => l[2][0].message);
  assert.deepEqual(got, ['three']);
  const states = log.filter((l) => l[0] === 'roomStateChanged').map((l) => l[2]);
  assert.deepEqual(states, ['RECONNECTING', 'RECONNECTED']);
  assert.equal(log.filter((l) => l[0] === 'publisherStateUpdate').length, 0);
  e.destroy();
});

test('a resume with a gap diffs the lists', async () => {
  const net = resumableNet(() => ({ rooms: [{ roomID: 'r1', streamList: [{ streamID: 'b' }], extraInfoList: [] }], publishing: [], playing: [], gap: true }));
  const { e, log } = await droppedAfterTwoEvents(net);
  await until(() => log.some((l) => l[0] === 'roomStreamUpdate' && l[2] === 'ADD'));
  const su = log.filter((l) => l[0] === 'roomStreamUpdate').map((l) => [l[2], l[3][0].streamID]);
  assert.deepEqual(su, [['DELETE', 'a'], ['ADD', 'b']]);
  e.destroy();
});

test('a refused resume (1002099) logs in afresh on the same socket and ends the publishes', async () => {
  const net = resumableNet(() => ({ code: 1002099, message: 'session cannot be resumed' }));
  const { e, log } = await droppedAfterTwoEvents(net);
  await until(() => log.some((l) => l[0] === 'roomStateChanged' && l[2] === 'RECONNECTED'));
  assert.equal(net.sockets.length, 2);
  assert.deepEqual(net.sockets[1].ops(), ['resume', 'enableMultiRoom', 'loginRoom']);
  const pub = log.filter((l) => l[0] === 'publisherStateUpdate').map((l) => [l[1], l[2], l[3]]);
  assert.deepEqual(pub, [['cam', 'NO_PUBLISH', ErrorCode.SESSION_LOST]]);
  assert.equal(e._lastSeq, 0, 'a new session counts from 1');
  e.destroy();
});

// --- WebRTC with a fake peer connection

class FakePC {
  constructor() {
    this.transceivers = [];
    this.connectionState = 'new';
    this.closed = false;
  }
  addTransceiver(trackOrKind, init) {
    this.transceivers.push({ trackOrKind, init });
  }
  async createOffer() {
    return { type: 'offer', sdp: `v=0 offer ${this.transceivers.length}` };
  }
  async setLocalDescription(d) {
    this.localDescription = d;
  }
  async setRemoteDescription(d) {
    this.remoteDescription = d;
    if (this.ontrack) this.ontrack({ track: { kind: 'video', id: 't1' } });
  }
  async getStats() {
    return new Map();
  }
  connect(state = 'connected') {
    this.connectionState = state;
    if (this.onconnectionstatechange) this.onconnectionstatechange();
  }
  close() {
    this.closed = true;
  }
}
class FakeMediaStream {
  constructor() {
    this.tracks = [];
  }
  getTracks() {
    return this.tracks;
  }
  addTrack(t) {
    this.tracks.push(t);
  }
}

test('publish: sendonly transceivers, offer -> answer, PUBLISHING on connect, stop', async () => {
  const net = fakeNet(loginHandler({ startPublishingStream: () => ({ sdp: 'v=0 answer' }) }));
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, RTCPeerConnection: FakePC, MediaStream: FakeMediaStream }));
  const log = recorder(e);
  await e.loginRoom('r1', 't', { userID: 'alice' });
  const local = new FakeMediaStream();
  local.addTrack({ kind: 'audio' });
  local.addTrack({ kind: 'video' });
  await e.startPublishingStream('cam', local, { extraInfo: 'x' });
  const req = net.sockets[0].sent.find((m) => m.op === 'startPublishingStream');
  assert.equal(req.roomID, 'r1', 'single room is filled in');
  assert.equal(req.sdp, 'v=0 offer 2');
  assert.equal(req.extraInfo, 'x');
  const pc = e._publishers.get('cam').pc;
  assert.deepEqual(pc.transceivers.map((t) => t.init.direction), ['sendonly', 'sendonly']);
  assert.deepEqual(pc.remoteDescription, { type: 'answer', sdp: 'v=0 answer' });
  pc.connect();
  await e.stopPublishingStream('cam');
  assert.ok(pc.closed);
  const states = log.filter((l) => l[0] === 'publisherStateUpdate').map((l) => `${l[2]}:${l[3]}`);
  assert.deepEqual(states, ['PUBLISH_REQUESTING:0', 'PUBLISHING:0', 'NO_PUBLISH:0']);
  await assert.rejects(e.startPublishingStream('bad id!', local), { code: 1000016 });
  e.destroy();
});

test('play: recvonly audio+video, resolves a MediaStream, NO_PLAY from the server', async () => {
  const net = fakeNet(loginHandler({ startPlayingStream: (m) => (m.streamID === 'nope' ? { code: 1004002, message: 'no stream' } : { sdp: 'v=0 a' }) }));
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, RTCPeerConnection: FakePC, MediaStream: FakeMediaStream }));
  const log = recorder(e);
  await e.loginRoom('r1', 't', { userID: 'alice' });
  const stream = await e.startPlayingStream('s-r1');
  assert.equal(stream.getTracks().length, 1);
  const pc = e._players.get('s-r1').pc;
  assert.deepEqual(pc.transceivers.map((t) => [t.trackOrKind, t.init.direction]), [['audio', 'recvonly'], ['video', 'recvonly']]);
  pc.connect();
  net.sockets[0].push({ event: 'playerStateUpdate', streamID: 's-r1', state: 'NO_PLAY', errorCode: 1004002 });
  assert.ok(pc.closed);
  await assert.rejects(e.startPlayingStream('nope'), { code: 1004002 });
  const states = log.filter((l) => l[0] === 'playerStateUpdate').map((l) => `${l[1]}:${l[2]}:${l[3]}`);
  assert.deepEqual(states, [
    's-r1:PLAY_REQUESTING:0', 's-r1:PLAYING:0', 's-r1:NO_PLAY:1004002',
    'nope:PLAY_REQUESTING:0', 'nope:NO_PLAY:1004002',
  ]);
  await assert.rejects(e.getStats('s-r1'), { code: 1004002 });
  e.destroy();
});

test('logoutRoom ends plays of streams the room lists, keeps the others', async () => {
  const net = fakeNet(loginHandler({ startPlayingStream: () => ({ sdp: 'v=0 a' }) }));
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, RTCPeerConnection: FakePC, MediaStream: FakeMediaStream }));
  await e.enableMultiRoom(true);
  await e.loginRoom('r1', 't', { userID: 'alice' });
  await e.loginRoom('r2', 't', { userID: 'alice' });
  await e.startPlayingStream('s-r1');
  await e.startPlayingStream('s-r2');
  await e.logoutRoom('r1');
  assert.deepEqual([...e._players.keys()], ['s-r2']);
  await e.logoutRoom();
  assert.equal(e._players.size, 0);
  assert.equal(e._rooms.size, 0);
  e.destroy();
});

test('digestStats computes bitrate/fps from deltas', () => {
  const mk = (ts, bytes, frames) =>
    new Map([
      ['o1', { id: 'o1', type: 'outbound-rtp', kind: 'video', timestamp: ts, bytesSent: bytes, framesEncoded: frames, codecId: 'c1', frameWidth: 640, frameHeight: 480 }],
      ['o2', { id: 'o2', type: 'outbound-rtp', kind: 'audio', timestamp: ts, bytesSent: bytes / 10 }],
      ['c1', { id: 'c1', type: 'codec', mimeType: 'video/VP8' }],
      ['r1', { id: 'r1', type: 'remote-inbound-rtp', packetsLost: 3, roundTripTime: 0.05 }],
      ['t', { id: 't', type: 'transport', selectedCandidatePairId: 'p' }],
      ['p', { id: 'p', type: 'candidate-pair', currentRoundTripTime: 0.012 }],
    ]);
  const a = digestStats(mk(1000, 10000, 0), null, 'publisher');
  assert.equal(a.digest.bitrateKbps, 0);
  const b = digestStats(mk(2000, 135000, 30), a.snapshot, 'publisher');
  assert.equal(b.digest.videoBitrateKbps, 1000);
  assert.equal(b.digest.audioBitrateKbps, 100);
  assert.equal(b.digest.bitrateKbps, 1100);
  assert.equal(b.digest.fps, 30);
  assert.equal(b.digest.framesEncoded, 30);
  assert.equal(b.digest.packetsLost, 3);
  assert.equal(b.digest.rttMs, 12);
  assert.equal(b.digest.videoCodec, 'VP8');
  assert.equal(b.digest.width, 640);
  const p = digestStats(new Map([['i', { id: 'i', type: 'inbound-rtp', kind: 'video', timestamp: 5, bytesReceived: 1, framesDecoded: 7, packetsLost: 2 }]]), null, 'player');
  assert.equal(p.digest.framesDecoded, 7);
  assert.equal(p.digest.packetsLost, 2);
  assert.equal(p.digest.rttMs, null);
});

test('ZEGO shapes: ZegoExpressEngine, enableMultiRoom false cases, switchRoom {token}, object commands, code/msg', async () => {
  assert.equal(ZegoExpressEngine, Engine);
  const net = fakeNet(loginHandler({ sendCustomCommand: () => ({}), switchRoom: () => ({ streamList: [], userList: [], extraInfoList: [] }) }));
  const e = track(new ZegoExpressEngine(1, 'http://x', { WebSocket: net.WebSocket }));
  assert.equal(e.enableMultiRoom('yes'), false, 'not a boolean');
  assert.equal(e.enableMultiRoom(true), true);
  assert.equal(e.enableMultiRoom(true), false, 'a second call');
  assert.equal(await e.loginRoom('first', 'tok', { userID: 'zegoUser' }), true);
  assert.equal(await e.switchRoom('first', 'second', { token: 'tok2', isUserStatusNotify: true }), true);
  const sw = net.sockets[0].sent.find((m) => m.op === 'switchRoom');
  assert.deepEqual([sw.fromRoomID, sw.toRoomID, sw.token, sw.config], ['first', 'second', 'tok2', { userUpdate: true }]);
  assert.deepEqual([...e._rooms.keys()], ['second']);
  // The old positional token still works.
  await e.switchRoom('second', 'third', 'tok3');
  assert.equal(net.sockets[0].sent.filter((m) => m.op === 'switchRoom')[1].token, 'tok3');
  await assert.rejects(e.switchRoom('third', 'fourth', {}), { code: ErrorCode.INVALID_PARAMETER });
  // The seed's sample passes an object: it is sent as its JSON text.
  await e.sendCustomCommand('third', { text: 'rtc.sendCustomCommand test' }, []);
  const cmd = net.sockets[0].sent.find((m) => m.op === 'sendCustomCommand');
  assert.equal(cmd.command, '{"text":"rtc.sendCustomCommand test"}');
  const loop = {};
  loop.self = loop;
  await assert.rejects(e.sendCustomCommand('third', loop), { code: ErrorCode.INVALID_PARAMETER });
  net.handler = () => ({ code: 1002033, message: 'token invalid' });
  await assert.rejects(e.loginRoom('r9', 'bad', { userID: 'a' }), { code: 1002033, msg: 'token invalid', message: 'token invalid' });
  e.destroy();
});

test('a play that waits: PLAY_REQUESTING keeps the peer connection, PLAYING when media flows', async () => {
  const net = fakeNet(loginHandler({ startPlayingStream: () => ({ sdp: 'v=0 a' }) }));
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, RTCPeerConnection: FakePC, MediaStream: FakeMediaStream }));
  const log = recorder(e);
  await e.loginRoom('r1', 't', { userID: 'alice' });
  const stream = await e.startPlayingStream('later');
  assert.equal(typeof stream.playVideo, 'function');
  const ws = net.sockets[0];
  ws.push({ event: 'playerStateUpdate', streamID: 'later', state: 'PLAY_REQUESTING', errorCode: 1004002 });
  const pc = e._players.get('later').pc;
  pc.connect(); // ICE is up, but nothing is published yet
  ws.push({ event: 'playerStateUpdate', streamID: 'later', state: 'PLAYING', errorCode: 0 });
  // The publisher goes away and comes back: same peer connection throughout.
  ws.push({ event: 'playerStateUpdate', streamID: 'later', state: 'PLAY_REQUESTING', errorCode: 1004002 });
  ws.push({ event: 'playerStateUpdate', streamID: 'later', state: 'PLAYING', errorCode: 0 });
  assert.equal(e._players.get('later').pc, pc);
  assert.ok(!pc.closed);
  const states = log.filter((l) => l[0] === 'playerStateUpdate').map((l) => `${l[2]}:${l[3]}`);
  assert.deepEqual(states, ['PLAY_REQUESTING:0', 'PLAY_REQUESTING:1004002', 'PLAYING:0', 'PLAY_REQUESTING:1004002', 'PLAYING:0']);
  assert.equal(e.mutePlayStreamVideo('later', true), true);
  assert.equal(stream.getTracks()[0].enabled, false);
  e.destroy();
});

test('createZegoStream: a local stream with playVideo/stopVideo; publish takes its promise', async () => {
  const made = [];
  const video = { kind: 'video', stop() { this.stopped = true; } };
  const mediaDevices = { getUserMedia: async () => { const s = new FakeMediaStream(); s.addTrack(video); made.push(s); return s; } };
  const net = fakeNet(loginHandler({ startPublishingStream: () => ({ sdp: 'v=0 answer' }) }));
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, RTCPeerConnection: FakePC, MediaStream: FakeMediaStream, mediaDevices }));
  await e.loginRoom('r1', 't', { userID: 'alice' });
  const pending = e.createZegoStream();
  await e.startPublishingStream('alice', pending, { roomID: 'r1' });
  const local = await pending;
  const children = [];
  const doc = { createElement: () => ({ tagName: 'VIDEO', style: {}, play: async () => {}, remove() { this.removed = true; } }) };
  const div = { tagName: 'DIV', ownerDocument: doc, appendChild: (c) => children.push(c) };
  const v = local.playVideo(div, { objectFit: 'cover' });
  assert.equal(children[0], v);
  assert.equal(v.srcObject, local);
  assert.ok(v.muted && v.autoplay && v.playsInline);
  assert.equal(e.mutePublishStreamVideo(local, true), true);
  assert.equal(video.enabled, false);
  assert.equal(e.mutePublishStreamAudio(local, true), false, 'no audio track');
  e.destroyStream(local);
  assert.ok(video.stopped && v.removed && v.srcObject === null);
  e.destroy();
});

test('play offers advertise the dependency descriptor once, on a free ID, in video sections only', () => {
  const offer = [
    'v=0',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'a=mid:0',
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'm=video 9 UDP/TLS/RTP/SAVPF 96',
    'a=mid:1',
    'a=extmap:2 urn:3gpp:video-orientation',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'a=rtpmap:96 VP8/90000',
    '',
  ].join('\r\n');
  const out = withDependencyDescriptor(offer);
  const lines = out.split('\r\n');
  const at = lines.indexOf(`a=extmap:4 ${DEPENDENCY_DESCRIPTOR}`);
  assert.ok(at > lines.indexOf('m=video 9 UDP/TLS/RTP/SAVPF 96'), out);
  assert.equal(lines[at - 1], 'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01');
  assert.equal(out.split(DEPENDENCY_DESCRIPTOR).length, 2, 'added once');
  assert.equal(withDependencyDescriptor(out), out, 'already there: unchanged');
  // No free one-byte ID: unchanged.
  const full = offer.replace('a=rtpmap:96', [...Array(14).keys()].map((i) => `a=extmap:${i + 1} urn:x:${i}`).join('\r\n') + '\r\na=rtpmap:96');
  assert.equal(withDependencyDescriptor(full), full);
});

test('simulcast publish: the layers the server pauses stop encoding, and resume', async () => {
  const net = fakeNet(loginHandler({ startPublishingStream: () => ({ sdp: 'v=0 answer' }) }));
  const applied = [];
  class SimulcastPC extends FakePC {
    getSenders() {
      return this.transceivers.map((t) => ({
        track: t.trackOrKind,
        getParameters: () => ({ encodings: (t.init.sendEncodings || []).map((e) => ({ ...e, active: t.active?.[e.rid] ?? true })) }),
        setParameters: async (p) => {
          t.active = Object.fromEntries(p.encodings.map((e) => [e.rid, e.active]));
          applied.push(p.encodings.map((e) => `${e.rid}:${e.active}`).join(' '));
        },
      }));
    }
  }
  const e = track(new Engine(1, 'http://x', { WebSocket: net.WebSocket, RTCPeerConnection: SimulcastPC, MediaStream: FakeMediaStream }));
  const log = recorder(e);
  await e.loginRoom('r1', 't', { userID: 'alice' });
  const local = new FakeMediaStream();
  local.addTrack({ kind: 'audio' });
  local.addTrack({ kind: 'video' });
  await e.startPublishingStream('cam', local, { simulcast: true });
  const ws = net.sockets[0];
  ws.push({ event: 'publisherVideoLayersUpdate', streamID: 'cam', pausedLayers: ['h', 'f'] });
  ws.push({ event: 'publisherVideoLayersUpdate', streamID: 'cam', pausedLayers: ['h'] });
  // Another stream's update is not ours.
  ws.push({ event: 'publisherVideoLayersUpdate', streamID: 'other', pausedLayers: ['q'] });
  await e._publishers.get('cam').layersApplied;
  assert.deepEqual(applied, ['q:true h:false f:false', 'q:true h:false f:true']);
  const events = log.filter((l) => l[0] === 'publisherVideoLayersUpdate').map((l) => [l[1], l[2]]);
  assert.deepEqual(events, [['cam', ['h', 'f']], ['cam', ['h']]]);
  // A play's layer is passed on as it comes.
  ws.push({ event: 'playerVideoLayerUpdate', streamID: 'cam', layer: 2 });
  assert.deepEqual(log.filter((l) => l[0] === 'playerVideoLayerUpdate').map((l) => l.slice(1)), [['cam', 2]]);
  e.destroy();
});
