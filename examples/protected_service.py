"""A separate service whose routes need an access token from a jwtauth server.

    pip install 'jwtauth-kit[fastapi]' uvicorn
    JWKS_URL=http://127.0.0.1:8000/.well-known/jwks.json TOKEN_ISSUER=http://127.0.0.1:8000 \
        python -m uvicorn --app-dir examples protected_service:app --port 8001

Refusals (401 invalid_token, 403 insufficient_role) carry the server's JSON body and
WWW-Authenticate header with no set-up, and /docs offers the Bearer scheme.
"""

import os

from fastapi import Depends, FastAPI

from jwtauth import Claims, Verifier
from jwtauth.fastapi import current_claims, require_roles

verifier = Verifier.from_jwks_url(
    os.environ["JWKS_URL"],
    issuer=os.environ["TOKEN_ISSUER"],
    audience=os.environ.get("TOKEN_AUDIENCE", "jwtauth"),
)
app = FastAPI(title="protected service")


@app.get("/hello")
async def hello(claims: Claims = Depends(current_claims(verifier))) -> dict[str, str]:
    return {"hello": claims.username or claims.sub}


@app.get("/admin", dependencies=[Depends(require_roles(verifier, "admin"))])
async def admin() -> dict[str, str]:
    return {"admin": "ok"}
