// Sign in: POST /auth/login, then GET /auth/me for the email and role.
import { signIn } from '../api.js';
import { errorBanner, field, h, markRendered } from '../ui.js';

export default async function signin({ main, query, navigate }) {
  const email = field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true }));
  const password = field('Password', h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true }));
  const status = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { class: 'button', type: 'submit', text: 'Sign in' });
  if (query.get('signedout') === '1') status.append(h('div', { class: 'banner banner-ok', role: 'status' }, h('p', { text: 'You are signed out; your session token was revoked.' })));
  if (query.get('signedout') === 'unconfirmed') status.append(h('div', { class: 'banner banner-error', role: 'alert' }, h('p', { text: 'You are signed out in this tab, but the server could not be reached to revoke the token. It expires by itself; sign in and out again to revoke it now.' })));
  if (query.get('expired')) status.append(h('div', { class: 'banner banner-info', role: 'status' }, h('p', { text: 'Your session has ended. Sign in again.' })));

  const form = h('form', {
    novalidate: true,
    on: {
      async submit(e) {
        e.preventDefault();
        status.replaceChildren();
        email.setError(null);
        password.setError(null);
        if (!email.control.value.trim()) return email.setError('Enter your email address.'), email.control.focus();
        if (!password.control.value) return password.setError('Enter your password.'), password.control.focus();
        submit.disabled = true;
        submit.textContent = 'Signing in…';
        try {
          await signIn(email.control.value.trim(), password.control.value);
          const next = query.get('next');
          navigate(next && next.startsWith('/') ? `#${next}` : '#/dashboard');
        } catch (err) {
          if (/password/i.test(err.message)) password.setError(err);
          else if (/email/i.test(err.message)) email.setError(err);
          else status.append(errorBanner(err, { title: 'Could not sign in' }));
          submit.disabled = false;
          submit.textContent = 'Sign in';
        }
      },
    },
  }, email.el, password.el, submit);

  main.append(h('section', { class: 'auth' },
    h('div', { class: 'card' },
      h('h1', { text: 'Sign in' }),
      h('p', { class: 'lead', text: 'Submit training jobs, watch them train, and run compute nodes.' }),
      status, form,
      h('p', { class: 'auth-switch' }, 'New to ModelMine? ', h('a', { href: '#/signup', text: 'Create an account' })))));
  email.control.focus();
  markRendered('signin');
}
