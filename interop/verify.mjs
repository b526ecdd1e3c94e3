// Verify one access token the way a Node service would.
//
// stdin: {"library": "jose" | "jsonwebtoken", "token", "issuer", "audience", "alg",
//         and one of "jwks_url" (jose only: createRemoteJWKSet), "jwks" (a JWKS object),
//         "secret" (HS256: the shared secret, as a string)}
// stdout: {"library", "ok": true, "header", "payload"} or {"library", "ok": false, "error",
//          "code", "message"}
import { createPublicKey } from 'node:crypto';
import * as jose from 'jose';
import jwt from 'jsonwebtoken';
import { main, refusal } from './lib.mjs';

async function withJose({ token, issuer, audience, alg, jwks_url, jwks, secret }) {
  let key;
  if (secret !== undefined) key = new TextEncoder().encode(secret);
  else if (jwks_url !== undefined) key = jose.createRemoteJWKSet(new URL(jwks_url));
  else key = jose.createLocalJWKSet(jwks);
  const { payload, protectedHeader } = await jose.jwtVerify(token, key, {
    algorithms: [alg], issuer, audience, typ: 'at+jwt',
  });
  return { header: protectedHeader, payload };
}

function withJsonwebtoken({ token, issuer, audience, alg, jwks_url, jwks, secret }) {
  if (jwks_url !== undefined) throw new Error('jsonwebtoken fetches no JWKS: pass "jwks"');
  let key = secret;
  if (secret === undefined) {
    // What jwks-rsa does for jsonwebtoken users: pick the JWK named by the token's kid.
    const { kid } = jose.decodeProtectedHeader(token);
    const jwk = jwks.keys.find((candidate) => candidate.kid === kid);
    if (jwk === undefined) throw new jwt.JsonWebTokenError(`no key with kid ${kid}`);
    key = createPublicKey({ key: jwk, format: 'jwk' });
  }
  const { header, payload } = jwt.verify(token, key, {
    algorithms: [alg], issuer, audience, complete: true,
  });
  // jsonwebtoken has no typ option; a careful service checks it itself (RFC 9068).
  if (header.typ !== 'at+jwt') throw new jwt.JsonWebTokenError(`typ is ${header.typ}`);
  return { header, payload };
}

const libraries = { jose: withJose, jsonwebtoken: withJsonwebtoken };

main(async (request) => {
  const verify = libraries[request.library];
  if (verify === undefined) throw new Error(`unknown library ${request.library}`);
  try {
    return { library: request.library, ok: true, ...(await verify(request)) };
  } catch (error) {
    if (error instanceof TypeError) throw error; // a bug in the request or the script
    return refusal(request.library, error);
  }
});
