"""The tutorials' blog: the demo resource API.

It is built only on the public library (``jwtauth.Verifier``, ``jwtauth.fastapi``), the
way any outside service would be, and owns nothing but its ``posts`` table.
"""

from .routes import blog_router

__all__ = ["blog_router"]
