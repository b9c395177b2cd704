// My nodes: GET /nodes/mine; register a node (POST /nodes/register: its key is shown this once, with
// the worker command that uses it); withdraw a node's earnings (POST /nodes/:id/withdraw); put a node
// in or out of MAINTENANCE (POST /nodes/:id/maintenance).
import { get, post } from '../api.js';
import {
  badge, copyText, errorBanner, field, fillBody, fmtAgo, fmtInt, fmtTokens, h, markRendered, okBanner, pageHead,
  replace, table,
} from '../ui.js';

/** Single-quotes a value for a POSIX shell. */
const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** The command that runs a worker as this node, reaching the network through this gateway. */
export function workerCommand(key) {
  return `MODELMINE_NODE_KEY=${shq(key)} \\\n  modelmine-worker --api ${shq(location.origin)}`;
}

export default async function mynodes(ctx) {
  const { main, signal } = ctx;
  const banner = h('div', { 'aria-live': 'polite', id: 'mynodes-banner' });
  const keyBox = h('div', { 'aria-live': 'polite' });
  const nameInput = h('input', { name: 'name', maxlength: '100', autocomplete: 'off', required: true, placeholder: 'gpu-box-1' });
  const registerBtn = h('button', { class: 'button', type: 'submit', text: 'Register node' });
  const name = field('Node name', nameInput, { hint: '1 to 100 printable characters; unique among your nodes.' });
  // the input and its button on one row, the hint and error under both
  name.el.classList.add('inline-form');
  const row = h('div', { class: 'row' });
  nameInput.replaceWith(row);
  row.append(nameInput, registerBtn);
  const form = h('form', {
    novalidate: true, 'aria-label': 'Register a node',
    on: {
      async submit(e) {
        e.preventDefault();
        name.setError(null);
        keyBox.replaceChildren();
        if (!name.control.value.trim()) return name.setError('Give the node a name.'), name.control.focus();
        registerBtn.disabled = true;
        try {
          const r = await post('/nodes/register', { name: name.control.value }, { signal });
          showKey(r);
          name.control.value = '';
          await load();
        } catch (err) {
          if (err.name === 'AbortError') return;
          if (/name/i.test(err.message) || err.code === '23505') { name.setError(err); name.control.focus(); } else replace(keyBox, errorBanner(err, { title: 'The node was not registered' }));
        } finally {
          registerBtn.disabled = false;
        }
      },
    },
  }, name.el);

  function showKey(r) {
    const cmd = workerCommand(r.node_key);
    const copied = h('span', { class: 'hint', 'aria-live': 'polite' });
    const copyBtn = (what, text) => h('button', {
      class: 'button button-secondary button-small', type: 'button',
      on: { async click() { copied.textContent = (await copyText(text)) ? `${what} copied.` : `Select the ${what.toLowerCase()} and copy it.`; } },
    }, `Copy ${what.toLowerCase()}`);
    replace(keyBox, h('section', { class: 'card', id: 'node-key-card', 'aria-labelledby': 'node-key-title' },
      h('h2', { id: 'node-key-title', text: `Node #${r.node_id} registered: its key, shown only this once` }),
      h('p', { text: 'Keep this key now: ModelMine stores only its hash and cannot show it again. Anyone with it can work as this node.' }),
      h('div', { class: 'secret' }, h('code', { id: 'node-key', text: r.node_key }), copyBtn('Key', r.node_key)),
      h('h3', { text: 'Start the worker' }),
      h('p', { text: 'On the machine that will train, with modelmine-worker installed: it works through this gateway, so it needs no database login.' }),
      h('div', { class: 'secret' }, h('pre', { class: 'command', id: 'worker-command', text: cmd }), copyBtn('Command', cmd)),
      copied));
    keyBox.querySelector('h2').setAttribute('tabindex', '-1');
    keyBox.querySelector('h2').focus();
  }

  const columns = [
    { label: 'Node', cell: (n) => [h('span', { class: 'node-name', text: n.name }), h('span', { class: 'muted', text: ` #${n.id}` })], className: 'title-cell' },
    { label: 'Status', cell: (n) => badge(n.status), className: 'node-status' },
    { label: 'Last seen', cell: (n) => fmtAgo(n.last_seen), className: 'nowrap', narrowHide: true },
    { label: 'Completed / failed', num: true, cell: (n) => `${fmtInt(n.jobs_completed)} / ${fmtInt(n.jobs_failed)}`, narrowHide: true },
    { label: 'Tokens earned', num: true, cell: (n) => fmtInt(n.tokens_earned), narrowHide: true },
    { label: 'To withdraw', num: true, cell: (n) => fmtInt(n.balance), narrowHide: true },
    { label: 'Actions', cell: (n) => actionsFor(n) },
  ];

  function actionsFor(n) {
    const inMaint = n.status === 'MAINTENANCE';
    return h('div', { class: 'page-actions' },
      h('button', {
        class: 'button button-secondary button-small', type: 'button', 'data-action': 'withdraw',
        disabled: !(Number(n.balance) > 0), 'aria-label': `Withdraw the earnings of ${n.name}`,
        on: { click: () => withdraw(n) },
      }, Number(n.balance) > 0 ? `Withdraw ${fmtInt(n.balance)}` : 'Withdraw'),
      h('button', {
        class: 'button button-secondary button-small', type: 'button', 'data-action': 'maintenance',
        'aria-label': `${inMaint ? 'End maintenance of' : 'Put in maintenance'} ${n.name}`,
        on: { click: (e) => maintenance(n, !inMaint, e.currentTarget) },
      }, inMaint ? 'End maintenance' : 'Maintenance'));
  }

  function withdraw(n) {
    const amount = field(`Amount to withdraw from ${n.name}`, h('input', { type: 'number', min: '1', step: '1', max: String(n.balance), inputmode: 'numeric', placeholder: `all ${fmtInt(n.balance)}` }),
      { hint: 'Leave empty to withdraw everything.' });
    const go = h('button', { class: 'button button-small', type: 'submit', text: 'Withdraw' });
    const f = h('form', {
      class: 'banner banner-info', 'aria-label': `Withdraw from ${n.name}`,
      on: {
        async submit(e) {
          e.preventDefault();
          amount.setError(null);
          const v = amount.control.value.trim();
          if (v && !/^\d+$/.test(v)) return amount.setError('A whole number of tokens.');
          go.disabled = true;
          try {
            const r = await post(`/nodes/${n.id}/withdraw`, v ? { amount: Number(v) } : {}, { signal });
            replace(banner, okBanner(`Moved ${fmtTokens(r.withdrawn)} from ${n.name} to your balance.`));
            await load();
          } catch (err) {
            if (err.name === 'AbortError') return;
            amount.setError(err);
            go.disabled = false;
          }
        },
      },
    }, h('div', { class: 'form-grid' }, amount.el),
    h('div', { class: 'form-actions' }, go, h('button', { class: 'button button-secondary button-small', type: 'button', text: 'Close', on: { click: () => banner.replaceChildren() } })));
    replace(banner, f);
    amount.control.focus();
  }

  async function maintenance(n, on, btn) {
    btn.disabled = true;
    try {
      const r = await post(`/nodes/${n.id}/maintenance`, { maintenance: on }, { signal });
      replace(banner, okBanner(on ? `${n.name} is in maintenance: it gets no new jobs (status ${r.status}).`
        : `${n.name} is out of maintenance (status ${r.status}).`));
      await load();
    } catch (err) {
      if (err.name !== 'AbortError') replace(banner, errorBanner(err, { title: 'The status was not changed' }));
      btn.disabled = false;
    }
  }

  const tbl = table({ caption: 'Nodes you operate', columns, rows: [], empty: 'You operate no nodes yet.' });
  main.append(
    pageHead('My nodes', 'Run a compute node: it trains jobs and earns 80% of each job\'s stake.'),
    h('section', { class: 'card', 'aria-labelledby': 'reg-title' }, h('h2', { id: 'reg-title', text: 'Register a node' }), form),
    keyBox, banner,
    h('section', { class: 'card', 'aria-labelledby': 'mine-title' }, h('h2', { id: 'mine-title', text: 'Your nodes' }), tbl));

  let last = '';
  async function load() {
    try {
      const list = await get('/nodes/mine', null, { signal });
      const text = JSON.stringify(list);
      if (text !== last) {
        last = text;
        // keep focus where it is when a refresh re-draws the rows
        const focused = document.activeElement?.closest?.('tr')?.dataset.nodeId;
        const action = document.activeElement?.dataset?.action;
        fillBody(tbl.querySelector('tbody'), columns, list, 'You operate no nodes yet.', (n) => ({ dataset: { nodeId: String(n.id) } }));
        if (focused && action) tbl.querySelector(`tr[data-node-id="${CSS.escape(focused)}"] [data-action="${action}"]`)?.focus();
      }
      markRendered('mynodes');
    } catch (e) {
      if (e.name !== 'AbortError') replace(banner, errorBanner(e, { title: 'Your nodes could not be listed' }));
    }
  }
  ctx.on('node:heartbeat', (b) => { if (tbl.querySelector(`tr[data-node-id="${CSS.escape(String(b.node_id))}"]`)) setTimeout(load, 100); });
  ctx.onReconnect(load);
  ctx.every(5000, load);
  await load();
}
