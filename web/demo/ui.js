// DOM building blocks of the demo: element helper, room panels, video tiles,
// chat lines, event log. No state lives here; app.js owns it.

export const $ = (sel, root = document) => root.querySelector(sel);

/** h('div', {class: 'x', dataset: {a: 1}, onclick}, child, 'text', ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const time = (ms) =>
  new Date(ms || Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

const STATE_LABEL = {
  LOGINING: 'Joining…',
  LOGINED: 'Joined',
  RECONNECTING: 'Reconnecting…',
  RECONNECTED: 'Joined',
  PUBLISH_REQUESTING: 'Connecting…',
  PUBLISHING: 'Live',
  PLAY_REQUESTING: 'Connecting…',
  PLAYING: 'Playing',
};
const STATE_TONE = {
  LOGINING: 'warn',
  RECONNECTING: 'warn',
  PUBLISH_REQUESTING: 'warn',
  PLAY_REQUESTING: 'warn',
  LOGINED: 'ok',
  RECONNECTED: 'ok',
  PUBLISHING: 'live',
  PLAYING: 'ok',
};

/** Set a badge's text/tone from an SDK state name. */
export function setBadge(el, state) {
  el.textContent = STATE_LABEL[state] || state;
  el.dataset.state = state;
  el.className = `badge ${STATE_TONE[state] || ''}`;
}

/**
 * A room panel. `actions` = {onLogout, onSwitch(to), onSend(kind, text, target),
 * onSetExtra(key, value), onPlay(streamID)}. Returns the panel and its parts.
 */
export function roomPanel(roomID, actions) {
  const rid = roomID;
  const state = h('span', { class: 'badge', 'data-testid': 'room-state' });
  const online = h('span', { class: 'muted', 'data-testid': 'room-online' });
  const userCount = h('span', { class: 'count', 'data-testid': 'user-count' }, '0');
  const streamCount = h('span', { class: 'count', 'data-testid': 'stream-count' }, '0');
  const users = h('ul', { class: 'list', 'data-testid': 'user-list', id: `user-list-${rid}` });
  const streams = h('ul', { class: 'list', 'data-testid': 'stream-list', id: `stream-list-${rid}` });
  const extraList = h('ul', { class: 'list compact', 'data-testid': 'extra-list', id: `extra-list-${rid}` });
  const chatLog = h('ol', { class: 'chat-log', 'data-testid': 'chat-log', id: `chat-log-${rid}`, 'aria-live': 'polite' });

  const switchInput = h('input', { 'data-testid': 'switch-room-input', id: `switch-room-input-${rid}`, placeholder: 'Other room ID', 'aria-label': 'Switch to room' });
  const switchForm = h(
    'form',
    { class: 'inline', onsubmit: (e) => (e.preventDefault(), actions.onSwitch(switchInput.value.trim())) },
    switchInput,
    h('button', { type: 'submit', class: 'ghost', 'data-testid': 'switch-room-btn', id: `switch-room-btn-${rid}` }, 'Switch'),
  );

  const extraKey = h('input', { 'data-testid': 'extra-key', id: `extra-key-${rid}`, placeholder: 'key', maxlength: 10, 'aria-label': 'Extra info key' });
  const extraValue = h('input', { 'data-testid': 'extra-value', id: `extra-value-${rid}`, placeholder: 'value', 'aria-label': 'Extra info value' });
  const extraForm = h(
    'form',
    { class: 'inline', onsubmit: (e) => (e.preventDefault(), actions.onSetExtra(extraKey.value.trim(), extraValue.value)) },
    extraKey,
    extraValue,
    h('button', { type: 'submit', class: 'ghost', 'data-testid': 'extra-set', id: `extra-set-${rid}` }, 'Set'),
  );

  const kind = h(
    'select',
    { 'data-testid': 'chat-kind', id: `chat-kind-${rid}`, 'aria-label': 'Message type' },
    h('option', { value: 'broadcast' }, 'Message'),
    h('option', { value: 'barrage' }, 'Barrage'),
    h('option', { value: 'command' }, 'Command'),
  );
  const target = h('select', { 'data-testid': 'chat-target', id: `chat-target-${rid}`, 'aria-label': 'Command target', hidden: true });
  const input = h('input', { 'data-testid': 'chat-input', id: `chat-input-${rid}`, placeholder: 'Write a message…', autocomplete: 'off', 'aria-label': 'Message' });
  kind.addEventListener('change', () => {
    target.hidden = kind.value !== 'command';
    input.placeholder = kind.value === 'command' ? 'Command text…' : 'Write a message…';
  });
  const chatForm = h(
    'form',
    {
      class: 'chat-form',
      onsubmit: (e) => {
        e.preventDefault();
        if (!input.value) return;
        actions.onSend(kind.value, input.value, target.value).then((ok) => ok && (input.value = ''));
      },
    },
    kind,
    target,
    input,
    h('button', { type: 'submit', 'data-testid': 'chat-send', id: `chat-send-${rid}` }, 'Send'),
  );

  const panel = h(
    'section',
    { class: 'room-panel', role: 'tabpanel', 'data-testid': 'room-panel', dataset: { roomId: rid }, id: `room-panel-${rid}` },
    h(
      'header',
      { class: 'room-head' },
      h('div', { class: 'room-title' }, h('h3', {}, rid), state, online),
      h(
        'div',
        { class: 'room-actions' },
        switchForm,
        h('button', { class: 'danger ghost', 'data-testid': 'room-logout', id: `room-logout-${rid}`, onclick: actions.onLogout }, 'Leave'),
      ),
    ),
    h(
      'div',
      { class: 'room-body' },
      h(
        'div',
        { class: 'room-col' },
        h('h4', {}, 'Members ', userCount),
        users,
        h('h4', {}, 'Streams ', streamCount),
        streams,
        h('h4', {}, 'Room extra info'),
        extraList,
        extraForm,
      ),
      h('div', { class: 'room-col chat' }, h('h4', {}, 'Chat'), chatLog, chatForm),
    ),
  );
  return { panel, state, online, users, userCount, streams, streamCount, extraList, chatLog, target, input };
}

/** A room tab button with an unread-count bubble. */
export function roomTab(roomID, onSelect) {
  return h(
    'button',
    { type: 'button', role: 'tab', class: 'tab', 'data-testid': 'room-tab', dataset: { roomId: roomID }, id: `room-tab-${roomID}`, onclick: onSelect },
    roomID,
    h('span', { class: 'unread', hidden: true }),
  );
}

/** Re-render a room's member list (self first), command targets and counts. */
export function renderUsers(parts, self, users) {
  parts.users.replaceChildren(
    h('li', { dataset: { userId: self.userID }, class: 'self' }, h('span', { class: 'avatar' }, initials(self.userName || self.userID)), h('span', {}, self.userName || self.userID), h('span', { class: 'tag' }, 'you')),
    ...[...users.values()].map((u) =>
      h('li', { dataset: { userId: u.userID } }, h('span', { class: 'avatar' }, initials(u.userName || u.userID)), h('span', {}, u.userName || u.userID), u.userName && u.userName !== u.userID ? h('span', { class: 'muted' }, u.userID) : null),
    ),
  );
  parts.userCount.textContent = String(users.size + 1);
  const keep = parts.target.value;
  parts.target.replaceChildren(
    h('option', { value: '' }, 'Everyone'),
    ...[...users.values()].map((u) => h('option', { value: u.userID }, u.userName || u.userID)),
  );
  parts.target.value = [...users.keys()].includes(keep) ? keep : '';
}

/** Re-render a room's stream list; `own` is a Set of our streams in the room. */
export function renderStreams(parts, streams, own, onPlay) {
  const items = [...streams.values()].map((s) =>
    h(
      'li',
      { dataset: { streamId: s.streamID } },
      h('div', { class: 'stream-main' }, h('code', {}, s.streamID), own.has(s.streamID) ? h('span', { class: 'tag live' }, 'yours') : null),
      h('div', { class: 'muted small' }, s.user ? `by ${s.user.userName || s.user.userID}` : '', s.extraInfo ? ` · ${s.extraInfo}` : ''),
      h('button', { class: 'ghost small', 'data-testid': 'stream-play', onclick: () => onPlay(s.streamID) }, 'Play'),
    ),
  );
  parts.streams.replaceChildren(...(items.length ? items : [h('li', { class: 'empty' }, 'No streams yet')]));
  parts.streamCount.textContent = String(streams.size);
}

export function renderExtra(parts, list) {
  const items = list.map((e) =>
    h('li', { dataset: { key: e.key } }, h('code', {}, e.key), h('span', {}, e.value), h('span', { class: 'muted small' }, e.updateUser ? `${e.updateUser.userName || e.updateUser.userID} · ${time(e.updateTime)}` : '')),
  );
  parts.extraList.replaceChildren(...(items.length ? items : [h('li', { class: 'empty' }, 'None set')]));
}

/** Append a chat line: kind is broadcast | barrage | command | system. */
export function chatLine(parts, { kind, from, text, at, mine }) {
  const label = { barrage: 'barrage', command: 'command' }[kind];
  const li = h(
    'li',
    { class: `chat-line ${kind}${mine ? ' mine' : ''}`, dataset: { kind, from: from || '' } },
    h('span', { class: 'chat-meta' }, time(at), ' ', h('b', {}, mine ? 'You' : from || ''), label ? h('span', { class: 'tag' }, label) : null),
    h('span', { class: 'chat-text' }, text),
  );
  parts.chatLog.append(li);
  while (parts.chatLog.children.length > 300) parts.chatLog.firstChild.remove();
  parts.chatLog.scrollTop = parts.chatLog.scrollHeight;
}

const STATS = [
  ['bitrateKbps', 'Bitrate', (v) => `${v} kbps`],
  ['fps', 'FPS', (v) => String(v)],
  ['resolution', 'Size', (v) => v],
  ['packetsLost', 'Lost', (v) => String(v)],
  ['rttMs', 'RTT', (v) => (v === null ? '–' : `${v} ms`)],
  ['frames', 'Frames', (v) => String(v)],
];

/** A video tile. role: publisher | player. Returns {tile, video, state, setStats, setLayer, setPaused, attach}. */
export function videoTile({ streamID, role, subtitle, onStop, onExtra, onQuality }) {
  const video = h('video', { autoplay: true, playsinline: true, 'data-testid': 'tile-video' });
  if (role === 'publisher') video.muted = true;
  const state = h('span', { class: 'badge', 'data-testid': 'tile-state' });
  const cells = {};
  // Players: the layer the server forwards (playerVideoLayerUpdate);
  // publishers: the simulcast layers it paused (publisherVideoLayersUpdate).
  const own = role === 'player' ? ['layer', 'Layer'] : ['paused', 'Paused'];
  const stats = h(
    'dl',
    { class: 'stats', 'data-testid': 'tile-stats' },
    [...STATS, own].map(([key, label]) => h('div', {}, h('dt', {}, label), (cells[key] = h('dd', { dataset: { stat: key } }, '–')))),
  );
  const unmute = h('button', { class: 'ghost small', 'data-testid': 'tile-unmute', hidden: true, onclick: () => ((video.muted = false), (unmute.hidden = true), video.play().catch(() => {})) }, 'Unmute');
  let extra = null;
  if (onQuality) {
    // Of a simulcast stream: which layer to take at most ('auto': what the
    // bandwidth allows). The resolution stat shows the layer received.
    const select = h(
      'select',
      { 'data-testid': 'tile-quality', 'aria-label': 'Video quality', onchange: () => onQuality(select.value) },
      ...['auto', 'high', 'medium', 'low'].map((q) => h('option', { value: q }, `Quality: ${q}`)),
    );
    extra = h('div', { class: 'inline' }, select);
  }
  if (onExtra) {
    const input = h('input', { 'data-testid': 'tile-extra-input', placeholder: 'Stream extra info', 'aria-label': 'Stream extra info' });
    extra = h('form', { class: 'inline', onsubmit: (e) => (e.preventDefault(), onExtra(input.value)) }, input, h('button', { type: 'submit', class: 'ghost small', 'data-testid': 'tile-extra-set' }, 'Set'));
  }
  const tile = h(
    'article',
    { class: `tile ${role}`, 'data-testid': 'video-tile', dataset: { streamId: streamID, role }, id: `tile-${role}-${streamID}` },
    h('div', { class: 'tile-video' }, video, h('div', { class: 'tile-overlay' }, state, unmute)),
    h(
      'div',
      { class: 'tile-info' },
      h('div', { class: 'tile-title' }, h('code', {}, streamID), h('span', { class: 'muted small' }, subtitle)),
      h('button', { class: 'ghost small danger', 'data-testid': 'tile-stop', onclick: onStop }, role === 'publisher' ? 'Stop publishing' : 'Stop'),
    ),
    stats,
    extra,
  );
  const setStats = (d) => {
    const frames = role === 'publisher' ? d.framesEncoded : d.framesDecoded;
    const values = { ...d, frames, resolution: d.width ? `${d.width}×${d.height}` : '–' };
    for (const [key, , fmt] of STATS) cells[key].textContent = values[key] === undefined ? '–' : fmt(values[key]);
    tile.dataset.bitrate = String(d.bitrateKbps);
    tile.dataset.frames = String(frames || 0);
  };
  const attach = (stream) => {
    video.srcObject = stream;
    video.play().catch(() => {
      // Autoplay with sound was refused: play muted, offer to unmute.
      video.muted = true;
      unmute.hidden = false;
      video.play().catch(() => {});
    });
  };
  /** Players: layer 0, 1, 2 (simulcast layer or SVC level) as low/medium/high. */
  const setLayer = (layer) => {
    cells.layer.textContent = ['low', 'medium', 'high'][layer] || String(layer);
    tile.dataset.layer = String(layer);
  };
  /** Publishers: the RIDs the server paused (none: '–'). */
  const setPaused = (rids) => {
    cells.paused.textContent = rids.length ? rids.join(', ') : '–';
    tile.dataset.paused = rids.join(',');
  };
  return { tile, video, state, setStats, setLayer, setPaused, attach };
}

export function initials(name) {
  const parts = String(name).trim().split(/[\s._-]+/).filter(Boolean);
  return ((parts[0] || '?')[0] + (parts[1] ? parts[1][0] : '')).toUpperCase();
}

/** Append to the event log (newest first), capped at 200 lines. */
export function logLine(list, name, text, tone = '') {
  list.prepend(h('li', { class: tone, dataset: { event: name } }, h('span', { class: 'muted' }, time()), h('b', {}, name), h('span', {}, text)));
  while (list.children.length > 200) list.lastChild.remove();
}
