// Shared helpers of the browser tests: launch Debian's Chromium headless
// with fake media devices, and small polling utilities.
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/// A page on the server's origin with the SDK loaded as `window.sdk`.
export async function sdkPage(browser, server) {
  const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  return loadSdk(await context.newPage(), server, 'page');
}

/// Open the server's origin in `page` (Playwright's or Puppeteer's) and load
/// the SDK as `window.sdk`, with page helpers: `window.token(user)` (a dev
/// token of app 1), `window.attach(mediaStream)` (play it in a muted
/// <video>) and `window.RecordedPeerConnection`, an RTCPeerConnection that
/// keeps every instance in `window.pcs` (pass it to the SDK's injection
/// option to read getStats()).
export async function loadSdk(page, server, label) {
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[${label}] ${m.text()}`);
  });
  await page.goto(`${server}/health`);
  await page.evaluate(async () => {
    window.sdk = await import('/sdk/engine.js');
    window.pcs = [];
    window.RecordedPeerConnection = class extends window.RTCPeerConnection {
      constructor(config) {
        super(config);
        window.pcs.push(this);
      }
    };
    window.token = async (user) => {
      const r = await fetch(`/dev/token?appID=1&userID=${encodeURIComponent(user)}`);
      if (!r.ok) throw new Error(`token endpoint: ${r.status}`);
      return (await r.json()).token;
    };
    window.attach = async (ms) => {
      const v = document.createElement('video');
      v.muted = true;
      v.autoplay = true;
      v.srcObject = ms;
      document.body.appendChild(v);
      await v.play().catch(() => {});
      return v;
    };
  });
  return page;
}

export async function until(what, fn, timeoutMs = 15000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}
