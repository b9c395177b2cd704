// tests/browser/lib.mjs — what the dashboard's browser tests share: Debian's Chromium under
// playwright-core (pinned in tests/browser/package.json), checks that print one line each in the
// integration tests' format ("ok    ..." / "FAIL  ..."), the gateway's API from Node, axe-core, and
// the first-load measurements (bytes on the wire, time to the first complete render).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

export const CHROMIUM = process.env.MM_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

/** Launches headless Chromium with a fresh profile (playwright makes a new --user-data-dir each launch). */
export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

// ---- checks ----
let checks = 0;
let failures = 0;

export function pass(desc) {
  checks += 1;
  console.log(`ok    ${desc}`);
}

export function fail(desc, why) {
  checks += 1;
  failures += 1;
  console.log(`FAIL  ${desc}${why ? `: ${why}` : ''}`);
}

export function check(desc, ok, why) {
  if (ok) pass(desc);
  else fail(desc, why);
  return ok;
}

export function checkEqual(desc, got, want) {
  return check(desc, isDeepStrictEqual(got, want),
    `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

/** Runs fn as one check: a throw (a timeout, say) fails it with the message. */
export async function step(desc, fn) {
  try {
    const r = await fn();
    if (r === false) fail(desc);
    else pass(desc);
    return true;
  } catch (e) {
    fail(desc, String(e?.message || e).split('\n')[0]);
    return false;
  }
}

export function summary(name) {
  console.log(`\n${name}: ${checks} checks, ${failures} failed`);
  return failures;
}

// ---- the gateway's API, from Node ----
export function api(base) {
  async function call(method, path, body, token) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(new URL(path, base), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    return { status: res.status, data, headers: res.headers };
  }
  return {
    call,
    get: (path, token) => call('GET', path, undefined, token),
    post: (path, body, token) => call('POST', path, body ?? {}, token),
    async login(email, password) {
      const r = await call('POST', '/auth/login', { email, password });
      if (r.status !== 200) throw new Error(`login ${email}: ${r.status} ${JSON.stringify(r.data)}`);
      return r.data.token;
    },
  };
}

/** A page whose console errors and page errors are collected (and dialogs recorded and dismissed). */
export async function newPage(browser, { width = 1280, height = 900, scheme = 'light', bypassCSP = false, acceptDownloads = false } = {}) {
  const context = await browser.newContext({
    viewport: { width, height }, colorScheme: scheme, bypassCSP, acceptDownloads, reducedMotion: 'reduce',
  });
  const page = await context.newPage();
  page.errors = [];
  page.dialogs = [];
  page.on('pageerror', (e) => page.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(`console: ${m.text()}`); });
  page.on('dialog', (d) => { page.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  return { context, page };
}

/** Puts a session in the tab's sessionStorage before the dashboard's scripts run (as after a sign-in). */
export async function withSession(context, session) {
  await context.addInitScript((s) => {
    if (!sessionStorage.getItem('modelmine.session')) sessionStorage.setItem('modelmine.session', s);
  }, JSON.stringify(session));
}

/** Goes to a page (#/...) and waits until it says it rendered its data. */
export async function open(page, base, hash, rendered, timeout = 15000) {
  await page.goto(`${base}/${hash}`);
  if (rendered) await page.waitForSelector(`body[data-rendered="${rendered}"]`, { timeout });
}

// ---- axe-core ----
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core's WCAG 2.1 A/AA violations on the page (the page's context must bypass CSP to inject it). */
export async function axe(page) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.addScriptTag({ content: AXE });
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1, 2).join(' ')}`) }));
  });
}

// ---- first load ----

/**
 * Loads base/hash in a fresh context (empty cache) with a session, and measures: bytes on the wire
 * (encoded, headers included, from the DevTools protocol) until the page rendered and the network
 * went quiet, the time from navigation start to the page's mm:rendered mark, and the requests.
 */
export async function firstLoad(browser, base, hash, rendered, session, { width = 1280 } = {}) {
  const { context, page } = await newPage(browser, { width });
  if (session) await withSession(context, session);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  const requests = new Map();
  let bytes = 0;
  cdp.on('Network.requestWillBeSent', (e) => requests.set(e.requestId, { url: e.request.url, bytes: 0 }));
  cdp.on('Network.responseReceived', (e) => {
    const r = requests.get(e.requestId);
    if (r) r.encoding = e.response.headers['Content-Encoding'] || e.response.headers['content-encoding'] || '';
  });
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
    const r = requests.get(e.requestId);
    if (r) r.bytes = e.encodedDataLength;
  });
  await page.goto(`${base}/${hash}`);
  await page.waitForSelector(`body[data-rendered="${rendered}"]`, { timeout: 60000 });
  const ms = await page.evaluate((name) => performance.getEntriesByName(name)[0]?.startTime ?? null, `mm:rendered:${rendered}`);
  await page.waitForLoadState('networkidle').catch(() => {});
  await page.waitForTimeout(300);
  const list = [...requests.values()].map((r) => ({ ...r, url: r.url.replace(base, '') }));
  await context.close();
  return { bytes, ms, requests: list, errors: page.errors };
}

export function kB(n) {
  return `${(n / 1000).toFixed(1)} kB`;
}
