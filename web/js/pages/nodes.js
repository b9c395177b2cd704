// Nodes: GET /nodes (nodes(): status with OFFLINE derived, CPU, memory, uptime % over 24 h, jobs
// handled, tokens earned, reputation). node:heartbeat events update a row's status and load at once;
// a read every 5 s catches what no event announces (a node that stopped beating turns OFFLINE).
import { get } from '../api.js';
import {
  badge, errorBanner, fillBody, fmtAgo, fmtInt, fmtMemory, fmtPct, h, markRendered, pageHead, replace, table,
} from '../ui.js';

const PAGE = 100;

export const nodeColumns = [
  { label: 'Node', cell: (n) => h('span', { class: 'node-name', text: n.name }), className: 'title-cell' },
  { label: 'Status', cell: (n) => badge(n.status), className: 'node-status' },
  { label: 'CPU', num: true, cell: (n) => fmtPct(n.cpu_load), className: 'node-cpu' },
  { label: 'Memory', num: true, cell: (n) => fmtMemory(n.memory_used_mb, n.memory_total_mb), className: 'node-mem nowrap', narrowHide: true },
  { label: 'Uptime (24 h)', num: true, cell: (n) => fmtPct(n.uptime_pct, 1), narrowHide: true },
  { label: 'Jobs handled', num: true, cell: (n) => fmtInt(n.jobs_handled), narrowHide: true },
  { label: 'Tokens', num: true, cell: (n) => fmtInt(n.tokens_earned) },
  { label: 'Reputation', num: true, cell: (n) => `${fmtInt(n.reputation)}`, narrowHide: true },
  { label: 'Last seen', cell: (n) => h('time', { datetime: n.last_seen || '', title: n.last_seen || 'never', text: fmtAgo(n.last_seen) }), className: 'node-seen nowrap', narrowHide: true },
];

export default async function nodes(ctx) {
  const { main, signal, query } = ctx;
  const page = Math.max(1, parseInt(query.get('page') || '1', 10) || 1);
  const banner = h('div', { 'aria-live': 'polite' });
  const summary = h('p', { class: 'card-note', 'aria-live': 'polite' });
  const tbl = table({ caption: 'Registered compute nodes, oldest first', columns: nodeColumns, rows: [], empty: 'No nodes have registered yet.' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  main.append(
    pageHead('Nodes', 'Every compute node, live. Reputation = success rate × uptime.',
      h('a', { class: 'button button-secondary', href: '#/my-nodes', text: 'Run a node' })),
    banner,
    h('section', { class: 'card', 'aria-label': 'Nodes' }, tbl, summary, pager));

  let rows = [];
  let last = '';
  const tbody = tbl.querySelector('tbody');
  const rowAttrs = (n) => ({ dataset: { nodeId: String(n.id) } });

  function render() {
    fillBody(tbody, nodeColumns, rows, 'No nodes have registered yet.', rowAttrs);
    const online = rows.filter((n) => n.status !== 'OFFLINE').length;
    summary.textContent = rows.length ? `${fmtInt(online)} of ${fmtInt(rows.length)} on this page are up.` : '';
  }

  async function load() {
    try {
      const list = await get('/nodes', { limit: PAGE + 1, offset: (page - 1) * PAGE }, { signal });
      banner.replaceChildren();
      const more = list.length > PAGE;
      const text = JSON.stringify(list);
      if (text !== last) {
        last = text;
        rows = list.slice(0, PAGE);
        render();
      } else {
        // same figures: only the "last seen" ages move
        for (const tr of tbody.querySelectorAll('tr[data-node-id]')) {
          const t = tr.querySelector('.node-seen time');
          if (t?.getAttribute('datetime')) t.textContent = fmtAgo(t.getAttribute('datetime'));
        }
      }
      replace(pager,
        page > 1 ? h('a', { class: 'button button-secondary button-small', href: `#/nodes?page=${page - 1}`, text: '← Previous' }) : null,
        more ? h('a', { class: 'button button-secondary button-small', href: `#/nodes?page=${page + 1}`, text: 'Next →' }) : null);
      markRendered('nodes');
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(banner, errorBanner(e, { title: 'The nodes could not be refreshed' }));
    }
  }

  // a heartbeat: the node's latest status and load, in place
  ctx.on('node:heartbeat', (b) => {
    const i = rows.findIndex((n) => String(n.id) === String(b.node_id));
    if (i < 0) return;
    const n = { ...rows[i] };
    for (const k of ['status', 'cpu_load', 'memory_used_mb', 'memory_total_mb', 'last_seen', 'name'])
      if (b[k] !== undefined) n[k] = b[k];
    rows[i] = n;
    const tr = tbody.querySelector(`tr[data-node-id="${CSS.escape(String(n.id))}"]`);
    if (!tr) return;
    tr.querySelector('.node-status').replaceChildren(badge(n.status));
    tr.querySelector('.node-cpu').textContent = nodeColumns[2].cell(n);
    tr.querySelector('.node-mem').textContent = nodeColumns[3].cell(n);
    tr.querySelector('.node-seen').replaceChildren(nodeColumns[8].cell(n));
  });
  ctx.on('node:registered', () => setTimeout(load, 200));
  ctx.onReconnect(load);
  ctx.every(5000, load);
  await load();
}
