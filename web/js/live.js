// live.js — the one Socket.IO connection (socket.io-client's browser bundle, served by the gateway at
// /socket.io/socket.io.min.js, loaded here without holding up the first render) and the connection
// indicator in the top bar.
//
// Events (api/src/listen.c): job:{id}:progress and job:{id}:status reach the job's owner and admins;
// node:registered, node:heartbeat and network:stats reach everyone. The token goes in the CONNECT
// packet (io(url, {auth: {token}})), so the socket is re-made whenever the session changes. There is
// no replay of events missed while disconnected: pages re-read their data on every (re)connect.

import { currentSession, onSessionChange, refreshSession } from './api.js';

const handlers = new Map(); // event -> Set(fn)
const connectHooks = new Set();
let socket = null;
let indicator = null;
let state = 'connecting';
let everConnected = false;

const WORDS = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

function setState(s, why) {
  state = s;
  if (!indicator) return;
  indicator.dataset.state = s;
  indicator.querySelector('.conn-text').textContent = WORDS[s];
  indicator.title = why ? `${WORDS[s]} ${why}` : `Live updates: ${WORDS[s].toLowerCase()}`;
}

export const connectionState = () => state;

let received = 0;

function dispatch(event, data) {
  // how many events arrived, and the last one's name: shown in the indicator's data for diagnosis
  received += 1;
  if (indicator) {
    indicator.dataset.events = String(received);
    indicator.dataset.lastEvent = event;
    if (event.startsWith('job:')) indicator.dataset.lastJobEvent = event;
  }
  const set = handlers.get(event);
  if (set) for (const fn of [...set]) fn(data, event);
  const any = handlers.get('*');
  if (any) for (const fn of [...any]) fn(data, event);
}

function connect() {
  if (typeof window.io !== 'function') {
    setState('offline', '(the Socket.IO client did not load)');
    return;
  }
  const token = currentSession()?.token || '';
  socket = window.io(location.origin, {
    auth: { token },
    // polling first, then upgrade: what socket.io-client does by default, and works behind any proxy
    reconnectionDelayMax: 5000,
    forceNew: true, // a new identity gets a new connection, never a cached one
  });
  socket.on('connect', () => {
    const again = everConnected;
    everConnected = true;
    setState('live');
    for (const fn of [...connectHooks]) fn(again);
  });
  socket.on('disconnect', (reason) => {
    setState(socket?.active ? 'reconnecting' : 'offline', `(${reason})`);
  });
  socket.on('connect_error', (err) => {
    const msg = String(err?.message || '');
    if (socket?.active) {
      setState(everConnected ? 'reconnecting' : 'connecting', `(${msg})`);
      return;
    }
    // a refusal at CONNECT: the client does not retry by itself
    setState('reconnecting', `(${msg})`);
    if (msg === 'invalid token') {
      // the session ended elsewhere: confirm over HTTP (a 401 signs out and re-makes the socket)
      refreshSession().catch(() => {}).finally(() => {
        if (socket && !socket.connected) setTimeout(() => socket?.connect(), 1000);
      });
    } else {
      setTimeout(() => socket?.connect(), 2000);
    }
  });
  socket.onAny((event, data) => dispatch(event, data));
}

// the version pinned in web/package.json: the gateway lets browsers keep the bundle a week
const BUNDLE = '/socket.io/socket.io.min.js?v=4.8.1';

/** Starts the socket (once its bundle has loaded) and binds the indicator element. */
export function startLive(indicatorEl) {
  indicator = indicatorEl;
  setState('connecting');
  const s = document.createElement('script');
  s.src = BUNDLE;
  s.async = true;
  s.onload = () => connect();
  s.onerror = () => setState('offline', '(the Socket.IO client could not be loaded)');
  document.head.appendChild(s);
  onSessionChange(() => {
    if (!socket) return; // not connected yet: connect() will use the session of its time
    // a new identity: a new CONNECT with the new token (or anonymous)
    socket.removeAllListeners();
    socket.offAny();
    socket.disconnect();
    everConnected = false;
    setState('connecting');
    connect();
  });
  window.addEventListener('online', () => socket && !socket.connected && socket.connect());
}

/** Subscribes to an event ('*' for all); returns the unsubscribe function. */
export function on(event, fn) {
  if (!handlers.has(event)) handlers.set(event, new Set());
  handlers.get(event).add(fn);
  return () => handlers.get(event)?.delete(fn);
}

/** Calls fn(reconnected) on every connect (reconnected: true after the first); returns the unsubscribe. */
export function onConnect(fn) {
  connectHooks.add(fn);
  return () => connectHooks.delete(fn);
}

export const isLive = () => Boolean(socket?.connected);
