// The jwtauth sign-in page: the safe browser pattern, small enough to copy.
//
// - The access token lives only in the `accessToken` variable of this closure: never in
//   localStorage, sessionStorage or a readable cookie, where any injected script could read it
//   long after the page is gone.
// - The refresh token lives only in the HttpOnly cookie the server sets (Path=/auth); this
//   script never sees it after login. POST /auth/refresh with credentials renews both.
// - A silent refresh runs shortly before the access token expires and after any 401, and
//   once at load, so a reload keeps the user signed in through the cookie alone.
(() => {
  'use strict';

  const LEAD_MAX_SECONDS = 60; // refresh this long before expiry...
  const LEAD_SHARE = 0.1; // ...or 10% of the lifetime when that is shorter,
  const LEAD_MIN_SECONDS = 1; // but at least 1 s: iat and exp are whole seconds
  const RETRY_MS = 5000; // after a network failure of the silent refresh
  const REQUEST_TIMEOUT_MS = 15000;
  const ENDED = 'Your session has ended; please sign in again.';

  let accessToken = null;
  let expiresAt = 0; // local Date.now() at which the access token expires
  let refreshAt = 0;
  let refreshTimer = 0;
  let countdownTimer = 0;
  let pendingRefresh = null;

  const byId = (id) => document.querySelector(`[data-testid="${id}"]`);

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `The request failed (HTTP ${status}).`);
      this.status = status;
    }
  }

  // ---- tokens -------------------------------------------------------------------------

  // For display only: the server verifies the signature, the page never trusts these claims.
  function decodeClaims(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const binary = atob(part + '='.repeat((4 - (part.length % 4)) % 4));
      const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (err) {
      return {};
    }
  }

  function setToken(token, expiresIn) {
    accessToken = token;
    const lifetime = Math.max(1, Number(expiresIn) || 0);
    // expires_in rather than exp: the browser's clock may disagree with the server's.
    expiresAt = Date.now() + lifetime * 1000;
    const lead = Math.min(
      LEAD_MAX_SECONDS,
      Math.max(LEAD_MIN_SECONDS, lifetime * LEAD_SHARE),
      lifetime / 2,
    );
    refreshAt = expiresAt - lead * 1000;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(silentRefresh, refreshAt - Date.now());
    const claims = decodeClaims(token);
    byId('claims').textContent = JSON.stringify(claims, null, 2);
    byId('who-name').textContent = claims.preferred_username || claims.sub || '';
    tick();
  }

  // Tabs of one browser share the cookie. Taking turns (Web Locks) means each tab presents
  // the newest refresh token; the server's reuse grace window covers browsers without locks.
  function withRefreshLock(task) {
    return navigator.locks ? navigator.locks.request('jwtauth-refresh', task) : task();
  }

  // Resolves true with a new access token, false when there is no live session (401/403);
  // rejects when the server cannot be reached. Concurrent callers share one request.
  function refresh() {
    if (!pendingRefresh) {
      pendingRefresh = withRefreshLock(async () => {
        const response = await fetch('/auth/refresh', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { Accept: 'application/json' },
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        if (response.status === 401 || response.status === 403) return false;
        if (!response.ok) throw new ApiError(response.status, await readJson(response));
        const body = await response.json();
        setToken(body.access_token, body.expires_in);
        return true;
      }).finally(() => {
        pendingRefresh = null;
      });
    }
    return pendingRefresh;
  }

  async function silentRefresh() {
    try {
      if (!(await refresh())) signedOut(ENDED);
    } catch (err) {
      showError('Could not renew the session; retrying in a few seconds.');
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(silentRefresh, RETRY_MS);
    }
  }

  // ---- HTTP ---------------------------------------------------------------------------

  async function readJson(response) {
    try {
      return await response.json();
    } catch (err) {
      return null;
    }
  }

  function send(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  }

  // One call to the API; a 401 with a token in hand refreshes and retries once.
  async function api(method, path, body) {
    let response = await send(method, path, body);
    if (response.status === 401 && accessToken) {
      if (!(await refresh())) {
        signedOut(ENDED);
        throw new ApiError(401, { message: ENDED });
      }
      response = await send(method, path, body);
    }
    if (!response.ok) throw new ApiError(response.status, await readJson(response));
    return response.status === 204 ? null : response.json();
  }

  // ---- views --------------------------------------------------------------------------

  function showError(message) {
    const box = byId('error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function show(view) {
    byId('loading').hidden = true;
    byId('signed-out').hidden = view !== 'out';
    byId('signed-in').hidden = view !== 'in';
    byId('who').hidden = view !== 'in';
  }

  function tick() {
    const seconds = Math.max(0, Math.ceil((expiresAt - Date.now()) / 1000));
    byId('countdown').textContent = `${seconds} s`;
  }

  function signedOut(message) {
    accessToken = null;
    clearTimeout(refreshTimer);
    clearInterval(countdownTimer);
    for (const id of ['claims', 'who-name', 'countdown']) byId(id).textContent = '';
    byId('posts').replaceChildren();
    byId('sessions').replaceChildren();
    show('out');
    showError(message);
  }

  async function signedIn() {
    show('in');
    clearInterval(countdownTimer);
    countdownTimer = setInterval(tick, 1000);
    await Promise.all([loadPosts(), loadSessions()]);
  }

  function item(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.textContent = text; // never innerHTML: titles and user agents are untrusted
    return node;
  }

  function when(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
  }

  async function loadPosts() {
    const posts = await api('GET', '/posts?limit=20');
    byId('posts').replaceChildren(
      ...posts.map((post) => {
        const li = document.createElement('li');
        li.dataset.testid = 'post';
        li.append(
          item('h3', '', post.title),
          item('p', 'meta', `by ${post.author.username}, ${when(post.created_at)}`),
          item('p', 'content', post.content),
        );
        return li;
      }),
    );
  }

  async function loadSessions() {
    const sessions = await api('GET', '/auth/sessions');
    byId('sessions').replaceChildren(
      ...sessions.map((session) => {
        const li = document.createElement('li');
        li.dataset.testid = 'session';
        if (session.current) li.classList.add('current');
        const label = session.current ? 'This browser' : session.user_agent || 'Unknown client';
        li.append(
          item('strong', '', label),
          item('span', 'meta', `since ${when(session.created_at)}, last used ${when(session.last_used_at)}`),
        );
        const end = item('button', '', session.current ? 'End (sign out)' : 'End');
        end.type = 'button';
        end.dataset.testid = 'end-session';
        end.addEventListener('click', () => run(end, () => endSession(session)));
        li.append(end);
        return li;
      }),
    );
  }

  // ---- actions ------------------------------------------------------------------------

  // Runs one user action: clears the old error, disables the control, shows the API's message.
  async function run(control, action) {
    showError('');
    control.disabled = true;
    try {
      await action();
    } catch (err) {
      showError(err instanceof ApiError ? err.message : 'The server could not be reached.');
    } finally {
      control.disabled = false;
    }
  }

  function onSubmit(id, action) {
    const form = byId(id);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const button = form.querySelector('button[type=submit]');
      run(button, () => action(Object.fromEntries(new FormData(form)), form));
    });
  }

  async function signIn(username, password) {
    // The body also carries refresh_token (for non-browser clients); the page drops it and
    // relies on the HttpOnly cookie set by the same response.
    const body = await api('POST', '/auth/login', { username, password });
    setToken(body.access_token, body.expires_in);
    await signedIn();
  }

  async function endSession(session) {
    await api('DELETE', `/auth/sessions/${encodeURIComponent(session.id)}`);
    if (session.current) signedOut();
    else await loadSessions();
  }

  function wire() {
    onSubmit('login-form', async ({ username, password }, form) => {
      await signIn(username, password);
      form.reset();
    });
    onSubmit('register-form', async ({ username, password }, form) => {
      await api('POST', '/auth/register', { username, password });
      await signIn(username, password);
      form.reset();
    });
    onSubmit('post-form', async ({ title, content }, form) => {
      await api('POST', '/posts', { title, content });
      form.reset();
      await loadPosts();
    });
    const logout = byId('logout');
    logout.addEventListener('click', () =>
      run(logout, async () => {
        await api('POST', '/auth/logout');
        signedOut();
      }),
    );
    const logoutAll = byId('logout-all');
    logoutAll.addEventListener('click', () =>
      run(logoutAll, async () => {
        await api('POST', '/auth/logout-all');
        signedOut();
      }),
    );
    // Timers of a hidden tab or a sleeping laptop run late: catch up when seen again.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && accessToken && Date.now() >= refreshAt) {
        silentRefresh();
      }
    });
  }

  async function start() {
    wire();
    try {
      if (await refresh()) await signedIn();
      else show('out');
    } catch (err) {
      show(accessToken ? 'in' : 'out');
      showError(err instanceof ApiError ? err.message : 'The server could not be reached.');
    }
  }

  start();
})();
