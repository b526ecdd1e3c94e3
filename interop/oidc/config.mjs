// What the reference provider (provider.mjs) is configured with: the two static clients,
// the scopes, the one resource server and the one account. jwtauth's interop tests
// register the same clients at jwtauth through its admin API (phase 2 of issue 14).

export const SCOPES = ['openid', 'profile', 'email', 'offline_access', 'api:read'];

// An RFC 8707 resource the confidential client may name; its one scope.
export const RESOURCE = { uri: 'https://api.jwtauth.test', scope: 'api:read' };

// A fixed test secret: this provider serves loopback only and lives for one test run.
export const CLIENTS = {
  confidential: {
    client_id: 'interop-web',
    client_secret: 'interop-web-secret-0123456789abcdef0123456789abcdef',
    client_name: 'Interop web app',
    application_type: 'web',
    redirect_uris: ['https://rp.jwtauth.test/callback'],
    post_logout_redirect_uris: ['https://rp.jwtauth.test/logged-out'],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: SCOPES.join(' '),
    resources: [RESOURCE.uri],
  },
  public: {
    client_id: 'interop-native',
    client_name: 'Interop native app',
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/callback'],
    post_logout_redirect_uris: ['http://127.0.0.1/logged-out'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    scope: 'openid profile email offline_access',
  },
};

export const ACCOUNT = {
  sub: 'alice-0001',
  username: 'alice',
  password: 'correct-horse-battery-9',
  email: 'alice@example.test',
  email_verified: true,
};
