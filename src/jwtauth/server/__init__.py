"""The jwtauth server: accounts, sessions, keys, the store, the HTTP API and the CLI.

It is built on the library around it (``jwtauth``: verification, keys, claims, errors)
and nothing outside this package imports it. Its core (accounts, sessions, keys, audit,
limits, store) imports no web framework; FastAPI lives in ``web/``, the demo ``blog/``
and the CLI that starts uvicorn.
"""
