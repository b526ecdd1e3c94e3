// A certified OpenID provider (Node's oidc-provider) configured like jwtauth, so the same
// client scripts can run against both and a test can compare their answers (issue 14).
//
//   node interop/oidc/provider.mjs --port N [--backchannel-uri URL]
//
// Prints one JSON line {"ready": true, "issuer", "clients": {...}} once it listens. The
// sign-in and consent pages are our own (devInteractions off): the same form names as
// jwtauth's pages (API.md): inputs `username`/`password` and one submit button, then
// buttons `name="decision"` `value="allow"` / `value="deny"`. One account, alice.
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';
import * as jose from 'jose';

import { ACCOUNT, CLIENTS, RESOURCE, SCOPES } from './config.mjs';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'backchannel-uri': { type: 'string' },
  },
});
if (!args.port) {
  process.stderr.write('usage: provider.mjs --port N [--backchannel-uri URL]\n');
  process.exit(2);
}
const issuer = `http://${args.host}:${args.port}`;

// One RS256 key, made at start: ID tokens are RS256 (OIDC Registration's default), as ours.
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(privateKey)), alg: 'RS256', use: 'sig' };
jwk.kid = await jose.calculateJwkThumbprint(jwk);

// oidc-provider puts `sid` in ID tokens only for a client with a back-channel logout URI
// (jwtauth always does): without a real one, a closed loopback port stands in.
const clients = [
  {
    ...CLIENTS.confidential,
    backchannel_logout_uri: args['backchannel-uri'] || 'http://127.0.0.1:9/backchannel',
    backchannel_logout_session_required: true,
  },
  CLIENTS.public,
];

function html(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head>`
    + `<body><h1>${title}</h1>${body}</body></html>`;
}

function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const configuration = {
  clients,
  scopes: SCOPES,
  claims: {
    // Always in the ID token, as jwtauth's (oidc-provider adds them on request otherwise).
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    profile: ['preferred_username'],
    email: ['email', 'email_verified'],
    sid: null,
  },
  // jwtauth puts the scope's profile claims in the ID token too (API.md).
  conformIdTokenClaims: false,
  acrValues: ['aal1', 'aal2'],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator, client) => {
        if (indicator !== RESOURCE.uri || !(client.resources || []).includes(indicator)) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: RESOURCE.scope,
          audience: RESOURCE.uri,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 900,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  extraClientMetadata: { properties: ['resources'] },
  // Like jwtauth: a refresh token with offline_access, or for a confidential client; a
  // new one on every use.
  issueRefreshToken: (ctx, client, code) => client.grantTypeAllowed('refresh_token')
    && (code.scopes.has('offline_access') || client.clientAuthMethod !== 'none'),
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: 900,
    AuthorizationCode: 60,
    ClientCredentials: 900,
    IdToken: 900,
    RefreshToken: 7 * 86400,
    Interaction: 600,
    Session: 86400,
    Grant: 7 * 86400,
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    if (sub !== ACCOUNT.sub) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: ACCOUNT.username,
          email: ACCOUNT.email,
          email_verified: ACCOUNT.email_verified,
        };
      },
    };
  },
  // oidc-provider refuses to send to special-use addresses (an SSRF guard, like jwtauth's);
  // the test's back-channel endpoint is on loopback, as JWTAUTH_OAUTH_ALLOW_LOOPBACK allows.
  ...(args['backchannel-uri'] ? {
    fetch: (url, options) => {
      const { dispatcher, ...rest } = options;
      return fetch(url, rest);
    },
  } : {}),
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = html('Error', `<p id="error">${escape(out.error)}</p>`
      + `<p>${escape(out.error_description || '')}</p>`);
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => process.stderr.write(`server_error: ${err.stack}\n`));
provider.on('backchannel.error', (ctx, err, client) => process.stderr.write(
  `backchannel.error: ${client.clientId}: ${err.message} ${err.cause ?? ''}\n`));
provider.on('backchannel.success', (ctx, client) => process.stderr.write(
  `backchannel.success: ${client.clientId}\n`));

const pageHeaders = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'Content-Security-Policy': "frame-ancestors 'none'",
};

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

function signInPage(uid, hint, failed) {
  return html('Sign in', `${failed ? '<p id="error">Wrong username or password.</p>' : ''}
    <form method="post" action="/interaction/${uid}">
      <input type="hidden" name="step" value="login">
      <label>Username <input name="username" autocomplete="username" value="${escape(hint || '')}"></label>
      <label>Password <input name="password" type="password" autocomplete="current-password"></label>
      <button type="submit">Sign in</button>
    </form>`);
}

function consentPage(uid, clientName, scopes) {
  const items = scopes.map((s) => `<li>${escape(s)}</li>`).join('');
  return html('Allow access?', `<p><strong>${escape(clientName)}</strong> asks for:</p>
    <ul>${items}</ul>
    <form method="post" action="/interaction/${uid}">
      <input type="hidden" name="step" value="consent">
      <button type="submit" name="decision" value="allow">Allow</button>
      <button type="submit" name="decision" value="deny">Deny</button>
    </form>`);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (req.method === 'GET') {
    let body;
    if (prompt.name === 'login') {
      body = signInPage(uid, params.login_hint, false);
    } else {
      const client = await provider.Client.find(params.client_id);
      const scopes = prompt.details.missingOIDCScope || String(params.scope || '').split(' ');
      body = consentPage(uid, client?.clientName || params.client_id, scopes);
    }
    res.writeHead(200, pageHeaders).end(body);
    return;
  }
  const form = await readForm(req);
  if (prompt.name === 'login') {
    if (form.get('username') !== ACCOUNT.username || form.get('password') !== ACCOUNT.password) {
      res.writeHead(200, pageHeaders).end(signInPage(uid, form.get('username'), true));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: ACCOUNT.sub, amr: ['pwd'], acr: 'aal1' },
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (form.get('decision') !== 'allow') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'the user denied the request',
    }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scope] of Object.entries(prompt.details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scope.join(' '));
  }
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, {
    mergeWithLastSubmission: true,
  });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      process.stderr.write(`interaction: ${err.stack}\n`);
      if (!res.headersSent) res.writeHead(400, pageHeaders);
      res.end(html('Error', `<p id="error">${escape(err.name)}</p>`));
    });
    return;
  }
  callback(req, res);
});
server.listen(Number(args.port), args.host, () => {
  process.stdout.write(`${JSON.stringify({ ready: true, issuer, clients: CLIENTS })}\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
