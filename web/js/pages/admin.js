// Admin: every user (GET /admin/users), every job (GET /admin/jobs), every node with its operator
// (GET /admin/nodes), the network report with the bookkeeping invariants (GET /admin/network) and the
// ledger with titles, emails and node names (GET /admin/ledger). Linked only for admins; the gateway
// refuses everyone else (403), and this page then shows its refusal.
import { get, isAdmin } from '../api.js';
import {
  badge, errorBanner, fillBody, fmtAgo, fmtInt, fmtMemory, fmtPct, fmtTokens, h, kv, markRendered, okBanner,
  pageHead, replace, table, time,
} from '../ui.js';
import { jobList } from './jobs.js';
import { blockColumns, blockList } from './ledger.js';
import { networkCharts, networkStats } from './network.js';

const TABS = [['users', 'Users'], ['jobs', 'Jobs'], ['nodes', 'Nodes'], ['network', 'Network'], ['ledger', 'Ledger']];

async function users(ctx, box) {
  const columns = [
    { label: 'User', cell: (u) => `#${u.id}`, className: 'nowrap' },
    { label: 'Email', cell: (u) => u.email, className: 'title-cell' },
    { label: 'Role', cell: (u) => (u.role === 'admin' ? h('span', { class: 'badge badge-admin', text: 'admin' }) : 'user') },
    { label: 'Balance', num: true, cell: (u) => fmtInt(u.balance) },
    { label: 'Jobs', num: true, cell: (u) => fmtInt(u.jobs) },
    { label: 'Signed up', cell: (u) => time(u.created_at), className: 'nowrap', narrowHide: true },
  ];
  const tbl = table({ caption: 'Every user', columns, rows: [], empty: 'No users.' });
  const count = h('p', { class: 'card-note' });
  box.append(h('section', { class: 'card', 'aria-label': 'Users' }, tbl, count));
  const list = await get('/admin/users', null, { signal: ctx.signal });
  fillBody(tbl.querySelector('tbody'), columns, list, 'No users.', (u) => ({ dataset: { userEmail: u.email } }));
  count.textContent = `${fmtInt(list.length)} user${list.length === 1 ? '' : 's'}.`;
}

async function nodes(ctx, box) {
  const columns = [
    { label: 'Node', cell: (n) => [h('span', { text: n.name }), h('span', { class: 'muted', text: ` #${n.id}` })], className: 'title-cell' },
    { label: 'Operator', cell: (n) => n.operator_email, className: 'title-cell', narrowHide: true },
    { label: 'Status', cell: (n) => badge(n.status) },
    { label: 'CPU', num: true, cell: (n) => fmtPct(n.cpu_load), narrowHide: true },
    { label: 'Memory', num: true, cell: (n) => fmtMemory(n.memory_used_mb, n.memory_total_mb), className: 'nowrap', narrowHide: true },
    { label: 'Uptime', num: true, cell: (n) => fmtPct(n.uptime_pct, 1), narrowHide: true },
    { label: 'Done / failed', num: true, cell: (n) => `${fmtInt(n.jobs_completed)} / ${fmtInt(n.jobs_failed)}`, narrowHide: true },
    { label: 'Earned', num: true, cell: (n) => fmtInt(n.tokens_earned) },
    { label: 'Balance', num: true, cell: (n) => fmtInt(n.balance), narrowHide: true },
    { label: 'Reputation', num: true, cell: (n) => fmtInt(n.reputation), narrowHide: true },
    { label: 'Runs', cell: (n) => (n.requirements || []).map((r) => r.replace(/^(trainer|runner):/, '')).join(', ') || '—', narrowHide: true },
    { label: 'Last seen', cell: (n) => fmtAgo(n.last_seen), className: 'nowrap', narrowHide: true },
  ];
  const tbl = table({ caption: 'Every node, oldest first (first 100)', columns, rows: [], empty: 'No nodes.' });
  box.append(h('section', { class: 'card', 'aria-label': 'Nodes' }, tbl));
  const load = async () => {
    const list = await get('/admin/nodes', { limit: 100 }, { signal: ctx.signal });
    fillBody(tbl.querySelector('tbody'), columns, list, 'No nodes.');
  };
  ctx.every(5000, () => load().catch(() => {}));
  await load();
}

async function network(ctx, box) {
  const statsBox = h('div');
  const report = h('div');
  const charts = networkCharts(ctx, { page: 'admin' });
  box.append(statsBox, h('section', { class: 'card', 'aria-labelledby': 'admin-books' }, h('h2', { id: 'admin-books', text: 'Supply, ledger and invariants' }), report), charts.el);
  const load = async () => {
    const [r] = await Promise.all([get('/admin/network', null, { signal: ctx.signal }), charts.load()]);
    replace(statsBox, networkStats(r.stats));
    const bad = r.invariant_violations || [];
    replace(report,
      kv([
        ['Users', fmtInt(r.users)],
        ['Tokens issued', `${fmtTokens(r.issued)} of at most ${fmtInt(r.max_supply)}`],
        ['Ledger head', r.ledger ? `height ${fmtInt(r.ledger.height)} · ${r.ledger.hash}` : '—'],
        ['Waiting to be sealed', fmtInt(r.ledger?.pending)],
      ]),
      h('h3', { text: 'Bookkeeping invariants' }),
      bad.length
        ? h('div', { class: 'banner banner-error', role: 'alert' },
          h('p', null, h('strong', { text: `${bad.length} invariant${bad.length === 1 ? '' : 's'} violated` })),
          bad.map((v) => h('p', { class: 'detail', text: `${v.invariant}: ${v.detail}` })))
        : okBanner('Every invariant holds: the books balance.'));
  };
  ctx.every(5000, () => load().catch(() => {}));
  await load();
}

async function ledger(ctx, box) {
  const columns = [
    blockColumns[0], blockColumns[1],
    { label: 'Job', cell: (b) => (b.job_id ? [`#${b.job_id} `, h('span', { class: 'muted', text: b.job_title ?? '' })] : 'genesis'), className: 'title-cell' },
    { label: 'Owner', cell: (b) => b.user_email ?? '—', narrowHide: true },
    blockColumns[4], blockColumns[6], blockColumns[8], blockColumns[10],
  ];
  const blocks = blockList(ctx, { path: '/admin/ledger', hashBase: '#/admin/ledger', columns, page: 'admin' });
  box.append(blocks.el);
  const digest = await get('/ledger/digest', null, { signal: ctx.signal });
  await blocks.load(Number(digest.height));
}

export default async function admin(ctx) {
  const { main } = ctx;
  const tab = ctx.params[0] || 'users';
  const box = h('div');
  main.append(
    pageHead('Admin', 'Everything on this network, for administrators.'),
    h('nav', { class: 'tabs', 'aria-label': 'Admin sections' },
      TABS.map(([k, label]) => h('a', { href: `#/admin/${k}`, 'aria-current': k === tab ? 'page' : null, text: label }))),
    box);
  try {
    if (tab === 'users') await users(ctx, box);
    else if (tab === 'nodes') await nodes(ctx, box);
    else if (tab === 'network') await network(ctx, box);
    else if (tab === 'ledger') await ledger(ctx, box);
    else if (tab === 'jobs') {
      await jobList(ctx, {
        path: '/admin/jobs', hashBase: '#/admin/jobs', caption: 'Every job', page: 'admin',
        mount: (card) => box.append(card),
        totals: async (status) => {
          const s = await get('/network', null, { signal: ctx.signal });
          const by = { PENDING: s.jobs_pending, RUNNING: s.jobs_running, COMPLETED: s.jobs_completed, FAILED: s.jobs_failed, CANCELED: s.jobs_canceled };
          return Number(status ? by[status] : Object.values(by).reduce((a, b) => a + Number(b), 0));
        },
      });
    }
    markRendered('admin');
  } catch (e) {
    if (e.name === 'AbortError') return;
    box.replaceChildren(errorBanner(e, { title: e.status === 403 ? 'This page is for administrators' : 'This section could not be shown' }));
    if (!isAdmin()) box.append(h('p', { class: 'muted', text: 'The gateway refused the request for your account.' }));
    markRendered('admin');
  }
}
