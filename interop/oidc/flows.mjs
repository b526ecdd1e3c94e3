// Every flow of issue 14 with a standard client (openid-client), against any issuer,
// found through discovery only:
//
//   node interop/oidc/flows.mjs < request.json > result.json
//
// request: {"issuer", "user": {"username", "password"},
//           "confidential": {"client_id", "client_secret", "redirect_uri",
//                            "post_logout_redirect_uri", "resource"?},
//           "public": {"client_id", "redirect_uri", "post_logout_redirect_uri"},
//           "steps"?: [names]}   (secrets come on stdin, never in argv)
// result: one JSON object, a member per step: what the provider answered, or
// {"failed": message} for a step that broke. The Python tests (tests/oauth/) assert on it
// and compare two providers' results member by member.
import * as client from 'openid-client';
import { decodeJwt, decodeProtectedHeader } from 'jose';

import { launch, visit } from './browser.mjs';

const input = JSON.parse(await new Promise((resolve) => {
  let data = '';
  process.stdin.on('data', (chunk) => { data += chunk; });
  process.stdin.on('end', () => resolve(data));
}));

const issuer = new URL(input.issuer);
const user = input.user;
const web = input.confidential;
const app = input.public;
// http is for loopback test servers only; both providers under test listen on 127.0.0.1.
const insecure = issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {};

const webConfig = await client.discovery(
  issuer, web.client_id, undefined, client.ClientSecretBasic(web.client_secret), insecure,
);
const webPostConfig = await client.discovery(
  issuer, web.client_id, undefined, client.ClientSecretPost(web.client_secret), insecure,
);
const appConfig = await client.discovery(issuer, app.client_id, undefined, client.None(), insecure);
const badSecretConfig = await client.discovery(
  issuer, web.client_id, undefined, client.ClientSecretBasic(`${web.client_secret}-wrong`), insecure,
);

function jwtParts(token) {
  if (typeof token !== 'string' || token.split('.').length !== 3) return { opaque: true };
  return { header: decodeProtectedHeader(token), claims: decodeJwt(token) };
}

async function failure(err) {
  // ResponseBodyError (the server's error body), WWWAuthenticateChallengeError (a 401
  // with a challenge: its body is read here), AuthorizationResponseError (an error
  // redirect), or anything else (a client-side check or a broken step).
  const out = { error: err.error ?? null, status: err.status ?? null };
  if (err.error_description !== undefined) out.error_description = err.error_description;
  const response = err.response;
  if (response?.headers) out.www_authenticate = response.headers.get('www-authenticate');
  if (!out.error && response && !response.bodyUsed) {
    const body = await response.json().catch(() => null);
    if (body?.error) {
      out.error = body.error;
      out.error_description = body.error_description;
    }
  }
  if (!out.error && Array.isArray(err.cause)) out.error = err.cause[0]?.parameters?.error ?? null;
  if (!out.error) out.message = String(err.message || err);
  return out;
}

async function outcome(fn) {
  try {
    return { ok: await fn() };
  } catch (err) {
    return failure(err);
  }
}

// An authorization request: returns what came back to the client and what it sent.
async function authorize(context, config, cfg, params = {}, options = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const redirectUri = params.redirect_uri || cfg.redirect_uri;
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  const visited = await visit(context, url, redirectUri, user, options);
  const back = visited.url ? new URL(visited.url) : null;
  return { ...visited, back, verifier, state, nonce, redirectUri };
}

function callbackSummary(auth) {
  if (!auth.back) return { arrived: false, pages: auth.pages, status: auth.status, text: auth.text };
  const params = Object.fromEntries(auth.back.searchParams);
  return {
    arrived: true,
    pages: auth.pages,
    params: Object.keys(params).sort(),
    state_matches: params.state === auth.state,
    iss: params.iss ?? null,
    error: params.error ?? null,
  };
}

// verifier: null sends none at all.
async function exchange(config, auth, { verifier = auth.verifier } = {}) {
  return client.authorizationCodeGrant(config, auth.back, {
    pkceCodeVerifier: verifier ?? undefined,
    expectedState: auth.state,
    expectedNonce: auth.nonce,
    idTokenExpected: true,
  }, { redirect_uri: auth.redirectUri });
}

function tokenSummary(tokens) {
  const out = {
    members: Object.keys(tokens).filter((k) => typeof tokens[k] !== 'function').sort(),
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    scope: tokens.scope ?? null,
    has_refresh_token: Boolean(tokens.refresh_token),
    access_token: jwtParts(tokens.access_token),
  };
  if (tokens.id_token) out.id_token = jwtParts(tokens.id_token);
  return out;
}

// The authorization server's front door, without a browser: where an authorization
// request is sent (a redirect to the client with an error, or an error page).
async function frontDoor(config, params) {
  const url = new URL(config.serverMetadata().authorization_endpoint);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  const response = await fetch(url, { redirect: 'manual' });
  const location = response.headers.get('location');
  if (location) {
    const target = new URL(location, url);
    // An error for a response type that would use the fragment comes in the fragment.
    const found = target.searchParams.has('error') ? target.searchParams
      : new URLSearchParams(target.hash.slice(1));
    return {
      status: response.status,
      redirected_to: `${target.origin}${target.pathname}`,
      error: found.get('error'),
      iss: found.get('iss'),
      state: found.get('state'),
    };
  }
  const body = await response.text();
  return {
    status: response.status,
    redirected_to: null,
    content_type: response.headers.get('content-type'),
    // The error code shown on the page (both providers show the RFC 6749 code).
    error: body.match(/\b(invalid_request|invalid_redirect_uri|redirect_uri_mismatch|invalid_client|unauthorized_client|invalid_scope|access_denied|unsupported_response_type|server_error)\b/)?.[0] ?? null,
  };
}

const steps = new Set(input.steps || [
  'discovery', 'code', 'silent', 'prompts', 'refresh', 'userinfo', 'introspection', 'revocation',
  'client_credentials', 'client_secret_post', 'public_client', 'logout', 'bad_requests',
]);
const result = {};
async function run(name, fn) {
  if (!steps.has(name)) return;
  try {
    result[name] = await fn();
  } catch (err) {
    result[name] = { failed: String(err?.stack || err) };
  }
}

const browser = await launch();
const context = await browser.newContext();
try {
  await run('discovery', async () => webConfig.serverMetadata());

  // Sign in by form, consent, code + PKCE S256, ID token checked by openid-client.
  let first;
  let tokens;
  await run('code', async () => {
    first = await authorize(context, webConfig, web);
    tokens = await exchange(webConfig, first);
    return { callback: callbackSummary(first), tokens: tokenSummary(tokens) };
  });

  await run('silent', async () => {
    const auth = await authorize(context, webConfig, web, { prompt: 'none' });
    const summary = callbackSummary(auth);
    if (auth.back && !summary.error) await exchange(webConfig, auth);
    return summary;
  });

  // prompt, max_age, login_hint, id_token_hint (OIDC Core 3.1.2.1) on a signed-in browser.
  await run('prompts', async () => {
    const out = {};
    const login = await authorize(context, webConfig, web, { prompt: 'login', login_hint: user.username });
    out.prompt_login = callbackSummary(login);
    if (login.back) out.prompt_login.auth_time = (await exchange(webConfig, login)).claims().auth_time;
    const aged = await authorize(context, webConfig, web, { max_age: '0' });
    out.max_age_0 = callbackSummary(aged);
    const consent = await authorize(context, webConfig, web, { prompt: 'consent' });
    out.prompt_consent = callbackSummary(consent);
    const hinted = await authorize(context, webConfig, web, {
      prompt: 'none', id_token_hint: tokens.id_token,
    });
    out.id_token_hint = callbackSummary(hinted);
    return out;
  });

  await run('refresh', async () => {
    const old = tokens.refresh_token;
    const renewed = await client.refreshTokenGrant(webConfig, old);
    const reused = await outcome(() => client.refreshTokenGrant(webConfig, old));
    const after = await outcome(() => client.refreshTokenGrant(webConfig, renewed.refresh_token));
    // A refresh token that came back after rotation: the family dies (RFC 9700 4.14.2).
    tokens = renewed;
    return {
      tokens: tokenSummary(renewed),
      rotated: Boolean(renewed.refresh_token) && renewed.refresh_token !== old,
      reuse_of_rotated: reused,
      successor_after_reuse: after.ok ? { ok: true } : after,
    };
  });

  // A fresh grant for the steps that need live tokens (refresh may have killed the family).
  let live;
  const fresh = async () => {
    const auth = await authorize(context, webConfig, web);
    live = await exchange(webConfig, auth);
    return live;
  };

  await run('userinfo', async () => {
    await fresh();
    const sub = live.claims().sub;
    const get = await client.fetchUserInfo(webConfig, live.access_token, sub);
    const endpoint = new URL(webConfig.serverMetadata().userinfo_endpoint);
    const post = await client.fetchProtectedResource(
      webConfig, live.access_token, endpoint, 'POST', undefined,
    );
    return { get, post: { status: post.status, body: await post.json() }, sub_matches: get.sub === sub };
  });

  await run('introspection', async () => {
    await fresh();
    const access = await client.tokenIntrospection(webConfig, live.access_token);
    const refresh = live.refresh_token
      ? await client.tokenIntrospection(webConfig, live.refresh_token, { token_type_hint: 'refresh_token' })
      : null;
    const unknown = await client.tokenIntrospection(webConfig, 'not-a-token');
    const noAuth = await outcome(() => client.tokenIntrospection(badSecretConfig, live.access_token));
    return { access, refresh, unknown, wrong_secret: noAuth };
  });

  await run('revocation', async () => {
    await fresh();
    await client.tokenRevocation(webConfig, live.access_token, { token_type_hint: 'access_token' });
    const accessAfter = await client.tokenIntrospection(webConfig, live.access_token);
    const refreshAlive = await client.tokenIntrospection(webConfig, live.refresh_token);
    await client.tokenRevocation(webConfig, live.refresh_token);
    const refreshAfter = await outcome(() => client.refreshTokenGrant(webConfig, live.refresh_token));
    const unknown = await outcome(() => client.tokenRevocation(webConfig, 'not-a-token'));
    return {
      access_active_after: accessAfter.active,
      refresh_active_after_access_revoked: refreshAlive.active,
      refresh_after: refreshAfter,
      unknown_token: unknown.ok === undefined && !unknown.error ? { ok: true } : unknown,
    };
  });

  await run('client_credentials', async () => {
    const plain = await client.clientCredentialsGrant(webConfig, { scope: 'api:read' });
    const params = { scope: 'api:read' };
    if (web.resource) params.resource = web.resource;
    const targeted = await client.clientCredentialsGrant(webConfig, params);
    const introspected = await outcome(
      () => client.tokenIntrospection(webConfig, targeted.access_token));
    const badTarget = await outcome(() => client.clientCredentialsGrant(webConfig, {
      scope: 'api:read', resource: 'https://not-registered.jwtauth.test',
    }));
    return {
      plain: tokenSummary(plain),
      targeted: tokenSummary(targeted),
      introspection: introspected,
      unregistered_resource: badTarget,
    };
  });

  await run('client_secret_post', async () => {
    const got = await client.clientCredentialsGrant(webPostConfig, { scope: 'api:read' });
    return tokenSummary(got);
  });

  // A native public client: no secret, a loopback redirect on a port of its choosing.
  await run('public_client', async () => {
    const port = 40000 + Math.floor(Math.random() * 20000);
    const redirect = new URL(app.redirect_uri);
    redirect.port = String(port);
    // offline_access asks for consent (OIDC Core 11): oidc-provider drops it otherwise.
    const auth = await authorize(context, appConfig, app, {
      redirect_uri: redirect.href, prompt: 'consent',
    });
    const got = await exchange(appConfig, auth);
    const renewed = await client.refreshTokenGrant(appConfig, got.refresh_token);
    const reused = await outcome(() => client.refreshTokenGrant(appConfig, got.refresh_token));
    const familyAfter = await outcome(() => client.refreshTokenGrant(appConfig, renewed.refresh_token));
    const credentials = await outcome(() => client.clientCredentialsGrant(appConfig, {}));
    return {
      callback: callbackSummary(auth),
      tokens: tokenSummary(got),
      reuse_of_rotated: reused,
      successor_after_reuse: familyAfter.ok ? { ok: true } : familyAfter,
      client_credentials: credentials.ok ? { ok: true } : credentials,
    };
  });

  // RP-initiated logout ends the session at the provider: a silent request then fails.
  await run('logout', async () => {
    const got = await fresh();
    const state = client.randomState();
    const url = client.buildEndSessionUrl(webConfig, {
      id_token_hint: got.id_token,
      post_logout_redirect_uri: web.post_logout_redirect_uri,
      state,
    });
    const visited = await visit(context, url, web.post_logout_redirect_uri, user);
    const back = visited.url ? new URL(visited.url) : null;
    const silent = await authorize(context, webConfig, web, { prompt: 'none' });
    return {
      arrived: Boolean(back),
      pages: visited.pages,
      state_matches: back?.searchParams.get('state') === state,
      silent_after: callbackSummary(silent),
    };
  });

  await run('bad_requests', async () => {
    // Sign in again (the logout step ended the session), so codes come without pages.
    const code = () => authorize(context, webConfig, web);
    const base = {
      client_id: web.client_id,
      response_type: 'code',
      scope: 'openid',
      state: 'st-1',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      redirect_uri: web.redirect_uri,
    };
    const out = {};
    out.wrong_redirect_uri = await frontDoor(webConfig, { ...base, redirect_uri: 'https://attacker.jwtauth.test/callback' });
    out.pkce_plain = await frontDoor(webConfig, { ...base, code_challenge_method: 'plain', code_challenge: 'x'.repeat(43) });
    out.pkce_missing = await frontDoor(webConfig, { ...base, code_challenge: undefined, code_challenge_method: undefined });
    out.unknown_scope_authorize = await frontDoor(webConfig, { ...base, scope: 'openid no-such-scope' });
    out.scope_not_allowed = await frontDoor(appConfig, {
      ...base, client_id: app.client_id, redirect_uri: app.redirect_uri, scope: 'openid api:read',
    });
    out.unknown_response_type = await frontDoor(webConfig, { ...base, response_type: 'token' });

    const reusedAuth = await code();
    const firstUse = await exchange(webConfig, reusedAuth);
    out.reused_code = await outcome(() => exchange(webConfig, reusedAuth));
    // The first use's tokens die with the replay (RFC 6749 10.5, RFC 9700 4.2.4).
    out.reused_code.first_access_active_after = (
      await client.tokenIntrospection(webConfig, firstUse.access_token)).active;

    out.missing_verifier = await outcome(async () => exchange(webConfig, await code(), { verifier: null }));
    out.wrong_verifier = await outcome(async () => exchange(webConfig, await code(), { verifier: client.randomPKCECodeVerifier() }));
    out.code_of_other_client = await outcome(async () => {
      const auth = await code();
      return client.authorizationCodeGrant(appConfig, auth.back, {
        pkceCodeVerifier: auth.verifier, expectedState: auth.state, expectedNonce: auth.nonce,
      }, { redirect_uri: auth.redirectUri });
    });
    out.wrong_client_secret = await outcome(() => client.clientCredentialsGrant(badSecretConfig, {}));
    out.unknown_grant = await outcome(() => client.genericGrantRequest(webConfig, 'urn:jwtauth:no-such-grant', {}));
    out.unknown_scope = await outcome(() => client.clientCredentialsGrant(webConfig, { scope: 'no-such-scope' }));
    // What was granted when a request was not refused (an unknown scope may be ignored).
    for (const value of Object.values(out)) {
      if (value.ok) value.ok = { scope: value.ok.scope ?? null };
    }
    return out;
  });
} finally {
  await context.close();
  await browser.close();
}

process.stdout.write(`${JSON.stringify(result)}\n`);
