// Type declarations of the browser SDK (web/sdk/engine.js). Hand-kept: update
// together with engine.js. The wire contract is shared/protocol.md.

/** Every promise of the SDK rejects with this plain object. */
export interface EngineError {
  /** A server error code of the contract, or one of ErrorCode's SDK-local codes. */
  code: number;
  /** ZEGO's name of the text. */
  msg: string;
  /** The same text. */
  message: string;
}

/** Codes produced by the SDK itself (all others come from the server). */
export declare const ErrorCode: Readonly<{
  ENGINE_DESTROYED: 1000100;
  INVALID_PARAMETER: 1000101;
  /** Signaling socket could not connect or was closed. */
  NETWORK: 1000102;
  /** No response to a request within requestTimeout. */
  TIMEOUT: 1000103;
  /** No WebSocket / RTCPeerConnection / mediaDevices in this environment. */
  NOT_SUPPORTED: 1000104;
  /** Local WebRTC failure (createOffer, setLocal/RemoteDescription); same meaning as the server's 1005001. */
  WEBRTC: 1005001;
  /** getUserMedia / getDisplayMedia failed (permission denied, no device). */
  DEVICE: 1005002;
  /** ICE/DTLS to the server failed; same as the server's 1005003. */
  MEDIA_CONNECTION_FAILED: 1005003;
  /** The server session could not be resumed after a drop. */
  SESSION_LOST: 1002099;
}>;

export declare const VERSION: string;

export interface User {
  userID: string;
  /** Defaults to userID when omitted. */
  userName?: string;
}

export interface StreamInfo {
  streamID: string;
  user: { userID: string; userName: string };
  extraInfo: string;
}

export interface RoomExtraInfo {
  key: string;
  value: string;
  updateUser: { userID: string; userName: string };
  /** Unix milliseconds. */
  updateTime: number;
}

export interface LoginConfig {
  /** Receive roomUserUpdate events and the userList of the result. */
  userUpdate?: boolean;
  /** Only the login that creates the room sets it (0 = no limit). */
  maxMemberCount?: number;
}

export interface LoginResult {
  /** The room's current streams (the SDK also emits them as roomStreamUpdate ADD right after). */
  streamList: StreamInfo[];
  extraInfoList: RoomExtraInfo[];
  /** Other members (excludes you); empty without `userUpdate: true`. */
  userList: Array<{ userID: string; userName: string }>;
}

export interface BroadcastMessage {
  fromUser: { userID: string; userName: string };
  message: string;
  /** Unix milliseconds. */
  sendTime: number;
  messageID: number;
}

export interface BarrageMessage {
  fromUser: { userID: string; userName: string };
  message: string;
  sendTime: number;
  messageID: string;
}

export type RoomStateReason =
  | 'LOGINING'
  | 'LOGINED'
  | 'LOGIN_FAILED'
  | 'RECONNECTING'
  | 'RECONNECTED'
  | 'RECONNECT_FAILED'
  | 'KICKOUT'
  | 'LOGOUT'
  | 'LOGOUT_FAILED';
export type UpdateType = 'ADD' | 'DELETE';
export type PlayerState = 'PLAYING' | 'NO_PLAY' | 'PLAY_REQUESTING';
export type PublisherState = 'PUBLISHING' | 'NO_PUBLISH' | 'PUBLISH_REQUESTING';

/**
 * Callbacks get the event's fields positionally, in the contract's order.
 * `extendedData` is a string of JSON ("{}" when empty; on stream DELETE
 * `{"stream_delete_reason":[{"stream_id","code"}]}`).
 */
export interface EngineEvents {
  roomStateChanged: (roomID: string, reason: RoomStateReason, errorCode: number, extendedData: string) => void;
  roomUserUpdate: (roomID: string, updateType: UpdateType, userList: Array<{ userID: string; userName: string }>) => void;
  roomOnlineUserCountUpdate: (roomID: string, count: number) => void;
  roomStreamUpdate: (roomID: string, updateType: UpdateType, streamList: StreamInfo[], extendedData: string) => void;
  streamExtraInfoUpdate: (roomID: string, streamList: StreamInfo[]) => void;
  IMRecvBroadcastMessage: (roomID: string, messageList: BroadcastMessage[]) => void;
  IMRecvBarrageMessage: (roomID: string, messageList: BarrageMessage[]) => void;
  /** Note: ZEGO's order is (fromUser, roomID, command); this SDK keeps the contract's order. */
  IMRecvCustomCommand: (roomID: string, fromUser: { userID: string; userName: string }, command: string) => void;
  roomExtraInfoUpdate: (roomID: string, roomExtraInfoList: RoomExtraInfo[]) => void;
  tokenWillExpire: (roomID: string) => void;
  playerStateUpdate: (streamID: string, state: PlayerState, errorCode: number) => void;
  publisherStateUpdate: (streamID: string, state: PublisherState, errorCode: number) => void;
  /** The simulcast layers (RIDs) of a publish that no player takes; the SDK has stopped encoding them. */
  publisherVideoLayersUpdate: (streamID: string, pausedLayers: string[]) => void;
  /** The video layer a play receives now: its simulcast layer or SVC level, 0 the lowest. */
  playerVideoLayerUpdate: (streamID: string, layer: number) => void;
}
export type EngineEventName = keyof EngineEvents;
export declare const EVENTS: ReadonlyArray<EngineEventName>;
/** Field names behind each event's positional arguments. */
export declare const EVENT_FIELDS: Readonly<Record<EngineEventName, ReadonlyArray<string>>>;

export interface EngineOptions {
  /** ms between heartbeats (default 5000; the server needs one at least every 10 s). */
  heartbeatInterval?: number;
  /** No frame from the server for this long = connection lost (default 20000). */
  heartbeatTimeout?: number;
  /** Per request, and for the socket to open (default 15000). */
  requestTimeout?: number;
  /** Stop reconnecting and emit RECONNECT_FAILED after this long (default 60000). */
  reconnectTimeout?: number;
  /** Backoff cap (default 8000; delays 0.5 s, 1 s, 2 s, ... with ±20 % jitter). */
  reconnectMaxDelay?: number;
  /** After a login, emit roomUserUpdate/roomStreamUpdate ADD (and roomExtraInfoUpdate) for what the room already had (default true). */
  emitInitialUpdates?: boolean;
  /** Merged over `{bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require'}`. */
  rtcConfiguration?: RTCConfiguration;
  // Injection (tests, non-browser runtimes); default to the globals.
  WebSocket?: unknown;
  RTCPeerConnection?: unknown;
  MediaStream?: unknown;
  RTCRtpSender?: unknown;
  mediaDevices?: unknown;
}

export interface CreateStreamConfig {
  camera?: {
    video?: boolean | MediaTrackConstraints;
    audio?: boolean | MediaTrackConstraints;
    /** deviceId of the camera / microphone to use. */
    videoInput?: string;
    audioInput?: string;
  };
  /** Screen capture instead of the camera (getDisplayMedia). */
  screen?: boolean | { video?: boolean | MediaTrackConstraints; audio?: boolean };
}

export interface PublishOptions {
  /** Required in multi-room mode; filled in when exactly one room is joined. */
  roomID?: string;
  extraInfo?: string;
  /** Preferred video codec (the server keeps the first one the offer lists). */
  videoCodec?: 'VP8' | 'VP9' | 'H264' | 'AV1';
  /**
   * Publish the video as simulcast (off by default): three encodings q/h/f at 1/4, 1/2
   * and full resolution (or `layers: 2`: h/f); each player gets the best one its
   * bandwidth and its `videoQuality` allow.
   */
  simulcast?: boolean | { layers?: 2 | 3; maxBitrates?: number[] };
  /**
   * Publish scalable video in one encoding instead (WebRTC's `scalabilityMode`, e.g.
   * 'L3T3_KEY' with `videoCodec: 'VP9'`, or 'L1T3' for VP8's temporal layers): each player
   * gets the spatial (else temporal) layers its bandwidth and its `videoQuality` allow.
   */
  scalabilityMode?: string;
}

export type VideoQuality = 'auto' | 'low' | 'medium' | 'high' | 0 | 1 | 2;

export interface PlayOptions {
  /** Set false to not receive audio / video (default true). */
  audio?: boolean;
  video?: boolean;
  /** Of a simulcast or scalable stream, the best layer to take (default 'auto': what bandwidth allows). */
  videoQuality?: VideoQuality;
}

export interface StreamStats {
  streamID: string;
  role: 'publisher' | 'player';
  state: PublisherState | PlayerState;
  connectionState: RTCPeerConnectionState | RTCIceConnectionState;
  /** Audio + video, from byte deltas since the previous getStats call of this stream (0 on the first). */
  bitrateKbps: number;
  audioBitrateKbps: number;
  videoBitrateKbps: number;
  /** From frame deltas (framesPerSecond on the first call). */
  fps: number;
  /** Players: inbound packetsLost; publishers: as reported by the server's receiver reports. */
  packetsLost: number;
  /** Selected ICE candidate pair RTT, else RTCP RTT; null when unknown. */
  rttMs: number | null;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
  /** Publishers only. */
  framesEncoded?: number;
  /** Players only. */
  framesDecoded?: number;
}

/** A MediaStream with ZEGO's local-stream methods. */
export interface ZegoLocalStream extends MediaStream {
  /** Shows the stream in `element` (a <video>, or a container that gets one); muted, autoplay. */
  playVideo(element: HTMLElement, options?: { objectFit?: string; mirror?: boolean }): HTMLVideoElement;
  stopVideo(): void;
}

/** ZEGO's switchRoom config. */
export interface SwitchRoomConfig {
  token: string;
  maxMemberCount?: number;
  /** `roomUserUpdate` for this room (our LoginConfig.userUpdate). */
  isUserStatusNotify?: boolean;
}

export declare class Engine {
  /**
   * @param appID the app (u32)
   * @param serverURL `http(s)://host:port`, `ws(s)://...` or `host:port`; `/ws?appID=` is derived.
   *   Defaults to the page origin.
   */
  constructor(appID: number, serverURL?: string, options?: EngineOptions);
  readonly appID: number;
  readonly serverURL: string;
  getVersion(): string;

  on<K extends EngineEventName>(event: K, callback: EngineEvents[K]): boolean;
  /** Without a callback, removes every callback of the event. */
  off<K extends EngineEventName>(event: K, callback?: EngineEvents[K]): boolean;

  /**
   * Call once, before the first loginRoom (as ZEGO's). Returns false — and changes
   * nothing — after a login, on a second call or for a non-boolean. Replayed on every reconnect.
   */
  enableMultiRoom(enable: boolean): boolean;
  /** Resolves true (as ZEGO's); the room's lists come as events and from getRoomInfo. */
  loginRoom(roomID: string, token: string, user: User, config?: LoginConfig): Promise<true>;
  /**
   * Joins `to` then leaves `from` (stopping your publishes there). ZEGO's
   * `{token, maxMemberCount?, isUserStatusNotify?}`, or (older form) a token
   * string and a LoginConfig. Config defaults to `from`'s.
   */
  switchRoom(fromRoomID: string, toRoomID: string, config: SwitchRoomConfig): Promise<true>;
  switchRoom(fromRoomID: string, toRoomID: string, token: string, config?: LoginConfig): Promise<true>;
  /** The SDK's view of a room it is in (what loginRoom returned before it resolved `true`). */
  getRoomInfo(roomID: string): LoginResult | null;
  /** Without a room: leave every room. */
  logoutRoom(roomID?: string): Promise<void>;
  renewToken(roomID: string, token: string): Promise<void>;

  sendBroadcastMessage(roomID: string, message: string): Promise<{ messageID: number }>;
  sendBarrageMessage(roomID: string, message: string): Promise<{ messageID: string }>;
  /** Empty or omitted `toUserIDs` = everyone else in the room. */
  /** `command`: a string, or any JSON-serialisable value (sent as its JSON text). */
  sendCustomCommand(roomID: string, command: string | object, toUserIDs?: string[]): Promise<void>;
  setRoomExtraInfo(roomID: string, key: string, value: string): Promise<void>;
  setStreamExtraInfo(streamID: string, extraInfo: string): Promise<void>;

  /** ZEGO's createZegoStream. Default: camera video + microphone. */
  createZegoStream(config?: CreateStreamConfig): Promise<ZegoLocalStream>;
  /** The same as createZegoStream (the SDK's earlier name). */
  createStream(config?: CreateStreamConfig): Promise<ZegoLocalStream>;
  /** Stops every track of the stream and its playVideo element. */
  destroyStream(stream: MediaStream): void;
  /** Enables/disables the stream's video (audio) tracks; true if it has any. */
  mutePublishStreamVideo(stream: MediaStream, mute: boolean): boolean;
  mutePublishStreamAudio(stream: MediaStream, mute: boolean): boolean;
  /** Enables/disables a play's video (audio) tracks; true if the play exists. */
  mutePlayStreamVideo(streamID: string, mute: boolean): boolean;
  mutePlayStreamAudio(streamID: string, mute: boolean): boolean;
  /**
   * Resolves once the server's answer is applied; PUBLISHING comes via publisherStateUpdate
   * when media connects. `stream` may be createZegoStream()'s promise (as in ZEGO's sample).
   */
  startPublishingStream(
    streamID: string,
    stream: MediaStream | Promise<MediaStream>,
    options?: PublishOptions,
  ): Promise<void>;
  /** Does not stop the MediaStream's tracks (use destroyStream). */
  stopPublishingStream(streamID: string): Promise<void>;
  /**
   * Resolves with the remote MediaStream, also for a stream nobody publishes yet: the
   * play waits (playerStateUpdate PLAY_REQUESTING 1004002) and media starts, on the same
   * MediaStream, when it is published (PLAYING 0); likewise after its publisher leaves and
   * comes back. PLAYING comes via playerStateUpdate when media connects.
   */
  startPlayingStream(streamID: string, options?: PlayOptions): Promise<ZegoLocalStream>;
  stopPlayingStream(streamID: string): Promise<void>;
  /** Cap a play's simulcast layer ('auto' lets its bandwidth decide). */
  setPlayVideoQuality(streamID: string, quality: VideoQuality): Promise<void>;
  /** ZEGO's name: 0 default (auto), 1 small (low), 2 big (high). */
  setPlayStreamVideoType(streamID: string, type: 0 | 1 | 2): Promise<void>;
  /** `role` picks between a publish and a play of the same stream ID (publisher first by default). */
  getStats(streamID: string, role?: 'publisher' | 'player'): Promise<StreamStats>;

  /** Closes peer connections, the socket (leaving every room) and drops all callbacks. */
  destroy(): void;
}

/** `ws(s)://host[/base]/ws?appID=<appID>` from an http(s)/ws(s)/bare server URL. */
export declare function deriveWsURL(serverURL: string, appID: number): string;

/** Pure stats digest used by getStats (exported for tests). */
export declare function digestStats(
  report: { forEach(cb: (stat: any) => void): void },
  prev: object | null,
  role: 'publisher' | 'player',
): { digest: Omit<StreamStats, 'streamID' | 'role' | 'state' | 'connectionState'>; snapshot: object };

/** The same class under ZEGO's name. */
export declare const ZegoExpressEngine: typeof Engine;
export type ZegoExpressEngine = Engine;

export default Engine;
