// Room bookkeeping and the reconnect procedure of the Engine.

import { ErrorCode, isTransportError, sleep } from './common.js';

export function newRoom(roomID, token, user, config) {
  return { roomID, token, user, config, streams: new Map(), users: new Map(), extraInfoList: [], stale: false };
}

/** Replace a room's lists with a login result; returns what was added and removed. */
export function applyLists(room, res) {
  const streams = new Map((res.streamList || []).map((s) => [s.streamID, s]));
  const users = new Map((res.userList || []).map((u) => [u.userID, u]));
  const extra = res.extraInfoList || [];
  const diff = {
    streamsAdded: [...streams.values()].filter((s) => !room.streams.has(s.streamID)),
    streamsDeleted: [...room.streams.values()].filter((s) => !streams.has(s.streamID)),
    usersAdded: [...users.values()].filter((u) => !room.users.has(u.userID)),
    usersDeleted: [...room.users.values()].filter((u) => !users.has(u.userID)),
    extraChanged: extra.length > 0 && JSON.stringify(extra) !== JSON.stringify(room.extraInfoList),
  };
  room.streams = streams;
  room.users = users;
  room.extraInfoList = extra;
  return diff;
}

/** Backoff before reconnect attempt n (0-based): 500 ms doubling up to `max`, +-20 % jitter. */
export function backoffDelay(attempt, max) {
  return Math.min(max, 500 * 2 ** attempt) * (0.8 + Math.random() * 0.4);
}

/**
 * The server session could not be resumed (1002099): what hung off it is
 * gone on the server, so end the publishes and plays locally too (their
 * state callbacks say NO_PUBLISH / NO_PLAY 1002099); the rooms are logged
 * into afresh by the caller.
 */
function sessionLost(engine, code) {
  engine._session = null;
  engine._lastSeq = 0;
  for (const rec of [...engine._publishers.values(), ...engine._players.values()]) {
    engine._endRecord(rec, code);
  }
}

/**
 * `resume` as a new socket's first request. Resolves true when the server
 * session was taken over: RECONNECTED for each room, and with `gap` the
 * ADD/DELETE events for what changed meanwhile (the replayed events follow
 * on the socket). Resolves false on 1002099 (the socket stays usable for a
 * fresh login); transport errors reject.
 */
async function tryResume(engine, conn, stale) {
  const s = engine._session;
  if (!s) return false;
  let res;
  try {
    res = await conn.request('resume', { sessionID: s.sessionID, resumeToken: s.resumeToken, lastSeq: engine._lastSeq });
  } catch (e) {
    if (isTransportError(e)) throw e;
    sessionLost(engine, e.code);
    return false;
  }
  const views = new Map((res.rooms || []).map((r) => [r.roomID, r]));
  for (const room of stale) {
    if (engine._rooms.get(room.roomID) !== room) continue;
    const view = views.get(room.roomID);
    if (!view) {
      // The server no longer has us there and the event saying so was lost.
      engine._leaveLocal(room.roomID, 'KICKOUT', ErrorCode.SESSION_LOST, '{}');
      continue;
    }
    room.stale = false;
    const diff = res.gap ? applyLists(room, view) : null;
    engine._emit('roomStateChanged', room.roomID, 'RECONNECTED', 0, '{}');
    if (diff) engine._emitDiff(room, diff);
  }
  return true;
}

/**
 * After an unexpected socket close with rooms joined: RECONNECTING for each
 * room, then new sockets with backoff. Each first asks to `resume` the
 * server session (kept for the server's resume window: rooms, publishes and
 * plays untouched, missed events replayed); if the server refuses (1002099),
 * every room is logged into afresh (RECONNECTED, with ADD/DELETE events for
 * what changed meanwhile) or fails (RECONNECT_FAILED: the server refused the
 * login, or reconnectTimeout passed). Requests made meanwhile wait for the
 * end (engine._reconnecting).
 */
export function runReconnect(engine, cause) {
  let done;
  engine._reconnecting = new Promise((r) => (done = r));
  const markStale = (code) => {
    for (const room of engine._rooms.values()) {
      if (room.stale) continue;
      room.stale = true;
      engine._emit('roomStateChanged', room.roomID, 'RECONNECTING', code, '{}');
    }
  };
  markStale(cause.code);
  const started = Date.now();
  const o = engine._opts;
  const loop = async () => {
    for (let attempt = 0; ; attempt++) {
      if (engine._destroyed) return;
      const stale = [...engine._rooms.values()].filter((r) => r.stale);
      if (!stale.length) return;
      try {
        const resuming = !!engine._session;
        const conn = await engine._open(resuming);
        if (resuming) {
          if (await tryResume(engine, conn, stale)) return;
          // A fresh session on this socket: the multi-room choice first.
          if (engine._multiRoom !== null) await conn.request('enableMultiRoom', { enable: engine._multiRoom });
        }
        for (const room of stale) {
          if (engine._rooms.get(room.roomID) !== room) continue;
          const fields = { roomID: room.roomID, token: room.token, user: room.user };
          if (room.config) fields.config = room.config;
          let res;
          try {
            res = await conn.request('loginRoom', fields);
          } catch (e) {
            if (isTransportError(e)) throw e;
            engine._leaveLocal(room.roomID, 'RECONNECT_FAILED', e.code, '{}');
            continue;
          }
          if (res.sessionID && res.resumeToken) {
            engine._session = { sessionID: res.sessionID, resumeToken: res.resumeToken };
          }
          room.stale = false;
          const diff = applyLists(room, res);
          engine._emit('roomStateChanged', room.roomID, 'RECONNECTED', 0, '{}');
          engine._emitDiff(room, diff);
        }
      } catch (e) {
        if (engine._destroyed) return;
        const c = engine._conn;
        if (c) {
          engine._conn = null;
          c.close(e);
        }
        markStale(e.code);
        const delay = backoffDelay(attempt, o.reconnectMaxDelay);
        if (Date.now() - started + delay > o.reconnectTimeout) {
          sessionLost(engine, e.code || ErrorCode.NETWORK);
          for (const room of [...engine._rooms.values()]) {
            if (room.stale) engine._leaveLocal(room.roomID, 'RECONNECT_FAILED', e.code || ErrorCode.NETWORK, '{}');
          }
          return;
        }
        await sleep(delay);
      }
    }
  };
  loop()
    .catch((e) => console.error('[engine] reconnect', e))
    .finally(() => {
      engine._reconnecting = null;
      done();
    });
}
