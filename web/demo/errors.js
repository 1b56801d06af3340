// Short human messages for the wire contract's error codes and the SDK's own.

const MESSAGES = {
  // Request and identifiers
  1000001: 'The server did not understand the request',
  1000002: 'Join a room first',
  1000014: 'Stream ID is too long (max 256 characters)',
  1000015: 'Stream ID is empty',
  1000016: 'Stream ID may only use letters, digits, "_" and "-"',
  1000005022: 'Too many rooms at once for this app',
  1100001016: 'This app does not allow multi-room login',
  1001004: 'Unknown app ID',
  1001020: 'Room mode can only be chosen once, before the first login',
  // Rooms
  1002001: 'Single-room mode: already in a room (use Switch)',
  1002002: 'You are not in that room',
  1002005: 'User ID is empty',
  1002006: 'User ID has illegal characters (no "/", ":" or control characters)',
  1002007: 'User ID is too long (max 64 bytes)',
  1002010: 'User name is too long (max 256 bytes)',
  1002011: 'Room ID is empty',
  1002012: 'Room ID has illegal characters (no "/", ":" or control characters)',
  1002013: 'Room ID is too long (max 128 bytes)',
  1002014: 'Extra-info key is empty',
  1002015: 'Extra-info key is too long (max 10 bytes)',
  1002016: 'Extra-info value is too long (max 128 bytes)',
  1002017: 'A room holds one extra-info key; this is a second one',
  1002018: 'Use the same user ID in every room of this session',
  1002033: 'The token is invalid',
  1002034: 'The room is full',
  1002050: 'Signed in elsewhere with the same user ID',
  1002055: 'Removed from the room by the server',
  1002056: 'Already in this room',
  1002064: 'Switch target is the same room or one you are already in',
  1002067: 'No token given',
  1002071: 'Too many requests for this app, slow down',
  1002072: 'Too many requests in this room, slow down',
  1002073: 'Too many requests, slow down',
  1002076: 'The token is for another app',
  1002077: 'The token is for another user',
  1002078: 'The token has expired',
  // Streams
  1003028: 'That stream ID is already being published',
  1003050: 'Stream extra info is missing',
  1003051: 'Stream extra info is too long (max 1024 bytes)',
  1003072: 'Your token does not allow publishing (this stream)',
  1004002: 'No such stream (not published, or it stopped)',
  1005001: 'WebRTC negotiation failed (offer/answer)',
  1005002: 'Camera, microphone or screen unavailable (permission denied or no device)',
  1005003: 'Media connection to the server failed (UDP blocked?)',
  // Messages
  1009001: 'The message is empty',
  1009002: 'The message is too long (max 1024 bytes)',
  1009005: 'You are not in that room',
  1009011: 'Command target is empty',
  1009012: 'Command target is too long',
  1009015: 'Sending too fast, wait a moment',
  // SDK-local
  1000100: 'The session was reset',
  1000101: 'Invalid input',
  1000102: 'Cannot reach the signaling server',
  1000103: 'The server did not answer in time',
  1000104: 'This browser lacks WebRTC, WebSocket or media devices (HTTPS or localhost needed)',
};

/** "Human text (code)" for a `{code, message}` rejection or anything thrown. */
export function describeError(err) {
  if (!err) return 'Unknown error';
  const code = err.code;
  const human = typeof code === 'number' ? MESSAGES[code] : null;
  if (human) return `${human} (${code})`;
  if (typeof code === 'number') return `${err.message || 'Error'} (${code})`;
  return err.message || String(err);
}

export function humanCode(code) {
  return MESSAGES[code] || '';
}

const DELETE_REASONS = { 1: 'stopped', 2: 'heartbeat timeout', 3: 'logged in elsewhere', 4: 'kicked', 5: 'disconnected', 6: 'removed by server' };

/** " (s1: stopped)" from a roomStreamUpdate DELETE's extendedData, "" otherwise. */
export function deleteReasons(extendedData) {
  try {
    const reasons = JSON.parse(extendedData || '{}').stream_delete_reason || [];
    return reasons.map((r) => ` (${r.stream_id}: ${DELETE_REASONS[r.code] || r.code})`).join('');
  } catch {
    return '';
  }
}
