// Token helpers of the demo: dev-token fetch and a readable summary of a JWT.

/** http(s) base of a server URL (ws:// → http://, a trailing /ws dropped). */
export function httpBase(serverURL) {
  const u = new URL(/^[a-z]+:\/\//i.test(serverURL) ? serverURL : `http://${serverURL}`);
  u.protocol = { 'ws:': 'http:', 'wss:': 'https:' }[u.protocol] || u.protocol;
  return u.origin + u.pathname.replace(/\/ws\/?$/, '').replace(/\/+$/, '');
}

/** "Token for alice · app 1 · any room · expires 14:03" (claims are only read, never trusted). */
export function describeToken(token) {
  try {
    const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const c = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    const exp = c.exp ? new Date(c.exp * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '?';
    const scope = c.room_id ? `room ${c.room_id} only` : 'any room';
    const pub = c.privilege && c.privilege.publish === false ? ' · no publishing' : '';
    return `Token for ${c.user_id} · app ${c.app_id} · ${scope}${pub} · expires ${exp}`;
  } catch {
    return 'Token pasted (not a readable JWT — the server will check it)';
  }
}

/**
 * GET <server>/dev/token?appID=&userID= (only in the server's --dev mode).
 * Rejects `{message, unavailable: true}` when the server does not offer it.
 */
export async function fetchDevToken({ serverURL, appID, userID }) {
  const base = httpBase(serverURL);
  let body = null;
  try {
    const res = await fetch(`${base}/dev/token?appID=${appID}&userID=${encodeURIComponent(userID)}`);
    if (res.ok) body = await res.json().catch(() => null);
  } catch {
    throw { message: `Cannot reach ${base} to get a dev token` };
  }
  if (!body || typeof body.token !== 'string') {
    throw { unavailable: true, message: 'This server does not hand out dev tokens (not started with --dev); paste a token instead' };
  }
  return body.token;
}
