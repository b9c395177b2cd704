// app.js — the dashboard's shell: hash routes (#/jobs/12: the gateway's own paths such as /jobs are
// its REST routes, so pages live after the #), the navigation, the account box, and each page's
// lifecycle (its timers, event subscriptions and requests end when the page is left).

import { currentSession, isAdmin, onSessionChange, refreshSession, signOut } from './api.js';
import { preloadChart } from './charts.js';
import { on as onEvent, onConnect, startLive } from './live.js';
import { errorBanner, h, replace } from './ui.js';

// pages that draw charts: their chart library is fetched at once, alongside the page's module
const CHARTED = new Set(['network', 'job', 'admin']);

const ROUTES = [
  // [pattern, module, access]  access: guest | any | user | admin
  [/^\/signin$/, 'signin', 'guest'],
  [/^\/signup$/, 'signup', 'guest'],
  [/^\/dashboard$/, 'dashboard', 'user'],
  [/^\/jobs$/, 'jobs', 'user'],
  [/^\/jobs\/new$/, 'submit', 'user'],
  [/^\/jobs\/(\d+)$/, 'job', 'user'],
  [/^\/network$/, 'network', 'any'],
  [/^\/nodes$/, 'nodes', 'any'],
  [/^\/my-nodes$/, 'mynodes', 'user'],
  [/^\/notifications$/, 'notifications', 'user'],
  [/^\/ledger$/, 'ledger', 'any'],
  [/^\/admin(?:\/(users|jobs|nodes|network|ledger))?$/, 'admin', 'user'],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const navList = document.getElementById('nav-list');
const menuButton = document.getElementById('menu-button');
const account = document.getElementById('account');

let current = null; // {cleanups: [], controller}
let firstRender = true;

/** Parses location.hash: '#/jobs?status=FAILED' -> {path: '/jobs', query: URLSearchParams}. */
function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  return { path: path || '/', query: new URLSearchParams(qs || '') };
}

export function navigate(hash, { replace: rep = false } = {}) {
  if (rep) {
    history.replaceState(null, '', hash);
    route();
  } else if (location.hash === hash) {
    route();
  } else {
    location.hash = hash;
  }
}

function renderNav(path) {
  const s = currentSession();
  const items = s
    ? [
        ['#/dashboard', 'Dashboard'], ['#/jobs', 'Jobs'], ['#/jobs/new', 'Submit a job'],
        ['#/notifications', 'Notifications'],
        ['section', 'Network'], ['#/network', 'Statistics'], ['#/nodes', 'Nodes'], ['#/my-nodes', 'My nodes'],
        ['#/ledger', 'Ledger'],
      ]
    : [['#/network', 'Network'], ['#/nodes', 'Nodes'], ['#/ledger', 'Ledger'],
        ['section', 'Account'], ['#/signin', 'Sign in'], ['#/signup', 'Sign up']];
  if (s && isAdmin()) items.push(['section', 'Admin'], ['#/admin/users', 'Admin']);
  replace(navList, items.map(([href, text]) => {
    if (href === 'section') return h('li', { class: 'nav-section', 'aria-hidden': 'true', text });
    const target = href.slice(1);
    const active = path === target || (target === '/jobs' && /^\/jobs\/\d+$/.test(path)) ||
      (target.startsWith('/admin') && path.startsWith('/admin'));
    return h('li', null, h('a', { href, 'aria-current': active ? 'page' : null, text }));
  }));
}

function renderAccount() {
  const s = currentSession();
  if (!s) {
    replace(account, h('a', { class: 'button button-small', href: '#/signin', text: 'Sign in' }));
    return;
  }
  replace(account,
    h('span', { class: 'account-email', title: s.email, text: s.email }),
    s.role === 'admin' ? h('span', { class: 'badge badge-admin', text: 'admin' }) : null,
    h('button', {
      class: 'button button-secondary button-small', type: 'button', id: 'signout',
      on: {
        click: async (e) => {
          e.currentTarget.disabled = true;
          try {
            await signOut();
            navigate('#/signin?signedout=1');
          } catch {
            // signed out here; the server did not confirm the token's revocation
            navigate('#/signin?signedout=unconfirmed');
          }
        },
      },
    }, 'Sign out'));
}

function closeMenu() {
  nav.classList.remove('open');
  menuButton.setAttribute('aria-expanded', 'false');
}

function endPage() {
  if (!current) return;
  current.controller.abort();
  for (const fn of current.cleanups) {
    try {
      fn();
    } catch {
      /* a cleanup must not stop the next page */
    }
  }
  current = null;
}

async function route() {
  const { path, query } = parseHash();
  const s = currentSession();
  if (path === '/') {
    navigate(s ? '#/dashboard' : '#/signin', { replace: true });
    return;
  }
  const match = ROUTES.map(([re, mod, access]) => ({ m: path.match(re), mod, access })).find((r) => r.m);
  endPage();
  closeMenu();
  renderNav(path);
  renderAccount();
  if (!match) {
    replace(main, h('h1', { text: 'Page not found' }),
      h('p', null, 'There is no page at ', h('code', { text: path }), '. ', h('a', { href: '#/', text: 'Go to the start' })));
    return;
  }
  if (match.access === 'user' && !s) {
    navigate(`#/signin?next=${encodeURIComponent(path + (query.toString() ? `?${query}` : ''))}`, { replace: true });
    return;
  }
  if (match.access === 'guest' && s) {
    navigate('#/dashboard', { replace: true });
    return;
  }
  const page = { cleanups: [], controller: new AbortController() };
  current = page;
  const ctx = {
    main,
    params: match.m.slice(1),
    query,
    signal: page.controller.signal,
    navigate,
    alive: () => current === page,
    cleanup: (fn) => page.cleanups.push(fn),
    every(ms, fn) {
      const t = setInterval(() => { if (current === page && !document.hidden) fn(); }, ms);
      page.cleanups.push(() => clearInterval(t));
    },
    on(event, fn) { page.cleanups.push(onEvent(event, fn)); },
    onReconnect(fn) { page.cleanups.push(onConnect((again) => again && fn())); },
  };
  if (CHARTED.has(match.mod)) preloadChart();
  try {
    const mod = await import(`./pages/${match.mod}.js`);
    if (current !== page) return;
    main.replaceChildren();
    if (!firstRender) main.focus({ preventScroll: true });
    firstRender = false;
    window.scrollTo(0, 0);
    await mod.default(ctx);
    if (!liveStarted) startLiveSoon(0);
  } catch (e) {
    if (e?.name === 'AbortError' || current !== page) return;
    replace(main, errorBanner(e, { title: 'This page could not be shown' }));
    console.error(e);
  }
}

menuButton.addEventListener('click', () => {
  const open = !nav.classList.contains('open');
  nav.classList.toggle('open', open);
  menuButton.setAttribute('aria-expanded', String(open));
  if (open) nav.querySelector('a')?.focus();
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && nav.classList.contains('open')) {
    closeMenu();
    menuButton.focus();
  }
});
window.addEventListener('hashchange', route);
onSessionChange((s, reason) => {
  if (!s && reason === 'expired') {
    navigate('#/signin?expired=1');
  } else if (reason === 'refresh') {
    renderNav(parseHash().path);
    renderAccount();
  }
});

// The socket starts once the first page has shown its data (or after 1.5 s): its bundle and
// handshake stay off the first render's path. Each page reads its data itself, and re-reads on reconnects.
let liveStarted = false;
function startLiveSoon(ms) {
  setTimeout(() => {
    if (liveStarted) return;
    liveStarted = true;
    startLive(document.getElementById('conn'));
  }, ms);
}
startLiveSoon(1500);
route();
// the role or email may have changed since the session began; a dead token ends it (401)
if (currentSession()) refreshSession().catch(() => {});
