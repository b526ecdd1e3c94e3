"""Accounts: registration, login and password change, user administration, and the
rules for usernames, roles and emails that every entry point shares. No web framework.

The modules are imported one by one (``accounts.admin``, ``accounts.registration``...):
the command line loads only what its command needs, and ``admin`` needs no hasher.
"""
