// Firefox half of the browser tests: launch Debian's Firefox ESR headless
// with fake media devices, driven by puppeteer-core over WebDriver BiDi
// (Firefox speaks it natively; no geckodriver). puppeteer makes a fresh
// profile in the temp dir for every launch and deletes it on close.
import puppeteer from 'puppeteer-core';
import { loadSdk } from './common.mjs';

export const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';

// See /work/shared/browser-notes.md (Firefox section).
export const FIREFOX_PREFS = {
  // Fake camera + microphone, no permission prompt.
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  // A page with only fake devices counts as capturing; without it Firefox
  // gathers only the default route's address, and the test namespace has
  // no default route, so it would gather nothing.
  'media.navigator.permission.fake': true,
  // Gather 127.0.0.1, as raw IPs rather than mDNS names. Firefox also
  // gathers ::1 on lo; that is harmless here: the server is ICE-lite and
  // answers with 127.0.0.1 host candidates only, so no pair can be IPv6
  // (cross.mjs prints the pair that carried the media).
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.autoplay.default': 0,
  // A player page never calls getUserMedia, so it is not capturing and
  // would get the default-address-only gathering above (its peer connection
  // goes to "failed" within milliseconds, before any answer). What else
  // lifts that is a camera or microphone permission of the origin: grant
  // both by default (WebDriver BiDi's permissions.setPermission does not
  // support "camera" in Firefox ESR, and the pref
  // media.peerconnection.ice.default_address_only=false does not help).
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
};

export async function launchFirefox() {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    extraPrefsFirefox: FIREFOX_PREFS,
  });
}

/// A page on the server's origin with the SDK loaded as `window.sdk` (as
/// common.mjs's sdkPage does for Chromium). The origin must be the server's
/// http://127.0.0.1:PORT: a secure context, so navigator.mediaDevices exists,
/// and same-origin, so no CORS is needed.
export async function firefoxSdkPage(browser, server) {
  return loadSdk(await browser.newPage(), server, 'firefox page');
}
