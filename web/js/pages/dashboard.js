// Dashboard: GET /dashboard (dashboard(): job counts per status, balance, stakes in escrow, the latest
// jobs and token movements). Refreshed every 5 s and when one of the user's jobs moves.
import { currentSession, get } from '../api.js';
import {
  badge, errorBanner, fillBody, fmtInt, h, markRendered, miniProgress, pageHead, replace, stats,
  table, time,
} from '../ui.js';

const REASONS = {
  signup_grant: 'Signup grant', mint: 'Tokens issued', transfer: 'Transfer', stake: 'Stake',
  refund: 'Refund', reward: 'Node reward', fee: 'Network fee', withdrawal: 'Node earnings withdrawn',
  fee_distribution: 'Network fee share', withdrawal_hold: 'Withdrawal requested',
  withdrawal_release: 'Withdrawal rejected', withdrawal_payout: 'Withdrawal paid out',
};

export const jobColumns = [
  { label: 'Job', cell: (j) => h('a', { href: `#/jobs/${j.id}`, text: `#${j.id}` }), className: 'nowrap' },
  { label: 'Title', cell: (j) => j.title, className: 'title-cell' },
  { label: 'Status', cell: (j) => badge(j.status) },
  { label: 'Progress', cell: (j) => miniProgress(j.progress), narrowHide: true },
  { label: 'Stake', num: true, cell: (j) => fmtInt(j.stake) },
  { label: 'Submitted', cell: (j) => time(j.created_at), className: 'nowrap', narrowHide: true },
];

const txColumns = [
  { label: 'When', cell: (t) => time(t.created_at), className: 'nowrap' },
  {
    label: 'What',
    cell: (t) => [REASONS[t.reason] || t.reason,
      t.job_id ? [' · ', h('a', { href: `#/jobs/${t.job_id}`, text: `job #${t.job_id}` })] : null],
  },
  { label: 'With', cell: (t) => t.counterparty || '—', narrowHide: true },
  {
    label: 'Amount', num: true,
    cell: (t) => h('span', { class: t.amount >= 0 ? 'amount-in' : 'amount-out', text: `${t.amount >= 0 ? '+' : '−'}${fmtInt(Math.abs(t.amount))}` }),
  },
];

export default async function dashboard(ctx) {
  const { main, signal } = ctx;
  const s = currentSession();
  const banner = h('div', { 'aria-live': 'polite' });
  const statsBox = h('div');
  const jobsTable = table({ caption: 'Your latest jobs, newest first', columns: jobColumns, rows: [], empty: 'No jobs yet.' });
  const txTable = table({ caption: 'Your latest token movements, newest first', columns: txColumns, rows: [], empty: 'No token movements yet.' });
  main.append(
    pageHead('Dashboard', `Signed in as ${s.email}`, h('a', { class: 'button', href: '#/jobs/new', text: 'Submit a job' })),
    banner, statsBox,
    h('div', null,
      h('section', { class: 'card', 'aria-labelledby': 'dash-jobs' },
        h('h2', { id: 'dash-jobs' }, 'Job history', h('a', { href: '#/jobs', class: 'button button-secondary button-small', text: 'All jobs' })),
        jobsTable),
      h('section', { class: 'card', 'aria-labelledby': 'dash-tx' },
        h('h2', { id: 'dash-tx', text: 'Recent token movements' }),
        txTable)));

  let last = '';
  async function load() {
    try {
      const d = await get('/dashboard', null, { signal });
      banner.replaceChildren();
      const text = JSON.stringify(d);
      if (text === last) return;
      last = text;
      const j = d.jobs || {};
      const tokens = (n) => [fmtInt(n), h('span', { class: 'unit', text: Number(n) === 1 ? 'token' : 'tokens' })];
      replace(statsBox, stats([
        // the signup grant can be staked at once, transferred or withdrawn only once unlocked
        { key: 'balance', label: 'Balance', className: 'stat-accent', value: d.grant_locked > 0
          ? [...tokens(d.balance), h('span', { class: 'unit', text: ` · ${fmtInt(d.transferable)} transferable`,
            title: `${fmtInt(d.grant_locked)} tokens of your signup grant can be staked on jobs but not transferred or withdrawn until an admin verifies your account or your nodes earn them back.` })]
          : tokens(d.balance) },
        { key: 'in_escrow', label: 'Staked on open jobs', className: 'stat-accent', value: tokens(d.in_escrow ?? 0) },
        { key: 'total', label: 'Total jobs', className: 'stat-accent', value: fmtInt(j.total) },
      ], 'Your balance', 'stats-lead'), stats([
        { key: 'PENDING', label: 'Pending', className: 'stat-PENDING', value: fmtInt(j.PENDING) },
        { key: 'RUNNING', label: 'Running', className: 'stat-RUNNING', value: fmtInt(j.RUNNING) },
        { key: 'COMPLETED', label: 'Completed', className: 'stat-COMPLETED', value: fmtInt(j.COMPLETED) },
        { key: 'FAILED', label: 'Failed', className: 'stat-FAILED', value: fmtInt(j.FAILED) },
        { key: 'CANCELED', label: 'Canceled', className: 'stat-CANCELED', value: fmtInt(j.CANCELED) },
      ], 'Your jobs by status', 'stats-minor'));
      fillBody(jobsTable.querySelector('tbody'), jobColumns, d.recent_jobs || [], 'No jobs yet: submit your first one.');
      fillBody(txTable.querySelector('tbody'), txColumns, d.recent_transactions || [], 'No token movements yet.');
      markRendered('dashboard');
    } catch (e) {
      if (e.name === 'AbortError') return;
      replace(banner, errorBanner(e, { title: 'The dashboard could not be refreshed' }));
    }
  }

  let pending = null;
  const soon = () => {
    clearTimeout(pending);
    pending = setTimeout(load, 300);
  };
  ctx.cleanup(() => clearTimeout(pending));
  ctx.on('*', (_data, event) => { if (/^job:\d+:status$/.test(event)) soon(); });
  ctx.onReconnect(load);
  ctx.every(5000, load);
  await load();
}
