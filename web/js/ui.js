// ui.js — DOM helpers and formatting shared by the pages.
//
// Every element is built with createElement and every piece of text goes in as a text node
// (textContent): nothing from the server is ever parsed as HTML, so a job titled
// <img src=x onerror=alert(1)> shows exactly that.

/**
 * h('a', {href: '#/jobs', class: 'x', on: {click}}, 'text', child, [more]) -> element.
 * Props: class, text, on (event handlers), dataset, and any other attribute (false/null skip it).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'value' && 'value' in el) el.value = v;
      else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'open') el[k] = Boolean(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idSeq = 0;
export const uid = (prefix = 'id') => `${prefix}-${++idSeq}`;

// ---- formatting ----
const intFmt = new Intl.NumberFormat('en-US');
const dateFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
const dateYearFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const monthFmt = new Intl.DateTimeFormat(undefined, { month: 'short', year: 'numeric', timeZone: 'UTC' });

/** A whole number with separators; numeric strings (numeric columns) are kept exact. */
export function fmtInt(n) {
  if (n === null || n === undefined || n === '') return '—';
  if (typeof n === 'string' && /^-?\d+$/.test(n) && n.replace('-', '').length > 15)
    return n.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const v = Number(n);
  return Number.isFinite(v) ? intFmt.format(v) : String(n);
}

export function fmtTokens(n) {
  if (n === null || n === undefined) return '—';
  return `${fmtInt(n)} ${Number(n) === 1 ? 'token' : 'tokens'}`;
}

/** An accuracy 0..1 as a percentage. */
export function fmtAccuracy(a) {
  if (a === null || a === undefined || a === '') return '—';
  const v = Number(a);
  return Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '—';
}

export function fmtPct(p, digits = 0) {
  if (p === null || p === undefined) return '—';
  const v = Number(p);
  return Number.isFinite(v) ? `${v.toFixed(digits)}%` : '—';
}

export function fmtNumber(x, digits = 4) {
  if (x === null || x === undefined || x === '') return '—';
  const v = Number(x);
  if (!Number.isFinite(v)) return String(x);
  return Math.abs(v) >= 1000 ? intFmt.format(Math.round(v)) : String(Number(v.toPrecision(digits)));
}

export function fmtDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return (d.getFullYear() === new Date().getFullYear() ? dateFmt : dateYearFmt).format(d);
}

export function fmtMonth(iso) {
  const d = new Date(`${String(iso).slice(0, 10)}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? String(iso) : monthFmt.format(d);
}

/** "12 s ago", "5 min ago", "3 h ago", else the date. */
export function fmtAgo(iso, now = Date.now()) {
  if (!iso) return 'never';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return String(iso);
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return fmtDate(iso);
}

export function fmtMemory(used, total) {
  if (used === null || used === undefined || !total) return '—';
  const gb = (mb) => (mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${mb} MB`);
  return `${gb(used)} / ${gb(total)}`;
}

/** A time element showing fmtDate, with the exact time in its datetime attribute. */
export function time(iso, { ago = false } = {}) {
  if (!iso) return h('span', { class: 'muted', text: '—' });
  return h('time', { datetime: iso, title: iso, text: ago ? fmtAgo(iso) : fmtDate(iso) });
}

const STATUS_WORDS = {
  PENDING: 'Pending', RUNNING: 'Running', COMPLETED: 'Completed', FAILED: 'Failed', CANCELED: 'Canceled',
  ONLINE: 'Online', BUSY: 'Busy', MAINTENANCE: 'Maintenance', OFFLINE: 'Offline',
  SENT: 'Sent', DEAD: 'Given up',
};
export const JOB_STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED'];
export const statusWord = (s) => STATUS_WORDS[s] || String(s ?? '—');

/** A status badge; data-status carries the raw status for tests and styling. */
export function badge(status) {
  const s = String(status ?? '');
  return h('span', { class: `badge badge-${/^[A-Z]+$/.test(s) ? s : 'x'}`, dataset: { status: s } }, statusWord(s));
}

export function miniProgress(pct) {
  const v = Math.max(0, Math.min(100, Number(pct) || 0));
  return h('span', { class: 'mini-progress' },
    h('progress', { max: '100', value: String(v), 'aria-label': `Progress ${v.toFixed(0)}%` }),
    h('span', { text: `${v.toFixed(0)}%` }));
}

// ---- errors ----

/** A banner for an ApiError (or any error): the server's message, details and hint, as text. */
export function errorBanner(err, { title } = {}) {
  return h('div', { class: 'banner banner-error', role: 'alert' },
    h('p', null, h('strong', { text: title || err?.message || 'Something went wrong' })),
    title && err?.message ? h('p', { class: 'detail', text: err.message }) : null,
    err?.details ? h('p', { class: 'detail', text: err.details }) : null,
    err?.hint ? h('p', { class: 'hint', text: err.hint }) : null);
}

export function okBanner(text, ...more) {
  return h('div', { class: 'banner banner-ok', role: 'status' }, h('p', null, h('strong', { text })), ...more);
}

/**
 * A labelled field: label, control, hint and an error slot wired with aria-describedby.
 * Returns {el, control, setError(msg|err|null)}.
 */
export function field(labelText, control, { hint, span, id } = {}) {
  const cid = id || control.id || uid('f');
  control.id = cid;
  const hintEl = hint ? h('p', { class: 'hint', id: `${cid}-hint`, text: hint }) : null;
  const errEl = h('p', { class: 'field-error', id: `${cid}-error`, 'aria-live': 'polite' });
  const describe = [hintEl ? `${cid}-hint` : null, `${cid}-error`].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', describe);
  const el = h('div', { class: `field${span ? ' span-all' : ''}` },
    h('label', { for: cid, text: labelText }), control, hintEl, errEl);
  return {
    el, control,
    setError(e) {
      if (!e) {
        errEl.replaceChildren();
        control.removeAttribute('aria-invalid');
        return;
      }
      const msg = typeof e === 'string' ? e : e.message;
      replace(errEl, msg, e.details ? ` ${e.details}` : null,
        e.hint ? h('span', { class: 'hint', text: ` ${e.hint}` }) : null);
      control.setAttribute('aria-invalid', 'true');
    },
  };
}

/**
 * A table: columns [{label, num, className, cell(row) -> node|string, narrowHide}], rows.
 * rowAttrs(row) may give attributes for the <tr> (e.g. data-node-id).
 */
export function table({ caption, columns, rows, empty = 'Nothing here yet.', rowAttrs }) {
  const thead = h('thead', null, h('tr', null, columns.map((c) =>
    h('th', { scope: 'col', class: [c.num ? 'num' : '', c.narrowHide ? 'hide-narrow' : ''].join(' ').trim() || null, text: c.label }))));
  const tbody = h('tbody');
  fillBody(tbody, columns, rows, empty, rowAttrs);
  // a table wider than the screen scrolls sideways: the scrolling box is focusable, so the keyboard
  // can scroll it too (WCAG 2.1.1), and named after the table
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption || 'Table' },
    h('table', null, caption ? h('caption', { text: caption }) : null, thead, tbody));
}

export function fillBody(tbody, columns, rows, empty, rowAttrs) {
  tbody.replaceChildren();
  if (!rows.length) {
    tbody.appendChild(h('tr', null, h('td', { class: 'empty', colspan: String(columns.length), text: empty })));
    return;
  }
  for (const r of rows) {
    tbody.appendChild(h('tr', rowAttrs ? rowAttrs(r) : null, columns.map((c) => {
      const v = c.cell(r);
      return h('td', {
        class: [c.num ? 'num' : '', c.className || '', c.narrowHide ? 'hide-narrow' : ''].join(' ').trim() || null,
      }, v);
    })));
  }
}

/** A <dl> of statistics: items [{label, value, className, id}]. */
export function stats(items, label, cls = '') {
  return h('dl', { class: `stats ${cls}`.trim(), 'aria-label': label },
    items.map((it) => h('div', { class: `stat ${it.className || ''}`, dataset: it.key ? { stat: it.key } : undefined },
      h('dt', { text: it.label }), h('dd', null, it.value))));
}

/** A key/value list. */
export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', { text: k }), h('dd', null, v)]));
}

export function pageHead(title, subtitle, ...actions) {
  return h('div', { class: 'page-head' },
    h('div', null, h('h1', { text: title }), subtitle ? h('p', { text: subtitle }) : null),
    actions.length ? h('div', { class: 'page-actions' }, actions) : null);
}

/** Marks a page fully rendered (with its data): a performance mark the browser tests read. */
export function markRendered(page) {
  requestAnimationFrame(() => {
    const name = `mm:rendered:${page}`;
    if (!performance.getEntriesByName(name).length) performance.mark(name);
    document.body.dataset.rendered = page;
  });
}

/** Copies text to the clipboard; returns whether it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
