// Sign up: POST /auth/signup (the signup grant is credited), then sign in.
import { signUp } from '../api.js';
import { errorBanner, field, h, markRendered } from '../ui.js';

export default async function signup({ main, navigate }) {
  const email = field('Email', h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true }));
  const password = field('Password', h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minlength: '8' }),
    { hint: 'At least 8 characters.' });
  const confirm = field('Repeat the password', h('input', { type: 'password', name: 'confirm', autocomplete: 'new-password', required: true }));
  const status = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { class: 'button', type: 'submit', text: 'Create account' });

  const form = h('form', {
    novalidate: true,
    on: {
      async submit(e) {
        e.preventDefault();
        status.replaceChildren();
        for (const f of [email, password, confirm]) f.setError(null);
        if (!email.control.value.trim()) return email.setError('Enter your email address.'), email.control.focus();
        if (password.control.value !== confirm.control.value)
          return confirm.setError('The two passwords differ.'), confirm.control.focus();
        submit.disabled = true;
        submit.textContent = 'Creating your account…';
        try {
          await signUp(email.control.value.trim(), password.control.value);
          navigate('#/dashboard');
        } catch (err) {
          // the server names what it refused: the email or the password
          if (/password/i.test(err.message)) { password.setError(err); password.control.focus(); }
          else if (/email/i.test(err.message)) { email.setError(err); email.control.focus(); }
          else status.append(errorBanner(err, { title: 'Could not create the account' }));
          submit.disabled = false;
          submit.textContent = 'Create account';
        }
      },
    },
  }, email.el, password.el, confirm.el, submit);

  main.append(h('section', { class: 'auth' },
    h('div', { class: 'card' },
      h('h1', { text: 'Create your account' }),
      h('p', { class: 'lead', text: 'You start with the signup grant of tokens to stake on training jobs.' }),
      status, form,
      h('p', { class: 'auth-switch' }, 'Already have an account? ', h('a', { href: '#/signin', text: 'Sign in' })))));
  email.control.focus();
  markRendered('signup');
}
