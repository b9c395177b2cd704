// tests/browser/measure.mjs — the dashboard's first load, measured in Debian's Chromium: bytes on the
// wire (compressed, headers included) and the time from navigation to the first complete render (the
// page's mm:rendered mark: its data fetched and drawn, charts included), each page loaded --runs times
// in a fresh context with an empty cache. scripts/bench-web.sh runs it against the 1M-job data set.
//
//   node measure.mjs --url http://127.0.0.1:8080 --email E --password P [--runs 5] [--pages dashboard,network]
//
// Prints one line per page, and the JSON of all figures last.

import { parseArgs } from 'node:util';
import { api, firstLoad, kB, launch } from './lib.mjs';

const { values: o } = parseArgs({
  options: {
    url: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' },
    runs: { type: 'string', default: '5' }, pages: { type: 'string', default: 'dashboard,network' },
  },
});
if (!o.url || !o.email || !o.password) {
  console.error('usage: node measure.mjs --url URL --email EMAIL --password PASSWORD [--runs N] [--pages dashboard,network]');
  process.exit(2);
}
const runs = Math.max(1, Number(o.runs));
const A = api(o.url);
const token = await A.login(o.email, o.password);
const me = (await A.get('/auth/me', token)).data;
const session = { token, user_id: me.user_id, email: me.email, role: me.role };
const browser = await launch();
const out = {};
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
try {
  // one load first, not counted: the gateway's connections and the database's caches warm up
  await firstLoad(browser, o.url, '#/dashboard', 'dashboard', session);
  for (const page of o.pages.split(',')) {
    const ms = [];
    let bytes = 0;
    let requests = 0;
    for (let i = 0; i < runs; i++) {
      const f = await firstLoad(browser, o.url, `#/${page}`, page, session);
      if (f.errors.length) console.error(`${page}: ${f.errors.join(' | ')}`);
      ms.push(f.ms);
      bytes = f.bytes;
      requests = f.requests.length;
    }
    out[page] = { runs, bytes, requests, median_ms: median(ms), min_ms: Math.min(...ms), max_ms: Math.max(...ms) };
    console.log(`${page.padEnd(10)} first load ${kB(bytes).padStart(9)} in ${requests} requests; first complete render: median ${median(ms).toFixed(0)} ms (min ${Math.min(...ms).toFixed(0)}, max ${Math.max(...ms).toFixed(0)}) over ${runs} loads`);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
