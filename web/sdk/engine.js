// Browser SDK of the SFU, named after ZEGO Express Web. Plain ES module, no
// dependencies. Nothing touches browser globals at import time: WebSocket,
// RTCPeerConnection, MediaStream and navigator.mediaDevices are looked up when
// an Engine is constructed and can be injected through its options (node tests).
//
// Callbacks (engine.on) receive the event's fields positionally, in the order
// of the contract's event table, e.g. roomStreamUpdate(roomID, updateType,
// streamList, extendedData). See EVENT_FIELDS in common.js and README.md.

import { Emitter, ErrorCode, EVENTS, EVENT_FIELDS, argsOf, isTransportError, sdkError, toSdkError } from './common.js';
import { Connection, deriveWsURL } from './signaling.js';
import { checkStreamID, closePc, openMedia, preferCodec, rtc, setPausedLayers, simulcastEncodings, withDependencyDescriptor } from './media.js';
import { applyLists, newRoom, runReconnect } from './rooms.js';
import { digestStats } from './stats.js';

export { ErrorCode, EVENTS, EVENT_FIELDS, deriveWsURL, digestStats };

export const VERSION = '0.1.0';

const DEFAULTS = {
  heartbeatInterval: 5000, // ms between heartbeats (the server needs one every 10 s)
  heartbeatTimeout: 20000, // no frame from the server for this long -> connection lost
  requestTimeout: 15000, // per request, and for the socket to open
  reconnectTimeout: 60000, // give up reconnecting (RECONNECT_FAILED) after this long
  reconnectMaxDelay: 8000, // backoff cap; delays go 500 ms, 1 s, 2 s, ...
  emitInitialUpdates: true, // after a login, emit ADD events for the room's existing users/streams
};

export class Engine {
  /**
   * @param {number} appID
   * @param {string} [serverURL] http(s)://, ws(s):// or host:port; defaults to the page origin
   * @param {object} [options] see DEFAULTS, plus WebSocket, RTCPeerConnection, MediaStream,
   *   mediaDevices, RTCRtpSender (injection) and rtcConfiguration
   */
  constructor(appID, serverURL, options = {}) {
    const g = globalThis;
    if (serverURL === undefined || serverURL === null || serverURL === '') {
      serverURL = g.location && g.location.origin;
    }
    this.appID = appID;
    this.serverURL = serverURL;
    this._url = deriveWsURL(serverURL, appID);
    this._opts = { ...DEFAULTS, ...options };
    this._WebSocket = options.WebSocket || g.WebSocket;
    this._RTCPeerConnection = options.RTCPeerConnection || g.RTCPeerConnection;
    this._MediaStream = options.MediaStream || g.MediaStream;
    this._RTCRtpSender = options.RTCRtpSender || g.RTCRtpSender;
    this._mediaDevices = options.mediaDevices || (g.navigator && g.navigator.mediaDevices);
    this._rtcConfig = { bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require', ...(options.rtcConfiguration || {}) };
    this._emitter = new Emitter(EVENTS);
    this._conn = null;
    this._connecting = null;
    this._multiRoom = null; // value asked by enableMultiRoom, replayed on every new socket
    this._rooms = new Map(); // roomID -> room state, in login order
    this._user = null;
    this._publishers = new Map(); // streamID -> record
    this._players = new Map();
    this._reconnecting = null; // promise while resuming or re-logging rooms after a drop
    this._session = null; // {sessionID, resumeToken} of the server session, for a resume
    this._lastSeq = 0; // the last event seq seen on that session
    this._destroyed = false;
  }

  getVersion() {
    return VERSION;
  }

  on(event, callback) {
    return this._emitter.on(event, callback);
  }

  off(event, callback) {
    return this._emitter.off(event, callback);
  }

  // ---------------------------------------------------------------- rooms

  /**
   * Multi-room mode, as ZEGO's: call once, after creating the engine and
   * before the first loginRoom. Returns false (and changes nothing) after a
   * login, on a second call, or for a non-boolean argument. The choice is
   * sent first on every signaling connection.
   */
  enableMultiRoom(enable) {
    if (this._destroyed || typeof enable !== 'boolean') return false;
    if (this._multiRoom !== null || this._loginStarted) return false;
    this._multiRoom = enable;
    const conn = this._conn;
    if (conn && conn.isOpen) {
      conn.request('enableMultiRoom', { enable }).catch(() => {});
    }
    return true;
  }

  /** Resolves `true` (as ZEGO's); the room's lists arrive as events and from getRoomInfo. */
  async loginRoom(roomID, token, user = {}, config) {
    this._alive();
    this._loginStarted = true;
    const userID = user.userID;
    const userName = user.userName === undefined ? userID : user.userName;
    // A room we are in keeps its state: a refused second login emits nothing.
    const quiet = this._rooms.has(roomID);
    if (!quiet) this._emit('roomStateChanged', roomID, 'LOGINING', 0, '{}');
    const fields = { roomID, token, user: { userID, userName } };
    if (config) fields.config = config;
    let res;
    try {
      res = await this._request('loginRoom', fields);
    } catch (e) {
      if (!quiet) this._emit('roomStateChanged', roomID, 'LOGIN_FAILED', e.code, '{}');
      throw e;
    }
    const room = newRoom(roomID, token, { userID, userName }, config);
    this._joined(room, res);
    return true;
  }

  /**
   * ZEGO's `switchRoom(fromRoomID, toRoomID, {token, maxMemberCount?,
   * isUserStatusNotify?})`; a token string as the third argument (and a
   * LoginConfig as the fourth) is accepted too. Resolves `true`.
   */
  async switchRoom(fromRoomID, toRoomID, config, legacyConfig) {
    this._alive();
    let token;
    let cfg;
    if (typeof config === 'string') {
      token = config;
      cfg = legacyConfig;
    } else if (config && typeof config === 'object') {
      token = config.token;
      cfg = {};
      const notify = config.isUserStatusNotify !== undefined ? config.isUserStatusNotify : config.userUpdate;
      if (notify !== undefined) cfg.userUpdate = !!notify;
      if (config.maxMemberCount !== undefined) cfg.maxMemberCount = config.maxMemberCount;
      if (Object.keys(cfg).length === 0) cfg = undefined;
    }
    if (typeof token !== 'string' || token === '') {
      throw sdkError(ErrorCode.INVALID_PARAMETER, 'switchRoom needs {token}');
    }
    const from = this._rooms.get(fromRoomID);
    cfg = cfg || (from && from.config);
    const quiet = this._rooms.has(toRoomID);
    if (!quiet) this._emit('roomStateChanged', toRoomID, 'LOGINING', 0, '{}');
    const fields = { fromRoomID, toRoomID, token };
    if (cfg) fields.config = cfg;
    let res;
    try {
      res = await this._request('switchRoom', fields);
    } catch (e) {
      if (!quiet) this._emit('roomStateChanged', toRoomID, 'LOGIN_FAILED', e.code, '{}');
      throw e;
    }
    // The server joined `to` first, then left `from` (stopping its publishes).
    const room = newRoom(toRoomID, token, (from && from.user) || this._user, cfg);
    this._rooms.set(toRoomID, room); // before leaving `from`: plays re-bind to `to` as on the server
    this._leaveLocal(fromRoomID, 'LOGOUT', 0, '{}');
    this._joined(room, res);
    return true;
  }

  /** What the SDK knows of a room it is in: `{streamList, userList, extraInfoList}`, or null. */
  getRoomInfo(roomID) {
    const room = this._rooms.get(roomID);
    if (!room) return null;
    return {
      streamList: [...room.streams.values()],
      userList: [...room.users.values()],
      extraInfoList: [...room.extraInfoList],
    };
  }

  async logoutRoom(roomID) {
    this._alive();
    const ids = roomID === undefined ? [...this._rooms.keys()] : [roomID];
    if (roomID === undefined && !this._conn && !this._reconnecting) {
      ids.forEach((id) => this._leaveLocal(id, 'LOGOUT', 0, '{}'));
      return;
    }
    try {
      await this._request('logoutRoom', roomID === undefined ? {} : { roomID });
    } catch (e) {
      // A dropped socket leaves every room on the server anyway.
      if (!isTransportError(e)) {
        if (roomID !== undefined) this._emit('roomStateChanged', roomID, 'LOGOUT_FAILED', e.code, '{}');
        throw e;
      }
    }
    ids.forEach((id) => this._leaveLocal(id, 'LOGOUT', 0, '{}'));
  }

  async renewToken(roomID, token) {
    const room = this._rooms.get(roomID);
    if (room && this._reconnecting) room.token = token; // use it for the re-login
    await this._request('renewToken', { roomID, token });
    if (room) room.token = token;
  }

  // ------------------------------------------------------------- messages

  async sendBroadcastMessage(roomID, message) {
    const res = await this._request('sendBroadcastMessage', { roomID, message });
    return { messageID: res.messageID };
  }

  async sendBarrageMessage(roomID, message) {
    const res = await this._request('sendBarrageMessage', { roomID, message });
    return { messageID: res.messageID };
  }

  /** `command`: a string, or a JSON-serialisable value (sent as its JSON text). */
  async sendCustomCommand(roomID, command, toUserIDs = []) {
    let text = command;
    if (typeof command !== 'string') {
      try {
        text = JSON.stringify(command);
      } catch (e) {
        throw sdkError(ErrorCode.INVALID_PARAMETER, `command is not JSON-serialisable: ${e && e.message}`);
      }
      if (typeof text !== 'string') throw sdkError(ErrorCode.INVALID_PARAMETER, 'command must be a string or a JSON value');
    }
    await this._request('sendCustomCommand', { roomID, command: text, toUserIDs: toUserIDs || [] });
  }

  async setRoomExtraInfo(roomID, key, value) {
    await this._request('setRoomExtraInfo', { roomID, key, value });
    const room = this._rooms.get(roomID);
    if (room) {
      const entry = { key, value, updateUser: room.user, updateTime: Date.now() };
      room.extraInfoList = [...room.extraInfoList.filter((e) => e.key !== key), entry];
    }
  }

  async setStreamExtraInfo(streamID, extraInfo) {
    await this._request('setStreamExtraInfo', { streamID, extraInfo });
    const pub = this._publishers.get(streamID);
    if (pub) pub.extraInfo = extraInfo;
  }

  // ---------------------------------------------------------------- media

  /**
   * ZEGO's createZegoStream: a local MediaStream (camera and microphone by
   * default) that also has `playVideo(element, options?)` and `stopVideo()`.
   */
  async createZegoStream(source = {}) {
    this._alive();
    return withVideo(await openMedia(this._mediaDevices, source));
  }

  /** The same as createZegoStream (the SDK's earlier name). */
  async createStream(source = {}) {
    return this.createZegoStream(source);
  }

  /** Stop every track of a stream made by createZegoStream, and its video. */
  destroyStream(mediaStream) {
    if (!mediaStream) return;
    if (typeof mediaStream.stopVideo === 'function') mediaStream.stopVideo();
    if (mediaStream.getTracks) mediaStream.getTracks().forEach((t) => t.stop());
  }

  /** Mute (disable) or unmute the video tracks of a published local stream; true if it has any. */
  mutePublishStreamVideo(localStream, mute) {
    return setEnabled(localStream, 'video', !mute);
  }

  /** Mute (disable) or unmute the audio tracks of a published local stream; true if it has any. */
  mutePublishStreamAudio(localStream, mute) {
    return setEnabled(localStream, 'audio', !mute);
  }

  /** Stop rendering (or resume) the video of a play; true if the play exists. */
  mutePlayStreamVideo(streamID, mute) {
    const play = this._players.get(streamID);
    return !!play && setEnabled(play.stream, 'video', !mute);
  }

  /** Silence (or resume) the audio of a play; true if the play exists. */
  mutePlayStreamAudio(streamID, mute) {
    const play = this._players.get(streamID);
    return !!play && setEnabled(play.stream, 'audio', !mute);
  }

  async startPublishingStream(streamID, mediaStream, options = {}) {
    this._alive();
    checkStreamID(streamID);
    // ZEGO's sample passes createZegoStream()'s promise without awaiting it.
    if (mediaStream && typeof mediaStream.then === 'function') mediaStream = await mediaStream;
    if (!mediaStream || typeof mediaStream.getTracks !== 'function' || mediaStream.getTracks().length === 0) {
      throw sdkError(ErrorCode.INVALID_PARAMETER, 'startPublishingStream needs a MediaStream with tracks');
    }
    if (this._publishers.has(streamID)) throw sdkError(1003028, `already publishing ${streamID}`);
    if (!this._RTCPeerConnection) throw sdkError(ErrorCode.NOT_SUPPORTED, 'RTCPeerConnection is not available');
    let roomID = options.roomID;
    if (roomID === undefined && this._rooms.size === 1) roomID = this._rooms.keys().next().value;
    const pub = { role: 'publisher', streamID, roomID, mediaStream, extraInfo: options.extraInfo, pc: null, state: null };
    this._publishers.set(streamID, pub);
    this._setState(pub, 'PUBLISH_REQUESTING', 0);
    let accepted = false;
    try {
      const pc = (pub.pc = new this._RTCPeerConnection(this._rtcConfig));
      this._watch(pub);
      for (const track of mediaStream.getTracks()) {
        const init = { direction: 'sendonly', streams: [mediaStream] };
        if (track.kind === 'video' && options.simulcast) init.sendEncodings = simulcastEncodings(options.simulcast);
        else if (track.kind === 'video' && options.scalabilityMode) init.sendEncodings = [{ scalabilityMode: String(options.scalabilityMode) }];
        const tr = pc.addTransceiver(track, init);
        if (track.kind === 'video' && options.videoCodec) preferCodec(this._RTCRtpSender, tr, options.videoCodec);
      }
      const offer = await rtc('createOffer', () => pc.createOffer());
      await rtc('setLocalDescription', () => pc.setLocalDescription(offer));
      this._checkCancelled(pub);
      const fields = { streamID, sdp: pc.localDescription.sdp };
      if (roomID !== undefined) fields.roomID = roomID;
      if (options.extraInfo !== undefined) fields.extraInfo = options.extraInfo;
      pub.requested = true;
      const res = await this._request('startPublishingStream', fields);
      accepted = true;
      this._checkCancelled(pub);
      await rtc('setRemoteDescription', () => pc.setRemoteDescription({ type: 'answer', sdp: res.sdp }));
    } catch (e) {
      const err = toSdkError(e, ErrorCode.WEBRTC);
      if (this._publishers.get(streamID) === pub) {
        this._publishers.delete(streamID);
        closePc(pub);
        this._setState(pub, 'NO_PUBLISH', err.code);
        if (accepted) this._request('stopPublishingStream', { streamID }).catch(() => {});
      }
      throw err;
    }
  }

  async stopPublishingStream(streamID) {
    const pub = this._publishers.get(streamID);
    if (pub) {
      pub.cancelled = true;
      this._publishers.delete(streamID);
      closePc(pub);
      this._setState(pub, 'NO_PUBLISH', 0);
      if (!pub.requested) return;
    }
    try {
      await this._request('stopPublishingStream', { streamID });
    } catch (e) {
      if (!pub) throw e; // already gone on the server (e.g. after a reconnect) is fine
    }
  }

  async startPlayingStream(streamID, options = {}) {
    this._alive();
    checkStreamID(streamID);
    if (!this._RTCPeerConnection) throw sdkError(ErrorCode.NOT_SUPPORTED, 'RTCPeerConnection is not available');
    const old = this._players.get(streamID);
    if (old) {
      // The server replaces a play of the same stream; drop ours silently.
      old.cancelled = true;
      this._players.delete(streamID);
      closePc(old);
    }
    const play = { role: 'player', streamID, pc: null, stream: null, state: null };
    this._players.set(streamID, play);
    this._setState(play, 'PLAY_REQUESTING', 0);
    try {
      const pc = (play.pc = new this._RTCPeerConnection(this._rtcConfig));
      const stream = this._MediaStream ? withVideo(new this._MediaStream()) : null;
      play.stream = stream;
      pc.ontrack = (ev) => {
        if (stream && !stream.getTracks().includes(ev.track)) stream.addTrack(ev.track);
      };
      this._watch(play);
      if (options.audio !== false) pc.addTransceiver('audio', { direction: 'recvonly' });
      if (options.video !== false) pc.addTransceiver('video', { direction: 'recvonly' });
      const created = await rtc('createOffer', () => pc.createOffer());
      // AV1 SVC needs the dependency descriptor (see media.js).
      const offer = { type: 'offer', sdp: withDependencyDescriptor(created.sdp) };
      await rtc('setLocalDescription', () => pc.setLocalDescription(offer));
      this._checkCancelled(play);
      play.requested = true;
      const fields = { streamID, sdp: pc.localDescription.sdp };
      if (options.videoQuality !== undefined) fields.videoQuality = videoQuality(options.videoQuality);
      const res = await this._request('startPlayingStream', fields);
      this._checkCancelled(play);
      await rtc('setRemoteDescription', () => pc.setRemoteDescription({ type: 'answer', sdp: res.sdp }));
      return stream;
    } catch (e) {
      const err = toSdkError(e, ErrorCode.WEBRTC);
      if (this._players.get(streamID) === play) {
        this._players.delete(streamID);
        closePc(play);
        this._setState(play, 'NO_PLAY', err.code);
      }
      throw err;
    }
  }

  /**
   * Which simulcast layer (or SVC level) a play takes at most: 'auto' (the best its bandwidth allows, the
   * default), 'low', 'medium' or 'high'; ZEGO's video stream types are accepted too (0 default,
   * 1 small, 2 big).
   */
  async setPlayVideoQuality(streamID, quality) {
    this._alive();
    checkStreamID(streamID);
    await this._request('setPlayVideoQuality', { streamID, quality: videoQuality(quality) });
  }

  /** ZEGO's name: setPlayStreamVideoType(streamID, 0 | 1 | 2). */
  setPlayStreamVideoType(streamID, type) {
    return this.setPlayVideoQuality(streamID, type);
  }

  async stopPlayingStream(streamID) {
    const play = this._players.get(streamID);
    if (play) {
      play.cancelled = true;
      this._players.delete(streamID);
      closePc(play);
      this._setState(play, 'NO_PLAY', 0);
      if (!play.requested) return;
    }
    try {
      await this._request('stopPlayingStream', { streamID });
    } catch (e) {
      if (!play) throw e;
    }
  }

  /**
   * Digest of one stream's RTCPeerConnection stats; rates are computed from the
   * previous call for that stream (0 on the first call). `role` picks between a
   * publish and a play of the same stream ID (publisher first by default).
   */
  async getStats(streamID, role) {
    const rec =
      role === 'player'
        ? this._players.get(streamID)
        : this._publishers.get(streamID) || (role === 'publisher' ? null : this._players.get(streamID));
    if (!rec || !rec.pc) throw sdkError(1004002, `not publishing or playing ${streamID}`);
    let report;
    try {
      report = await rec.pc.getStats();
    } catch (e) {
      throw toSdkError(e, ErrorCode.WEBRTC);
    }
    const { digest, snapshot } = digestStats(report, rec.statsPrev || null, rec.role);
    rec.statsPrev = snapshot;
    const pc = rec.pc;
    return {
      streamID,
      role: rec.role,
      state: rec.state,
      connectionState: pc.connectionState || pc.iceConnectionState || 'new',
      ...digest,
    };
  }

  /** Close everything: peer connections, socket, timers, listeners. */
  destroy() {
    if (this._destroyed) return;
    this._destroyed = true;
    for (const rec of [...this._publishers.values(), ...this._players.values()]) {
      rec.cancelled = true;
      closePc(rec);
    }
    this._publishers.clear();
    this._players.clear();
    this._rooms.clear();
    const conn = this._conn;
    this._conn = null;
    if (conn) conn.close(sdkError(ErrorCode.ENGINE_DESTROYED, 'engine destroyed'));
    this._emitter.clear();
  }

  // ------------------------------------------------------------- internals

  _alive() {
    if (this._destroyed) throw sdkError(ErrorCode.ENGINE_DESTROYED, 'engine destroyed');
  }

  _emit(name, ...args) {
    if (!this._destroyed) this._emitter.emit(name, ...args);
  }

  _checkCancelled(rec) {
    if (rec.cancelled) throw sdkError(ErrorCode.INVALID_PARAMETER, `${rec.streamID} was stopped while starting`);
    this._alive();
  }

  async _gate() {
    this._alive();
    while (this._reconnecting) await this._reconnecting;
    this._alive();
  }

  async _request(op, fields) {
    await this._gate();
    const conn = await this._open();
    return conn.request(op, fields);
  }

  // A socket to the server. `resuming`: its first request will be `resume`
  // (so the multi-room choice is not replayed, and the session's seq goes on).
  _open(resuming = false) {
    this._alive();
    if (this._conn && this._conn.isOpen) return Promise.resolve(this._conn);
    if (this._connecting) return this._connecting;
    if (!this._WebSocket) return Promise.reject(sdkError(ErrorCode.NOT_SUPPORTED, 'WebSocket is not available'));
    const o = this._opts;
    const conn = new Connection(this._url, {
      WebSocket: this._WebSocket,
      heartbeatInterval: o.heartbeatInterval,
      heartbeatTimeout: o.heartbeatTimeout,
      requestTimeout: o.requestTimeout,
      onEvent: (msg) => conn === this._conn && this._onEvent(msg),
      onLost: (info) => this._onLost(conn, info),
    });
    this._conn = conn;
    this._connecting = conn.open().then(
      () => {
        this._connecting = null;
        if (resuming) return conn;
        // A new server session: its events count from 1 again.
        this._session = null;
        this._lastSeq = 0;
        if (this._multiRoom !== null) {
          // Every new socket starts in single-room mode: replay the choice first.
          conn.request('enableMultiRoom', { enable: this._multiRoom }).catch(() => {});
        }
        return conn;
      },
      (e) => {
        this._connecting = null;
        if (this._conn === conn) this._conn = null;
        throw e;
      },
    );
    return this._connecting;
  }

  // Record a successful login/switch, emit LOGINED and (deferred) the initial lists.
  _joined(room, res) {
    if (res.sessionID && res.resumeToken) {
      this._session = { sessionID: res.sessionID, resumeToken: res.resumeToken };
    }
    this._rooms.delete(room.roomID);
    this._rooms.set(room.roomID, room);
    this._user = room.user;
    const diff = applyLists(room, res);
    this._emit('roomStateChanged', room.roomID, 'LOGINED', 0, '{}');
    if (this._opts.emitInitialUpdates) setTimeout(() => this._emitDiff(room, diff), 0);
    return {
      streamList: res.streamList || [],
      extraInfoList: res.extraInfoList || [],
      userList: res.userList || [],
    };
  }

  _emitDiff(room, d) {
    if (this._rooms.get(room.roomID) !== room) return;
    const id = room.roomID;
    // Deferred after a login: skip what events removed in the meantime.
    d.usersAdded = d.usersAdded.filter((u) => room.users.has(u.userID));
    d.streamsAdded = d.streamsAdded.filter((s) => room.streams.has(s.streamID));
    if (d.usersDeleted.length) this._emit('roomUserUpdate', id, 'DELETE', d.usersDeleted);
    if (d.usersAdded.length) this._emit('roomUserUpdate', id, 'ADD', d.usersAdded);
    if (d.streamsDeleted.length) this._emit('roomStreamUpdate', id, 'DELETE', d.streamsDeleted, '{}');
    if (d.streamsAdded.length) this._emit('roomStreamUpdate', id, 'ADD', d.streamsAdded, '{}');
    if (d.extraChanged) this._emit('roomExtraInfoUpdate', id, room.extraInfoList);
  }

  // Forget a room: stop its publishes, and the plays the server ends with it
  // (streams it lists, or every play when it was the last room).
  _leaveLocal(roomID, reason, code, extendedData) {
    const room = this._rooms.get(roomID);
    if (!room) return;
    this._rooms.delete(roomID);
    this._emit('roomStateChanged', roomID, reason, code, extendedData);
    for (const pub of [...this._publishers.values()]) {
      if (pub.roomID === roomID) this._endRecord(pub, code);
    }
    for (const play of [...this._players.values()]) {
      if (room.streams.has(play.streamID) || this._rooms.size === 0) this._endRecord(play, code);
    }
  }

  _endRecord(rec, code) {
    const map = rec.role === 'publisher' ? this._publishers : this._players;
    if (map.get(rec.streamID) !== rec) return;
    rec.cancelled = true;
    map.delete(rec.streamID);
    closePc(rec);
    this._setState(rec, rec.role === 'publisher' ? 'NO_PUBLISH' : 'NO_PLAY', code);
  }

  _setState(rec, state, errorCode) {
    if (rec.state === state && errorCode === 0) return;
    rec.state = state;
    this._emit(rec.role === 'publisher' ? 'publisherStateUpdate' : 'playerStateUpdate', rec.streamID, state, errorCode);
  }

  // PUBLISHING / PLAYING once ICE+DTLS connect; NO_* 1005003 if they fail.
  _watch(rec) {
    const pc = rec.pc;
    const onChange = () => {
      const map = rec.role === 'publisher' ? this._publishers : this._players;
      if (map.get(rec.streamID) !== rec) return;
      const st = pc.connectionState || pc.iceConnectionState;
      if (st === 'connected' || st === 'completed') {
        // A play that waits for its publisher is PLAYING when the server says media flows.
        if (!rec.waiting) this._setState(rec, rec.role === 'publisher' ? 'PUBLISHING' : 'PLAYING', 0);
      } else if (st === 'failed') {
        this._endRecord(rec, ErrorCode.MEDIA_CONNECTION_FAILED);
        const op = rec.role === 'publisher' ? 'stopPublishingStream' : 'stopPlayingStream';
        if (rec.requested && this._conn) this._request(op, { streamID: rec.streamID }).catch(() => {});
      }
    };
    pc.onconnectionstatechange = onChange;
    pc.oniceconnectionstatechange = onChange;
  }

  _onEvent(msg) {
    if (typeof msg.seq === 'number') {
      if (msg.seq <= this._lastSeq) return; // already delivered (never expected)
      this._lastSeq = msg.seq;
    }
    const name = msg.event;
    const room = msg.roomID !== undefined ? this._rooms.get(msg.roomID) : undefined;
    switch (name) {
      case 'roomStateChanged':
        if (room && (msg.reason === 'KICKOUT' || msg.reason === 'LOGOUT')) {
          this._leaveLocal(msg.roomID, msg.reason, msg.errorCode, msg.extendedData);
          return;
        }
        break;
      case 'roomUserUpdate':
        if (room) {
          for (const u of msg.userList || []) {
            if (msg.updateType === 'DELETE') room.users.delete(u.userID);
            else room.users.set(u.userID, u);
          }
        }
        break;
      case 'roomStreamUpdate':
        if (room) {
          for (const s of msg.streamList || []) {
            if (msg.updateType === 'DELETE') room.streams.delete(s.streamID);
            else room.streams.set(s.streamID, s);
          }
        }
        break;
      case 'streamExtraInfoUpdate':
        if (room) {
          for (const s of msg.streamList || []) {
            const known = room.streams.get(s.streamID);
            room.streams.set(s.streamID, { ...(known || {}), ...s });
          }
        }
        break;
      case 'roomExtraInfoUpdate':
        if (room) room.extraInfoList = msg.roomExtraInfoList || [];
        break;
      case 'publisherVideoLayersUpdate': {
        // Simulcast layers no player takes: stop encoding them. One update
        // at a time (setParameters wants the last getParameters' result).
        const pub = this._publishers.get(msg.streamID);
        if (!pub || !pub.pc) return;
        const pc = pub.pc;
        pub.layersApplied = (pub.layersApplied || Promise.resolve())
          .then(() => setPausedLayers(pc, msg.pausedLayers))
          .catch((err) => console.warn('[engine] cannot pause simulcast layers', err));
        break;
      }
      case 'publisherStateUpdate':
      case 'playerStateUpdate': {
        const map = name === 'publisherStateUpdate' ? this._publishers : this._players;
        const rec = map.get(msg.streamID);
        const ended = msg.state === 'NO_PUBLISH' || msg.state === 'NO_PLAY';
        if (!rec) {
          if (ended) return; // already reported locally
          break;
        }
        if (ended) {
          this._endRecord(rec, msg.errorCode);
          return;
        }
        // A play waits (PLAY_REQUESTING 1004002) on the same peer connection
        // until the server says media flows again (PLAYING 0).
        if (msg.state === 'PLAY_REQUESTING') rec.waiting = true;
        if (msg.state === 'PLAYING') rec.waiting = false;
        this._setState(rec, msg.state, msg.errorCode);
        return;
      }
      default:
        break;
    }
    if (EVENT_FIELDS[name]) this._emit(name, ...argsOf(name, msg));
  }

  _onLost(conn, info) {
    if (conn !== this._conn) return;
    this._conn = null;
    if (this._destroyed || this._reconnecting) return;
    // Publishes and plays go on: the server keeps the session for a resume
    // (their peer connections never depended on this socket).
    if (info.fatal || this._rooms.size === 0) {
      for (const rec of [...this._publishers.values(), ...this._players.values()]) {
        this._endRecord(rec, info.error.code);
      }
      for (const id of [...this._rooms.keys()]) this._leaveLocal(id, 'RECONNECT_FAILED', info.error.code, '{}');
      return;
    }
    runReconnect(this, info.error);
  }

}

/** The class under ZEGO's name: `import { ZegoExpressEngine } from '/sdk/engine.js'`. */
export { Engine as ZegoExpressEngine };

/** Give a MediaStream ZEGO's local-stream methods `playVideo(element, options?)` and `stopVideo()`. */
function videoQuality(q) {
  const zego = { 0: 'auto', 1: 'low', 2: 'high' };
  const v = typeof q === 'number' ? zego[q] : q;
  if (!['auto', 'low', 'medium', 'high'].includes(v)) {
    throw sdkError(ErrorCode.INVALID_PARAMETER, `video quality must be auto, low, medium or high (got ${q})`);
  }
  return v;
}

function withVideo(ms) {
  if (!ms || typeof ms !== 'object' || typeof ms.playVideo === 'function') return ms;
  let shown = null; // [video element, whether we created it]
  ms.playVideo = (element, options = {}) => {
    if (!element) throw sdkError(ErrorCode.INVALID_PARAMETER, 'playVideo needs an element');
    if (shown) ms.stopVideo();
    const own = String(element.tagName || '').toUpperCase() !== 'VIDEO';
    const video = own ? element.ownerDocument.createElement('video') : element;
    video.muted = true; // local preview; remote audio plays through the page's own element if wanted
    video.autoplay = true;
    video.playsInline = true;
    if (options.objectFit && video.style) video.style.objectFit = options.objectFit;
    if (options.mirror && video.style) video.style.transform = 'scaleX(-1)';
    video.srcObject = ms;
    if (own) element.appendChild(video);
    shown = [video, own];
    const p = video.play && video.play();
    if (p && typeof p.catch === 'function') p.catch(() => {});
    return video;
  };
  ms.stopVideo = () => {
    if (!shown) return;
    const [video, own] = shown;
    shown = null;
    video.srcObject = null;
    if (own && video.remove) video.remove();
  };
  return ms;
}

function setEnabled(ms, kind, enabled) {
  if (!ms || typeof ms.getTracks !== 'function') return false;
  const tracks = ms.getTracks().filter((t) => t.kind === kind);
  tracks.forEach((t) => {
    t.enabled = enabled;
  });
  return tracks.length > 0;
}

export default Engine;
