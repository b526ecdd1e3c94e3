"""Verifier.verify against the raw cryptography floor (issue 5, target 3).

For ES256, EdDSA and RS256 (and HS256 for reference) it times, per operation:
  raw     the primitive alone over the token's signing input (cryptography; ES256 includes
          the r||s -> DER conversion every JWS verifier must do)
  check   our per-key signature check alone (SigningKey.verify_signature) over the same
          input: for RS256 it recovers and compares the PKCS#1 block, cheaper than raw
  fresh   Verifier.verify_sync on a token it has never seen (signature, claims, cache fill)
  cached  Verifier.verify_sync on the same token again (the verified-token cache)
Rounds alternate between the cases; the ratio fresh/raw is taken within each round.

Run:  .venv/bin/python bench/verify.py [--rounds 7] [--tokens 3000] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from jwtauth.keys import Keyring, SigningKey, key_from_secret
from jwtauth.server.keys import generate_key
from jwtauth.server.tokens import TokenIssuer
from jwtauth.tokens import ClaimsPolicy
from jwtauth.verifier import Verifier

ISSUER, AUDIENCE = "https://bench.jwtauth", "jwtauth"


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def raw_verifier(key: SigningKey) -> Callable[[bytes, bytes], None]:
    public = key.jwk.public_key if key.alg != "HS256" else None
    if key.alg == "ES256":
        def verify(msg: bytes, sig: bytes) -> None:
            der = encode_dss_signature(int.from_bytes(sig[:32]), int.from_bytes(sig[32:]))
            public.verify(der, msg, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr]
    elif key.alg == "RS256":
        def verify(msg: bytes, sig: bytes) -> None:
            public.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    elif key.alg == "EdDSA":
        def verify(msg: bytes, sig: bytes) -> None:
            public.verify(sig, msg)  # type: ignore[union-attr]
    else:
        secret = key.jwk.get_op_key("verify")

        def verify(msg: bytes, sig: bytes) -> None:
            if not hmac.compare_digest(hmac.new(secret, msg, hashlib.sha256).digest(), sig):
                raise ValueError("bad mac")
    return verify


def per_op(fn: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def measure(alg: str, rounds: int, count: int) -> dict[str, Any]:
    key = generate_key(alg) if alg != "HS256" else key_from_secret(b"k" * 16 + b"0123456789abcdef")  # type: ignore[arg-type]
    keyring = Keyring([key])
    issuer = TokenIssuer(keyring, ClaimsPolicy(ISSUER, AUDIENCE), 900, time.time)
    raw = raw_verifier(key)
    rows: dict[str, list[float]] = {
        "raw": [], "check": [], "fresh": [], "cached": [], "ratio": [], "over_check": []
    }
    for _ in range(rounds):
        tokens = [
            issuer.issue(sub=f"user-{i}", sid=f"s-{i}", roles=["user"], username="bench")
            for i in range(count)
        ]
        parts = [(t.rsplit(".", 1)[0].encode(), _b64d(t.rsplit(".", 1)[1])) for t in tokens]
        verifier = Verifier(keyring, issuer=ISSUER, audience=AUDIENCE, cache_size=count * 2)
        it = iter(parts)
        raw_us = per_op(lambda: raw(*next(it)), count)
        it = iter(parts)
        check_us = per_op(lambda: key.verify_signature(*next(it)), count)
        tok = iter(tokens)
        fresh_us = per_op(lambda: verifier.verify_sync(next(tok)), count)
        same = tokens[0]
        cached_us = per_op(lambda: verifier.verify_sync(same), count * 10)
        rows["raw"].append(raw_us)
        rows["check"].append(check_us)
        rows["over_check"].append(fresh_us / check_us)
        rows["fresh"].append(fresh_us)
        rows["cached"].append(cached_us)
        rows["ratio"].append(fresh_us / raw_us)
    return {
        k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in rows.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--algs", default="ES256,EdDSA,RS256,HS256")
    parser.add_argument("--json")
    args = parser.parse_args()
    results = {alg: measure(alg, args.rounds, args.tokens) for alg in args.algs.split(",")}
    print(f"# Verifier.verify vs raw cryptography ({platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); median (min-max) of "
          f"{args.rounds} rounds, µs/op")
    print("| alg | raw | check | fresh | fresh/raw | fresh/check | cached |")
    print("|---|---|---|---|---|---|---|")
    for alg, r in results.items():
        def cell(name: str, nd: int = 1) -> str:
            v = r[name]
            return f"{v['median']:.{nd}f} ({v['min']:.{nd}f}-{v['max']:.{nd}f})"
        print(f"| {alg} | {cell('raw')} | {cell('check')} | {cell('fresh')} | {cell('ratio', 2)} "
              f"| {cell('over_check', 2)} | {cell('cached', 2)} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
