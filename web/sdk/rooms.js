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
 * After an unexpected socket close with rooms joined: RECONNECTING for each
 * room, then new sockets with backoff until every room is re-logged
 * (RECONNECTED, with ADD/DELETE events for what changed meanwhile) or has
 * failed (RECONNECT_FAILED: the server refused the login, or reconnectTimeout
 * passed). Requests made meanwhile wait for the end (engine._reconnecting).
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
        const conn = await engine._open(); // replays enableMultiRoom first
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
