// tests/browser/screenshots.mjs — the screenshots docs/WEB.md and the README show, taken of a real
// network: a user with a few real jobs (trained by the workers scripts/screenshots.sh started), one of
// them training while its page is open. Run by scripts/screenshots.sh:
//
//   node screenshots.mjs --url http://127.0.0.1:8080 --out ../../docs/screenshots

import { parseArgs } from 'node:util';
import { api, launch, newPage, open, withSession } from './lib.mjs';

const { values: o } = parseArgs({ options: { url: { type: 'string' }, out: { type: 'string' } } });
if (!o.url || !o.out) {
  console.error('usage: node screenshots.mjs --url URL --out DIR');
  process.exit(2);
}
const A = api(o.url);
const email = 'ada@example.com';
const password = 'correct horse battery';
await A.post('/auth/signup', { email, password });
const token = await A.login(email, password);
const me = (await A.get('/auth/me', token)).data;
const session = { token, user_id: me.user_id, email: me.email, role: me.role };

async function submit(title, config, stake, extra = {}) {
  const r = await A.post('/jobs', { title, config, stake, ...extra }, token);
  if (r.status !== 201) throw new Error(`${title}: ${JSON.stringify(r.data)}`);
  return r.data.id;
}
const settled = async (ids) => {
  for (let i = 0; i < 600; i++) {
    const st = await Promise.all(ids.map(async (id) => (await A.get(`/jobs/${id}`, token)).data.status));
    if (st.every((s) => !['PENDING', 'RUNNING'].includes(s))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('jobs did not finish');
};

const old = await submit('Old experiment', { trainer: 'logreg', dataset: { synthetic: 'blobs' } }, 50, { priority: -1000 });
await A.post(`/jobs/${old}/cancel`, {}, token);
const quick = [
  await submit('Moons classifier (MLP)', { trainer: 'mlp', dataset: { synthetic: 'moons', n: 2000 }, hidden_layers: [32, 32], epochs: 200 }, 150),
  await submit('Four blobs (logistic regression)', { trainer: 'logreg', dataset: { synthetic: 'blobs', classes: 4, features: 4, n: 3000 }, epochs: 100 }, 100),
  await submit('Price model (linear regression)', { trainer: 'linreg', dataset: { synthetic: 'linear', features: 8, n: 5000 }, epochs: 80 }, 120),
  await submit('Typo in config', { trainer: 'logreg', dataset: { synthetic: 'moons', classes: 4 } }, 80),
];
await submit('CNN on the office GPU', { runner: 'torch-cnn', epochs: 20 }, 200, { description: 'Waits for a node that offers the torch-cnn runner.' });
await settled(quick);
const long = await submit('Spirals, deep MLP', { trainer: 'mlp', dataset: { synthetic: 'spirals', n: 6000 }, hidden_layers: [64, 64, 64], epochs: 2000, learning_rate: 0.05 }, 300,
  { description: 'Three hidden layers of 64 on 6,000 points of three interleaved spirals.' });

const browser = await launch();
const shot = async (hash, rendered, file, { scheme = 'light', width = 1280, height = 820, wait = 400 } = {}) => {
  const { context, page } = await newPage(browser, { scheme, width, height });
  await withSession(context, session);
  await open(page, o.url, hash, rendered);
  await page.waitForTimeout(wait);
  await page.screenshot({ path: `${o.out}/${file}` });
  await context.close();
  console.log(`screenshots.mjs: ${o.out}/${file}`);
};
try {
  // the running job, its curve grown for a few seconds while the page is open
  {
    const { context, page } = await newPage(browser, { scheme: 'dark', width: 1280, height: 900 });
    await withSession(context, session);
    await open(page, o.url, `#/jobs/${long}`, 'job');
    await page.waitForFunction(() => document.querySelectorAll('.chart-table tbody tr').length > 25, null, { timeout: 120000 });
    await page.screenshot({ path: `${o.out}/job-live-dark.png` });
    console.log(`screenshots.mjs: ${o.out}/job-live-dark.png`);
    await context.close();
  }
  await shot('#/dashboard', 'dashboard', 'dashboard-light.png');
  await shot('#/network', 'network', 'network-light.png');
  await shot('#/jobs/new', 'submit', 'submit-light.png');
  await shot('#/nodes', 'nodes', 'nodes-dark-360.png', { scheme: 'dark', width: 360, height: 740 });
} finally {
  await browser.close();
  await A.post(`/jobs/${long}/cancel`, {}, token);
}
