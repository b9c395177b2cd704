// Network: GET /network (network_stats), /network/timeline?months=6 (job_timeline: jobs per month of
// submission and current status) and /network/tokens (token_distribution: tokens earned per node).
// Refreshed every 5 s, and at once when the gateway pushes network:stats (after job status changes).
import { get } from '../api.js';
import { axis, baseOptions, dataTable, destroyChart, loadChart, makeChart, themeColors } from '../charts.js';
import {
  JOB_STATUSES, errorBanner, fmtAccuracy, fmtInt, fmtMonth, h, markRendered, pageHead, replace, stats, statusWord,
  table,
} from '../ui.js';

export function networkStats(s) {
  return [stats([
    { key: 'nodes_online', label: 'Active nodes', className: 'stat-accent', value: [fmtInt(s.nodes_online), h('small', { text: ` of ${fmtInt(s.nodes_total)}` })] },
    { key: 'staked_now', label: 'Tokens staked now', className: 'stat-accent', value: [fmtInt(s.staked_now), h('small', { text: ` · ${fmtInt(s.staked_all_time)} all time` })] },
    { key: 'jobs_completed', label: 'Completed jobs', className: 'stat-COMPLETED', value: fmtInt(s.jobs_completed) },
    { key: 'average_accuracy', label: 'Average accuracy', className: 'stat-accent', value: fmtAccuracy(s.average_accuracy) },
  ], 'Network statistics', 'stats-lead'), stats([
    { key: 'jobs_pending', label: 'Pending', className: 'stat-PENDING', value: fmtInt(s.jobs_pending) },
    { key: 'jobs_running', label: 'Running', className: 'stat-RUNNING', value: fmtInt(s.jobs_running) },
    { key: 'jobs_failed', label: 'Failed', className: 'stat-FAILED', value: fmtInt(s.jobs_failed) },
    { key: 'jobs_canceled', label: 'Canceled', className: 'stat-CANCELED', value: fmtInt(s.jobs_canceled) },
    { key: 'paid_to_nodes', label: 'Paid to nodes', value: fmtInt(s.paid_to_nodes) },
    { key: 'network_fees', label: 'Network fees', value: fmtInt(s.network_fees) },
  ], 'Jobs and tokens', 'stats-minor')];
}

/** The 6-month job-status line chart and the tokens-per-node bar chart, as one reusable block. */
export function networkCharts(ctx, { page }) {
  loadChart().catch(() => {}); // fetched while the figures are read, not after
  const timelineBox = h('div', { class: 'chart-box', id: 'timeline-chart' });
  const tokensBox = h('div', { class: 'chart-box', id: 'tokens-chart' });
  const tokensEmpty = h('p', { class: 'chart-empty', text: 'No node has earned tokens yet.' });
  const tokensWrap = h('div', { class: 'chart-box' }, tokensBox, tokensEmpty);
  const timelineTable = dataTable('The job timeline as a table');
  const tokensTable = dataTable('Tokens per node as a table');
  let timeline = null;
  let tokens = null;
  ctx.cleanup(() => { destroyChart(timeline); destroyChart(tokens); });

  const el = h('div', { class: 'grid' },
    h('section', { class: 'card', 'aria-labelledby': `${page}-timeline` },
      h('h2', { id: `${page}-timeline`, text: 'Jobs by status, last 6 months' }), timelineBox,
      h('p', { class: 'card-note', text: 'Jobs per month of submission, by their status now.' }), timelineTable.el),
    h('section', { class: 'card', 'aria-labelledby': `${page}-tokens` },
      h('h2', { id: `${page}-tokens`, text: 'Tokens earned per node' }), tokensWrap,
      h('p', { class: 'card-note', text: 'The 20 nodes that earned the most, rewards withdrawn or not.' }), tokensTable.el));

  function rethemeTimeline(c, colors) {
    c.data.datasets.forEach((d, i) => { d.borderColor = d.backgroundColor = colors[JOB_STATUSES[i]]; });
    retheme(c, colors);
  }
  function rethemeTokens(c, colors) {
    c.data.datasets[0].backgroundColor = colors.bar;
    retheme(c, colors);
  }
  function retheme(c, colors) {
    c.options.plugins.legend.labels.color = colors.text;
    for (const s of Object.values(c.options.scales)) {
      s.ticks.color = colors.muted;
      s.grid.color = colors.grid;
      s.border.color = colors.grid;
    }
  }

  async function update(tl, tk) {
    const months = [...new Set(tl.map((r) => r.month))];
    const series = JOB_STATUSES.map((st) => months.map((m) => Number(tl.find((r) => r.month === m && r.status === st)?.jobs || 0)));
    const labels = months.map(fmtMonth);
    replace(timelineTable.body, table({
      caption: 'Jobs per month of submission and status',
      columns: [{ label: 'Month', cell: (i) => labels[i] },
        ...JOB_STATUSES.map((st, k) => ({ label: statusWord(st), num: true, cell: (i) => fmtInt(series[k][i]) }))],
      rows: months.map((_, i) => i),
    }));
    const names = tk.map((n) => n.name);
    tokensEmpty.hidden = tk.some((n) => Number(n.tokens_earned) > 0);
    replace(tokensTable.body, table({
      caption: 'Tokens earned per node',
      columns: [{ label: 'Node', cell: (n) => n.name }, { label: 'Tokens earned', num: true, cell: (n) => fmtInt(n.tokens_earned) }],
      rows: tk, empty: 'No nodes yet.',
    }));
    const colors = themeColors();
    if (timeline) {
      timeline.data.labels = labels;
      timeline.data.datasets.forEach((d, i) => { d.data = series[i]; });
      timeline.update('none');
    } else {
      const c = await makeChart(timelineBox, 'Line chart: jobs per month by status over the last 6 months', {
        type: 'line',
        data: {
          labels,
          datasets: JOB_STATUSES.map((st, i) => ({
            label: statusWord(st), data: series[i], borderColor: colors[st], backgroundColor: colors[st],
            borderWidth: 2, pointRadius: 3, pointHoverRadius: 5, cubicInterpolationMode: 'monotone',
          })),
        },
        options: baseOptions(colors, {
          scales: {
            x: axis(colors),
            y: axis(colors, { beginAtZero: true, ticks: { color: colors.muted, precision: 0 } }),
          },
        }),
      }, rethemeTimeline);
      if (!ctx.alive()) return destroyChart(c);
      timeline = c;
    }
    if (tokens) {
      tokens.data.labels = names;
      tokens.data.datasets[0].data = tk.map((n) => Number(n.tokens_earned));
      tokens.update('none');
    } else {
      const c = await makeChart(tokensBox, 'Bar chart: tokens earned per node', {
        type: 'bar',
        data: {
          labels: names,
          datasets: [{ label: 'Tokens earned', data: tk.map((n) => Number(n.tokens_earned)), backgroundColor: colors.bar, borderRadius: 4, maxBarThickness: 48 }],
        },
        options: baseOptions(colors, {
          plugins: { legend: { display: false, labels: { color: colors.text } } },
          scales: {
            x: axis(colors, { ticks: { color: colors.muted, autoSkip: false, maxRotation: 60, callback(v) { const s = this.getLabelForValue(v); return s.length > 14 ? `${s.slice(0, 13)}…` : s; } } }),
            y: axis(colors, { beginAtZero: true, ticks: { color: colors.muted, precision: 0 } }),
          },
        }),
      }, rethemeTokens);
      if (!ctx.alive()) return destroyChart(c);
      tokens = c;
    }
    return true;
  }

  let last = '';
  async function load() {
    const [tl, tk] = await Promise.all([
      get('/network/timeline', { months: 6 }, { signal: ctx.signal }),
      get('/network/tokens', { limit: 20 }, { signal: ctx.signal }),
    ]);
    const text = JSON.stringify([tl, tk]);
    if (text === last) return;
    last = text;
    await update(tl, tk);
  }
  return { el, load };
}

export default async function network(ctx) {
  const { main, signal } = ctx;
  const banner = h('div', { 'aria-live': 'polite' });
  const statsBox = h('div', { id: 'network-stats' });
  const charts = networkCharts(ctx, { page: 'net' });
  main.append(pageHead('Network', 'The whole ModelMine network, refreshed every 5 seconds.'), banner, statsBox, charts.el);

  let lastStats = '';
  function showStats(s) {
    const text = JSON.stringify(s);
    if (text === lastStats) return;
    lastStats = text;
    replace(statsBox, networkStats(s));
  }
  async function load() {
    try {
      const [s] = await Promise.all([get('/network', null, { signal }), charts.load()]);
      showStats(s);
      banner.replaceChildren();
      markRendered('network');
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(banner, errorBanner(e, { title: 'The network statistics could not be refreshed' }));
    }
  }
  let pending = null;
  ctx.cleanup(() => clearTimeout(pending));
  ctx.on('network:stats', (s) => {
    showStats(s); // the figures at once; the charts with the next read
    clearTimeout(pending);
    pending = setTimeout(load, 250);
  });
  ctx.on('node:registered', () => { clearTimeout(pending); pending = setTimeout(load, 250); });
  ctx.onReconnect(load);
  ctx.every(5000, load);
  await load();
}
