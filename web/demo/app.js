// SFU Live Console — demo of the browser SDK (/sdk/engine.js).
//
// Stable hooks for automated browser tests (ids are also data-testids in kebab case):
//   Session:  #serverUrl #appId #userId #userName #token #fetch-token-btn #renew-token-btn
//             #token-status #multiRoom #userUpdate #reset-btn #conn-status[data-state=idle|connecting|connected|reconnecting]
//   Errors:   #error-banner (hidden unless an error; [data-code] = error code) #error-text #error-close
//   Rooms:    #login-room + #login-btn; tabs [data-testid=room-tab][data-room-id] (#room-tab-<roomID>);
//             panels [data-testid=room-panel][data-room-id] (#room-panel-<roomID>) containing
//             [data-testid=room-state][data-state=LOGINING|LOGINED|RECONNECTING|...] [data-testid=room-online]
//             [data-testid=user-list] > li[data-user-id]   [data-testid=user-count]
//             [data-testid=stream-list] > li[data-stream-id] > [data-testid=stream-play]   [data-testid=stream-count]
//             [data-testid=extra-list] > li[data-key]  [data-testid=extra-key|extra-value|extra-set]
//             [data-testid=chat-log] > li[data-kind=broadcast|barrage|command|system][data-from]
//             [data-testid=chat-kind|chat-target|chat-input|chat-send]  (ids #chat-input-<roomID> #chat-send-<roomID> …)
//             [data-testid=room-logout] [data-testid=switch-room-input|switch-room-btn]
//   Publish:  #publish-room (select) #publish-stream-id #publish-source (camera|screen) #publish-codec #publish-btn
//   Play:     #play-stream-id + #play-btn
//   Video:    #video-grid > [data-testid=video-tile][data-stream-id][data-role=publisher|player]
//             (#tile-<role>-<streamID>) with video[data-testid=tile-video], [data-testid=tile-state][data-state],
//             [data-testid=tile-stats] dd[data-stat=bitrateKbps|fps|resolution|packetsLost|rttMs|frames
//             |layer (players)|paused (publishers)], tile[data-layer] / tile[data-paused],
//             tile[data-bitrate][data-frames] (updated every second), [data-testid=tile-stop],
//             publisher tiles: [data-testid=tile-extra-input|tile-extra-set]
//   Log:      #event-log > li[data-event]
// Query parameters prefill the form: ?server=&appId=&userId=&userName=&room=
// window.demo.engine is the current Engine (or null).

import { ZegoExpressEngine } from '/sdk/engine.js';
import { deleteReasons, describeError } from './errors.js';
import { describeToken, fetchDevToken } from './token.js';
import { chatLine, h, logLine, renderExtra, renderStreams, renderUsers, roomPanel, roomTab, setBadge, videoTile } from './ui.js';

const ids = [
  'serverUrl', 'appId', 'userId', 'userName', 'token', 'fetch-token-btn', 'renew-token-btn', 'token-status',
  'multiRoom', 'userUpdate', 'reset-btn', 'login-form', 'login-room', 'publish-form', 'publish-room',
  'publish-stream-id', 'publish-source', 'publish-codec', 'publish-simulcast', 'publish-btn', 'play-form', 'play-stream-id',
  'known-streams', 'room-tabs', 'room-panels', 'rooms-empty', 'video-grid', 'video-empty', 'event-log',
  'error-banner', 'error-text', 'error-close', 'conn-status', 'whoami',
];
const el = Object.fromEntries(ids.map((id) => [id, document.getElementById(id)]));

let engine = null;
let self = null; // {userID, userName} of the session
let tokenFromDev = false;
const rooms = new Map(); // roomID -> {state, users, streams, extra, own, parts, tab, unread}
const tiles = new Map(); // `${role}:${streamID}` -> {parts, stream, roomID}
let activeRoom = null;

window.demo = {
  get engine() {
    return engine;
  },
  rooms,
  tiles,
};

// ------------------------------------------------------------ feedback

function showError(context, err) {
  const text = `${context}: ${describeError(err)}`;
  el['error-text'].textContent = text;
  el['error-banner'].dataset.code = err && err.code !== undefined ? String(err.code) : '';
  el['error-banner'].hidden = false;
  logLine(el['event-log'], 'error', text, 'error');
}

function hideError() {
  el['error-banner'].hidden = true;
  el['error-banner'].dataset.code = '';
}

const log = (name, text, tone) => logLine(el['event-log'], name, text, tone);
const who = (u) => (u ? u.userName || u.userID : '?');

function updateStatus() {
  const states = [...rooms.values()].map((r) => r.state);
  let state = 'idle';
  let text = engine ? 'Ready' : 'Not connected';
  if (states.includes('RECONNECTING')) [state, text] = ['reconnecting', 'Reconnecting…'];
  else if (states.includes('LOGINING')) [state, text] = ['connecting', 'Joining…'];
  else if (states.length) [state, text] = ['connected', `Connected · ${states.length} room${states.length > 1 ? 's' : ''}`];
  el['conn-status'].dataset.state = state;
  el['conn-status'].textContent = text;
  el['whoami'].textContent = self ? `${self.userName} (${self.userID}) · app ${el.appId.value}` : '';
  const joined = [...rooms.entries()].filter(([, r]) => r.state !== 'LOGINING');
  const keep = el['publish-room'].value;
  el['publish-room'].replaceChildren(
    ...(joined.length ? joined.map(([id]) => h('option', { value: id }, id)) : [h('option', { value: '' }, 'Join a room first')]),
  );
  if (joined.some(([id]) => id === keep)) el['publish-room'].value = keep;
  else if (activeRoom && rooms.has(activeRoom) && joined.some(([id]) => id === activeRoom)) el['publish-room'].value = activeRoom;
  el['publish-btn'].disabled = !joined.length;
  el['renew-token-btn'].disabled = !joined.length;
  el['reset-btn'].disabled = !engine;
  const streams = new Set();
  for (const r of rooms.values()) for (const s of r.streams.keys()) streams.add(s);
  el['known-streams'].replaceChildren(...[...streams].map((s) => h('option', { value: s })));
}

// ------------------------------------------------------------ settings & token

function defaults() {
  const q = new URLSearchParams(location.search);
  const origin = /^https?:$/.test(location.protocol) ? location.origin : 'http://127.0.0.1:7880';
  el.serverUrl.value = q.get('server') || origin;
  el.appId.value = q.get('appId') || '1';
  const rnd = Math.random().toString(36).slice(2, 6);
  el.userId.value = q.get('userId') || `user-${rnd}`;
  el.userName.value = q.get('userName') || `Guest ${rnd.toUpperCase()}`;
  el['login-room'].value = q.get('room') || 'lobby';
  suggestStreamID();
}

function suggestStreamID() {
  const base = `${(el.userId.value || 'me').replace(/[^A-Za-z0-9_-]/g, '_')}-${el['publish-source'].value === 'screen' ? 'screen' : 'cam'}`;
  let id = base;
  for (let n = 2; tiles.has(`publisher:${id}`); n++) id = `${base}${n}`;
  el['publish-stream-id'].value = id;
}

function readSettings() {
  const appID = Number(el.appId.value);
  if (!Number.isInteger(appID) || appID < 0 || appID > 0xffffffff) throw { code: 1001004, message: 'App ID must be a whole number' };
  const userID = el.userId.value.trim();
  if (!userID) throw { code: 1002005, message: 'User ID is empty' };
  return { appID, userID, userName: el.userName.value.trim() || userID, serverURL: el.serverUrl.value.trim() };
}

async function getDevToken() {
  try {
    const token = await fetchDevToken(readSettings());
    el.token.value = token;
    tokenFromDev = true;
    el['token-status'].textContent = `${describeToken(token)} (dev)`;
    el['token-status'].dataset.state = 'dev';
    return token;
  } catch (err) {
    if (err.unavailable) {
      el['token-status'].textContent =
        'Dev tokens are unavailable: this server is not running with --dev. Paste a token above (sfu token --app <id> --user <userID>).';
      el['token-status'].dataset.state = 'unavailable';
    }
    throw err;
  }
}

async function currentToken() {
  const t = el.token.value.trim();
  return t || getDevToken();
}

// ------------------------------------------------------------ engine

async function ensureEngine() {
  if (engine) return engine;
  const s = readSettings();
  const e = new ZegoExpressEngine(s.appID, s.serverURL);
  engine = e;
  self = { userID: s.userID, userName: s.userName };
  wireEvents(e);
  for (const id of ['serverUrl', 'appId', 'userId', 'userName', 'multiRoom']) el[id].disabled = true;
  updateStatus();
  if (el.multiRoom.checked) {
    if (!e.enableMultiRoom(true)) {
      resetSession();
      throw { code: 1000101, msg: 'enableMultiRoom refused', message: 'enableMultiRoom refused' };
    }
  }
  return e;
}

function resetSession() {
  if (engine) engine.destroy();
  engine = null;
  self = null;
  for (const key of [...tiles.keys()]) removeTile(...key.split(/:(.*)/s).slice(0, 2));
  for (const id of [...rooms.keys()]) removeRoom(id);
  for (const id of ['serverUrl', 'appId', 'userId', 'userName', 'multiRoom']) el[id].disabled = false;
  updateStatus();
}

function wireEvents(e) {
  e.on('roomStateChanged', (roomID, reason, errorCode) => {
    log('roomStateChanged', `${roomID} → ${reason}${errorCode ? ` (${errorCode})` : ''}`, errorCode ? 'warn' : '');
    if (reason === 'LOGINING') ensureRoom(roomID);
    const room = rooms.get(roomID);
    if (!room) return;
    if (['LOGINING', 'LOGINED', 'RECONNECTING', 'RECONNECTED'].includes(reason)) {
      room.state = reason === 'RECONNECTED' ? 'LOGINED' : reason;
      setBadge(room.parts.state, room.state);
    } else {
      if (reason === 'KICKOUT') showError(`Removed from room ${roomID}`, { code: errorCode });
      if (reason === 'RECONNECT_FAILED') showError(`Could not rejoin room ${roomID}`, { code: errorCode });
      removeRoom(roomID);
    }
    updateStatus();
  });
  e.on('roomUserUpdate', (roomID, updateType, userList) => {
    const room = rooms.get(roomID);
    log('roomUserUpdate', `${roomID}: ${userList.map(who).join(', ')} ${updateType === 'ADD' ? 'joined' : 'left'}`);
    if (!room) return;
    for (const u of userList) updateType === 'ADD' ? room.users.set(u.userID, u) : room.users.delete(u.userID);
    renderUsers(room.parts, self, room.users);
  });
  e.on('roomOnlineUserCountUpdate', (roomID, count) => {
    const room = rooms.get(roomID);
    if (room) room.parts.online.textContent = `${count} online`;
  });
  e.on('roomStreamUpdate', (roomID, updateType, streamList, extendedData) => {
    const why = deleteReasons(extendedData);
    log('roomStreamUpdate', `${roomID}: ${updateType} ${streamList.map((s) => s.streamID).join(', ')}${why}`);
    const room = rooms.get(roomID);
    if (!room) return;
    for (const s of streamList) updateType === 'ADD' ? room.streams.set(s.streamID, s) : room.streams.delete(s.streamID);
    renderRoomStreams(room);
    updateStatus();
  });
  e.on('streamExtraInfoUpdate', (roomID, streamList) => {
    log('streamExtraInfoUpdate', `${roomID}: ${streamList.map((s) => `${s.streamID}=${s.extraInfo}`).join(', ')}`);
    const room = rooms.get(roomID);
    if (!room) return;
    for (const s of streamList) room.streams.set(s.streamID, { ...(room.streams.get(s.streamID) || {}), ...s });
    renderRoomStreams(room);
  });
  const onChat = (kind) => (roomID, messageList) => {
    const room = rooms.get(roomID);
    for (const m of messageList) {
      if (room) chatLine(room.parts, { kind, from: who(m.fromUser), text: m.message, at: m.sendTime });
    }
    if (room) markUnread(room);
  };
  e.on('IMRecvBroadcastMessage', onChat('broadcast'));
  e.on('IMRecvBarrageMessage', onChat('barrage'));
  e.on('IMRecvCustomCommand', (roomID, fromUser, command) => {
    log('IMRecvCustomCommand', `${roomID}: from ${who(fromUser)}: ${command}`);
    const room = rooms.get(roomID);
    if (!room) return;
    chatLine(room.parts, { kind: 'command', from: who(fromUser), text: command });
    markUnread(room);
  });
  e.on('roomExtraInfoUpdate', (roomID, list) => {
    log('roomExtraInfoUpdate', `${roomID}: ${list.map((x) => `${x.key}=${x.value}`).join(', ')}`);
    const room = rooms.get(roomID);
    if (!room) return;
    room.extra = list;
    renderExtra(room.parts, list);
  });
  e.on('tokenWillExpire', async (roomID) => {
    log('tokenWillExpire', `${roomID}: token expires in 30 s`, 'warn');
    if (!tokenFromDev) {
      showError(`Token for room ${roomID} expires in 30 s`, { message: 'paste a new token and press "Renew in rooms"' });
      return;
    }
    try {
      const token = await getDevToken();
      await e.renewToken(roomID, token);
      log('renewToken', `${roomID}: renewed with a fresh dev token`);
    } catch (err) {
      showError(`Could not renew the token of ${roomID}`, err);
    }
  });
  e.on('publisherStateUpdate', (streamID, state, errorCode) => {
    log('publisherStateUpdate', `${streamID} → ${state}${errorCode ? ` (${errorCode})` : ''}`, errorCode ? 'warn' : '');
    const t = tiles.get(`publisher:${streamID}`);
    if (state === 'NO_PUBLISH') {
      if (errorCode) showError(`Publishing ${streamID} stopped`, { code: errorCode });
      removeTile('publisher', streamID);
    } else if (t) setBadge(t.parts.state, state);
  });
  e.on('playerVideoLayerUpdate', (streamID, layer) => {
    const t = tiles.get(`player:${streamID}`);
    if (t) t.parts.setLayer(layer);
  });
  e.on('publisherVideoLayersUpdate', (streamID, paused) => {
    log('publisherVideoLayersUpdate', `${streamID}: ${paused.length ? `paused ${paused.join(', ')} (no player takes them)` : 'every layer sent'}`);
    const t = tiles.get(`publisher:${streamID}`);
    if (t) t.parts.setPaused(paused);
  });
  e.on('playerStateUpdate', (streamID, state, errorCode) => {
    log('playerStateUpdate', `${streamID} → ${state}${errorCode ? ` (${errorCode})` : ''}`, errorCode ? 'warn' : '');
    const t = tiles.get(`player:${streamID}`);
    if (state === 'NO_PLAY') {
      if (errorCode === 1004002) log('player', `${streamID} ended: its publisher stopped`, 'warn');
      else if (errorCode) showError(`Playing ${streamID} stopped`, { code: errorCode });
      removeTile('player', streamID);
    } else if (t) setBadge(t.parts.state, state);
  });
}

// ------------------------------------------------------------ rooms

function ensureRoom(roomID) {
  if (rooms.has(roomID)) return rooms.get(roomID);
  const room = { state: 'LOGINING', users: new Map(), streams: new Map(), extra: [], own: new Set(), unread: 0 };
  room.parts = roomPanel(roomID, {
    onLogout: () => logout(roomID),
    onSwitch: (to) => switchRoom(roomID, to),
    onSend: (kind, text, target) => send(roomID, kind, text, target),
    onSetExtra: (key, value) => setExtra(roomID, key, value),
    onPlay: (streamID) => play(streamID),
  });
  room.tab = roomTab(roomID, () => selectRoom(roomID));
  setBadge(room.parts.state, 'LOGINING');
  renderUsers(room.parts, self, room.users);
  renderStreams(room.parts, room.streams, room.own, play);
  renderExtra(room.parts, room.extra);
  rooms.set(roomID, room);
  el['room-tabs'].append(room.tab);
  el['room-panels'].append(room.parts.panel);
  el['rooms-empty'].hidden = true;
  selectRoom(roomID);
  return room;
}

function removeRoom(roomID) {
  const room = rooms.get(roomID);
  if (!room) return;
  rooms.delete(roomID);
  room.tab.remove();
  room.parts.panel.remove();
  if (activeRoom === roomID) {
    activeRoom = null;
    const next = rooms.keys().next();
    if (!next.done) selectRoom(next.value);
  }
  el['rooms-empty'].hidden = rooms.size > 0;
  updateStatus();
}

function selectRoom(roomID) {
  activeRoom = roomID;
  for (const [id, r] of rooms) {
    const on = id === roomID;
    r.parts.panel.hidden = !on;
    r.tab.setAttribute('aria-selected', String(on));
    if (on) {
      r.unread = 0;
      r.tab.querySelector('.unread').hidden = true;
    }
  }
}

function markUnread(room) {
  if (room.parts.panel.hidden) {
    room.unread += 1;
    const badge = room.tab.querySelector('.unread');
    badge.textContent = String(room.unread);
    badge.hidden = false;
  }
}

function renderRoomStreams(room) {
  const all = new Map(room.streams);
  for (const id of room.own) if (!all.has(id)) all.set(id, { streamID: id, user: self, extraInfo: '' });
  renderStreams(room.parts, all, room.own, play);
}

function applyResult(roomID, res) {
  const room = rooms.get(roomID);
  if (!room) return;
  for (const u of res.userList || []) room.users.set(u.userID, u);
  for (const s of res.streamList || []) room.streams.set(s.streamID, s);
  room.extra = res.extraInfoList || [];
  renderUsers(room.parts, self, room.users);
  renderRoomStreams(room);
  renderExtra(room.parts, room.extra);
  updateStatus();
}

async function login(roomID) {
  if (!roomID) return showError('Join', { code: 1002011 });
  hideError();
  try {
    const e = await ensureEngine();
    const token = await currentToken();
    await e.loginRoom(roomID, token, self, { userUpdate: el.userUpdate.checked });
    const res = e.getRoomInfo(roomID);
    applyResult(roomID, res);
    selectRoom(roomID);
    log('loginRoom', `${roomID}: ${res.userList.length} other member(s), ${res.streamList.length} stream(s)`);
  } catch (err) {
    showError(`Couldn't join ${roomID}`, err);
    if (engine && rooms.size === 0 && tiles.size === 0) resetSession(); // unlock the settings
  }
}

async function switchRoom(from, to) {
  if (!to) return showError('Switch', { code: 1002011 });
  try {
    const token = await currentToken();
    await engine.switchRoom(from, to, { token, isUserStatusNotify: el.userUpdate.checked });
    applyResult(to, engine.getRoomInfo(to));
    selectRoom(to);
  } catch (err) {
    showError(`Couldn't switch from ${from} to ${to}`, err);
  }
}

async function logout(roomID) {
  try {
    await engine.logoutRoom(roomID);
  } catch (err) {
    showError(`Couldn't leave ${roomID}`, err);
  }
}

async function send(roomID, kind, text, target) {
  const room = rooms.get(roomID);
  try {
    if (kind === 'broadcast') await engine.sendBroadcastMessage(roomID, text);
    else if (kind === 'barrage') await engine.sendBarrageMessage(roomID, text);
    else await engine.sendCustomCommand(roomID, text, target ? [target] : []);
    const to = kind === 'command' ? ` → ${target ? who(room.users.get(target)) : 'everyone'}` : '';
    if (room) chatLine(room.parts, { kind, from: self.userID, text: text + to, mine: true });
    return true;
  } catch (err) {
    showError(`Couldn't send to ${roomID}`, err);
    return false;
  }
}

async function setExtra(roomID, key, value) {
  try {
    await engine.setRoomExtraInfo(roomID, key, value);
    const room = rooms.get(roomID);
    if (room) {
      room.extra = [...room.extra.filter((x) => x.key !== key), { key, value, updateUser: self, updateTime: Date.now() }];
      renderExtra(room.parts, room.extra);
    }
  } catch (err) {
    showError(`Couldn't set extra info in ${roomID}`, err);
  }
}

// ------------------------------------------------------------ media

function addTile(role, streamID, roomID) {
  removeTile(role, streamID);
  const parts = videoTile({
    streamID,
    role,
    subtitle: role === 'publisher' ? `you · ${roomID}` : describeRemote(streamID),
    onStop: () => (role === 'publisher' ? stopPublish(streamID) : stopPlay(streamID)),
    onExtra: role === 'publisher' ? (v) => setStreamExtra(streamID, v) : null,
    onQuality:
      role === 'player'
        ? (q) => engine.setPlayVideoQuality(streamID, q).catch((err) => showError(`Couldn't set the quality of ${streamID}`, err))
        : null,
  });
  setBadge(parts.state, role === 'publisher' ? 'PUBLISH_REQUESTING' : 'PLAY_REQUESTING');
  const t = { parts, stream: null, roomID };
  tiles.set(`${role}:${streamID}`, t);
  el['video-grid'].append(parts.tile);
  el['video-empty'].hidden = true;
  return t;
}

function describeRemote(streamID) {
  for (const [roomID, r] of rooms) {
    const s = r.streams.get(streamID);
    if (s) return `${s.user ? who(s.user) : 'remote'} · ${roomID}`;
  }
  return 'remote';
}

function removeTile(role, streamID) {
  const key = `${role}:${streamID}`;
  const t = tiles.get(key);
  if (!t) return;
  tiles.delete(key);
  t.parts.video.srcObject = null;
  t.parts.tile.remove();
  if (role === 'publisher') {
    if (t.stream) t.stream.getTracks().forEach((tr) => tr.stop());
    const room = rooms.get(t.roomID);
    if (room && room.own.delete(streamID)) renderRoomStreams(room);
  }
  el['video-empty'].hidden = tiles.size > 0;
}

async function publish() {
  hideError();
  const roomID = el['publish-room'].value;
  const streamID = el['publish-stream-id'].value.trim();
  if (!engine || !roomID) return showError('Publish', { code: 1000002 });
  const screen = el['publish-source'].value === 'screen';
  let stream;
  try {
    stream = await engine.createZegoStream(screen ? { screen: { video: true, audio: false } } : { camera: { video: true, audio: true } });
  } catch (err) {
    return showError(screen ? "Couldn't capture the screen" : "Couldn't open camera and microphone", err);
  }
  const t = addTile('publisher', streamID, roomID);
  t.parts.tile.classList.toggle('mirror', !screen);
  t.stream = stream;
  t.parts.attach(stream);
  stream.getVideoTracks().forEach((tr) => tr.addEventListener('ended', () => stopPublish(streamID)));
  try {
    await engine.startPublishingStream(streamID, stream, {
      roomID,
      videoCodec: el['publish-codec'].value || undefined,
      simulcast: el['publish-simulcast'].checked,
    });
    const room = rooms.get(roomID);
    if (room) {
      room.own.add(streamID);
      renderRoomStreams(room);
    }
    suggestStreamID();
  } catch (err) {
    if (tiles.get(`publisher:${streamID}`) === t) removeTile('publisher', streamID);
    stream.getTracks().forEach((tr) => tr.stop());
    showError(`Couldn't publish ${streamID}`, err);
  }
}

async function stopPublish(streamID) {
  removeTile('publisher', streamID);
  try {
    await engine.stopPublishingStream(streamID);
  } catch (err) {
    showError(`Couldn't stop ${streamID}`, err);
  }
  suggestStreamID();
}

async function setStreamExtra(streamID, extraInfo) {
  try {
    await engine.setStreamExtraInfo(streamID, extraInfo);
    log('setStreamExtraInfo', `${streamID} = ${extraInfo}`);
  } catch (err) {
    showError(`Couldn't set extra info of ${streamID}`, err);
  }
}

async function play(streamID) {
  streamID = (streamID || '').trim();
  if (!streamID) return showError('Play', { code: 1000015 });
  if (!engine || !rooms.size) return showError(`Couldn't play ${streamID}`, { code: 1000002 });
  hideError();
  const t = addTile('player', streamID, null);
  try {
    const stream = await engine.startPlayingStream(streamID);
    if (tiles.get(`player:${streamID}`) !== t) return;
    t.stream = stream;
    t.parts.attach(stream);
  } catch (err) {
    if (tiles.get(`player:${streamID}`) === t) removeTile('player', streamID);
    showError(`Couldn't play ${streamID}`, err);
  }
}

async function stopPlay(streamID) {
  removeTile('player', streamID);
  try {
    await engine.stopPlayingStream(streamID);
  } catch (err) {
    showError(`Couldn't stop playing ${streamID}`, err);
  }
}

// One stats pass per second over every tile.
setInterval(() => {
  if (!engine) return;
  for (const [key, t] of tiles) {
    const [role, streamID] = key.split(/:(.*)/s);
    engine.getStats(streamID, role).then((d) => t.parts.setStats(d), () => {});
  }
}, 1000);

// ------------------------------------------------------------ wiring

el['login-form'].addEventListener('submit', (e) => {
  e.preventDefault();
  login(el['login-room'].value.trim());
});
el['publish-form'].addEventListener('submit', (e) => {
  e.preventDefault();
  publish();
});
el['play-form'].addEventListener('submit', (e) => {
  e.preventDefault();
  play(el['play-stream-id'].value);
});
el['publish-source'].addEventListener('change', suggestStreamID);
el['error-close'].addEventListener('click', hideError);
el['reset-btn'].addEventListener('click', () => {
  resetSession();
  log('session', 'disconnected and reset');
});
el['fetch-token-btn'].addEventListener('click', () => {
  hideError();
  getDevToken().catch((err) => showError('Dev token', err));
});
el['renew-token-btn'].addEventListener('click', async () => {
  const token = el.token.value.trim();
  if (!token) return showError('Renew', { code: 1002067 });
  for (const roomID of rooms.keys()) {
    try {
      await engine.renewToken(roomID, token);
      log('renewToken', `${roomID}: renewed`);
    } catch (err) {
      showError(`Couldn't renew the token of ${roomID}`, err);
    }
  }
});
el.token.addEventListener('input', () => {
  tokenFromDev = false;
  const t = el.token.value.trim();
  el['token-status'].textContent = t ? describeToken(t) : '';
  el['token-status'].dataset.state = t ? 'pasted' : '';
});
for (const id of ['userId', 'appId', 'serverUrl']) {
  el[id].addEventListener('change', () => {
    if (tokenFromDev) {
      // A dev token is per app and user: fetch a new one at the next login.
      el.token.value = '';
      el['token-status'].textContent = '';
      tokenFromDev = false;
    }
    if (id === 'userId') suggestStreamID();
  });
}

defaults();
updateStatus();
