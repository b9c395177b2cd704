// tests/js/sio-worker.test.mjs: the real npm socket.io-client against modelmine-api while a real
// modelmine-worker registers, heartbeats and trains a job: what each kind of socket receives.
//
//   owner   the job's owner, default transports (polling, then the upgrade)
//   other   another user, websocket only
//   anon    no token
//
// The script connects the three, then writes MM_READY (a file) so the shell starts the worker; it
// waits for node:registered, submits a job over HTTP as the owner, and collects every event until
// the job's COMPLETED status arrives. One line per check, then "N passed, N failed"; exit 1 on any
// failure.
//
// Environment: MODELMINE_API_URL, MM_OWNER_TOKEN, MM_OTHER_TOKEN, MM_READY (a path to create),
// MM_NODE_NAME (the worker's --name).
import { writeFileSync } from 'node:fs';
import { io } from 'socket.io-client';

const BASE = (process.env.MODELMINE_API_URL || '').replace(/\/$/, '');
const { MM_OWNER_TOKEN: OWNER, MM_OTHER_TOKEN: OTHER, MM_READY: READY, MM_NODE_NAME: NODE } =
  process.env;
if (!BASE || !OWNER || !OTHER || !READY || !NODE) {
  console.error('sio-worker.test.mjs: set MODELMINE_API_URL, MM_OWNER_TOKEN, MM_OTHER_TOKEN, '
    + 'MM_READY and MM_NODE_NAME');
  process.exit(2);
}

let passed = 0;
let failed = 0;
function check(what, cond, why) {
  if (cond) { passed++; console.log(`ok    ${what}`); } else { failed++; console.log(`FAIL  ${what}: ${why}`); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every event a socket receives, in order, with its arrival time.
function recorder(name, opts) {
  const socket = io(BASE, { reconnection: false, ...opts });
  const events = [];
  socket.onAny((event, data) => events.push({ event, data, at: Date.now() }));
  const connected = new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (e) => reject(new Error(`${name}: connect_error ${e.message}`)));
  });
  return { name, socket, events, connected };
}

async function until(what, cond, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

const owner = recorder('owner', { auth: { token: OWNER } });
const other = recorder('other', { auth: { token: OTHER }, transports: ['websocket'] });
const anon = recorder('anon', {});
const all = [owner, other, anon];
try {
  await Promise.all(all.map((r) => r.connected));
  check('three sockets connected (owner: polling then upgrade; other: websocket; anonymous)', true);
  writeFileSync(READY, 'ready\n');

  // node:registered, to everyone, when the worker registers through the gateway
  const registered = (r) => r.events.find((e) => e.event === 'node:registered'
    && e.data && e.data.name === NODE);
  await until('node:registered', () => all.every(registered), 30000);
  const nodeId = registered(owner).data.node_id;
  check(`node:registered reached all three sockets, with the worker's name and id ${nodeId}`,
    Number.isInteger(nodeId) && all.every((r) => registered(r).data.node_id === nodeId),
    JSON.stringify(all.map(registered)));

  // the owner submits a job the worker trains for a few seconds
  const res = await fetch(`${BASE}/jobs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${OWNER}` },
    body: JSON.stringify({
      title: 'socket.io progress',
      config: { trainer: 'mlp', dataset: { synthetic: 'spirals', n: 3000 }, hidden_layers: [64, 64],
        epochs: 300 },
      stake: 10,
    }),
  });
  const body = await res.json();
  check('POST /jobs as the owner: 201 with the job id', res.status === 201 && body.id > 0,
    `${res.status} ${JSON.stringify(body)}`);
  const job = body.id;
  const isDone = (e) => e.event === `job:${job}:status` && e.data && e.data.status === 'COMPLETED';
  await until(`job ${job} COMPLETED on the owner's socket`, () => owner.events.some(isDone), 120000);

  // training reports carry metrics; one last progress event carries the final status
  const all_progress = owner.events.filter((e) => e.event === `job:${job}:progress`);
  const progress = all_progress.filter((e) => !e.data.status);
  const values = progress.map((e) => e.data.progress);
  check(`the owner got job:${job}:progress while the worker trained (${progress.length} events)`,
    progress.length >= 3, `${progress.length} events`);
  check('... each with the job id, a progress from 0 to 100 and the epoch\'s metrics',
    progress.every((e) => e.data.job_id === job && e.data.progress >= 0 && e.data.progress <= 100
      && e.data.metrics && typeof e.data.metrics.loss === 'number'),
    JSON.stringify(progress.slice(0, 2).map((e) => e.data)));
  check(`... never going backwards (${values.slice(0, 6).join(', ')}${values.length > 6 ? ', ...' : ''})`,
    values.every((v, i) => i === 0 || v >= values[i - 1]), values.join(', '));
  const final = all_progress.filter((e) => e.data.status);
  check('... and one last job:ID:progress with status COMPLETED and progress 100',
    final.length === 1 && final[0].data.status === 'COMPLETED' && final[0].data.progress === 100,
    JSON.stringify(final.map((e) => e.data)));
  const statuses = owner.events.filter((e) => e.event === `job:${job}:status`).map((e) => e.data.status);
  check(`the owner got job:${job}:status for each transition (${statuses.join(' -> ')})`,
    statuses.includes('RUNNING') && statuses[statuses.length - 1] === 'COMPLETED', statuses.join(', '));

  await sleep(500); // anything still in flight for the others
  for (const r of [other, anon]) {
    const leaked = r.events.filter((e) => e.event.startsWith(`job:${job}:`));
    check(`the ${r.name} socket got none of job ${job}'s events`, leaked.length === 0,
      `${leaked.length}: ${leaked.slice(0, 3).map((e) => e.event).join(', ')}`);
  }

  // node:heartbeat: the gateway's view of the worker's heartbeats, to everyone
  const beat = (r) => r.events.filter((e) => e.event === 'node:heartbeat' && e.data
    && e.data.node_id === nodeId);
  await until('node:heartbeat on every socket', () => all.every((r) => beat(r).length >= 2), 15000);
  const b = beat(anon)[beat(anon).length - 1].data;
  check(`node:heartbeat reached all three sockets, repeatedly (${all.map((r) => beat(r).length).join(', ')})`,
    true);
  check('... with the node\'s name, status and load', b.name === NODE
    && ['ONLINE', 'BUSY'].includes(b.status) && typeof b.cpu_load === 'number', JSON.stringify(b));
  const net = anon.events.filter((e) => e.event === 'network:stats');
  check(`network:stats reached the anonymous socket (${net.length} times, debounced)`,
    net.length >= 1 && net.every((e) => typeof e.data === 'object'), `${net.length}`);
} catch (e) {
  check('the run finished', false, e.message);
} finally {
  for (const r of all) r.socket.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
