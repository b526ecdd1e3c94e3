// Make a key pair with jose and sign one access token shaped like ours (API.md "Access
// token"), as a Node issuer would.
//
// stdin: {"alg": "ES256" | "RS256" | "EdDSA", "issuer", "audience", "sub", "roles",
//         "ttl" (seconds, default 300), "typ" (default "at+jwt"), "kid" (default random)}
// stdout: {"jwks": {"keys": [public JWK with kid, alg, use]}, "token", "header", "payload"}
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';
import { main } from './lib.mjs';

main(async ({ alg, issuer, audience, sub, roles = ['user'], ttl = 300, typ = 'at+jwt', kid }) => {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: kid ?? randomUUID(), alg, use: 'sig' };
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: issuer, sub, aud: audience, iat: now, nbf: now, exp: now + ttl,
    jti: randomUUID(), sid: randomUUID(), roles,
  };
  const header = { alg, kid: jwk.kid, typ };
  const token = await new jose.SignJWT(payload).setProtectedHeader(header).sign(privateKey);
  return { jwks: { keys: [jwk] }, token, header, payload };
});
