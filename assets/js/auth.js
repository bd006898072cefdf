// Sign in and create an account; one button per OAuth provider the server lists.
import { api } from './core.js';
import { h, logo } from './dom.js';

const NAME_RULE = /^[A-Za-z0-9_.-]{3,32}$/;

function providerLabel(name) {
  const known = { github: 'GitHub', google: 'Google', gitlab: 'GitLab' };
  return known[name.toLowerCase()] || name.charAt(0).toUpperCase() + name.slice(1);
}

/**
 * Renders the sign-in screen into `root`; calls `onsignedin(user)` once signed in. `roomCode`
 * is the room a visitor was sent here from (/r/CODE) and `roomName` its name if the server
 * told it: such a visitor was most likely invited and new, so the page leads with sign-up and
 * names the room.
 */
export function renderAuth(root, { providers, roomCode, roomName, onsignedin }) {
  let mode = roomCode ? 'signup' : 'signin';
  const error = h('p', { class: 'form-error', role: 'alert', id: 'auth-error' });
  const username = h('input', {
    id: 'auth-username', name: 'username', autocomplete: 'username', required: true,
    autocapitalize: 'none', spellcheck: 'false', minlength: 3, maxlength: 32, 'aria-describedby': 'auth-error',
  });
  const password = h('input', {
    id: 'auth-password', name: 'password', type: 'password', autocomplete: 'current-password',
    required: true, minlength: 8, maxlength: 1024, 'aria-describedby': 'auth-error',
  });
  const nameHint = h('p', { class: 'field-hint', id: 'auth-name-hint', hidden: true },
    '3 to 32 letters, digits, dots, dashes or underscores.');
  const passHint = h('p', { class: 'field-hint', id: 'auth-pass-hint', hidden: true }, 'At least 8 characters.');
  const submit = h('button', { class: 'btn btn-primary btn-wide', type: 'submit' }, 'Sign in');
  const switcher = h('button', { class: 'btn-link', type: 'button' });
  const switchText = h('p', { class: 'auth-switch' });
  const heading = h('h1', { class: 'auth-title', id: 'auth-title' });

  const invited = roomName ? `“${roomName}”` : roomCode ? `room ${roomCode}` : null;
  function setMode(next) {
    mode = next;
    const signup = mode === 'signup';
    heading.textContent = invited
      ? (signup ? `Join ${invited} on Hearth` : `Sign in to join ${invited}`)
      : (signup ? 'Create your account' : 'Welcome back');
    submit.textContent = signup ? 'Create account' : 'Sign in';
    password.setAttribute('autocomplete', signup ? 'new-password' : 'current-password');
    nameHint.hidden = !signup;
    passHint.hidden = !signup;
    switchText.replaceChildren(signup ? 'Already have an account? ' : 'New here? ', switcher);
    switcher.textContent = signup ? 'Sign in' : 'Create an account';
    error.textContent = '';
  }
  switcher.addEventListener('click', () => {
    setMode(mode === 'signin' ? 'signup' : 'signin');
    username.focus();
  });

  const form = h('form', { class: 'auth-form', 'aria-labelledby': 'auth-title', novalidate: true },
    h('label', { for: 'auth-username' }, 'Username'), username, nameHint,
    h('label', { for: 'auth-password' }, 'Password'), password, passHint,
    error, submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    const name = username.value.trim();
    if (mode === 'signup' && !NAME_RULE.test(name)) {
      error.textContent = 'Usernames are 3 to 32 letters, digits, dots, dashes or underscores.';
      username.focus();
      return;
    }
    if (!name || !password.value) {
      error.textContent = 'Enter your username and password.';
      (name ? password : username).focus();
      return;
    }
    if (mode === 'signup' && [...password.value].length < 8) {
      error.textContent = 'Passwords need at least 8 characters.';
      password.focus();
      return;
    }
    submit.disabled = true;
    try {
      const path = mode === 'signup' ? '/api/auth/register' : '/api/auth/login';
      const data = await api('POST', path, { username: name, password: password.value });
      onsignedin(data.user);
    } catch (e) {
      const messages = {
        invalid_credentials: 'Wrong username or password.',
        username_taken: 'That username is taken. Try another one.',
        invalid_username: 'Usernames are 3 to 32 letters, digits, dots, dashes or underscores.',
        weak_password: 'Passwords need at least 8 characters.',
        registration_closed: 'This server does not take new accounts. Ask its owner for one.',
        rate_limited: 'Too many tries. Wait a few minutes and try again.',
        account_disabled: 'This account is disabled.',
      };
      error.textContent = messages[e.code] || (e.status ? e.message : 'Cannot reach the server. Check your connection.');
      submit.disabled = false;
    }
  });

  const oauth = providers.length
    ? h('div', { class: 'oauth' },
      h('p', { class: 'divider' }, h('span', null, 'or')),
      // The provider sends the visitor back to `next`: the room they were opening, if any.
      providers.map((name) => h('a', {
        class: 'btn btn-outline btn-wide',
        href: `/auth/${encodeURIComponent(name)}/start${roomCode ? `?next=${encodeURIComponent(`/r/${roomCode}`)}` : ''}`,
      }, `Continue with ${providerLabel(name)}`)))
    : null;

  const intro = roomCode
    ? h('p', { class: 'auth-intro' }, 'You were sent a link to ',
      roomName ? h('strong', null, roomName) : 'room ', roomName ? ` (room ${roomCode})` : h('strong', { class: 'code' }, roomCode),
      '. Create an account to join it, or sign in if you have one.')
    : h('p', { class: 'auth-intro' }, 'Chat with your people, on your own server.');

  root.replaceChildren(h('main', { class: 'auth' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'auth-brand' }, logo(), h('span', null, 'Hearth')),
      heading, intro, form, oauth, switchText)));
  setMode(mode);
  username.focus();
}

/** The name of the room an invite link points to, or null (no such room, or not answered). */
export async function loadInvite(code) {
  try {
    const data = await api('GET', `/api/invites/${encodeURIComponent(code)}`);
    return data?.room && typeof data.room.name === 'string' ? data.room.name : null;
  } catch {
    return null;
  }
}

export async function loadProviders() {
  try {
    const list = await api('GET', '/api/auth/providers');
    return Array.isArray(list) ? list.filter((p) => typeof p === 'string') : [];
  } catch {
    return [];
  }
}
