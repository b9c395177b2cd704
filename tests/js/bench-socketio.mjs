// tests/js/bench-socketio.mjs: run by scripts/bench-socketio.sh (see there). Connects N Socket.IO
// clients (socket.io-client from this directory) to a gateway from W worker threads, reads the
// gateway's RSS idle and with every client connected, then raises R broadcasts with NOTIFY and reports
// how long each took to reach each client: the payload carries clock_timestamp() taken inside the
// NOTIFYing transaction just before its commit, the client takes the wall clock on receipt (same
// machine, same clock), so a figure is commit + LISTEN delivery + the gateway's fan-out + the client's
// own parsing. Prints figures; asserts nothing.
//
// Environment: MODELMINE_API_URL, BENCH_DB (psql -d, PG* for the rest), BENCH_PID (the gateway's
// pid, for /proc/PID/status), BENCH_CLIENTS (1000), BENCH_ROUNDS (20), BENCH_WORKERS (2),
// BENCH_TRANSPORT (websocket | polling | default).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { io } from 'socket.io-client';

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (!isMainThread) {
  // a worker: its share of the clients; every receipt goes to the main thread as [round, latency ms]
  const { url, n, transport } = workerData;
  const opts = { forceNew: true, reconnection: false };
  if (transport !== 'default') opts.transports = [transport];
  const sockets = [];
  let connected = 0;
  let failed = 0;
  let got = [];
  for (let i = 0; i < n; i++) {
    const s = io(url, opts);
    s.on('connect', () => { connected++; });
    s.on('connect_error', () => { failed++; });
    s.on('node:registered', (d) => { if (d && d.bench) got.push([d.round, now() - d.t]); });
    sockets.push(s);
    if (i % 50 === 49) await sleep(20); // no SYN flood: the listen backlog is finite
  }
  parentPort.on('message', (m) => {
    if (m === 'status') {
      parentPort.postMessage({ connected, failed, upgraded: sockets.filter((s) => s.io.engine &&
        s.io.engine.transport && s.io.engine.transport.name === 'websocket').length });
    } else if (m === 'flush') {
      parentPort.postMessage({ got });
      got = [];
    } else if (m === 'close') {
      for (const s of sockets) s.close();
      setTimeout(() => process.exit(0), 200);
    }
  });
  parentPort.postMessage({ started: n });
} else {
  const url = process.env.MODELMINE_API_URL;
  const db = process.env.BENCH_DB;
  const pid = process.env.BENCH_PID;
  const clients = Number(process.env.BENCH_CLIENTS || 1000);
  const rounds = Number(process.env.BENCH_ROUNDS || 20);
  const nworkers = Math.min(Number(process.env.BENCH_WORKERS || 2), clients);
  const transport = process.env.BENCH_TRANSPORT || 'websocket';

  const rss = () => {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
    return m ? Number(m[1]) : NaN;
  };
  const threads = () => readFileSync(`/proc/${pid}/status`, 'utf8').match(/Threads:\s+(\d+)/)[1];
  const ask = (w, msg) => new Promise((resolve) => { w.once('message', resolve); w.postMessage(msg); });
  const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  const mb = (kb) => `${(kb / 1024).toFixed(1)} MB`;

  const idle = rss();
  console.log(`gateway pid ${pid}: RSS idle ${mb(idle)}, ${threads()} threads`);
  const t0 = Date.now();
  const workers = [];
  for (let i = 0; i < nworkers; i++) {
    const n = Math.floor(clients / nworkers) + (i < clients % nworkers ? 1 : 0);
    const w = new Worker(new URL(import.meta.url), { workerData: { url, n, transport } });
    await new Promise((resolve) => w.once('message', resolve));
    workers.push(w);
  }
  let st = [];
  for (let tries = 0; tries < 600; tries++) {
    st = await Promise.all(workers.map((w) => ask(w, 'status')));
    const done = st.reduce((a, s) => a + s.connected + s.failed, 0);
    const upgraded = st.reduce((a, s) => a + s.upgraded, 0);
    if (done >= clients && (transport !== 'default' || upgraded >= clients)) break;
    await sleep(100);
  }
  const connected = st.reduce((a, s) => a + s.connected, 0);
  console.log(`${connected} of ${clients} clients connected (${transport}, ${nworkers} worker threads) ` +
    `in ${Date.now() - t0} ms; ${st.reduce((a, s) => a + s.failed, 0)} refused`);
  await sleep(2000);
  const busy = rss();
  console.log(`gateway RSS with ${connected} clients: ${mb(busy)} (+${((busy - idle) / connected).toFixed(1)} kB ` +
    `per client), ${threads()} threads`);

  const all = [];
  const lastPerRound = [];
  for (let r = 1; r <= rounds; r++) {
    execFileSync('psql', ['-X', '-q', '-At', '-d', db, '-c',
      `SELECT pg_catalog.pg_notify('node:registered', pg_catalog.json_build_object('node_id', 0, ` +
      `'name', 'bench', 'bench', true, 'round', ${r}, ` +
      `'t', extract(epoch FROM pg_catalog.clock_timestamp()) * 1000)::text)`], { stdio: ['ignore', 'ignore', 'inherit'] });
    await sleep(800);
    const got = (await Promise.all(workers.map((w) => ask(w, 'flush')))).flatMap((m) => m.got)
      .filter(([round]) => round === r).map(([, ms]) => ms);
    if (got.length < connected) console.log(`round ${r}: only ${got.length} of ${connected} clients got it`);
    all.push(...got);
    if (got.length) lastPerRound.push(Math.max(...got));
  }
  all.sort((a, b) => a - b);
  lastPerRound.sort((a, b) => a - b);
  console.log(`broadcast latency, NOTIFY commit -> client receipt, ${all.length} deliveries ` +
    `(${rounds} rounds x ${connected} clients): p50 ${pct(all, 50).toFixed(1)} ms, ` +
    `p90 ${pct(all, 90).toFixed(1)} ms, p99 ${pct(all, 99).toFixed(1)} ms, max ${all[all.length - 1].toFixed(1)} ms`);
  console.log(`time until the last client of a round had it: median ${pct(lastPerRound, 50).toFixed(1)} ms, ` +
    `worst ${lastPerRound[lastPerRound.length - 1].toFixed(1)} ms`);
  for (const w of workers) w.postMessage('close');
  await sleep(500);
  process.exit(0);
}
