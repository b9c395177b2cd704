// postgrest.test.mjs: the real @supabase/postgrest-js client against modelmine-api's /rpc.
//
//   API_URL=http://127.0.0.1:8080 node postgrest.test.mjs
//
// Environment: API_URL (required), MM_TEST_EMAIL (default: a fresh address), MM_TEST_PASSWORD.
// Prints one line per check ("ok    ..." / "FAIL  ..."), then "N checks, N failed"; exits 1 if any
// check failed (or the run itself broke), 2 on a usage error. regress/integration/api-postgrest.sh runs
// it against a throwaway database and checks the database side afterwards.
import { PostgrestClient } from '@supabase/postgrest-js';
import assert from 'node:assert/strict';

const url = process.env.API_URL;
if (!url) {
  console.error('postgrest.test.mjs: set API_URL, e.g. API_URL=http://127.0.0.1:8080');
  process.exit(2);
}
const email = process.env.MM_TEST_EMAIL ?? `pgjs-${process.pid}-${Date.now()}@example.com`;
const password = process.env.MM_TEST_PASSWORD ?? 'postgrest-js password';

let checks = 0;
let failed = 0;

// check(desc, fn): one check; fn throws (assert) when the fact does not hold.
async function check(desc, fn) {
  checks++;
  try {
    await fn();
    console.log(`ok    ${desc}`);
  } catch (e) {
    failed++;
    const why = e instanceof assert.AssertionError ? e.message.split('\n').join(' ') : String(e?.stack ?? e);
    console.log(`FAIL  ${desc}: ${why}`);
  }
}

// The shape postgrest-js gives a PostgREST error body: exactly code, details, hint and message.
function assertPgError(res, status, code) {
  assert.equal(res.status, status, `status ${res.status}, want ${status}; error ${JSON.stringify(res.error)}`);
  assert.ok(res.error, `no error; data ${JSON.stringify(res.data)}`);
  assert.deepEqual(Object.keys(res.error).sort(), ['code', 'details', 'hint', 'message'],
    `error keys ${JSON.stringify(Object.keys(res.error))}`);
  assert.equal(res.error.code, code, `code ${res.error.code}, want ${code}: ${res.error.message}`);
  assert.equal(typeof res.error.message, 'string');
  assert.equal(res.data, null);
}

const anon = new PostgrestClient(url);
// Retries (postgrest-js retries GET/HEAD on 503/520) would hide what the gateway answered first.
const noRetry = { retry: false };

let token;
let client;
const jobs = [];

await check(`rpc('signup') creates ${email}: 200, a bare user id`, async () => {
  const res = await anon.rpc('signup', { email, password });
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 200);
  assert.equal(typeof res.data, 'number');
});

await check("rpc('signup') again: 409, code 23505, with message, details and hint", async () => {
  const res = await anon.rpc('signup', { email, password });
  assertPgError(res, 409, '23505');
  assert.equal(typeof res.error.details, 'string');
  assert.equal(typeof res.error.hint, 'string');
});

await check("rpc('login'): 200, a JWT", async () => {
  const res = await anon.rpc('login', { email, password });
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 200);
  assert.equal(typeof res.data, 'string');
  assert.equal(res.data.split('.').length, 3, `not a JWT: ${res.data}`);
  token = res.data;
});
if (!token) {
  console.log(`${checks} checks, ${failed} failed (no token: the rest cannot run)`);
  process.exit(1);
}
client = new PostgrestClient(url, { headers: { Authorization: `Bearer ${token}` }, ...noRetry });

let balance0;
await check("rpc('balance') with the token: the signup grant", async () => {
  const res = await client.rpc('balance', {}, { get: true });
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(typeof res.data, 'number');
  balance0 = res.data;
});

let pending0;
await check("rpc('network_stats') before submitting: jobs_pending is a number", async () => {
  const res = await client.rpc('network_stats');
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(typeof res.data?.jobs_pending, 'number', JSON.stringify(res.data));
  pending0 = res.data.jobs_pending;
});

const submissions = [
  // a runner's config is the runner's to read: any keys, kept as submitted (nobody offers 'pgjs')
  { title: 'pgjs one', config: { runner: 'pgjs', note: 'first', lr: 0.1 }, stake: 11 },
  { title: 'pgjs two', config: { runner: 'pgjs', layers: [32, 16] }, stake: 12 },
  { title: 'pgjs three', config: { runner: 'pgjs', nested: { a: { b: true } } }, stake: 13 },
];
for (const s of submissions) {
  await check(`rpc('submit_job', {title: '${s.title}', config, stake: ${s.stake}}): 200, the job id`, async () => {
    const res = await client.rpc('submit_job', s);
    assert.equal(res.error, null, JSON.stringify(res.error));
    assert.equal(res.status, 200);
    assert.equal(typeof res.data, 'number');
    jobs.push(res.data);
  });
}

await check("rpc('my_jobs').select('id,title,status').order('id', {ascending: false}).limit(2): the two newest, those columns only", async () => {
  const res = await client.rpc('my_jobs').select('id,title,status').order('id', { ascending: false }).limit(2);
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 200);
  assert.deepEqual(res.data, [
    { id: jobs[2], title: 'pgjs three', status: 'PENDING' },
    { id: jobs[1], title: 'pgjs two', status: 'PENDING' },
  ]);
});

await check("rpc('job', {job_id}).single(): one object, config as submitted", async () => {
  const res = await client.rpc('job', { job_id: jobs[1] }).single();
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 200);
  assert.ok(res.data && !Array.isArray(res.data), `not an object: ${JSON.stringify(res.data)}`);
  assert.equal(res.data.id, jobs[1]);
  assert.equal(res.data.title, 'pgjs two');
  assert.equal(res.data.stake, 12);
  assert.equal(res.data.owner_email, email);
  assert.deepEqual(res.data.config, submissions[1].config);
});

await check("rpc('network_stats'): an object counting 3 more pending jobs", async () => {
  const res = await client.rpc('network_stats');
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 200);
  assert.equal(typeof res.data, 'object');
  assert.ok(!Array.isArray(res.data));
  assert.equal(res.data.jobs_pending, pending0 + 3);
  for (const k of ['nodes_online', 'nodes_total', 'staked_now', 'jobs_completed', 'paid_to_nodes']) {
    assert.ok(k in res.data, `no ${k}`);
  }
});

await check("rpc('my_jobs', {}, {count: 'exact'}): 3 rows and count 3", async () => {
  const res = await client.rpc('my_jobs', {}, { count: 'exact' });
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.count, 3);
  assert.equal(res.data.length, 3);
});

await check("rpc('my_jobs', {}, {count: 'exact'}).range(0, 0): 206, one row, count 3", async () => {
  const res = await client.rpc('my_jobs', {}, { count: 'exact' }).range(0, 0);
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 206);
  assert.equal(res.count, 3);
  assert.equal(res.data.length, 1);
});

await check("rpc('my_jobs', {}, {get: true}): GET, 3 rows", async () => {
  const res = await client.rpc('my_jobs', {}, { get: true });
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 200);
  assert.deepEqual(res.data.map((j) => j.id).sort((a, b) => a - b), [...jobs].sort((a, b) => a - b));
});

await check("rpc('my_jobs', {max_rows: 1, sort: 'stake'}, {get: true}): arguments in the query string", async () => {
  const res = await client.rpc('my_jobs', { max_rows: 1, sort: 'stake' }, { get: true });
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.deepEqual(res.data.map((j) => j.id), [jobs[2]]);  // highest stake first
});

await check("rpc('my_jobs').eq('stake', 12): a filter on the result", async () => {
  const res = await client.rpc('my_jobs').eq('stake', 12);
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.deepEqual(res.data.map((j) => j.id), [jobs[1]]);
});

await check("rpc('my_jobs', {}, {head: true, count: 'exact'}): no data, count 3", async () => {
  const res = await client.rpc('my_jobs', {}, { head: true, count: 'exact' });
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 200);
  assert.equal(res.data, null);
  assert.equal(res.count, 3);
});

await check("rpc('submit_job') with a stake above the balance: 402, code MM001 (insufficient balance)", async () => {
  const res = await client.rpc('submit_job', { title: 'too dear', config: { trainer: 'noop' }, stake: balance0 * 10 });
  assertPgError(res, 402, 'MM001');
  assert.match(res.error.message, /balance/i);
});

await check("rpc('submit_job') with a config no worker would run: 400, code 22023, the field named, a hint", async () => {
  const res = await client.rpc('submit_job', { title: 'typo', config: { trainer: 'logreg', lerning_rate: 0.1,
    dataset: { synthetic: 'blobs' } }, stake: 1 });
  assertPgError(res, 400, '22023');
  assert.match(res.error.message, /^invalid config: lerning_rate is not a config key; did you mean "learning_rate"\?$/);
  assert.match(res.error.details, /nothing was staked/);
  assert.match(res.error.hint, /config_schema\(\)/);
});

await check("rpc('balance'): the grant minus the three stakes (the refused ones took nothing)", async () => {
  const res = await client.rpc('balance');
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.data, balance0 - 11 - 12 - 13);
});

await check("rpc('my_jobs') without a token: 401, code 42501", async () => {
  const res = await new PostgrestClient(url, noRetry).rpc('my_jobs');
  assertPgError(res, 401, '42501');
});

await check("rpc('my_jobs') with a bad token: 401, code PGRST301", async () => {
  const bad = new PostgrestClient(url, { headers: { Authorization: 'Bearer not.a.token' }, ...noRetry });
  const res = await bad.rpc('my_jobs');
  assertPgError(res, 401, 'PGRST301');
});

await check("rpc('no_such_function'): 404, code PGRST202", async () => {
  const res = await client.rpc('no_such_function', { x: 1 });
  assertPgError(res, 404, 'PGRST202');
});

await check("rpc('job', {no_such_argument}): 404, code PGRST202", async () => {
  const res = await client.rpc('job', { no_such_argument: 1 });
  assertPgError(res, 404, 'PGRST202');
});

await check("rpc('my_jobs').single() on 3 rows: 406, code PGRST116", async () => {
  const res = await client.rpc('my_jobs').single();
  assertPgError(res, 406, 'PGRST116');
});

await check("rpc('job', {job_id: <not yours>}).single(): 404, code P0002", async () => {
  const res = await client.rpc('job', { job_id: 999999 }).single();
  assertPgError(res, 404, 'P0002');
});

await check("rpc('cancel_job', {job_id}): 200, the refund", async () => {
  const res = await client.rpc('cancel_job', { job_id: jobs[0] });
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.data, 11);
});

await check("rpc('logout'): 204, data null", async () => {
  const res = await client.rpc('logout');
  assert.equal(res.error, null, JSON.stringify(res.error));
  assert.equal(res.status, 204);
  assert.equal(res.data, null);
});

await check("rpc('my_jobs') after logout: 401, code PGRST301", async () => {
  const res = await client.rpc('my_jobs');
  assertPgError(res, 401, 'PGRST301');
});

console.log(`${checks} checks, ${failed} failed`);
// for the shell side: the jobs this run submitted
console.log(`jobs: ${jobs.join(' ')}`);
process.exit(failed ? 1 : 0);
