// Per-stream stats digest from RTCPeerConnection.getStats() reports.
// Pure: takes a report (anything with forEach over stats objects) and the
// previous snapshot, returns the digest and the snapshot to keep.

const round1 = (x) => Math.round(x * 10) / 10;

/**
 * @param report  RTCStatsReport (or a Map of id -> stats)
 * @param prev    snapshot returned by the previous call, or null
 * @param role    'publisher' | 'player'
 * @returns {{digest: object, snapshot: object}}
 */
export function digestStats(report, prev, role) {
  const publisher = role === 'publisher';
  const rtpType = publisher ? 'outbound-rtp' : 'inbound-rtp';
  const byId = new Map();
  report.forEach((s) => byId.set(s.id, s));

  let audioBytes = 0;
  let videoBytes = 0;
  let frames = 0;
  let hasVideo = false;
  let packetsLost = 0;
  let reportedFps = null;
  let width = null;
  let height = null;
  let videoCodec = null;
  let audioCodec = null;
  let ts = 0;
  let remoteRtt = null;
  let pairRtt = null;
  let selectedPair = null;

  for (const s of byId.values()) {
    if (s.type === 'transport' && s.selectedCandidatePairId) selectedPair = s.selectedCandidatePairId;
  }
  for (const s of byId.values()) {
    if (s.type === rtpType && !s.isRemote) {
      const kind = s.kind || s.mediaType;
      const bytes = (publisher ? s.bytesSent : s.bytesReceived) || 0;
      if (typeof s.timestamp === 'number') ts = Math.max(ts, s.timestamp);
      const codec = s.codecId && byId.get(s.codecId);
      const mime = codec && codec.mimeType ? codec.mimeType.replace(/^(audio|video)\//, '') : null;
      if (kind === 'video') {
        hasVideo = true;
        videoBytes += bytes;
        frames += (publisher ? s.framesEncoded : s.framesDecoded) || 0;
        if (typeof s.framesPerSecond === 'number') reportedFps = s.framesPerSecond;
        if (s.frameWidth) width = s.frameWidth;
        if (s.frameHeight) height = s.frameHeight;
        if (mime) videoCodec = mime;
      } else {
        audioBytes += bytes;
        if (mime) audioCodec = mime;
      }
      if (!publisher) packetsLost += Math.max(0, s.packetsLost || 0);
    } else if (publisher && s.type === 'remote-inbound-rtp') {
      packetsLost += Math.max(0, s.packetsLost || 0);
      if (typeof s.roundTripTime === 'number') remoteRtt = s.roundTripTime;
    } else if (s.type === 'candidate-pair' && typeof s.currentRoundTripTime === 'number') {
      const chosen = selectedPair ? s.id === selectedPair : s.nominated && s.state === 'succeeded';
      if (chosen) pairRtt = s.currentRoundTripTime;
    }
  }

  const snapshot = { ts: ts || Date.now(), audioBytes, videoBytes, frames };
  const dt = prev ? snapshot.ts - prev.ts : 0; // ms
  const kbps = (now, before) => (dt > 0 ? Math.max(0, ((now - before) * 8) / dt) : 0);
  const audioKbps = prev ? kbps(audioBytes, prev.audioBytes) : 0;
  const videoKbps = prev ? kbps(videoBytes, prev.videoBytes) : 0;
  let fps = 0;
  if (prev && dt > 0) fps = Math.max(0, ((frames - prev.frames) * 1000) / dt);
  else if (reportedFps !== null) fps = reportedFps;
  const rtt = pairRtt !== null ? pairRtt : remoteRtt;

  const digest = {
    bitrateKbps: round1(audioKbps + videoKbps),
    audioBitrateKbps: round1(audioKbps),
    videoBitrateKbps: round1(videoKbps),
    fps: hasVideo ? round1(fps) : 0,
    packetsLost,
    rttMs: rtt === null ? null : Math.round(rtt * 1000),
    width,
    height,
    videoCodec,
    audioCodec,
  };
  if (publisher) digest.framesEncoded = frames;
  else digest.framesDecoded = frames;
  return { digest, snapshot };
}
