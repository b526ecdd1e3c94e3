"""In-process micro benchmark of JWS sign/verify for jwtauth's access-token shape.

Compares the bare pyca/cryptography primitive ("raw") with PyJWT, joserfc
(``jwt.decode`` + ``JWTClaimsRegistry`` and the lower-level ``jws`` API) and
authlib.jose, for ES256 (P-256), EdDSA (Ed25519), RS256 (RSA-2048), HS256.

Run from the repository root:

    .venv/bin/python bench/jose_libs.py [--rounds 5] [--time 0.3]
        [--algs ES256,EdDSA,RS256,HS256] [--libs raw,pyjwt,joserfc,joserfc-jws,authlib]
        [--json results.json]

Each case is timed with ``time.perf_counter_ns`` in calibrated batches for
``--time`` seconds per round; rounds are interleaved across cases, and the
tables report the median over rounds (min-max in brackets).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import jwt as pyjwt
from authlib.deprecate import AuthlibDeprecationWarning
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc import jws as jrfc_jws
from joserfc import jwt as jrfc_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

warnings.simplefilter("ignore", AuthlibDeprecationWarning)  # "authlib.jose module is deprecated"
from authlib import jose as authlib_jose  # noqa: E402

warnings.filterwarnings(
    "ignore", message="EdDSA is deprecated"
)  # joserfc warns on every EdDSA call

ALGS = ("ES256", "EdDSA", "RS256", "HS256")
LIBS = ("raw", "pyjwt", "joserfc", "joserfc-jws", "authlib")
ISS, AUD = "https://auth.example.test", "jwtauth-api"
CHECKS = {
    "raw": "signature only (ES256: r||s->DER in verify, DER->r||s in sign); no parsing",
    "pyjwt": "alg allow-list, sig, exp, nbf, iat, iss, aud; require=[exp,nbf,iat,iss,aud]",
    "joserfc": "jwt.decode(algorithms=[alg]) + JWTClaimsRegistry: "
    "exp, nbf, iat, iss, aud essential+value",
    "joserfc-jws": "jws.deserialize_compact(algorithms=[alg]) + json.loads; NO claims checks",
    "authlib": "JsonWebToken([alg]).decode + JWTClaims.validate: "
    "exp, nbf, iat, iss, aud essential+value",
}
SIGN_NOTES = {
    "joserfc-jws": "jws.serialize_compact(header, json.dumps(claims))",
    "authlib": "JsonWebToken.encode (default check=True: sensitive-data regex scan)",
}
Fn = Callable[[], Any]


def b64u(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64u_dec(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat (Linux): other load during the run."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    return sum(f) - f[3] - f[4], sum(f)


def make_claims(now: int, **over: Any) -> dict[str, Any]:
    return {
        "iss": ISS,
        "sub": "user-7f3c2a",
        "aud": AUD,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": "b7e4d2c1-3f5a-4e8b-9c6d-0a1b2c3d4e5f",
        "sid": "s-9a8b7c6d",
        "roles": ["user"],
        "preferred_username": "alice",
        **over,
    }


def raw_ops(alg: str) -> tuple[Any, Any, Callable[[bytes], bytes], Callable[[bytes, bytes], None]]:
    """Return (private key, public key, sign(si) -> JWS signature, verify(sig, si)) on pyca only."""
    sha = hashes.SHA256()
    if alg == "ES256":
        priv: Any = ec.generate_private_key(ec.SECP256R1())
        pub: Any = priv.public_key()
        ecdsa = ec.ECDSA(sha)

        def sign(si: bytes) -> bytes:
            r, s = decode_dss_signature(priv.sign(si, ecdsa))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        def verify(sig: bytes, si: bytes) -> None:
            pub.verify(
                encode_dss_signature(
                    int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
                ),
                si,
                ecdsa,
            )

        return priv, pub, sign, verify
    if alg == "EdDSA":
        priv = ed25519.Ed25519PrivateKey.generate()
        return priv, priv.public_key(), priv.sign, priv.public_key().verify
    if alg == "RS256":
        priv, pkcs = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            padding.PKCS1v15(),
        )
        pub = priv.public_key()
        return (
            priv,
            pub,
            lambda si: priv.sign(si, pkcs, sha),
            lambda sig, si: pub.verify(sig, si, pkcs, sha),
        )
    secret = os.urandom(32)  # HS256

    def mac(si: bytes) -> hmac.HMAC:
        (h := hmac.HMAC(secret, sha)).update(si)
        return h

    return secret, secret, lambda si: mac(si).finalize(), lambda sig, si: mac(si).verify(sig)


def build_cases(alg: str, libs: list[str]) -> dict[tuple[str, str], Fn]:
    """Return {(op, lib): zero-arg callable}, after checking every path is correct."""
    priv, pub, raw_sign, raw_verify = raw_ops(alg)
    header = {"alg": alg, "kid": "k1", "typ": "at+jwt"}
    now = int(time.time())
    claims = make_claims(now)

    def raw_token(c: dict[str, Any], h: dict[str, Any] = header) -> str:
        si = b".".join(b64u(json.dumps(x, separators=(",", ":")).encode()) for x in (h, c))
        return (si + b"." + b64u(raw_sign(si))).decode()

    token = raw_token(claims)  # the one token every library verifies
    si_b, _, sig_b64 = token.encode().rpartition(b".")
    sig = b64u_dec(sig_b64)
    jcls: Any = {"ES256": ECKey, "EdDSA": OKPKey, "RS256": RSAKey, "HS256": OctKey}[alg]
    acls: Any = getattr(authlib_jose, jcls.__name__)  # same class names in authlib.jose
    jkey, jpub, akey, apub = (
        jcls.import_key(priv),
        jcls.import_key(pub),
        acls.import_key(priv),
        acls.import_key(pub),
    )
    ajwt = authlib_jose.JsonWebToken([alg])
    essential = {"essential": True}
    aopts: Any = {
        "iss": {**essential, "value": ISS},
        "aud": {**essential, "value": AUD},
        "exp": essential,
        "nbf": essential,
        "iat": essential,
    }
    registry = jrfc_jwt.JWTClaimsRegistry(**aopts)
    require = {"require": ["exp", "nbf", "iat", "iss", "aud"]}

    def v_pyjwt(t: str) -> Any:
        return pyjwt.decode(t, pub, algorithms=[alg], audience=AUD, issuer=ISS, options=require)

    def v_joserfc(t: str) -> Any:
        registry.validate(c := jrfc_jwt.decode(t, jpub, algorithms=[alg]).claims)
        return c

    def v_joserfc_jws(t: str) -> Any:
        return json.loads(jrfc_jws.deserialize_compact(t, jpub, algorithms=[alg]).payload)

    def v_authlib(t: str) -> Any:
        (c := ajwt.decode(t, apub, claims_options=aopts)).validate()
        return c

    table: dict[str, tuple[Fn, Fn]] = {
        "raw": (lambda: raw_sign(si_b), lambda: raw_verify(sig, si_b)),
        "pyjwt": (
            lambda: pyjwt.encode(
                claims, priv, algorithm=alg, headers={"kid": "k1", "typ": "at+jwt"}
            ),
            lambda: v_pyjwt(token),
        ),
        "joserfc": (
            lambda: jrfc_jwt.encode(header, claims, jkey, algorithms=[alg]),
            lambda: v_joserfc(token),
        ),
        "joserfc-jws": (
            lambda: jrfc_jws.serialize_compact(
                header, json.dumps(claims, separators=(",", ":")).encode(), jkey, algorithms=[alg]
            ),
            lambda: v_joserfc_jws(token),
        ),
        "authlib": (lambda: ajwt.encode(dict(header), claims, akey), lambda: v_authlib(token)),
    }
    verifiers = {
        "pyjwt": v_pyjwt,
        "joserfc": v_joserfc,
        "joserfc-jws": v_joserfc_jws,
        "authlib": v_authlib,
    }
    bad_sig = [
        token[:-6] + ("AAAAAA" if token[-6:] != "AAAAAA" else "BBBBBB"),
        raw_token(claims, {**header, "alg": "none"}).rpartition(".")[0] + ".",
    ]
    bad_claims = [
        raw_token(make_claims(now, **kw))
        for kw in (
            {"exp": now - 10},
            {"nbf": now + 600},
            {"iss": "https://evil.test"},
            {"aud": "other"},
        )
    ]
    cases: dict[tuple[str, str], Fn] = {}
    for lib in libs:
        sign_fn, verify_fn = table[lib]
        if (
            lib != "raw"
        ):  # correctness: lib-signed token verifies with raw, lib accepts/rejects as claimed
            out = sign_fn()
            s_si, _, s_sig = (out if isinstance(out, bytes) else out.encode()).rpartition(b".")
            raw_verify(b64u_dec(s_sig), s_si)
            assert json.loads(b64u_dec(s_si.partition(b".")[0])) == header, f"{lib} header"
            assert verifiers[lib](token)["sub"] == "user-7f3c2a"
            for b in bad_sig + (bad_claims if lib != "joserfc-jws" else []):
                try:
                    verifiers[lib](b)
                except Exception:  # noqa: BLE001, S112 - each library raises its own types
                    continue
                raise AssertionError(f"{lib} {alg} accepted a bad token")
        verify_fn()
        cases[("sign", lib)], cases[("verify", lib)] = sign_fn, verify_fn
    return cases


def calibrate(fn: Fn, target_ns: int = 5_000_000) -> int:
    """Batch size (power of two) taking at least target_ns; also warms the case up."""
    n = 1
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        if time.perf_counter_ns() - t0 >= target_ns or n >= 1 << 20:
            return n
        n *= 2


def run_round(fn: Fn, batch: int, seconds: float) -> float:
    """Return mean ns/op over batches run for at least `seconds`."""
    budget, total, ops = int(seconds * 1e9), 0, 0
    while total < budget:
        t0 = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        total += time.perf_counter_ns() - t0
        ops += batch
    return total / ops


def fmt_table(op: str, results: list[dict[str, Any]]) -> str:
    lines = [
        f"### {op}",
        "",
        "| alg | lib | median µs/op (min-max) | ops/s | overhead vs raw µs | ratio |",
        "|---|---|---|---|---|---|",
    ]
    raw = {r["alg"]: r["median_us"] for r in results if r["op"] == op and r["lib"] == "raw"}
    for r in (r for r in results if r["op"] == op):
        base = raw.get(r["alg"])
        ov = f"{r['median_us'] - base:+.1f}" if base else "n/a"
        ratio = f"{r['median_us'] / base:.2f}x" if base else "n/a"
        lines.append(
            f"| {r['alg']} | {r['lib']} "
            f"| {r['median_us']:.1f} ({r['min_us']:.1f}-{r['max_us']:.1f}) "
            f"| {1e6 / r['median_us']:,.0f} | {ov} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--time", type=float, default=0.3, help="seconds per case per round")
    ap.add_argument("--algs", default=",".join(ALGS), help="comma-separated subset of %(default)s")
    ap.add_argument("--libs", default=",".join(LIBS), help="comma-separated subset of %(default)s")
    ap.add_argument("--json", metavar="PATH", help="write raw per-round results here")
    args = ap.parse_args(argv)
    algs, libs = args.algs.split(","), args.libs.split(",")
    for name, got, allowed in (("alg", algs, ALGS), ("lib", libs, LIBS)):
        if unknown := set(got) - set(allowed):
            ap.error(f"unknown {name}: {', '.join(sorted(unknown))}")
    meta = {
        "python": platform.python_version(),
        "nproc": os.cpu_count(),
        "loadavg_start": load(),
        "versions": {p: version(p) for p in ("PyJWT", "joserfc", "Authlib", "cryptography")},
        "rounds": args.rounds,
        "time": args.time,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    busy0, cpu_start = cpu_busy(), time.process_time()
    cases = [
        (op, alg, lib, fn, calibrate(fn))
        for alg in algs
        for (op, lib), fn in build_cases(alg, libs).items()
    ]
    samples: dict[int, list[float]] = {i: [] for i in range(len(cases))}
    for rnd in range(args.rounds):
        for i, (_, _, _, fn, batch) in enumerate(cases):
            samples[i].append(run_round(fn, batch, args.time))
        print(f"# round {rnd + 1}/{args.rounds} done", file=sys.stderr)
    meta["loadavg_end"] = load()
    busy1 = cpu_busy()
    own = (time.process_time() - cpu_start) * os.sysconf(
        "SC_CLK_TCK"
    )  # machine busy minus this process
    meta["other_busy_cores"] = round(
        (busy1[0] - busy0[0] - own) / (busy1[1] - busy0[1]) * (os.cpu_count() or 1), 2
    )
    results = [
        {
            "op": op,
            "alg": alg,
            "lib": lib,
            "batch": batch,
            "ns_per_op": samples[i],
            "median_us": statistics.median(samples[i]) / 1e3,
            "min_us": min(samples[i]) / 1e3,
            "max_us": max(samples[i]) / 1e3,
        }
        for i, (op, alg, lib, _, batch) in enumerate(cases)
    ]
    results.sort(key=lambda r: (r["op"], algs.index(r["alg"]), libs.index(r["lib"])))
    print(
        f"{args.rounds} rounds x {args.time}s per case; loadavg start {meta['loadavg_start']} end "
        f"{meta['loadavg_end']}; "
        f"other processes kept ~{meta.get('other_busy_cores', '?')} cores busy\n"
    )
    print(fmt_table("sign", results) + "\n\n" + fmt_table("verify", results) + "\n")
    print("Verify checks:\n" + "\n".join(f"- {lib}: {CHECKS[lib]}" for lib in libs))
    print(
        "Sign notes:\n"
        + "\n".join(f"- {lib}: {SIGN_NOTES[lib]}" for lib in libs if lib in SIGN_NOTES)
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "checks": CHECKS, "results": results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
