// Job detail: GET /jobs/:id, then live: job:{id}:progress moves the bar and adds an epoch to the
// loss/accuracy chart; job:{id}:status changes the status (and, at the end, reloads the job for its
// result). Cancel: POST /jobs/:id/cancel. Result: GET /jobs/:id/result, saved as a JSON file.
import { get, post, request } from '../api.js';
import { axis, baseOptions, dataTable, destroyChart, loadChart, makeChart, themeColors } from '../charts.js';
import {
  badge, errorBanner, fmtAccuracy, fmtInt, fmtNumber, fmtTokens, h, kv, markRendered, okBanner, replace, table,
  time,
} from '../ui.js';

const OPEN = ['PENDING', 'RUNNING'];

export default async function job(ctx) {
  const { main, signal } = ctx;
  const id = ctx.params[0];
  const banner = h('div', { 'aria-live': 'polite' });
  let j;
  try {
    j = await get(`/jobs/${id}`, null, { signal });
  } catch (e) {
    if (e.name === 'AbortError') return;
    main.append(h('h1', { text: `Job #${id}` }), errorBanner(e, { title: 'This job cannot be shown' }),
      h('p', null, h('a', { href: '#/jobs', text: 'Back to your jobs' })));
    markRendered('job');
    return;
  }

  if (OPEN.includes(j.status)) loadChart().catch(() => {}); // the curve will need it
  // ---- the pieces that change ----
  const h1 = h('h1', { text: j.title });
  const subtitle = h('p');
  const actions = h('div', { class: 'page-actions' });
  const statusBox = h('span', { id: 'job-status' });
  const bar = h('progress', { max: '100', value: '0', id: 'job-progress', 'aria-labelledby': 'job-progress-label' });
  const pctText = h('span', { class: 'progress-text', id: 'job-progress-text', 'aria-hidden': 'true' });
  const live = h('p', { class: 'muted', id: 'job-live', 'aria-live': 'polite' });
  const outcome = h('div', { id: 'job-outcome' });
  const detailsBox = h('div');
  const configBox = h('pre', { class: 'json', tabindex: '0', 'aria-label': 'Config' });
  const chartBox = h('div', { class: 'chart-box chart-small' });
  const chartNote = h('p', { class: 'card-note' });
  const curveTable = dataTable('The curve as a table');
  const points = new Map(); // epoch -> {loss, accuracy, train_loss}
  let chart = null;
  let chartLoading = null;
  ctx.cleanup(() => destroyChart(chart));

  main.append(
    h('div', { class: 'page-head' },
      h('div', null, h1, subtitle), actions),
    banner,
    h('section', { class: 'card', 'aria-labelledby': 'job-progress-label' },
      h('h2', null, h('span', { id: 'job-progress-label', text: 'Progress' }), statusBox),
      h('div', { class: 'progress-row' }, bar, pctText), live, outcome),
    h('section', { class: 'card', 'aria-labelledby': 'job-curve' },
      h('h2', { id: 'job-curve', text: 'Loss and accuracy per epoch' }), chartBox, chartNote, curveTable.el),
    h('div', { class: 'grid' },
      h('section', { class: 'card', 'aria-labelledby': 'job-details' }, h('h2', { id: 'job-details', text: 'Details' }), detailsBox),
      h('section', { class: 'card', 'aria-labelledby': 'job-config' }, h('h2', { id: 'job-config', text: 'Config' }), configBox)));

  function addPoint(m) {
    if (!m || !Number.isFinite(Number(m.epoch))) return false;
    const e = Number(m.epoch);
    if (points.has(e)) return false;
    points.set(e, { loss: m.loss ?? null, accuracy: m.accuracy ?? null, train_loss: m.train_loss ?? null, epochs: m.epochs });
    return true;
  }

  function retheme(c, colors) {
    const [loss, trainLoss, acc] = c.data.datasets;
    loss.borderColor = loss.backgroundColor = colors.FAILED;
    trainLoss.borderColor = trainLoss.backgroundColor = colors.PENDING;
    acc.borderColor = acc.backgroundColor = colors.COMPLETED;
    Object.assign(c.options, baseOptions(colors, { scales: c.options.scales }));
    for (const s of Object.values(c.options.scales)) {
      s.ticks.color = colors.muted;
      s.grid.color = colors.grid;
      if (s.title) s.title.color = colors.muted;
    }
  }

  async function drawCurve() {
    const epochs = [...points.keys()].sort((a, b) => a - b);
    const total = [...points.values()].at(-1)?.epochs;
    chartNote.textContent = epochs.length
      ? `${epochs.length} epoch${epochs.length === 1 ? '' : 's'} seen${total ? ` of ${total}` : ''}. Epochs are drawn as the worker reports them (at most 4 a second).`
      : j.status === 'PENDING' ? 'Waiting for a node to start training.'
        : OPEN.includes(j.status) ? 'Waiting for the first epoch.'
          : 'The curve is drawn live while the job trains; this page was not open then. The final figures are above.';
    replace(curveTable.body, table({
      caption: 'Validation loss, training loss and validation accuracy per epoch',
      columns: [
        { label: 'Epoch', num: true, cell: (e) => fmtInt(e) },
        { label: 'Loss', num: true, cell: (e) => fmtNumber(points.get(e).loss) },
        { label: 'Training loss', num: true, cell: (e) => fmtNumber(points.get(e).train_loss) },
        { label: 'Accuracy', num: true, cell: (e) => fmtAccuracy(points.get(e).accuracy) },
      ],
      rows: epochs, empty: 'No epochs yet.',
    }));
    // one point is no curve: a job that ended before the page opened shows only its final figures
    if (epochs.length < 2) {
      chartBox.hidden = true;
      if (epochs.length === 1 && !OPEN.includes(j.status))
        chartNote.textContent = 'The curve is drawn live while the job trains; this page was not open then. The final figures are above.';
      return;
    }
    chartBox.hidden = false;
    // x is the epoch number on a linear axis: epochs the worker did not report leave no false gaps
    const data = (k) => epochs.map((e) => ({ x: e, y: points.get(e)[k] }));
    if (chart) {
      chart.data.datasets[0].data = data('loss');
      chart.data.datasets[1].data = data('train_loss');
      chart.data.datasets[2].data = data('accuracy');
      chart.update('none');
      return;
    }
    if (chartLoading) return;
    const colors = themeColors();
    chartLoading = makeChart(chartBox, 'Loss and accuracy per epoch', {
      type: 'line',
      data: {
        datasets: [
          { label: 'Validation loss', data: data('loss'), yAxisID: 'y', borderColor: colors.FAILED, backgroundColor: colors.FAILED, pointRadius: 0, borderWidth: 2, tension: 0.2 },
          { label: 'Training loss', data: data('train_loss'), yAxisID: 'y', borderColor: colors.PENDING, backgroundColor: colors.PENDING, pointRadius: 0, borderWidth: 2, borderDash: [5, 4], tension: 0.2 },
          { label: 'Validation accuracy', data: data('accuracy'), yAxisID: 'acc', borderColor: colors.COMPLETED, backgroundColor: colors.COMPLETED, pointRadius: 0, borderWidth: 2, tension: 0.2 },
        ],
      },
      options: baseOptions(colors, {
        scales: {
          x: axis(colors, { type: 'linear', ticks: { color: colors.muted, precision: 0 }, title: { display: true, text: 'Epoch', color: colors.muted } }),
          y: axis(colors, { position: 'left', beginAtZero: true, title: { display: true, text: 'Loss', color: colors.muted } }),
          acc: axis(colors, {
            position: 'right', min: 0, max: 1, grid: { drawOnChartArea: false, color: colors.grid },
            ticks: { color: colors.muted, callback: (v) => `${Math.round(v * 100)}%` },
            title: { display: true, text: 'Accuracy', color: colors.muted },
          }),
        },
      }),
    }, retheme).then((c) => {
      if (!ctx.alive()) return destroyChart(c);
      chart = c;
      drawCurve();
    }).catch((e) => {
      replace(chartBox, errorBanner(e));
    }).finally(() => { chartLoading = null; });
  }

  function renderProgress() {
    const p = Math.max(0, Math.min(100, Number(j.progress) || 0));
    bar.value = p;
    bar.className = j.status === 'COMPLETED' ? 'done' : j.status === 'FAILED' ? 'bad' : '';
    bar.setAttribute('aria-valuetext', `${p.toFixed(0)}% (${j.status.toLowerCase()})`);
    pctText.textContent = `${p.toFixed(0)}%`;
    const m = j.metrics || {};
    const bits = [];
    if (j.status === 'RUNNING' && m.epoch) bits.push(`Epoch ${fmtInt(m.epoch)}${m.epochs ? ` of ${fmtInt(m.epochs)}` : ''}`);
    if (j.status === 'RUNNING' && m.loss !== undefined && m.loss !== null) bits.push(`loss ${fmtNumber(m.loss)}`);
    if (j.status === 'RUNNING' && m.accuracy !== undefined && m.accuracy !== null) bits.push(`accuracy ${fmtAccuracy(m.accuracy)}`);
    live.textContent = j.status === 'PENDING' ? 'Queued: waiting for a node that runs this trainer.'
      : bits.length ? bits.join(' · ') : j.status === 'RUNNING' ? 'Training…' : '';
  }

  function renderAll() {
    h1.textContent = j.title;
    replace(subtitle, `Job #${j.id} · submitted `, time(j.created_at), j.owner_email ? ` · by ${j.owner_email}` : '');
    replace(statusBox, badge(j.status));
    renderProgress();
    // outcome
    if (j.status === 'COMPLETED' && j.result) {
      const r = j.result;
      replace(outcome, h('dl', { class: 'stats', 'aria-label': 'Result' },
        r.accuracy !== null && r.accuracy !== undefined ? statItem('Accuracy', fmtAccuracy(r.accuracy), 'accuracy') : null,
        r.r2 !== undefined ? statItem('R²', fmtNumber(r.r2), 'r2') : null,
        statItem('Loss', fmtNumber(r.loss), 'loss'),
        statItem('Epochs', fmtInt(r.epochs), 'epochs'),
        r.n_train !== undefined ? statItem('Rows (train / validation)', `${fmtInt(r.n_train)} / ${fmtInt(r.n_val)}`, 'rows') : null));
    } else if (j.status === 'FAILED') {
      replace(outcome, h('div', { class: 'banner banner-error', role: 'alert' },
        h('p', null, h('strong', { text: 'The job failed; its stake was refunded.' })),
        j.error ? h('p', { class: 'detail', text: j.error }) : null));
    } else if (j.status === 'CANCELED') {
      replace(outcome, h('p', { class: 'muted', text: 'The job was canceled; its stake was refunded.' }));
    } else outcome.replaceChildren();
    // details
    replace(detailsBox, kv([
      ['Status', badge(j.status)],
      ['Stake', fmtTokens(j.stake)],
      ['Priority', fmtInt(j.priority)],
      ['Node', j.node_id ? `#${j.node_id}` : '—'],
      ['Attempts', fmtInt(j.attempts)],
      // replicated jobs (issue 14): how many results are wanted, the validator's verdict, each replica
      j.replicas_wanted > 1 || j.validation ? ['Replicas', replicasText()] : null,
      (j.replica_results || []).length > 1 ? ['Results', replicaList()] : null,
      ['Submitted', time(j.created_at)],
      ['Started', time(j.started_at)],
      ['Finished', time(j.finished_at)],
      OPEN.includes(j.status) && j.lease_expires_at ? ['Lease expires', time(j.lease_expires_at)] : null,
      ['Description', j.description ? h('span', { text: j.description }) : h('span', { class: 'muted', text: 'None' })],
    ]));
    configBox.textContent = JSON.stringify(j.config, null, 2);
    renderActions();
    drawCurve();
  }

  const VALIDATION = { PENDING: 'awaiting results', VALID: 'validated by a quorum', NO_QUORUM: 'no quorum' };
  function replicasText() {
    const wanted = j.replicas_wanted ?? j.replicas ?? 1;
    const more = j.replicas && wanted > j.replicas ? ` (${fmtInt(j.replicas)} asked, raised by a spot-check or a failed quorum)` : '';
    return `${fmtInt(wanted)} results wanted${more}${j.validation ? ` · ${VALIDATION[j.validation] || j.validation}` : ''}`;
  }

  // one line per replica, as text: node, its state, the validator's verdict, what it was paid
  function replicaList() {
    return h('ul', { class: 'plain-list' }, j.replica_results.map((r) => h('li', {
      text: [`node #${r.node_id}`, String(r.status || '').toLowerCase(),
        r.verdict ? (r.verdict === 'AGREE' ? 'agreed' : 'dissented') : null,
        r.loss !== undefined && r.loss !== null ? `loss ${Number(r.loss).toPrecision(4)}` : null,
        r.reward ? `paid ${fmtTokens(r.reward)}` : null].filter(Boolean).join(' · '),
    })));
  }

  function statItem(label, value, key) {
    return h('div', { class: 'stat', dataset: { stat: key } }, h('dt', { text: label }), h('dd', { text: value }));
  }

  function renderActions() {
    const list = [];
    if (OPEN.includes(j.status)) {
      list.push(h('button', {
        class: 'button button-danger', type: 'button', id: 'cancel-job',
        on: { click: confirmCancel },
      }, 'Cancel job'));
    }
    if (j.status === 'COMPLETED') {
      list.push(h('button', { class: 'button', type: 'button', id: 'download-result', on: { click: download } }, 'Download result'));
    }
    list.push(h('a', { class: 'button button-secondary', href: '#/jobs', text: 'All jobs' }));
    replace(actions, list);
  }

  function confirmCancel() {
    const yes = h('button', {
      class: 'button button-danger button-small', type: 'button', id: 'cancel-confirm',
      on: {
        async click() {
          yes.disabled = true;
          try {
            const { refunded } = await post(`/jobs/${id}/cancel`, {}, { signal });
            replace(banner, okBanner(`Canceled; ${fmtTokens(refunded)} refunded to your balance.`));
            await reload();
          } catch (e) {
            if (e.name !== 'AbortError') replace(banner, errorBanner(e, { title: 'The job was not canceled' }));
          }
        },
      },
    }, 'Yes, cancel it');
    replace(banner, h('div', { class: 'banner banner-info', role: 'alertdialog', 'aria-labelledby': 'cancel-q' },
      h('p', { id: 'cancel-q' }, h('strong', { text: `Cancel this job? Its stake of ${fmtTokens(j.stake)} comes back to you.` })),
      h('div', { class: 'form-actions' }, yes,
        h('button', { class: 'button button-secondary button-small', type: 'button', on: { click: () => banner.replaceChildren() } }, 'Keep it running'))));
    yes.focus();
  }

  async function download(e) {
    const btn = e.currentTarget;
    btn.disabled = true;
    try {
      const res = await request('GET', `/jobs/${id}/result`, { raw: true, signal });
      const blob = await res.blob();
      const href = URL.createObjectURL(new Blob([blob], { type: 'application/json' }));
      const a = h('a', { href, download: `job-${id}-result.json`, hidden: true });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 10000);
    } catch (err) {
      if (err.name !== 'AbortError') replace(banner, errorBanner(err, { title: 'The result could not be downloaded' }));
    } finally {
      btn.disabled = false;
    }
  }

  let last = '';
  async function reload() {
    try {
      const fresh = await get(`/jobs/${id}`, null, { signal });
      const text = JSON.stringify(fresh);
      if (text === last) return;
      last = text;
      j = fresh;
      addPoint(j.metrics);
      renderAll();
    } catch (e) {
      if (e.name !== 'AbortError') replace(banner, errorBanner(e, { title: 'The job could not be refreshed' }));
    }
  }

  ctx.on(`job:${id}:progress`, (d) => {
    if (!OPEN.includes(j.status) && !d.status) return;
    if (Number(d.progress) >= Number(j.progress)) j.progress = d.progress;
    if (d.metrics) {
      j.metrics = d.metrics;
      if (addPoint(d.metrics)) drawCurve();
    }
    if (d.status && d.status !== j.status) {
      j.status = d.status;
      renderAll();
      reload();
    } else renderProgress();
  });
  ctx.on(`job:${id}:status`, (d) => {
    if (d.status === j.status) return;
    j.status = d.status;
    if (d.progress !== undefined) j.progress = d.progress;
    if (d.node_id !== undefined) j.node_id = d.node_id;
    if (d.attempts !== undefined) j.attempts = d.attempts;
    renderAll();
    reload(); // the result, error and times
  });
  ctx.onReconnect(reload);
  ctx.every(5000, () => { if (OPEN.includes(j.status)) reload(); });

  last = JSON.stringify(j);
  addPoint(j.metrics);
  renderAll();
  markRendered('job');
}
