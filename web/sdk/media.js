// WebRTC and device helpers of the Engine (no browser globals at import time).

import { ErrorCode, sdkError, toSdkError } from './common.js';

const STREAM_ID_RE = /^[A-Za-z0-9_-]+$/;

/** The server's stream ID rules, checked before building a peer connection (same codes). */
export function checkStreamID(streamID) {
  if (typeof streamID !== 'string' || streamID === '') throw sdkError(1000015, 'streamID is empty');
  if (streamID.length > 256) throw sdkError(1000014, 'streamID is too long');
  if (!STREAM_ID_RE.test(streamID)) throw sdkError(1000016, 'streamID has illegal characters');
}

/** Run a WebRTC call; its DOMException becomes `{code: 1005001, message}`. */
export async function rtc(what, fn) {
  try {
    return await fn();
  } catch (e) {
    throw sdkError(ErrorCode.WEBRTC, `${what} failed: ${e && e.name ? `${e.name}: ${e.message}` : e}`);
  }
}

/** Close a record's peer connection and detach its handlers. */
export function closePc(rec) {
  const pc = rec.pc;
  if (!pc) return;
  pc.onconnectionstatechange = pc.oniceconnectionstatechange = pc.ontrack = null;
  try {
    pc.close();
  } catch {
    /* ignore */
  }
}

/** Put `name` (VP8, VP9, H264, AV1) first: the server keeps the first codec the offer lists. */
export function preferCodec(RTCRtpSender, transceiver, name) {
  const caps = RTCRtpSender && RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities('video');
  if (!caps || typeof transceiver.setCodecPreferences !== 'function') return;
  const want = `video/${String(name).toLowerCase()}`;
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === want);
  if (!first.length) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== want);
  try {
    transceiver.setCodecPreferences([...first, ...rest]);
  } catch {
    /* keep the browser's order */
  }
}

/**
 * `{camera: {video, audio, videoInput?, audioInput?}}` -> getUserMedia,
 * `{screen: true | {video, audio}}` -> getDisplayMedia. video/audio are
 * booleans or MediaTrackConstraints. Failures reject `{code: 1005002}`.
 */
export async function openMedia(mediaDevices, source = {}) {
  if (!mediaDevices) {
    throw sdkError(ErrorCode.NOT_SUPPORTED, 'navigator.mediaDevices is not available (HTTPS or localhost required)');
  }
  try {
    if (source.screen) {
      const s = source.screen === true ? {} : source.screen;
      return await mediaDevices.getDisplayMedia({ video: s.video === undefined ? true : s.video, audio: !!s.audio });
    }
    const cam = source.camera || {};
    let video = cam.video === undefined ? true : cam.video;
    let audio = cam.audio === undefined ? true : cam.audio;
    if (video && cam.videoInput) video = { ...(typeof video === 'object' ? video : {}), deviceId: { exact: cam.videoInput } };
    if (audio && cam.audioInput) audio = { ...(typeof audio === 'object' ? audio : {}), deviceId: { exact: cam.audioInput } };
    if (!video && !audio) throw sdkError(ErrorCode.INVALID_PARAMETER, 'createStream needs video or audio');
    return await mediaDevices.getUserMedia({ video, audio });
  } catch (e) {
    throw toSdkError(e, ErrorCode.DEVICE);
  }
}

/**
 * Send encodings of a simulcast video publish (`startPublishingStream`'s
 * `simulcast` option): three RTP streams, lowest first, named q/h/f (the
 * server ranks layers by these names). `true` takes the defaults; an
 * object may set `layers` (2 or 3) and `maxBitrates` (bits/s, lowest
 * first).
 */
export function simulcastEncodings(option) {
  const o = option === true ? {} : option || {};
  const layers = o.layers === 2 ? 2 : 3;
  const rates = Array.isArray(o.maxBitrates) ? o.maxBitrates : [150000, 500000, 1500000];
  const all = [
    { rid: 'q', scaleResolutionDownBy: 4 },
    { rid: 'h', scaleResolutionDownBy: 2 },
    { rid: 'f', scaleResolutionDownBy: 1 },
  ];
  const chosen = layers === 2 ? [all[1], all[2]] : all;
  return chosen.map((e, i) => {
    const rate = rates[i + (rates.length > chosen.length ? rates.length - chosen.length : 0)];
    return typeof rate === 'number' && rate > 0 ? { ...e, maxBitrate: rate } : e;
  });
}

/**
 * Stop sending the simulcast encodings the server says no player takes
 * (`publisherVideoLayersUpdate`'s `pausedLayers`, by RID) and send the
 * others again: `encodings[i].active` through `setParameters`. Resolves
 * when applied; senders without RIDs are left alone.
 */
export async function setPausedLayers(pc, pausedLayers) {
  const paused = Array.isArray(pausedLayers) ? pausedLayers.map(String) : [];
  const senders = typeof pc.getSenders === 'function' ? pc.getSenders() : [];
  for (const sender of senders) {
    if (!sender.track || sender.track.kind !== 'video') continue;
    const params = sender.getParameters();
    const encodings = params.encodings || [];
    if (encodings.length < 2 || !encodings.every((e) => e.rid)) continue;
    let changed = false;
    for (const e of encodings) {
      const active = !paused.includes(e.rid);
      if (e.active !== active) {
        e.active = active;
        changed = true;
      }
    }
    if (changed) await sender.setParameters(params);
  }
}

/** AV1's dependency descriptor RTP header extension. */
export const DEPENDENCY_DESCRIPTOR = 'https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension';

/**
 * A play offer that also receives AV1's dependency descriptor: Chromium
 * does not advertise it by default, and without it cannot decode an AV1
 * SVC play above its base spatial layer (it needs the descriptor to tell
 * the layer frames of one temporal unit apart). Adds one `a=extmap` line,
 * with an ID no other extension uses, to every video section that lacks
 * it; returns the SDP unchanged when no ID 1..14 is free.
 */
export function withDependencyDescriptor(sdp) {
  if (typeof sdp !== 'string' || sdp.includes(DEPENDENCY_DESCRIPTOR)) return sdp;
  const used = new Set([...sdp.matchAll(/^a=extmap:(\d+)/gm)].map((m) => Number(m[1])));
  let id = 0;
  for (let i = 1; i <= 14; i++) {
    if (!used.has(i)) {
      id = i;
      break;
    }
  }
  if (!id) return sdp;
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const sections = sdp.split(/(?=^m=)/m);
  return sections
    .map((sec) => {
      if (!sec.startsWith('m=video')) return sec;
      const lines = sec.split(eol);
      let at = -1;
      lines.forEach((l, i) => {
        if (l.startsWith('a=extmap:') || l.startsWith('a=mid:')) at = i;
      });
      if (at < 0) return sec;
      lines.splice(at + 1, 0, `a=extmap:${id} ${DEPENDENCY_DESCRIPTOR}`);
      return lines.join(eol);
    })
    .join('');
}
