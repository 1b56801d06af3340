// Shared helpers of the SDK: error codes, error objects, a tiny event emitter.
// Nothing here touches browser globals, so the SDK can be imported in node.

/**
 * Codes produced by the SDK itself. Every other code in a rejection comes from
 * the server (see shared/protocol.md). 1005001 and 1005003 have the same
 * meaning as the server's codes of that number.
 */
export const ErrorCode = Object.freeze({
  ENGINE_DESTROYED: 1000100, // the engine was destroyed
  INVALID_PARAMETER: 1000101, // a bad argument caught before sending
  NETWORK: 1000102, // signaling socket could not connect or was closed
  TIMEOUT: 1000103, // no response to a request in time
  NOT_SUPPORTED: 1000104, // no WebSocket / RTCPeerConnection / mediaDevices here
  WEBRTC: 1005001, // local WebRTC failure (createOffer, set*Description)
  DEVICE: 1005002, // getUserMedia / getDisplayMedia failed (denied, no device)
  MEDIA_CONNECTION_FAILED: 1005003, // ICE/DTLS to the server failed
  SESSION_LOST: 1002099, // the server session could not be resumed
});

/**
 * The rejection value of every promise: a plain `{code, msg, message}` object
 * (`code` and `msg` as in ZEGO's SDK; `message` the same text).
 */
export function sdkError(code, message) {
  const text = String(message ?? '');
  return { code, msg: text, message: text };
}

/** Turn anything thrown into `{code, message}` (keeps objects that already have a code). */
export function toSdkError(err, fallbackCode) {
  // Our errors are plain objects; a DOMException also has a (legacy) numeric code.
  if (err && typeof err === 'object' && typeof err.code === 'number' && !(err instanceof Error)) {
    return sdkError(err.code, err.message);
  }
  const msg = err && err.name ? `${err.name}: ${err.message}` : String(err);
  return sdkError(fallbackCode, msg);
}

/** Event names of the wire contract (all of them can be passed to `Engine.on`). */
export const EVENTS = Object.freeze([
  'roomStateChanged',
  'roomUserUpdate',
  'roomOnlineUserCountUpdate',
  'roomStreamUpdate',
  'streamExtraInfoUpdate',
  'IMRecvBroadcastMessage',
  'IMRecvBarrageMessage',
  'IMRecvCustomCommand',
  'roomExtraInfoUpdate',
  'tokenWillExpire',
  'playerStateUpdate',
  'publisherStateUpdate',
  'publisherVideoLayersUpdate',
  'playerVideoLayerUpdate',
]);

/**
 * Positional callback arguments: the event's fields in the order the contract's
 * event table lists them. `argsOf(name, eventObject)` builds that list.
 */
export const EVENT_FIELDS = Object.freeze({
  roomStateChanged: ['roomID', 'reason', 'errorCode', 'extendedData'],
  roomUserUpdate: ['roomID', 'updateType', 'userList'],
  roomOnlineUserCountUpdate: ['roomID', 'count'],
  roomStreamUpdate: ['roomID', 'updateType', 'streamList', 'extendedData'],
  streamExtraInfoUpdate: ['roomID', 'streamList'],
  IMRecvBroadcastMessage: ['roomID', 'messageList'],
  IMRecvBarrageMessage: ['roomID', 'messageList'],
  IMRecvCustomCommand: ['roomID', 'fromUser', 'command'],
  roomExtraInfoUpdate: ['roomID', 'roomExtraInfoList'],
  tokenWillExpire: ['roomID'],
  playerStateUpdate: ['streamID', 'state', 'errorCode'],
  publisherStateUpdate: ['streamID', 'state', 'errorCode'],
  publisherVideoLayersUpdate: ['streamID', 'pausedLayers'],
  playerVideoLayerUpdate: ['streamID', 'layer'],
});

export function argsOf(name, obj) {
  return (EVENT_FIELDS[name] || []).map((f) => obj[f]);
}

/** Minimal synchronous event emitter; a throwing listener never breaks the SDK. */
export class Emitter {
  constructor(names, onListenerError) {
    this._names = new Set(names);
    this._map = new Map();
    this._onError = onListenerError || ((e) => console.error('[engine] listener error', e));
  }
  on(name, cb) {
    if (!this._names.has(name) || typeof cb !== 'function') return false;
    if (!this._map.has(name)) this._map.set(name, []);
    this._map.get(name).push(cb);
    return true;
  }
  off(name, cb) {
    const list = this._map.get(name);
    if (!list) return false;
    if (cb === undefined) {
      this._map.delete(name);
      return true;
    }
    const i = list.indexOf(cb);
    if (i < 0) return false;
    list.splice(i, 1);
    return true;
  }
  emit(name, ...args) {
    const list = this._map.get(name);
    if (!list) return;
    for (const cb of [...list]) {
      try {
        cb(...args);
      } catch (e) {
        this._onError(e);
      }
    }
  }
  clear() {
    this._map.clear();
  }
}

/** Errors of the link rather than of the request (worth retrying on a new socket). */
export const isTransportError = (e) => !!e && (e.code === ErrorCode.NETWORK || e.code === ErrorCode.TIMEOUT);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
