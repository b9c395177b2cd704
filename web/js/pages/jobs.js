// Jobs: GET /jobs (list_jobs) filtered by status, sorted by date, stake or status, a page at a time.
// The page count comes from the dashboard's per-status counts. Rows follow their jobs' events.
import { get } from '../api.js';
import {
  JOB_STATUSES, badge, errorBanner, field, fillBody, fmtInt, h, markRendered, miniProgress, pageHead, replace,
  statusWord, table, time,
} from '../ui.js';

const PAGE = 20;

export const listColumns = [
  { label: 'Job', cell: (j) => h('a', { href: `#/jobs/${j.id}`, text: `#${j.id}` }), className: 'nowrap' },
  { label: 'Title', cell: (j) => j.title, className: 'title-cell' },
  { label: 'Status', cell: (j) => badge(j.status) },
  { label: 'Progress', cell: (j) => miniProgress(j.progress), narrowHide: true },
  { label: 'Stake', num: true, cell: (j) => fmtInt(j.stake) },
  { label: 'Priority', num: true, cell: (j) => fmtInt(j.priority), narrowHide: true },
  { label: 'Submitted', cell: (j) => time(j.created_at), className: 'nowrap', narrowHide: true },
  { label: 'Finished', cell: (j) => time(j.finished_at), className: 'nowrap', narrowHide: true },
];

/**
 * The filter/sort/pager list shared by Jobs and Admin › Jobs.
 * opts: {path: '/jobs', hashBase: '#/jobs', totals: async (status) -> number|null, caption, page,
 *        mount(card): puts the list's card in the page}
 */
export async function jobList(ctx, opts) {
  const { query, signal } = ctx;
  const status = JOB_STATUSES.includes(query.get('status')) ? query.get('status') : '';
  const sort = ['created', 'stake', 'status'].includes(query.get('sort')) ? query.get('sort') : 'created';
  const order = query.get('order') === 'asc' ? 'asc' : 'desc';
  const page = Math.max(1, parseInt(query.get('page') || '1', 10) || 1);

  const go = (changes) => {
    const q = new URLSearchParams({ status, sort, order, page: String(page), ...changes });
    for (const [k, v] of [...q]) if (!v || (k === 'page' && v === '1')) q.delete(k);
    ctx.navigate(`${opts.hashBase}${q.toString() ? `?${q}` : ''}`);
  };

  const statusSel = field('Status', h('select', { name: 'status', on: { change: (e) => go({ status: e.target.value, page: '1' }) } },
    h('option', { value: '', text: 'All statuses' }),
    JOB_STATUSES.map((s) => h('option', { value: s, selected: s === status, text: statusWord(s) }))));
  const sortSel = field('Sort by', h('select', { name: 'sort', on: { change: (e) => go({ sort: e.target.value, page: '1' }) } },
    [['created', 'Date submitted'], ['stake', 'Stake'], ['status', 'Status']].map(([v, t]) => h('option', { value: v, selected: v === sort, text: t }))));
  const orderSel = field('Order', h('select', { name: 'order', on: { change: (e) => go({ order: e.target.value, page: '1' }) } },
    h('option', { value: 'desc', selected: order === 'desc', text: sort === 'created' ? 'Newest first' : sort === 'stake' ? 'Highest first' : 'Descending' }),
    h('option', { value: 'asc', selected: order === 'asc', text: sort === 'created' ? 'Oldest first' : sort === 'stake' ? 'Lowest first' : 'Ascending' })));

  const banner = h('div', { 'aria-live': 'polite' });
  const tbl = table({ caption: opts.caption, columns: listColumns, rows: [] });
  const pagerInfo = h('span', { class: 'pager-info', 'aria-live': 'polite' });
  const prev = h('a', { class: 'button button-secondary button-small', text: '← Previous' });
  const next = h('a', { class: 'button button-secondary button-small', text: 'Next →' });
  const card = h('section', { class: 'card', 'aria-label': opts.caption },
    h('div', { class: 'toolbar', role: 'search', 'aria-label': 'Filter and sort jobs' }, statusSel.el, sortSel.el, orderSel.el),
    banner, tbl, h('nav', { class: 'pager', 'aria-label': 'Pages' }, pagerInfo, prev, next));

  let rows = [];
  let last = '';
  function pagerLink(a, enabled, p) {
    if (enabled) {
      const q = new URLSearchParams({ status, sort, order, page: String(p) });
      for (const [k, v] of [...q]) if (!v || (k === 'page' && v === '1')) q.delete(k);
      a.setAttribute('href', `${opts.hashBase}${q.toString() ? `?${q}` : ''}`);
      a.removeAttribute('aria-disabled');
    } else {
      a.removeAttribute('href');
      a.setAttribute('aria-disabled', 'true');
    }
  }
  async function load() {
    try {
      const [list, total] = await Promise.all([
        get(opts.path, { status: status || undefined, sort, order, limit: PAGE + 1, offset: (page - 1) * PAGE }, { signal }),
        opts.totals(status).catch(() => null),
      ]);
      banner.replaceChildren();
      const text = JSON.stringify([list, total]);
      if (text === last) return;
      last = text;
      rows = list.slice(0, PAGE);
      const more = list.length > PAGE;
      fillBody(tbl.querySelector('tbody'), listColumns, rows,
        status ? `No ${statusWord(status).toLowerCase()} jobs.` : 'No jobs yet.');
      const first = rows.length ? (page - 1) * PAGE + 1 : 0;
      const pages = total !== null ? Math.max(1, Math.ceil(total / PAGE)) : null;
      pagerInfo.textContent = rows.length
        ? `${fmtInt(first)}–${fmtInt(first + rows.length - 1)}${total !== null ? ` of ${fmtInt(total)}` : ''} · page ${page}${pages ? ` of ${fmtInt(pages)}` : ''}`
        : `Page ${page}`;
      pagerLink(prev, page > 1, page - 1);
      pagerLink(next, more, page + 1);
      markRendered(opts.page);
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(banner, errorBanner(e, { title: 'The jobs could not be listed' }));
      markRendered(opts.page);
    }
  }

  // progress and status events move rows in place; a refresh every 5 s catches the rest
  ctx.on('*', (data, event) => {
    const m = /^job:(\d+):(progress|status)$/.exec(event);
    if (!m) return;
    const i = rows.findIndex((r) => String(r.id) === m[1]);
    if (i < 0) return;
    rows[i] = { ...rows[i], progress: data.progress ?? rows[i].progress, status: data.status ?? rows[i].status };
    const tr = tbl.querySelectorAll('tbody tr')[i];
    if (tr) {
      const cells = tr.children;
      cells[2].replaceChildren(badge(rows[i].status));
      cells[3].replaceChildren(miniProgress(rows[i].progress));
    }
    if (m[2] === 'status') setTimeout(load, 300);
  });
  ctx.onReconnect(load);
  ctx.every(5000, load);
  opts.mount(card);
  await load();
}

export default async function jobs(ctx) {
  ctx.main.append(
    pageHead('Jobs', 'Every job you have submitted.', h('a', { class: 'button', href: '#/jobs/new', text: 'Submit a job' })));
  await jobList(ctx, {
    path: '/jobs', hashBase: '#/jobs', caption: 'Your jobs', page: 'jobs',
    mount: (card) => ctx.main.append(card),
    totals: async (status) => {
      const d = await get('/dashboard', null, { signal: ctx.signal });
      return Number(status ? d.jobs?.[status] : d.jobs?.total);
    },
  });
}
