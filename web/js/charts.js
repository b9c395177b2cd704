// charts.js — Chart.js (npm chart.js, pinned in web/package.json; its UMD build served by the gateway
// at /vendor/chart.umd.js) loaded on the first page that draws a chart, themed from the CSS colour
// tokens and redrawn when the colour scheme changes. Each chart has a table of the same numbers
// beside it for screen readers and keyboard users (canvas is not readable).

import { h } from './ui.js';

let loading = null;
const SRC = '/vendor/chart.umd.js?v=4.6.1'; // the version pinned in web/package.json

/** Starts fetching Chart.js without running it (a page that will draw a chart calls it early). */
export function preloadChart() {
  if (window.Chart || loading || document.querySelector(`link[href="${SRC}"]`)) return;
  document.head.appendChild(Object.assign(document.createElement('link'), { rel: 'preload', as: 'script', href: SRC }));
}

/** Loads Chart.js once (a classic script: its ES build imports a bare module name). */
export function loadChart() {
  if (window.Chart) return Promise.resolve(window.Chart);
  loading ??= new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = SRC;
    s.async = true;
    s.onload = () => (window.Chart ? resolve(window.Chart) : reject(new Error('Chart.js did not load')));
    s.onerror = () => {
      loading = null;
      reject(new Error('The chart library (/vendor/chart.umd.js) could not be loaded.'));
    };
    document.head.appendChild(s);
  });
  return loading;
}

export function themeColors() {
  const cs = getComputedStyle(document.documentElement);
  const v = (name) => cs.getPropertyValue(name).trim();
  return {
    text: v('--text'), muted: v('--muted'), grid: v('--chart-grid'), surface: v('--surface'), bar: v('--chart-bar'),
    PENDING: v('--chart-pending'), RUNNING: v('--chart-running'), COMPLETED: v('--chart-completed'),
    FAILED: v('--chart-failed'), CANCELED: v('--chart-canceled'), font: v('--font'),
  };
}

const charts = new Set();
const scheme = matchMedia('(prefers-color-scheme: dark)');
scheme.addEventListener('change', () => {
  for (const c of charts) {
    c.$retheme?.();
    c.update('none');
  }
});

/** Options every chart shares: no animation (data arrives live), theme colours, readable fonts. */
export function baseOptions(colors, extra = {}) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: 'index', intersect: false },
    plugins: {
      legend: { labels: { color: colors.text, boxWidth: 12, boxHeight: 12, font: { family: colors.font } } },
      tooltip: { titleFont: { family: colors.font }, bodyFont: { family: colors.font } },
    },
    ...extra,
  };
}

export function axis(colors, extra = {}) {
  return {
    ticks: { color: colors.muted, font: { family: colors.font } },
    grid: { color: colors.grid },
    border: { color: colors.grid },
    ...extra,
  };
}

/**
 * Creates a chart on a new canvas inside box; retheme(chart, colors) re-applies colours on a scheme
 * change. Returns the chart; destroy it with destroyChart.
 */
export async function makeChart(box, label, config, retheme) {
  const Chart = await loadChart();
  const canvas = h('canvas', { role: 'img', 'aria-label': label });
  box.replaceChildren(canvas);
  const chart = new Chart(canvas, config);
  chart.$retheme = () => retheme?.(chart, themeColors());
  charts.add(chart);
  return chart;
}

export function destroyChart(chart) {
  if (!chart) return;
  charts.delete(chart);
  chart.destroy();
}

/** A <details> with a table of the chart's numbers. */
export function dataTable(summary) {
  const body = h('div');
  const el = h('details', { class: 'chart-table' }, h('summary', { text: summary }), body);
  return { el, body };
}
