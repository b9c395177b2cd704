// api.js — the gateway's HTTP routes (api/src/routes.c) and the signed-in session.
//
// The session (token, user id, email, role) lives in sessionStorage: it survives a reload of the
// tab but ends with the browser session, and sign-out revokes the token on the server
// (POST /auth/logout) before forgetting it here. Nothing is written to localStorage.

const KEY = 'modelmine.session';

/** An error answer of the gateway: {code, message, details, hint} (PostgREST's shape) plus the status. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || null;
    this.details = body?.details || null;
    this.hint = body?.hint || null;
  }
}

let session = load();
const listeners = new Set();

function load() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    return s && typeof s.token === 'string' ? s : null;
  } catch {
    return null;
  }
}

/** The current session {token, user_id, email, role} or null. */
export function currentSession() {
  return session;
}

export function isAdmin() {
  return session?.role === 'admin';
}

/** Calls fn(session) whenever the session changes (sign-in, sign-out, expiry). */
export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function setSession(s, reason) {
  session = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  for (const fn of listeners) fn(s, reason);
}

/**
 * One request. path may carry a query object in opts.query (undefined/null/'' values left out).
 * Returns the parsed JSON body, or null for 204. Throws ApiError for an error answer and a
 * TypeError-derived ApiError (status 0) when the gateway cannot be reached.
 */
export async function request(method, path, { body, query, signal, raw, token } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {}))
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  const headers = { Accept: 'application/json' };
  const bearer = token ?? session?.token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(url, {
      method, headers, signal, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, {
      message: 'The ModelMine gateway cannot be reached.',
      hint: 'Check your connection; the page retries by itself.',
    });
  }
  if (raw && res.ok) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    // a token that stopped working (expired, revoked elsewhere): the session is over
    if (res.status === 401 && session?.token && bearer === session.token) setSession(null, 'expired');
    throw err;
  }
  return data;
}

export const get = (path, query, opts) => request('GET', path, { ...opts, query });
export const post = (path, body, opts) => request('POST', path, { ...opts, body: body ?? {} });

/** Signs in: a token from POST /auth/login, then who it belongs to from GET /auth/me. */
export async function signIn(email, password) {
  const { token } = await post('/auth/login', { email, password });
  session = { token };
  try {
    const me = await get('/auth/me');
    setSession({ token, user_id: me.user_id, email: me.email, role: me.role }, 'signin');
  } catch (e) {
    session = null;
    throw e;
  }
  return session;
}

export async function signUp(email, password) {
  await post('/auth/signup', { email, password });
  return signIn(email, password);
}

/**
 * Ends the session: forgets the token here first (so nothing else goes out with it), then revokes it
 * on the server (POST /auth/logout), which makes it useless everywhere. Throws when revoking failed.
 */
export async function signOut() {
  const had = session;
  setSession(null, 'signout');
  if (had?.token) await request('POST', '/auth/logout', { body: {}, token: had.token });
}

/** Re-reads the role and email (they can change); signs out when the token no longer works. */
export async function refreshSession() {
  if (!session?.token) return null;
  const me = await get('/auth/me');
  if (session && (me.role !== session.role || me.email !== session.email))
    setSession({ ...session, user_id: me.user_id, email: me.email, role: me.role }, 'refresh');
  return session;
}
