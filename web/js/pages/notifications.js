// Notifications: which events reach you (POST /notifications/preferences), by email and by webhooks
// (POST /notifications/webhooks: the signing secret is shown this once; .../:id/remove), and what
// was delivered, is still being retried, or was given up on with its reason (GET /notifications).
import { get, post } from '../api.js';
import {
  badge, copyText, errorBanner, field, fillBody, fmtAgo, h, markRendered, okBanner, pageHead, replace, table,
} from '../ui.js';

// The events of set_notification_prefs, in the order a user thinks of them.
const EVENTS = [
  ['job_completed', 'A job of mine completed'],
  ['job_failed', 'A job of mine failed'],
  ['job_canceled', 'A job of mine was canceled'],
  ['node_offline', 'A node I operate went offline'],
  ['balance_low', 'My balance fell below a threshold'],
  ['withdrawal_decided', 'A withdrawal of mine was approved or rejected'],
];

export default async function notifications(ctx) {
  const { main, signal } = ctx;
  const banner = h('div', { 'aria-live': 'polite', id: 'notify-banner' });
  const secretBox = h('div', { 'aria-live': 'polite' });

  // ---- preferences ----
  const boxes = EVENTS.map(([key, label]) => {
    const input = h('input', { type: 'checkbox', name: 'events', value: key, id: `ev-${key}` });
    return { key, input, el: h('label', { class: 'check', for: `ev-${key}` }, input, ` ${label}`) };
  });
  const emailBox = h('input', { type: 'checkbox', name: 'email', id: 'notify-email' });
  const threshold = field('Balance threshold (tokens)', h('input', {
    type: 'number', min: '0', step: '1', inputmode: 'numeric', name: 'balance_threshold',
  }), { hint: '"My balance fell below" fires when a payment takes your balance under this; 0 for never.' });
  const saveBtn = h('button', { class: 'button', type: 'submit', text: 'Save' });
  const prefsForm = h('form', {
    novalidate: true, 'aria-label': 'Notification settings',
    on: {
      async submit(e) {
        e.preventDefault();
        threshold.setError(null);
        const t = threshold.control.value.trim();
        if (t && !/^\d+$/.test(t)) return threshold.setError('A whole number of tokens, 0 or more.'), threshold.control.focus();
        saveBtn.disabled = true;
        try {
          const body = { events: boxes.filter((b) => b.input.checked).map((b) => b.key), email: emailBox.checked };
          if (t) body.balance_threshold = Number(t);
          show(await post('/notifications/preferences', body, { signal }));
          replace(banner, okBanner('Your notification settings are saved.'));
        } catch (err) {
          if (err.name === 'AbortError') return;
          if (/threshold/i.test(err.message)) threshold.setError(err);
          else replace(banner, errorBanner(err, { title: 'The settings were not saved' }));
        } finally {
          saveBtn.disabled = false;
        }
      },
    },
  },
  h('fieldset', null, h('legend', { text: 'Tell me when' }), h('div', { class: 'check-list' }, boxes.map((b) => b.el))),
  h('label', { class: 'check', for: 'notify-email' }, emailBox, ' By email, to the address I signed up with'),
  h('div', { class: 'form-grid' }, threshold.el),
  h('div', { class: 'form-actions' }, saveBtn));

  // ---- webhooks ----
  const urlInput = h('input', { type: 'url', name: 'url', required: true, placeholder: 'https://hooks.example.com/modelmine', autocomplete: 'off' });
  const addBtn = h('button', { class: 'button', type: 'submit', text: 'Add webhook' });
  const url = field('Webhook URL', urlInput, { hint: 'Every event you chose is also POSTed here as JSON, signed with a secret shown once.' });
  url.el.classList.add('inline-form');
  const row = h('div', { class: 'row' });
  urlInput.replaceWith(row);
  row.append(urlInput, addBtn);
  const hookForm = h('form', {
    novalidate: true, 'aria-label': 'Add a webhook',
    on: {
      async submit(e) {
        e.preventDefault();
        url.setError(null);
        secretBox.replaceChildren();
        if (!url.control.value.trim()) return url.setError('Give the URL to POST to.'), url.control.focus();
        addBtn.disabled = true;
        try {
          const r = await post('/notifications/webhooks', { url: url.control.value.trim() }, { signal });
          showSecret(r);
          url.control.value = '';
          await load();
        } catch (err) {
          if (err.name === 'AbortError') return;
          url.setError(err);
          url.control.focus();
        } finally {
          addBtn.disabled = false;
        }
      },
    },
  }, url.el);

  function showSecret(r) {
    const copied = h('span', { class: 'hint', 'aria-live': 'polite' });
    replace(secretBox, h('section', { class: 'card', id: 'webhook-secret-card', 'aria-labelledby': 'secret-title' },
      h('h2', { id: 'secret-title', tabindex: '-1', text: `Webhook #${r.id}: its signing secret, shown only this once` }),
      h('p', { class: 'url', text: `Requests to ${r.url} carry a ModelMine-Signature header: t=<time>,v1=<HMAC-SHA256 of "<time>.<body>" with this secret>. Check it, and refuse old times, to know a request came from ModelMine.` }),
      h('div', { class: 'secret' }, h('code', { id: 'webhook-secret', text: r.secret }),
        h('button', {
          class: 'button button-secondary button-small', type: 'button',
          on: { async click() { copied.textContent = (await copyText(r.secret)) ? 'Secret copied.' : 'Select the secret and copy it.'; } },
        }, 'Copy secret')),
      copied));
    secretBox.querySelector('h2').focus();
  }

  const hookColumns = [
    { label: 'URL', cell: (w) => h('span', { class: 'url', text: w.url }), className: 'title-cell' },
    { label: 'Added', cell: (w) => fmtAgo(w.created_at), className: 'nowrap', narrowHide: true },
    {
      label: 'Actions',
      cell: (w) => h('button', {
        class: 'button button-secondary button-small', type: 'button', 'data-action': 'remove',
        'aria-label': `Remove the webhook ${w.url}`, on: { click: (e) => remove(w, e.currentTarget) },
      }, 'Remove'),
    },
  ];
  async function remove(w, btn) {
    btn.disabled = true;
    try {
      const r = await post(`/notifications/webhooks/${w.id}/remove`, {}, { signal });
      replace(banner, okBanner(`Removed the webhook ${w.url}${r.dead_lettered ? `; ${r.dead_lettered} undelivered notification(s) to it were given up` : ''}.`));
      await load();
    } catch (err) {
      if (err.name !== 'AbortError') replace(banner, errorBanner(err, { title: 'The webhook was not removed' }));
      btn.disabled = false;
    }
  }

  // ---- deliveries ----
  const deliveryColumns = [
    { label: 'Event', cell: (n) => h('span', { text: (EVENTS.find(([k]) => k === n.event) || [n.event, n.event])[1] || n.event }) },
    { label: 'To', cell: (n) => [h('span', { class: 'muted', text: `${n.channel} ` }), h('span', { class: 'url', text: n.destination })], narrowHide: true },
    { label: 'State', cell: (n) => badge(n.state) },
    {
      label: 'Detail',
      cell: (n) => h('span', {
        text: n.state === 'SENT' ? `sent ${fmtAgo(n.sent_at)}`
          : n.state === 'DEAD' ? (n.last_error || 'given up')
            : `attempt ${n.attempts + 1}${n.next_attempt_at ? `, ${fmtAgo(n.next_attempt_at)}` : ''}${n.last_error ? ` (last: ${n.last_error})` : ''}`,
      }),
    },
    { label: 'Raised', cell: (n) => fmtAgo(n.created_at), className: 'nowrap', narrowHide: true },
  ];

  const hooks = table({ caption: 'Your webhooks', columns: hookColumns, rows: [], empty: 'No webhooks.' });
  const deliveries = table({ caption: 'Your latest notifications, newest first', columns: deliveryColumns, rows: [], empty: 'Nothing sent yet.' });
  main.append(
    pageHead('Notifications', 'Hear when a job ends, a node drops, your balance runs low or a withdrawal is decided.'),
    banner,
    h('section', { class: 'card', 'aria-labelledby': 'prefs-title' }, h('h2', { id: 'prefs-title', text: 'Settings' }), prefsForm),
    h('section', { class: 'card', 'aria-labelledby': 'hooks-title' }, h('h2', { id: 'hooks-title', text: 'Webhooks' }), hookForm, secretBox, hooks),
    h('section', { class: 'card', 'aria-labelledby': 'sent-title' }, h('h2', { id: 'sent-title', text: 'Deliveries' }), deliveries));

  function show(p) {
    const on = new Set(p.events || []);
    for (const b of boxes) b.input.checked = on.has(b.key);
    emailBox.checked = !!p.email;
    if (document.activeElement !== threshold.control) threshold.control.value = String(p.balance_threshold ?? 0);
    fillBody(hooks.querySelector('tbody'), hookColumns, p.webhooks || [], 'No webhooks.');
  }

  async function load(first = false) {
    try {
      const [p, list] = await Promise.all([
        get('/notifications/preferences', null, { signal }),
        get('/notifications', { limit: 50 }, { signal }),
      ]);
      if (first) show(p);
      else fillBody(hooks.querySelector('tbody'), hookColumns, p.webhooks || [], 'No webhooks.');
      fillBody(deliveries.querySelector('tbody'), deliveryColumns, list, 'Nothing sent yet.');
      markRendered('notifications');
    } catch (err) {
      if (err.name !== 'AbortError') replace(banner, errorBanner(err, { title: 'Your notifications could not be loaded' }));
    }
  }
  ctx.every(10000, () => load(false));
  await load(true);
}
