"""The OAuth 2.1 authorization server and OpenID Connect provider: the protocol core.

Framework-free and async: no FastAPI/Starlette and no SQL here. HTTP lives in thin
routes (web/), state in the store (store/oauth*.py), and everything else this core
needs from the server comes through the Protocols of ``ports.py``. README.md beside this
file has the module map, what each Protocol must guarantee, and the known differences
from Node's oidc-provider.
"""

from .config import Endpoints, OAuthConfig
from .errors import OAuthError
from .provider import Collaborators, OAuthProvider

__all__ = ["Collaborators", "Endpoints", "OAuthConfig", "OAuthError", "OAuthProvider"]
