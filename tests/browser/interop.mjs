// The browser half of the interop tests.
//   SERVER=... node interop.mjs play STREAM     -> plays via the SDK, prints "decoded N frames"
//   SERVER=... node interop.mjs publish STREAM  -> publishes the fake camera, prints "publishing", runs until killed
import { launch, sdkPage, until } from './common.mjs';

const server = process.env.SERVER;
const [mode, stream] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await sdkPage(browser, server);
  await page.evaluate(async () => {
    window.e = new window.sdk.Engine(1, location.origin);
    await window.e.loginRoom('interop', await window.token('chrome'), { userID: 'chrome', userName: 'Chrome' });
  });
  if (mode === 'play') {
    await page.evaluate(async (stream) => {
      const ms = await window.e.startPlayingStream(stream);
      await window.attach(ms);
    }, stream);
    const s = await until(`frames of ${stream}`, async () => {
      const st = await page.evaluate(async (stream) => window.e.getStats(stream), stream);
      return st && st.framesDecoded > 10 ? st : null;
    });
    console.log(`decoded ${s.framesDecoded} frames`);
    // The video codec the answer gave this player, as Chromium decodes it.
    const codec = await page.evaluate(async (stream) => {
      const report = await window.e._players.get(stream).pc.getStats();
      let id = null;
      report.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') id = r.codecId; });
      const c = id && report.get(id);
      return c ? `${c.mimeType} ${c.sdpFmtpLine || ''}` : 'none';
    }, stream);
    console.log(`video codec ${codec}`);
    // Sender reports (the server makes them itself for every player leg)
    // show as remote-outbound-rtp stats.
    const kinds = await until(`remote-outbound-rtp of ${stream}`, async () => {
      const found = await page.evaluate(async (stream) => {
        const report = await window.e._players.get(stream).pc.getStats();
        const kinds = [];
        report.forEach((r) => {
          if (r.type === 'remote-outbound-rtp' && r.packetsSent > 0) kinds.push(r.kind);
        });
        return kinds.sort();
      }, stream);
      return found.length ? found : null;
    });
    console.log(`remote-outbound-rtp ${kinds.join(',')}`);
  } else {
    await page.evaluate(async (stream) => {
      const ms = await window.e.createStream({ camera: { video: true, audio: true } });
      await window.e.startPublishingStream(stream, ms, { roomID: 'interop' });
    }, stream);
    console.log('publishing');
    await new Promise(() => {});
  }
} finally {
  await browser.close();
}
