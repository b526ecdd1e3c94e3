// TOTP codes computed by Node's otplib (tests/test_totp.py): our server must accept them.
// Request: {"secret": base32, "epochs": [unix seconds, ...]} -> {"codes": [...]}.
// Also parses our otpauth URI and answers the secret/parameters it carries.
import { generate } from 'otplib';
import { main } from './lib.mjs';

await main(async ({ secret, epochs, uri }) => {
  const codes = [];
  for (const epoch of epochs) {
    codes.push(await generate({ secret, epoch, algorithm: 'sha1', digits: 6, period: 30 }));
  }
  let parsed = null;
  if (uri) {
    const url = new URL(uri);
    parsed = { protocol: url.protocol, host: url.host, label: decodeURIComponent(url.pathname),
               params: Object.fromEntries(url.searchParams) };
  }
  return { library: 'otplib', codes, parsed };
});
