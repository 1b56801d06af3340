// The demo page, driven as a person would: alice logs into two rooms,
// publishes her camera into one and plays it; bob, in another browser,
// joins and chats. Saves a screenshot of alice's page to out/demo.png.
// Usage: SERVER=http://127.0.0.1:PORT node demo.mjs
import { mkdirSync } from 'node:fs';
import { launch, until, check } from './common.mjs';

const server = process.env.SERVER;
const [browserA, browserB] = await Promise.all([launch(), launch()]);
try {
  const open = async (browser, user, name) => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, permissions: ['camera', 'microphone'] });
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error(`[${user}] ${e.message}`));
    await page.goto(`${server}/?userId=${user}&userName=${encodeURIComponent(name)}`);
    return page;
  };
  const join = async (page, room) => {
    await page.fill('#login-room', room);
    await page.click('#login-btn');
    await page.waitForSelector(`[data-testid=room-panel][data-room-id="${room}"]`);
  };
  const alice = await open(browserA, 'alice', 'Alice');
  await join(alice, 'stage');
  await join(alice, 'backstage');
  await alice.selectOption('#publish-room', 'stage');
  await alice.fill('#publish-stream-id', 'alice-cam');
  await alice.click('#publish-btn');
  await alice.waitForSelector('[data-testid=video-tile][data-stream-id="alice-cam"][data-role=publisher]');

  const bob = await open(browserB, 'bob', 'Bob');
  await join(bob, 'stage');
  // Bob sees alice's stream in the room's list and plays it from there.
  await bob.waitForSelector('[data-testid=stream-list] li[data-stream-id="alice-cam"]');
  await bob.click('[data-testid=stream-list] li[data-stream-id="alice-cam"] [data-testid=stream-play]');
  const frames = await until('bob to decode alice-cam', async () => {
    const f = await bob.getAttribute('[data-testid=video-tile][data-stream-id="alice-cam"][data-role=player]', 'data-frames').catch(() => null);
    return Number(f) > 10 ? Number(f) : null;
  });
  console.log(`demo: bob's tile decoded ${frames} frames of alice-cam`);
  // Alice plays her own stream back too, so her page shows both tiles.
  await alice.fill('#play-stream-id', 'alice-cam');
  await alice.click('#play-btn');
  await until('alice to decode her stream', async () => {
    const f = await alice.getAttribute('[data-testid=video-tile][data-stream-id="alice-cam"][data-role=player]', 'data-frames').catch(() => null);
    return Number(f) > 10;
  });
  // Bob says hello in the stage room; alice's stage chat shows it.
  await bob.fill('#chat-input-stage', 'hello from bob');
  await bob.click('#chat-send-stage');
  await alice.click('[data-testid=room-tab][data-room-id="stage"]');
  await until('alice to get bob\'s message', async () =>
    (await alice.locator('[data-testid=room-panel][data-room-id="stage"] [data-testid=chat-log] li[data-from="Bob"]').count()) > 0);
  const users = await alice.locator('[data-testid=room-panel][data-room-id="stage"] [data-testid=user-list] li[data-user-id="bob"]').count();
  check(users === 1, 'bob is not in alice\'s stage user list');
  await new Promise((r) => setTimeout(r, 1500)); // let the stats panel fill in
  mkdirSync('out', { recursive: true });
  await alice.screenshot({ path: 'out/demo.png' });
  console.log('demo passed: screenshot in tests/browser/out/demo.png');
} finally {
  await Promise.all([browserA.close(), browserB.close()]);
}
