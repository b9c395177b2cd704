// Ledger: the chain head (GET /ledger/digest), a "verify" that recomputes every hash and link from
// genesis and proves the chain still holds the head shown (GET /ledger/verify?digest=...), and the
// blocks, newest page first (GET /ledger?from=&limit=).
import { get } from '../api.js';
import { errorBanner, fillBody, fmtAccuracy, fmtInt, fmtNumber, h, kv, markRendered, pageHead, replace, table, time } from '../ui.js';

const PAGE = 25;

export const blockColumns = [
  { label: 'Height', num: true, cell: (b) => fmtInt(b.height) },
  { label: 'Hash', cell: (b) => h('span', { title: b.hash, text: b.hash }), className: 'hash' },
  { label: 'Previous', cell: (b) => h('span', { title: b.prev_hash, text: b.prev_hash }), className: 'hash', narrowHide: true },
  { label: 'Job', cell: (b) => (b.job_id ? `#${b.job_id}` : 'genesis') },
  { label: 'Node', cell: (b) => (b.node_name ?? (b.node_id ? `#${b.node_id}` : '—')), narrowHide: true },
  { label: 'Stake', num: true, cell: (b) => fmtInt(b.stake), narrowHide: true },
  { label: 'Reward', num: true, cell: (b) => fmtInt(b.reward), narrowHide: true },
  { label: 'Fee', num: true, cell: (b) => fmtInt(b.fee), narrowHide: true },
  { label: 'Accuracy', num: true, cell: (b) => fmtAccuracy(b.accuracy) },
  { label: 'Loss', num: true, cell: (b) => fmtNumber(b.loss), narrowHide: true },
  { label: 'Sealed', cell: (b) => time(b.created_at), className: 'nowrap', narrowHide: true },
];

/** The blocks list with newer/older paging; path /ledger or /admin/ledger; columns may add some. */
export function blockList(ctx, { path, hashBase, columns = blockColumns, page }) {
  const { query, signal } = ctx;
  const tbl = table({ caption: 'Blocks, newest first', columns, rows: [], empty: 'No blocks.' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Blocks' });
  const el = h('section', { class: 'card', 'aria-labelledby': `${page}-blocks` }, h('h2', { id: `${page}-blocks`, text: 'Blocks' }), tbl, pager);
  async function load(head) {
    const top = query.has('below') ? Math.max(-1, parseInt(query.get('below'), 10) - 1) : head;
    const from = Math.max(0, top - PAGE + 1);
    const rows = top < 0 ? [] : await get(path, { from, limit: top - from + 1 }, { signal });
    rows.reverse();
    fillBody(tbl.querySelector('tbody'), columns, rows, 'No blocks.');
    replace(pager,
      h('span', { class: 'pager-info', text: rows.length ? `Heights ${fmtInt(from)}–${fmtInt(top)} of ${fmtInt(head + 1)} blocks` : '' }),
      top < head ? h('a', { class: 'button button-secondary button-small', href: `${hashBase}${top + PAGE >= head ? '' : `?below=${top + PAGE + 1}`}`, text: '← Newer' }) : null,
      from > 0 ? h('a', { class: 'button button-secondary button-small', href: `${hashBase}?below=${from}`, text: 'Older →' }) : null);
  }
  return { el, load };
}

export default async function ledger(ctx) {
  const { main, signal } = ctx;
  const banner = h('div', { 'aria-live': 'polite' });
  const headBox = h('div');
  const verdict = h('div', { id: 'verify-verdict', 'aria-live': 'polite' });
  let digest = null;
  const verifyBtn = h('button', {
    class: 'button', type: 'button', id: 'verify-ledger',
    on: {
      async click() {
        verifyBtn.disabled = true;
        replace(verdict, h('p', { class: 'muted', text: 'Verifying every block from genesis…' }));
        const t0 = performance.now();
        try {
          const v = await get('/ledger/verify', digest ? { digest: JSON.stringify({ height: digest.height, hash: digest.hash }) } : null, { signal });
          const ms = performance.now() - t0;
          replace(verdict, v.ok
            ? h('div', { class: 'banner banner-ok', role: 'status', dataset: { ok: 'true' } },
              h('p', null, h('strong', { text: 'Verified: the chain is intact.' })),
              h('p', { class: 'detail', text: `${fmtInt(v.blocks_checked)} blocks checked up to height ${fmtInt(v.height)}${digest ? `; it still holds block ${fmtInt(digest.height)} with the hash shown above` : ''} (${(ms / 1000).toFixed(2)} s).` }))
            : h('div', { class: 'banner banner-error', role: 'alert', dataset: { ok: 'false' } },
              h('p', null, h('strong', { text: `The chain is broken at height ${fmtInt(v.first_bad_height)}.` })),
              h('p', { class: 'detail', text: v.reason || '' }),
              h('p', { class: 'detail', text: `${fmtInt(v.blocks_checked)} blocks checked; chain height ${fmtInt(v.height)}.` })));
        } catch (e) {
          if (e.name !== 'AbortError') replace(verdict, errorBanner(e, { title: 'The ledger could not be verified' }));
        } finally {
          verifyBtn.disabled = false;
        }
      },
    },
  }, 'Verify the chain');

  const blocks = blockList(ctx, { path: '/ledger', hashBase: '#/ledger', page: 'ledger' });
  main.append(
    pageHead('Ledger', 'One block per completed job, each SHA-256-linked to the one before it.'),
    banner,
    h('section', { class: 'card', 'aria-labelledby': 'ledger-head' },
      h('h2', { id: 'ledger-head', text: 'Chain head (digest)' }), headBox,
      h('p', { class: 'card-note', text: 'Keep the digest somewhere else: verifying against it later proves the chain was not rewritten.' }),
      h('div', { class: 'form-actions' }, verifyBtn), verdict),
    blocks.el);

  async function load() {
    try {
      digest = await get('/ledger/digest', null, { signal });
      replace(headBox, kv([
        ['Height', h('span', { id: 'digest-height', text: fmtInt(digest.height) })],
        ['Hash', h('code', { id: 'digest-hash', text: digest.hash })],
        ['Sealed', time(digest.time)],
        ['Waiting to be sealed', fmtInt(digest.pending)],
      ]));
      await blocks.load(Number(digest.height));
      banner.replaceChildren();
      markRendered('ledger');
    } catch (e) {
      if (e.name !== 'AbortError') replace(banner, errorBanner(e, { title: 'The ledger could not be read' }));
    }
  }
  ctx.on('network:stats', () => load());
  await load();
}
