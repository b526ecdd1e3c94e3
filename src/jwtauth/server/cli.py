"""The operator's command line: ``jwtauth serve | user ... | db upgrade | secret``.

Thin on purpose: it gathers options and calls the same services the server uses, built
by the same wiring (``wiring.Server.for_command``), which builds only what the command
asks for: ``keys list`` and ``db upgrade`` get the database, and no password hasher or
Redis client.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from ..errors import AuthError, ConfigError
from .accounts.rules import validate_email, validate_roles, validate_username
from .audit import AuditEvent, AuditEventName
from .config import Settings, load_settings
from .keyservice import key_cipher
from .logs import format_line, logging_config, setup_logging
from .store.database import MigrationBlocked
from .store.users import UserRecord
from .terminal import printable
from .wiring import Server

T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        raise click.ClickException(printable(exc.message)) from exc


def _run(settings: Settings, work: Callable[[Server], Awaitable[T]]) -> T:
    """Migrate the database, then ``work`` with the parts it asks ``Server`` for."""

    async def main() -> T:
        server = Server.for_command(settings)
        try:
            await server.db.upgrade()
            return await work(server)
        finally:
            await server.close()

    try:
        return asyncio.run(main())
    except MigrationBlocked as exc:
        raise _Blocked(printable(exc.message)) from exc
    except AuthError as exc:
        raise click.ClickException(printable(exc.message)) from exc


class _Blocked(click.ClickException):
    exit_code = 2  # the schema needs the operator's decision (migration 0004)


def _checked(check: Callable[[], T]) -> T:
    """A core rule, checked before anything is asked or opened (the API's words)."""
    try:
        return check()
    except AuthError as exc:
        raise click.ClickException(exc.message) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """jwtauth: a JWT authentication server. Settings come from JWTAUTH_* variables
    and a .env file in the working directory."""


@main.command()
@click.option("--host", help="Address to listen on (JWTAUTH_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (JWTAUTH_PORT, default 8000).")
@click.option("--workers", type=int, help="Worker processes (JWTAUTH_WORKERS, default 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Apply migrations, make sure a signing key exists, and serve HTTP."""
    import uvicorn

    # Workers re-read settings from the environment: pass the command line on that way.
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"JWTAUTH_{name}"] = str(value)
    settings = _settings()
    setup_logging(settings.log_level, settings.log_format)
    os.umask(0o077)  # the database, its WAL and the key file are for this user only
    try:
        settings.validate_for_serving()
    except ConfigError as exc:
        raise click.ClickException(printable(exc.message)) from exc

    async def prepare(server: Server) -> None:
        await server.keys.reload_keys()

    _run(settings, prepare)
    # Printed whatever the log level, in the log format (stderr stays JSON lines).
    url = f"http://{settings.host}:{settings.port}"
    click.echo(
        format_line(settings.log_format, f"jwtauth listening on {url} "
                    f"({settings.workers} worker(s))", url=url, workers=settings.workers),
        err=True,
    )
    uvicorn.run(
        "jwtauth.server.web.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        proxy_headers=settings.trusted_proxies is not None,
        forwarded_allow_ips=settings.trusted_proxies,
        server_header=False,
        http="jwtauth.server.web.deadlines:DeadlineProtocol",  # header/body deadlines
        log_level=settings.log_level.lower(),
        log_config=logging_config(settings.log_level, settings.log_format),
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every schema migration not yet applied."""

    async def key_file(server: Server) -> None:
        # On SQLite the key-encryption key file belongs with the database: made (or
        # checked) now, so that it is there, owner-only, before anything serves.
        key_cipher(server.settings, server.db)

    _run(_settings(), key_file)
    click.echo("database is up to date")


@main.command()
@click.option("--bytes", "length", type=click.IntRange(32, 256), default=48, show_default=True)
def secret(length: int) -> None:
    """Print a strong random secret (for JWTAUTH_SECRET or JWTAUTH_KEY_ENCRYPTION_KEY)."""
    click.echo(secrets.token_urlsafe(length))


@main.group()
def user() -> None:
    """User accounts."""


@user.command("create")
@click.argument("name")
@click.option("--role", "roles", multiple=True, help="A role besides 'user'; repeatable.")
@click.option("--email", default=None)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_create(name: str, roles: tuple[str, ...], email: str | None, password_stdin: bool) -> None:
    """Create a user (password from a prompt, or --password-stdin)."""
    _checked(lambda: validate_username(name))
    all_roles = _checked(lambda: validate_roles(["user", *roles]))
    if email is not None:
        _checked(lambda: validate_email(email))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def create(server: Server) -> str:
        created = await server.registration.register(
            name, password, email=email, roles=all_roles
        )
        return created.id

    user_id = _run(_settings(), create)
    click.echo(printable(f"created {name} ({user_id}) with roles {','.join(all_roles)}"))


@user.command("list")
@click.option("--limit", type=click.IntRange(1, 100000), default=1000, show_default=True)
def user_list(limit: int) -> None:
    """List users: id, name, roles, creation time."""

    async def page(server: Server) -> list[Any]:
        return await server.admin.list_users(limit=limit, offset=0)

    for record in _run(_settings(), page):
        click.echo(printable(
            f"{record.id}  {record.username:<24} {','.join(record.roles):<20} "
            f"{record.created_at.isoformat()}"
        ))


async def _find(server: Server, name: str) -> UserRecord:
    found = await server.admin.find_user(name)
    if found is None:
        raise click.ClickException(printable(f"no user named {name}"))
    return found


@user.command("set-roles")
@click.argument("name")
@click.argument("roles", nargs=-1, required=True)
def user_set_roles(name: str, roles: tuple[str, ...]) -> None:
    """Replace a user's roles (effective at the user's next refresh)."""
    new_roles = _checked(lambda: validate_roles(roles))

    async def change(server: Server) -> list[str]:
        found = await _find(server, name)
        return (await server.admin.set_roles(found.id, new_roles)).roles

    click.echo(printable(f"{name}: roles {','.join(_run(_settings(), change))}"))


@user.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def user_delete(name: str, yes: bool) -> None:
    """Delete a user; its sessions and tokens stop working at once."""
    if not yes:
        click.confirm(f"Delete {name} and end all its sessions?", abort=True)

    async def remove(server: Server) -> None:
        found = await _find(server, name)
        await server.admin.delete_user(found.id)

    _run(_settings(), remove)
    click.echo(printable(f"deleted {name}"))


@main.group()
def keys() -> None:
    """Signing keys: list, rotate, import, export the public set."""


@keys.command("list")
def keys_list() -> None:
    """Every key with its state (next, current, retiring, retired)."""

    async def records(server: Server) -> list[Any]:
        return await server.key_store.records()

    for record in _run(_settings(), records):
        sealed = "sealed" if record.sealed else "plain"
        click.echo(printable(
            f"{record.kid}  {record.alg:<6} {record.state:<9} {sealed:<6} "
            f"created {record.created_at.isoformat()}"
        ))


@keys.command("rotate")
@click.option("--lead", type=int, default=0, show_default=True,
              help="Seconds the new key is published before it signs.")
def keys_rotate(lead: int) -> None:
    """Make a new signing key; the old one verifies until its tokens expire."""

    async def rotate(server: Server) -> str:
        await server.keys.reload_keys()
        return await server.keys.rotate_keys(lead=lead)

    click.echo(printable(_run(_settings(), rotate)))


@keys.command("import")
@click.argument("pem_file", type=click.File("r"))
@click.option("--lead", type=int, default=0, show_default=True,
              help="Seconds the key is published before it signs.")
def keys_import(pem_file: Any, lead: int) -> None:
    """Import a private key (PEM: P-256, RSA >= 2048 or Ed25519) as the signing key."""
    from .keys import key_from_private_pem

    try:
        key = key_from_private_pem(pem_file.read())
    except ConfigError as exc:
        raise click.ClickException(printable(exc.message)) from exc

    async def add(server: Server) -> str:
        await server.keys.reload_keys()
        return await server.keys.import_key(key, lead=lead)

    click.echo(printable(_run(_settings(), add)))


@keys.command("export-public")
def keys_export_public() -> None:
    """Print the public JWKS (what /.well-known/jwks.json serves)."""
    import json

    async def jwks(server: Server) -> dict[str, Any]:
        await server.keys.reload_keys()
        return server.keyring.jwks

    click.echo(json.dumps(_run(_settings(), jwks), indent=2))


@main.group()
def audit() -> None:
    """The audit trail of security events."""


def _audit_line(event: AuditEvent) -> str:
    # printable: an attempted username may hold a newline (a forged line) or ESC.
    who = f"{event.username or '-'} ({event.user_id or '-'})"
    return printable(
        f"{event.created_at.isoformat()}  #{event.id}  {event.event.value:<20} user={who} "
        f"ip={event.client_ip or '-'} session={event.session_id or '-'} "
        f"actor={event.actor_id or '-'} {json.dumps(event.detail, sort_keys=True)}"
    )


@audit.command("tail")
@click.option("-n", "count", type=click.IntRange(1, 10000), default=20, show_default=True,
              help="How many of the newest events to print first.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events (every second).")
@click.option("--user", "username", help="Only events about this username.")
@click.option("--event", "event", type=click.Choice([e.value for e in AuditEventName]),
              help="Only this event.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_tail(
    count: int, follow: bool, username: str | None, event: str | None, as_json: bool
) -> None:
    """Print the newest security events, oldest first; --follow waits for more."""
    name = AuditEventName(event) if event else None

    def show(found: list[AuditEvent]) -> None:
        for item in found:
            click.echo(json.dumps(item.fields()) if as_json else _audit_line(item))
        sys.stdout.flush()

    async def tail(server: Server) -> None:
        store = server.audit_store
        newest = await store.page(limit=count, username=username, event=name)
        show(newest[::-1])
        last = newest[0].id or 0 if newest else 0
        while follow:
            await asyncio.sleep(1.0)
            found = await store.after(last, limit=1000, username=username, event=name)
            show(found)
            if found:
                last = found[-1].id or last

    try:
        _run(_settings(), tail)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
