// One signaling WebSocket: request/response matching by id, heartbeats,
// liveness detection. Reconnect policy lives in the Engine (it knows the rooms).

import { ErrorCode, sdkError } from './common.js';

const MAX_FRAME = 65536; // the server closes the socket (1009) above this

/**
 * `ws(s)://host[/base]/ws?appID=<appID>` from `http(s)://`, `ws(s)://` or a
 * bare `host:port`. A path already ending in `/ws` is kept.
 */
export function deriveWsURL(serverURL, appID) {
  let s = String(serverURL ?? '').trim();
  if (!s) throw sdkError(ErrorCode.INVALID_PARAMETER, 'serverURL is required');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) s = `ws://${s}`;
  let u;
  try {
    u = new URL(s);
  } catch {
    throw sdkError(ErrorCode.INVALID_PARAMETER, `invalid serverURL: ${serverURL}`);
  }
  const proto = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' }[u.protocol];
  if (!proto) throw sdkError(ErrorCode.INVALID_PARAMETER, `unsupported scheme in serverURL: ${u.protocol}`);
  u.protocol = proto;
  let path = u.pathname.replace(/\/+$/, '');
  if (!path.endsWith('/ws')) path += '/ws';
  u.pathname = path;
  u.hash = '';
  u.searchParams.set('appID', String(appID));
  return u.toString();
}

function byteLength(str) {
  return typeof TextEncoder === 'function' ? new TextEncoder().encode(str).length : str.length * 3;
}

/**
 * A single socket. `onEvent(msg)` gets every `{event: ...}` frame;
 * `onLost({closeCode, error, fatal})` is called once if the socket ends
 * without `close()` having been called.
 */
export class Connection {
  constructor(url, opts) {
    this.url = url;
    this._opts = opts; // {WebSocket, heartbeatInterval, heartbeatTimeout, requestTimeout, onEvent, onLost}
    this._seq = 0;
    this._pending = new Map(); // id -> {resolve, reject, timer, op}
    this._ws = null;
    this._state = 'new'; // new | connecting | open | closed
    this._closeError = null;
    this._fatal = null; // {code, message} from an `error` event (e.g. unknown appID)
    this._intentional = false;
    this._hbTimer = null;
    this._lastRecv = 0;
    this._openPromise = null;
  }

  get isOpen() {
    return this._state === 'open';
  }

  open() {
    if (this._openPromise) return this._openPromise;
    this._openPromise = new Promise((resolve, reject) => {
      const WS = this._opts.WebSocket;
      this._openResolve = resolve;
      this._openReject = reject;
      this._state = 'connecting';
      try {
        this._ws = new WS(this.url);
      } catch (e) {
        this._finish(sdkError(ErrorCode.NETWORK, `cannot open WebSocket: ${e && e.message}`), 0);
        return;
      }
      const ws = this._ws;
      this._openTimer = setTimeout(() => {
        this._abort(sdkError(ErrorCode.NETWORK, 'signaling connection timed out'), 0);
      }, this._opts.requestTimeout);
      ws.onopen = () => {
        clearTimeout(this._openTimer);
        if (this._state !== 'connecting') return;
        this._state = 'open';
        this._lastRecv = Date.now();
        this._hbTimer = setInterval(() => this._heartbeat(), this._opts.heartbeatInterval);
        this._openResolve();
      };
      ws.onmessage = (ev) => this._onMessage(ev.data);
      ws.onerror = () => {};
      ws.onclose = (ev) => {
        const code = ev && ev.code;
        const why = ev && ev.reason ? `: ${ev.reason}` : '';
        this._finish(this._fatal || sdkError(ErrorCode.NETWORK, `signaling connection closed (${code}${why})`), code);
      };
    });
    return this._openPromise;
  }

  /** Send `{id, op, ...fields}`; resolves with the response minus id/code, rejects `{code, message}`. */
  request(op, fields = {}, timeoutMs = this._opts.requestTimeout) {
    if (this._state !== 'open') {
      return Promise.reject(this._closeError || sdkError(ErrorCode.NETWORK, 'signaling not connected'));
    }
    const id = ++this._seq;
    const text = JSON.stringify({ ...fields, id, op });
    if (byteLength(text) > MAX_FRAME) {
      return Promise.reject(sdkError(ErrorCode.INVALID_PARAMETER, `request too large (over ${MAX_FRAME} bytes)`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this._pending.delete(id)) reject(sdkError(ErrorCode.TIMEOUT, `no response to ${op} in ${timeoutMs} ms`));
      }, timeoutMs);
      this._pending.set(id, { resolve, reject, timer, op });
      try {
        this._ws.send(text);
      } catch (e) {
        clearTimeout(timer);
        this._pending.delete(id);
        reject(sdkError(ErrorCode.NETWORK, `send failed: ${e && e.message}`));
      }
    });
  }

  /** Close on purpose: no `onLost`; pending requests reject with `err`. */
  close(err = sdkError(ErrorCode.NETWORK, 'signaling connection closed by the client')) {
    if (this._state === 'closed') return;
    this._intentional = true;
    this._abort(err, 1000);
  }

  _abort(err, code) {
    const ws = this._ws;
    if (ws) {
      try {
        ws.close(code === 1000 ? 1000 : 4000);
      } catch {
        /* ignore */
      }
    }
    this._finish(err, code);
  }

  _finish(err, closeCode) {
    if (this._state === 'closed') return;
    this._state = 'closed';
    this._closeError = err;
    clearTimeout(this._openTimer);
    clearInterval(this._hbTimer);
    if (this._ws) {
      this._ws.onopen = this._ws.onmessage = this._ws.onclose = this._ws.onerror = null;
    }
    if (this._openReject) this._openReject(err);
    for (const [, p] of this._pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this._pending.clear();
    if (!this._intentional && this._opts.onLost) {
      this._opts.onLost({ closeCode, error: err, fatal: !!this._fatal });
    }
  }

  _heartbeat() {
    if (this._state !== 'open') return;
    if (Date.now() - this._lastRecv > this._opts.heartbeatTimeout) {
      this._abort(sdkError(ErrorCode.NETWORK, 'signaling connection lost (no heartbeat answer)'), 4000);
      return;
    }
    // With an id the server answers, which proves the link is alive both ways.
    this.request('heartbeat', {}, this._opts.heartbeatTimeout).catch(() => {});
  }

  _onMessage(data) {
    if (this._state === 'closed') return;
    this._lastRecv = Date.now();
    if (typeof data !== 'string') return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    if (typeof msg.event === 'string') {
      if (msg.event === 'error') {
        this._fatal = sdkError(msg.code, msg.message);
      }
      if (this._opts.onEvent) this._opts.onEvent(msg);
      return;
    }
    if (!('id' in msg)) return;
    const p = this._pending.get(msg.id);
    if (!p) return; // id null (unreadable request) or a response after its timeout
    this._pending.delete(msg.id);
    clearTimeout(p.timer);
    const { id, code, message, ...result } = msg;
    if (code === 0) p.resolve(result);
    else p.reject(sdkError(typeof code === 'number' ? code : ErrorCode.NETWORK, message));
  }
}
