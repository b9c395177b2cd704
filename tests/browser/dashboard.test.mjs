// tests/browser/dashboard.test.mjs — the web dashboard in Debian's Chromium against a real gateway,
// a real cluster and a real worker (regress/integration/web-dashboard.sh starts them and passes):
//
//   MM_URL            the gateway, e.g. http://127.0.0.1:40123
//   MM_ADMIN_EMAIL, MM_ADMIN_PASSWORD   an admin account
//   MM_WORKER_NAME    the running worker's node name (it holds markup, for the XSS probe)
//   MM_KILL_WORKER    a shell command that kills that worker (SIGKILL)
//   MM_RESTART_API    a shell command that stops the gateway (SIGTERM); it comes back on the same port
//   MM_WORKER_BIN     modelmine-worker
//   MM_SHOTS          a scratch directory for the screenshots (each page, light and dark, 1280 and 360)
//   MM_RESULTS        optional: a file for the first-load figures (JSON)
//
// Every check prints "ok    ..." or "FAIL  ..."; the exit status is 1 if any failed.

import { execSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import {
  api, axe, check, checkEqual, fail, firstLoad, kB, launch, newPage, open, pass, step, summary, withSession,
} from './lib.mjs';

const base = process.env.MM_URL;
const shots = process.env.MM_SHOTS || '/tmp/mm-web-shots';
const workerName = process.env.MM_WORKER_NAME;
if (!base || !workerName) {
  console.error('dashboard.test.mjs: run it through regress/integration/web-dashboard.sh (MM_URL is not set)');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const A = api(base);
const browser = await launch();
const email = `web-${Date.now()}@example.com`;
const password = 'web user password';
const XSS = '<img src=x onerror=alert(1)>';
const results = {};
const children = [];

function killChildren() {
  for (const c of children.splice(0)) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
}

const t0 = Date.now();
const section = (title) => console.log(`\n== ${title} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);

const sessionOf = async (page) => page.evaluate(() => JSON.parse(sessionStorage.getItem('modelmine.session') || 'null'));
const text = async (page, sel) => (await page.textContent(sel))?.trim();
const pct = (a) => `${(a * 100).toFixed(1)}%`;

async function noReloadMark(page) {
  await page.evaluate(() => { window.__mmNoReload = true; });
}
async function stillNoReload(page) {
  return page.evaluate(() => window.__mmNoReload === true);
}

/** Whether a canvas has drawn pixels other than its most common colour (i.e. it is not blank). */
async function canvasDrawn(page, sel) {
  return page.$eval(sel, (c) => {
    const { width, height } = c;
    if (!width || !height) return false;
    const d = c.getContext('2d').getImageData(0, 0, width, height).data;
    let painted = 0;
    for (let i = 3; i < d.length; i += 4 * 7) if (d[i] > 0) painted += 1;
    return painted > 50;
  });
}

try {
  // ------------------------------------------------------------------ headers and markup
  section('the page the gateway serves');
  {
    const res = await fetch(`${base}/`);
    const csp = res.headers.get('content-security-policy') || '';
    check('/ is the dashboard (text/html)', res.status === 200 && /text\/html/.test(res.headers.get('content-type')));
    check('the CSP allows scripts and styles from this origin only (no inline)',
      /script-src 'self'(;|$)/.test(csp) && /style-src 'self'(;|$)/.test(csp) && !/unsafe-inline/.test(csp), csp);
    check('the CSP forbids framing', /frame-ancestors 'none'/.test(csp), csp);
    const html = await res.text();
    check('index.html has no inline script, style element or style attribute',
      !/<script(?![^>]*\ssrc=)[^>]*>/i.test(html) && !/<style/i.test(html) && !/\sstyle=/i.test(html));
    const sio = await fetch(`${base}/socket.io/socket.io.min.js?v=4.8.1`);
    check('socket.io-client\'s bundle is served at /socket.io/socket.io.min.js', sio.status === 200);
    const pinned = JSON.parse(readFileSync(new URL('../../web/package.json', import.meta.url), 'utf8')).dependencies;
    const live = readFileSync(new URL('../../web/js/live.js', import.meta.url), 'utf8');
    check('the page asks for the pinned socket.io-client (?v=)', live.includes(`socket.io.min.js?v=${pinned['socket.io-client']}`));
    const charts = readFileSync(new URL('../../web/js/charts.js', import.meta.url), 'utf8');
    check('the chart module asks for the pinned chart.js (?v=)', charts.includes(`chart.umd.js?v=${pinned['chart.js']}`));
    const chart = await fetch(`${base}/vendor/chart.umd.js?v=${pinned['chart.js']}`);
    check('Chart.js is served at /vendor/chart.umd.js, cacheable', chart.status === 200 && /max-age=/.test(chart.headers.get('cache-control')));
    const nm = await fetch(`${base}/node_modules/chart.js/package.json`);
    checkEqual('node_modules itself is not served', nm.status, 404);
  }

  // ------------------------------------------------------------------ the journey
  section('the journey: sign up, submit, watch, result, network, nodes, sign out');
  const { context, page } = await newPage(browser, { acceptDownloads: true });
  let token;
  let jobId;

  await step('1. sign up from the form, landing on the dashboard', async () => {
    await page.goto(`${base}/#/signup`);
    await page.fill('input[name=email]', email);
    await page.fill('input[name=password]', password);
    await page.fill('input[name=confirm]', password);
    await page.click('form button[type=submit]');
    await page.waitForSelector('body[data-rendered="dashboard"]', { timeout: 15000 });
  });
  token = (await sessionOf(page))?.token;
  check('the session is in sessionStorage; localStorage is empty',
    Boolean(token) && (await page.evaluate(() => localStorage.length)) === 0);
  {
    const d = (await A.get('/dashboard', token)).data;
    const shown = await text(page, '[data-stat="balance"] dd');
    const [balance, transferable] = (shown.match(/[\d,]+/g) || []).map((x) => x.replace(/,/g, ''));
    check('the dashboard shows the balance GET /dashboard gives', balance === String(d.balance), `${shown} vs ${d.balance}`);
    check('... and, while the signup grant is locked, what is transferable',
      d.grant_locked > 0 ? transferable === String(d.transferable) && /transferable/.test(shown) : transferable === undefined,
      `${shown} vs ${JSON.stringify({ grant_locked: d.grant_locked, transferable: d.transferable })}`);
    checkEqual('the dashboard shows 0 jobs', await text(page, '[data-stat="total"] dd'), '0');
  }
  await step('the connection indicator says live', () => page.waitForSelector('#conn[data-state="live"]', { timeout: 15000 }));

  await step('2. submit an MLP job from the form', async () => {
    await page.click('a[href="#/jobs/new"]');
    await page.waitForSelector('body[data-rendered="submit"]');
    if ((await page.inputValue('input[name=stake]')) !== '100') throw new Error('the stake does not default to 100');
    if (!(await page.isChecked('input[type=radio][value=mlp]'))) throw new Error('mlp is not preselected');
    await page.fill('input[name=title]', 'Spirals MLP from the browser');
    await page.fill('textarea[name=description]', 'Submitted by the browser test.');
    await page.fill('input[name=hidden_layers]', '64, 64');
    await page.fill('input[name=epochs]', '300');
    await page.selectOption('select[name=generator]', 'spirals');
    await page.fill('input[name="dataset.n"]', '4000');
    await page.click('form button[type=submit]');
    await page.waitForURL(/#\/jobs\/\d+$/, { timeout: 10000 });
    jobId = Number(page.url().match(/#\/jobs\/(\d+)$/)[1]);
    await page.waitForSelector('body[data-rendered="job"]');
  });
  {
    const j = (await A.get(`/jobs/${jobId}`, token)).data;
    checkEqual('the job was stored with the form\'s config', j.config,
      { trainer: 'mlp', dataset: { n: 4000, seed: 1, noise: 0.1, classes: 3, synthetic: 'spirals' }, hidden_layers: [64, 64], activation: 'relu', epochs: 300, validation_split: 0.2, seed: 42 });
    checkEqual('... with the default stake of 100', j.stake, 100);
  }

  // 3. the bar moves while the worker trains, without a reload
  await noReloadMark(page);
  const seen = new Set();
  const deadline = Date.now() + 180000;
  let status = '';
  while (Date.now() < deadline) {
    const v = await page.$eval('#job-progress', (e) => e.value);
    seen.add(Math.round(v));
    status = await page.getAttribute('#job-status .badge', 'data-status');
    if (status === 'COMPLETED' || status === 'FAILED') break;
    await page.waitForTimeout(100);
  }
  const between = [...seen].filter((v) => v > 0 && v < 100);
  check(`3. the progress bar moved while the job trained (${between.length} values between 0 and 100: ${between.slice(0, 8).join(', ')}${between.length > 8 ? ', ...' : ''})`, between.length >= 3);
  check('... without a reload of the page', await stillNoReload(page));
  const curveRows = await page.$$eval('.chart-table tbody tr', (rows) => rows.filter((r) => !r.querySelector('.empty')).length);
  check(`... and the loss/accuracy curve grew with the epochs (${curveRows} epochs drawn)`, curveRows >= 3);
  check('... on a drawn chart', await canvasDrawn(page, '.chart-box canvas').catch(() => false));

  // 4. completed, with its accuracy
  checkEqual('4. the job shows COMPLETED', status, 'COMPLETED');
  const job = (await A.get(`/jobs/${jobId}`, token)).data;
  await page.waitForSelector('[data-stat="accuracy"] dd', { timeout: 10000 }).catch(() => {});
  checkEqual('... with the accuracy the API reports', await text(page, '[data-stat="accuracy"] dd').catch(() => null), pct(job.result.accuracy));

  // 5. the result downloads and parses
  await step('5. the result downloads as job-N-result.json and parses to the stored result', async () => {
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 15000 }), page.click('#download-result')]);
    if (dl.suggestedFilename() !== `job-${jobId}-result.json`) throw new Error(`named ${dl.suggestedFilename()}`);
    const parsed = JSON.parse(readFileSync(await dl.path(), 'utf8'));
    if (parsed.accuracy !== job.result.accuracy || parsed.epochs !== 300 || !parsed.model) throw new Error('the downloaded result differs');
  });

  // 6. the network charts, with the new data
  await step('6. the network page renders both charts', async () => {
    await page.click('a[href="#/network"]');
    await page.waitForSelector('body[data-rendered="network"]', { timeout: 15000 });
    await page.waitForSelector('#timeline-chart canvas');
    await page.waitForSelector('#tokens-chart canvas');
  });
  check('... the 6-month job-status line chart is drawn', await canvasDrawn(page, '#timeline-chart canvas'));
  check('... the tokens-per-node bar chart is drawn', await canvasDrawn(page, '#tokens-chart canvas'));
  {
    const net = (await A.get('/network')).data;
    checkEqual('... the completed-jobs figure is GET /network\'s', (await text(page, '[data-stat="jobs_completed"] dd')).replace(/\D/g, ''), String(net.jobs_completed));
    const tl = (await A.get('/network/timeline?months=6')).data;
    const month = tl.at(-1).month;
    const completedNow = tl.find((r) => r.month === month && r.status === 'COMPLETED').jobs;
    const cells = await page.$$eval('#timeline-chart ~ .chart-table tbody tr:last-child td', (tds) => tds.map((t) => t.textContent));
    checkEqual('... the timeline\'s current month counts this month\'s completed jobs', cells[3], String(completedNow));
    check('... which include the job just trained', completedNow >= 1);
    const tk = (await A.get('/network/tokens?limit=20')).data;
    const mine = tk.find((n) => n.name === workerName);
    const rows = await page.$$eval('#tokens-chart', () => [...document.querySelectorAll('.chart-table')].at(-1).querySelectorAll('tbody tr').length);
    check('... the bar chart has a bar per node GET /network/tokens lists', rows === tk.length, `${rows} vs ${tk.length}`);
    check('... the worker\'s node has earned its 80 tokens', mine && Number(mine.tokens_earned) >= 80);
  }

  // reconnection: the gateway restarts; the indicator goes reconnecting -> live; events flow again
  await step('the dashboard follows the gateway through a restart: reconnecting, then live', async () => {
    await page.click('a[href="#/nodes"]');
    await page.waitForSelector('body[data-rendered="nodes"]');
    await page.waitForSelector('#conn[data-state="live"]');
    const errorsBefore = page.errors.length;
    execSync(process.env.MM_RESTART_API, { stdio: 'inherit' });
    await page.waitForSelector('#conn[data-state="reconnecting"]', { timeout: 10000 });
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 30000 });
    // a reconnection attempt that falls in the restart's gap (the port closed for about half a
    // second) is refused, and the browser logs it: expected here, and only here
    page.errors.splice(errorsBefore).filter((e) => !/net::ERR_CONNECTION_REFUSED/.test(e)).forEach((e) => page.errors.push(e));
  });
  await step('... and events flow again: job:N:status for a job submitted after it', async () => {
    const before = Number(await page.getAttribute('#conn', 'data-events'));
    const r = await A.post('/jobs', { title: 'after the restart', config: { trainer: 'noop' }, stake: 1 }, token);
    if (r.status !== 201) throw new Error(`submit: ${r.status}`);
    await page.waitForSelector(`#conn[data-last-job-event="job:${r.data.id}:status"]`, { timeout: 20000 });
    const after = Number(await page.getAttribute('#conn', 'data-events'));
    if (!(after > before)) throw new Error(`no event after the restart (${before} -> ${after})`);
  });
  check('... without a reload', await stillNoReload(page));

  // the submit form puts the server's refusal next to the field it names
  await step('the advanced JSON editor shows the server\'s refusal of the config next to it', async () => {
    await page.click('a[href="#/jobs/new"]');
    await page.waitForSelector('body[data-rendered="submit"]');
    await page.fill('input[name=title]', 'A config the server refuses');
    await page.click('details.advanced summary');
    await page.fill('textarea[name=config]', '{"trainer": "tensorflow", "epochs": 5}');
    await page.click('form button[type=submit]');
    await page.waitForSelector('textarea[name=config][aria-invalid="true"]');
    const err = await page.textContent(`#${await page.getAttribute('textarea[name=config]', 'id')}-error`);
    if (!/unknown config\.trainer/.test(err) || !/Got "tensorflow"/.test(err) || !/built-in trainer/.test(err)) throw new Error(`shown: ${err}`);
  });
  await step('... and the workers\' validator\'s refusal at submit (a misspelled key), naming the key', async () => {
    await page.fill('textarea[name=config]', '{"trainer": "logreg", "lerning_rate": 0.1, "dataset": {"synthetic": "blobs"}}');
    await page.click('form button[type=submit]');
    await page.waitForFunction(() => /lerning_rate/.test(document.getElementById(
      document.querySelector('textarea[name=config]').id + '-error')?.textContent || ''));
    const err = await page.textContent(`#${await page.getAttribute('textarea[name=config]', 'id')}-error`);
    if (!/invalid config: lerning_rate is not a config key; did you mean "learning_rate"\?/.test(err) || !/nothing was staked/.test(err))
      throw new Error(`shown: ${err}`);
  });
  await step('... and a JSON syntax error, before anything is sent', async () => {
    await page.fill('textarea[name=config]', '{"trainer": "mlp",}');
    await page.click('form button[type=submit]');
    const err = await page.textContent(`#${await page.getAttribute('textarea[name=config]', 'id')}-error`);
    if (!/not valid JSON/.test(err)) throw new Error(`shown: ${err}`);
  });
  await step('... and a stake above the balance next to the stake', async () => {
    await page.click('text=Discard my edits and use the form');
    await page.fill('input[name=stake]', '999999');
    await page.click('form button[type=submit]');
    await page.waitForSelector('input[name=stake][aria-invalid="true"]');
    const err = await page.textContent(`#${await page.getAttribute('input[name=stake]', 'id')}-error`);
    if (!/insufficient balance/.test(err)) throw new Error(`shown: ${err}`);
  });
  await step('... and a field out of the worker\'s range, checked in the form', async () => {
    await page.fill('input[name=stake]', '100');
    await page.fill('input[name=epochs]', '0');
    await page.click('form button[type=submit]');
    const err = await page.textContent(`#${await page.getAttribute('input[name=epochs]', 'id')}-error`);
    if (!/epochs must be from 1 to 10000/.test(err)) throw new Error(`shown: ${err}`);
  });

  // Jobs: filter, sort and pages (21 more jobs: two pages of 20)
  await step('Jobs: more than 20 jobs make two pages; page 2 has the rest', async () => {
    for (let i = 0; i < 21; i++) {
      const r = await A.post('/jobs', { title: `batch job ${i + 1}`, config: { trainer: 'noop' }, stake: 1 + i }, token);
      if (r.status !== 201) throw new Error(`submit: ${r.status}`);
    }
    const total = (await A.get('/dashboard', token)).data.jobs.total;
    await page.goto(`${base}/#/jobs`);
    await page.waitForSelector('body[data-rendered="jobs"]');
    await page.waitForFunction((t) => (document.querySelector('.pager-info')?.textContent || '').includes(`of ${t} `), total);
    await page.click('.pager a:has-text("Next")');
    await page.waitForFunction((t) => location.hash.includes('page=2') && document.querySelectorAll('tbody tr').length === t - 20, total);
  });
  await step('... filtered by status, every row has that status', async () => {
    await page.selectOption('select[name=status]', 'COMPLETED');
    await page.waitForFunction(() => location.hash.includes('status=COMPLETED') && !location.hash.includes('page='));
    await page.waitForFunction(() => {
      const b = [...document.querySelectorAll('tbody .badge')].map((e) => e.dataset.status);
      return b.length > 0 && b.every((x) => x === 'COMPLETED');
    });
  });
  await step('... sorted by stake, lowest first', async () => {
    await page.selectOption('select[name=status]', '');
    await page.selectOption('select[name=sort]', 'stake');
    await page.waitForFunction(() => location.hash.includes('sort=stake'));
    await page.selectOption('select[name=order]', 'asc');
    await page.waitForFunction(() => {
      if (!location.hash.includes('order=asc')) return false;
      const st = [...document.querySelectorAll('tbody tr')].map((tr) => Number(tr.children[4]?.textContent.replace(/\D/g, '')));
      return st.length === 20 && st.every((v, i) => i === 0 || st[i - 1] <= v) && st[0] === 1;
    });
  });

  // 7. the worker dies; its node turns OFFLINE on the Nodes page
  const nodes = (await A.get('/nodes?limit=1000')).data;
  const workerNode = nodes.find((n) => n.name === workerName);
  check('the worker\'s node is listed ONLINE or BUSY', workerNode && ['ONLINE', 'BUSY'].includes(workerNode.status), JSON.stringify(workerNode));
  const row = `tr[data-node-id="${workerNode?.id}"]`;
  await page.click('a[href="#/nodes"]');
  await page.waitForSelector('body[data-rendered="nodes"]');
  await noReloadMark(page);
  await step('... and shown with its name as text, the markup in it not interpreted', async () => {
    const name = await page.textContent(`${row} .node-name`);
    if (name !== workerName) throw new Error(`shown as ${JSON.stringify(name)}`);
    if (await page.$(`${row} .node-name *`)) throw new Error('the name made elements');
  });
  await step('7. after kill -9 of the worker, its node turns OFFLINE on the Nodes page without a reload', async () => {
    execSync(process.env.MM_KILL_WORKER, { stdio: 'inherit' });
    await page.waitForSelector(`${row} .badge[data-status="OFFLINE"]`, { timeout: 40000 });
  });
  check('... the page was not reloaded', await stillNoReload(page));

  // the XSS probe: a job title and a node name with markup are shown as text
  await step('a job titled <img src=x onerror=alert(1)> shows literally, on its page and in the list', async () => {
    await page.click('a[href="#/jobs/new"]');
    await page.waitForSelector('body[data-rendered="submit"]');
    await page.fill('input[name=title]', XSS);
    await page.check('input[type=radio][value=noop]');
    await page.click('form button[type=submit]');
    await page.waitForURL(/#\/jobs\/\d+$/);
    await page.waitForSelector('body[data-rendered="job"]');
    if ((await page.textContent('h1')) !== XSS) throw new Error(`h1 is ${await page.textContent('h1')}`);
    await page.click('a[href="#/jobs"]');
    await page.waitForSelector('body[data-rendered="jobs"]');
    const titles = await page.$$eval('td.title-cell', (tds) => tds.map((t) => t.textContent));
    if (!titles.includes(XSS)) throw new Error(`the list shows ${JSON.stringify(titles)}`);
  });
  const markupNode = '<img src=x onerror=alert(2)> & <b>node</b>';
  let nodeKey = '';
  let command = '';
  await step('My nodes: registering a node shows its key once and the worker command', async () => {
    await page.click('a[href="#/my-nodes"]');
    await page.waitForSelector('body[data-rendered="mynodes"]');
    await page.fill('input[name=name]', markupNode);
    await page.click('form button[type=submit]');
    await page.waitForSelector('#node-key');
    nodeKey = await page.textContent('#node-key');
    command = await page.textContent('#worker-command');
    if (!/^mmn_\d+_[0-9a-f]{64}$/.test(nodeKey)) throw new Error(`key ${nodeKey}`);
    if (!command.includes(nodeKey) || !command.includes(`modelmine-worker --api '${base}'`)) throw new Error(`command ${command}`);
  });
  await step('... the node\'s name with markup is text in the table', async () => {
    await page.waitForFunction((n) => [...document.querySelectorAll('.node-name')].some((e) => e.textContent === n), markupNode);
  });
  check('no markup from the database made an element or ran: no <img src=x>, no dialog',
    (await page.$$('img[src="x"]')).length === 0 && page.dialogs.length === 0, page.dialogs.join(', '));
  await step('the command My nodes shows starts a worker that comes ONLINE', async () => {
    const cmd = command.replace(/\\\n\s*/g, ' ').replace('modelmine-worker', process.env.MM_WORKER_BIN);
    const child = spawn('bash', ['-c', `${cmd} --heartbeat-interval 1 --state-file ${shots}/node-from-page.json`], {
      env: { ...process.env, MODELMINE_DB: '' }, stdio: ['ignore', 'ignore', 'inherit'], detached: true,
    });
    children.push(child);
    await page.waitForFunction((n) => [...document.querySelectorAll('tr')].some((tr) => tr.querySelector('.node-name')?.textContent === n &&
      ['ONLINE', 'BUSY'].includes(tr.querySelector('.badge')?.dataset.status)), markupNode, { timeout: 30000 });
  });
  await step('... and goes into MAINTENANCE from My nodes', async () => {
    const mine = (await A.get('/nodes/mine', token)).data.find((n) => n.name === markupNode);
    await page.click(`tr[data-node-id="${mine.id}"] [data-action="maintenance"]`);
    await page.waitForSelector(`tr[data-node-id="${mine.id}"] .badge[data-status="MAINTENANCE"]`, { timeout: 15000 });
  });
  await step('... and out of it', async () => {
    const mine = (await A.get('/nodes/mine', token)).data.find((n) => n.name === markupNode);
    await page.click(`tr[data-node-id="${mine.id}"] [data-action="maintenance"]`);
    await page.waitForSelector(`tr[data-node-id="${mine.id}"] .badge[data-status="ONLINE"], tr[data-node-id="${mine.id}"] .badge[data-status="BUSY"]`, { timeout: 15000 });
  });
  await step('... which trains a job and earns; Withdraw moves its earnings to the operator\'s balance', async () => {
    const mine = (await A.get('/nodes/mine', token)).data.find((n) => n.name === markupNode);
    const r = await A.post('/jobs', { title: 'for the page\'s node', config: { trainer: 'noop' }, stake: 50 }, token);
    if (r.status !== 201) throw new Error(`submit: ${r.status}`);
    const btn = `tr[data-node-id="${mine.id}"] [data-action="withdraw"]`;
    await page.waitForSelector(`${btn}:not([disabled])`, { timeout: 30000 });
    const before = (await A.get('/balance', token)).data.balance;
    const earned = (await A.get('/nodes/mine', token)).data.find((n) => n.id === mine.id).balance;
    await page.click(btn);
    await page.click('form[aria-label^="Withdraw from"] button[type=submit]');
    const banner = await page.waitForSelector('#mynodes-banner .banner-ok');
    const after = (await A.get('/balance', token)).data.balance;
    // what the page says it moved: at least what the node had when we looked (its worker may have
    // settled another job since), and exactly what reached the operator's balance
    const moved = Number(((await banner.textContent()).match(/Moved ([\d,]+)/) || [])[1]?.replace(/,/g, ''));
    if (!(moved >= earned) || after - before !== moved || earned <= 0) {
      throw new Error(`balance ${before} -> ${after}, node had ${earned}, the page says it moved ${moved}`);
    }
    await page.waitForSelector(`${btn}[disabled]`);
  });
  killChildren();

  // CSP: an inline script injected into the page does not run (the violation it logs is expected)
  const errorsBefore = page.errors.length;
  check('the Content-Security-Policy stops an injected inline script',
    !(await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__mmInline = true';
      document.head.append(s);
      return window.__mmInline === true;
    })));
  await page.waitForTimeout(100);
  page.errors.splice(errorsBefore).filter((e) => !/Content Security Policy/.test(e)).forEach((e) => page.errors.push(e));

  await step('Cancel on a job\'s page: asks first, then the job is CANCELED and its stake refunded', async () => {
    const r = await A.post('/jobs', { title: 'Waiting for a GPU runner', config: { runner: 'torch-cnn' }, stake: 77 }, token);
    const before = (await A.get('/balance', token)).data.balance;
    await page.goto(`${base}/#/jobs/${r.data.id}`);
    await page.waitForSelector('body[data-rendered="job"]');
    await page.click('#cancel-job');
    await page.click('#cancel-confirm');
    await page.waitForSelector('#job-status .badge[data-status="CANCELED"]', { timeout: 10000 });
    const after = (await A.get('/balance', token)).data.balance;
    if (after - before !== 77) throw new Error(`balance ${before} -> ${after}`);
    if (!/77 tokens refunded/.test(await page.textContent('main .banner-ok'))) throw new Error('no refund message');
  });
  await step('Notifications: the settings save, and the server keeps what the page shows', async () => {
    await page.click('a[href="#/notifications"]');
    await page.waitForSelector('body[data-rendered="notifications"]');
    await page.uncheck('#ev-job_canceled');
    await page.check('#ev-balance_low');
    await page.fill('input[name="balance_threshold"]', '250');
    await page.click('form[aria-label="Notification settings"] button[type=submit]');
    await page.waitForSelector('#notify-banner .banner-ok');
    const p = (await A.get('/notifications/preferences', token)).data;
    if (p.events.includes('job_canceled') || !p.events.includes('balance_low') || p.balance_threshold !== 250) {
      throw new Error(JSON.stringify(p));
    }
  });
  await step('... a webhook is added, its secret shown once, and removed again', async () => {
    await page.fill('input[name="url"]', 'https://hooks.example.com/modelmine');
    await page.click('form[aria-label="Add a webhook"] button[type=submit]');
    const secret = await (await page.waitForSelector('#webhook-secret')).textContent();
    if (!/^whsec_[0-9a-f]{64}$/.test(secret)) throw new Error(`secret ${secret}`);
    const hooks = (await A.get('/notifications/preferences', token)).data.webhooks;
    if (hooks.length !== 1 || JSON.stringify(hooks).includes(secret)) throw new Error(JSON.stringify(hooks));
    await page.click('[data-action="remove"]');
    await page.waitForFunction(() => /Removed the webhook/.test(document.querySelector('#notify-banner')?.textContent || ''));
    if ((await A.get('/notifications/preferences', token)).data.webhooks.length !== 0) throw new Error('still there');
  });
  await step('... a bad URL is refused next to the field', async () => {
    await page.fill('input[name="url"]', 'ftp://nope');
    await page.click('form[aria-label="Add a webhook"] button[type=submit]');
    await page.waitForSelector('form[aria-label="Add a webhook"] .field-error:not(:empty), form[aria-label="Add a webhook"] [aria-invalid="true"]');
  });
  await step('Ledger: the digest is the chain head, and Verify says the chain is intact', async () => {
    await page.click('a[href="#/ledger"]');
    await page.waitForSelector('body[data-rendered="ledger"]');
    const d = (await A.get('/ledger/digest')).data;
    if ((await page.textContent('#digest-hash')) !== d.hash) throw new Error('another hash is shown');
    await page.click('#verify-ledger');
    await page.waitForSelector('#verify-verdict .banner[data-ok="true"]', { timeout: 20000 });
    const v = await page.textContent('#verify-verdict');
    if (!/intact/.test(v) || !new RegExp(`up to height ${d.height}`).test(v)) throw new Error(v);
  });

  // 8. sign out; the token no longer works
  const oldToken = (await sessionOf(page)).token;
  await step('8. sign out lands on the sign-in page and clears the session', async () => {
    await page.click('#signout');
    await page.waitForSelector('body[data-rendered="signin"]');
    if (await sessionOf(page)) throw new Error('the session is still in sessionStorage');
  });
  checkEqual('... and the old token is refused (GET /auth/me)', (await A.get('/auth/me', oldToken)).status, 401);
  checkEqual('... no localStorage was ever written', await page.evaluate(() => localStorage.length), 0);
  // the refusals the test provoked (400, 402) are logged by the browser as failed loads: expected
  const unexpected = page.errors.filter((e) => !/Failed to load resource: the server responded with a status of 40[0-3]/.test(e));
  check('no error in the console during the journey', unexpected.length === 0, unexpected.slice(0, 3).join(' | '));
  await context.close();

  // ------------------------------------------------------------------ admins and the others
  section('admin pages and permissions');
  const admin = await newPage(browser);
  await step('an admin signs in with the keyboard alone (type, Tab, type, Enter)', async () => {
    await admin.page.goto(`${base}/#/signin`);
    await admin.page.waitForSelector('body[data-rendered="signin"]');
    await admin.page.keyboard.type(process.env.MM_ADMIN_EMAIL);
    await admin.page.keyboard.press('Tab');
    await admin.page.keyboard.type(process.env.MM_ADMIN_PASSWORD);
    await admin.page.keyboard.press('Enter');
    await admin.page.waitForSelector('body[data-rendered="dashboard"]');
  });
  check('... sees the Admin link', Boolean(await admin.page.$('nav a[href="#/admin/users"]')));
  await step('... and every user on Admin › Users', async () => {
    await admin.page.click('nav a[href="#/admin/users"]');
    await admin.page.waitForSelector('body[data-rendered="admin"]');
    const adminToken = (await sessionOf(admin.page)).token;
    const all = (await A.get('/admin/users', adminToken)).data;
    const shown = await admin.page.$$eval('tr[data-user-email]', (rows) => rows.map((r) => r.dataset.userEmail));
    if (JSON.stringify(shown) !== JSON.stringify(all.map((u) => u.email))) throw new Error(`${shown.length} shown, ${all.length} users`);
    if (!shown.includes(email)) throw new Error('the new user is missing');
  });
  for (const tab of ['jobs', 'nodes', 'network', 'ledger']) {
    await step(`... Admin › ${tab} renders without an error`, async () => {
      await admin.page.click(`.tabs a[href="#/admin/${tab}"]`);
      await admin.page.waitForFunction((t) => location.hash.startsWith(`#/admin/${t}`) && document.body.dataset.rendered === 'admin', tab);
      await admin.page.waitForTimeout(300);
      if (await admin.page.$('main .banner-error')) throw new Error(await admin.page.textContent('main .banner-error'));
    });
  }
  await step('a visible focus ring on the element Tab reaches', async () => {
    await admin.page.keyboard.press('Tab');
    const outline = await admin.page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    if (outline === 'none') throw new Error('no outline');
  });
  check('no console error on the admin pages', admin.page.errors.length === 0, admin.page.errors.slice(0, 3).join(' | '));
  const adminSession = await sessionOf(admin.page);
  await admin.context.close();

  const userToken = await A.login(email, password);
  const userSession = { token: userToken, ...(await A.get('/auth/me', userToken)).data };
  const user = await newPage(browser);
  await withSession(user.context, userSession);
  await open(user.page, base, '#/dashboard', 'dashboard');
  checkEqual('a normal user gets no admin link', (await user.page.$$('a[href^="#/admin"]')).length, 0);
  for (const p of ['/admin/users', '/admin/jobs', '/admin/nodes', '/admin/network', '/admin/ledger'])
    checkEqual(`... and GET ${p} answers 403`, (await A.get(p, userToken)).status, 403);
  await step('... and #/admin/users shows the gateway\'s refusal', async () => {
    await open(user.page, base, '#/admin/users', 'admin');
    const t = await user.page.textContent('main .banner-error');
    if (!/administrators/.test(t) || !/permission denied/.test(t)) throw new Error(t);
  });
  await user.context.close();

  // ------------------------------------------------------------------ the narrow screen, by keyboard
  section('360 px');
  {
    const n = await newPage(browser, { width: 360, height: 780 });
    await withSession(n.context, userSession);
    await open(n.page, base, '#/dashboard', 'dashboard');
    const overflow = await n.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check('at 360 px the dashboard does not scroll sideways', overflow <= 0, `${overflow} px too wide`);
    await step('the menu button opens the navigation with the keyboard, Escape closes it', async () => {
      await n.page.focus('#menu-button');
      await n.page.keyboard.press('Enter');
      await n.page.waitForSelector('#nav.open');
      await n.page.keyboard.press('Escape');
      await n.page.waitForSelector('#nav:not(.open)', { state: 'attached' });
      if ((await n.page.evaluate(() => document.activeElement.id)) !== 'menu-button') throw new Error('focus did not return to the menu button');
    });
    for (const [hash, r] of [['#/jobs/new', 'submit'], ['#/network', 'network'], ['#/nodes', 'nodes'], ['#/ledger', 'ledger'], [`#/jobs/${jobId}`, 'job']]) {
      await open(n.page, base, hash, r);
      const o = await n.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(`at 360 px ${hash} does not scroll sideways`, o <= 0, `${o} px too wide`);
    }
    await n.context.close();
  }

  // ------------------------------------------------------------------ screenshots and accessibility
  section(`each page, light and dark, 1280 and 360 px: a screenshot in ${shots} and axe-core (WCAG 2.1 A, AA)`);
  const pages = [
    ['#/signin', 'signin', null], ['#/signup', 'signup', null],
    ['#/dashboard', 'dashboard', userSession], ['#/jobs', 'jobs', userSession], ['#/jobs/new', 'submit', userSession],
    [`#/jobs/${jobId}`, 'job', userSession], ['#/network', 'network', userSession], ['#/nodes', 'nodes', userSession],
    ['#/my-nodes', 'mynodes', userSession], ['#/notifications', 'notifications', userSession], ['#/ledger', 'ledger', userSession],
    ['#/admin/users', 'admin', adminSession], ['#/admin/network', 'admin', adminSession],
  ];
  let nshots = 0;
  // one tab per scheme and width, moving between pages as a user does (the hash changes), and
  // switching accounts by replacing the session and reloading
  const go = async (page, hash, rendered) => {
    await page.evaluate((h) => { document.body.dataset.rendered = ''; location.hash = h; }, hash);
    await page.waitForSelector(`body[data-rendered="${rendered}"]`, { timeout: 15000 });
  };
  for (const scheme of ['light', 'dark']) {
    for (const width of [1280, 360]) {
      const bad = [];
      // axe-core is injected as an inline script: this context bypasses the CSP (the others keep it)
      const a = await newPage(browser, { scheme, width, height: width === 360 ? 780 : 900, bypassCSP: true });
      await a.page.goto(`${base}/#/signin`);
      let current;
      for (const [hash, r, sess] of pages) {
        if (sess !== current) {
          await a.page.evaluate((x) => { sessionStorage.clear(); if (x) sessionStorage.setItem('modelmine.session', x); }, sess ? JSON.stringify(sess) : null);
          // a new document (the query differs), so nothing runs with the previous account's session
          await a.page.goto(`${base}/?as=${nshots}${hash}`);
          await a.page.waitForSelector(`body[data-rendered="${r}"]`, { timeout: 15000 });
          current = sess;
        } else {
          await go(a.page, hash, r);
        }
        await a.page.waitForTimeout(250);
        const name = `${hash.replace(/^#\//, '').replace(/\W+/g, '-')}-${scheme}-${width}.png`;
        await a.page.screenshot({ path: `${shots}/${name}`, fullPage: true });
        nshots += 1;
        // the charts' data tables are checked too
        await a.page.$$eval('details', (ds) => ds.forEach((d) => { d.open = true; }));
        const v = await axe(a.page);
        if (v.length) bad.push(`${hash}: ${v.map((x) => `${x.id} (${x.impact}): ${x.help} — ${x.nodes.join('; ')}`).join(' | ')}`);
      }
      check(`axe: no violations on the ${pages.length} pages, ${scheme}, ${width} px`, bad.length === 0, bad.join('\n      '));
      check(`... and no console error on them`, a.page.errors.length === 0, a.page.errors.slice(0, 3).join(' | '));
      await a.context.close();
    }
  }
  pass(`${nshots} screenshots written`);

  // ------------------------------------------------------------------ first load
  section('first load (empty cache)');
  for (const [hash, r] of [['#/dashboard', 'dashboard'], ['#/network', 'network']]) {
    const f = await firstLoad(browser, base, hash, r, userSession);
    results[r] = { bytes: f.bytes, ms: f.ms, requests: f.requests.length };
    console.log(`   ${hash}: ${kB(f.bytes)} in ${f.requests.length} requests; first complete render ${f.ms?.toFixed(0)} ms`);
    for (const q of f.requests.sort((x, y) => y.bytes - x.bytes).slice(0, 6)) console.log(`     ${kB(q.bytes).padStart(9)}  ${q.encoding || 'identity'}  ${q.url.slice(0, 90)}`);
    check(`the first load of ${hash} transfers at most 300 kB (${kB(f.bytes)})`, f.bytes <= 300000);
    check(`... with no console error`, f.errors.length === 0, f.errors.join(' | '));
  }
  if (process.env.MM_RESULTS) writeFileSync(process.env.MM_RESULTS, JSON.stringify(results, null, 2));
} catch (e) {
  fail('the test ran to its end', e.stack || String(e));
} finally {
  killChildren();
  await browser.close();
}
process.exit(summary('dashboard.test.mjs') ? 1 : 0);
