"""Mail (issue 11, point 2): SMTP through aiosmtplib to a real aiosmtpd server on
loopback (plain, STARTTLS and implicit TLS under a throw-away CA), from the durable
outbox: retries with back-off after 4xx, gives up after 5xx or N attempts, survives a
"restart" (a new engine and worker pick up what a dead one claimed), one delivery per
row when several workers run at once, and the token erased once the mail is out."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from jwtauth.errors import ConfigError
from jwtauth.server.mail.message import MailKind
from jwtauth.server.mail.outbox import DeliveryPolicy, Outbox, deliver_due
from jwtauth.server.mail.smtp import SmtpMailer, SmtpTarget
from jwtauth.server.sealing import Sealer, SealPurpose
from jwtauth.server.store import Database
from jwtauth.server.store.account_tables import mail_outbox
from jwtauth.server.store.outbox import OutboxStore

from accounts_kit import KEK, Now, add_user, audit_names, auditor_for, open_db
from conftest import Backend
from smtp_kit import SMTP_PASSWORD, SMTP_USER, Pki, SmtpServer, make_pki, parts, token_from_mail

ORIGIN = "https://auth.example.test"
SENDER = "jwtauth <no-reply@example.test>"
TOKEN = "tok_" + "A1b2C3d4" * 5  # stands in for a one-time token
POLICY = DeliveryPolicy(sender=SENDER, site="Example", max_attempts=3, retry_base=30,
                        retry_max=600, claim_ttl=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def outbox_on(db: Database) -> Outbox:
    return Outbox(OutboxStore(db), Sealer(KEK, SealPurpose.MAIL_TOKEN))


async def enqueue(db: Database, now: Now, *, token: str = TOKEN, user_id: str | None = None,
                  kind: MailKind = MailKind.PASSWORD_RESET, valid_for: int = 1800) -> int:
    async with db.begin() as conn:
        return await outbox_on(db).enqueue(
            conn, kind=kind, user_id=user_id, recipient="alice@example.test",
            username="alice", token=token, origin=ORIGIN, valid_for=valid_for, now=now(),
        )


async def deliver(db: Database, mailer: SmtpMailer, now: Now, policy: DeliveryPolicy = POLICY):
    return await deliver_due(outbox_on(db), mailer, policy, auditor_for(db, now), now=now)


async def rows(db: Database) -> list[dict[str, object]]:
    async with db.connect() as conn:
        result = await conn.execute(mail_outbox.select().order_by(mail_outbox.c.id))
        return [dict(r._mapping) for r in result]


# -- URL forms --------------------------------------------------------------------------


def test_smtp_url_forms() -> None:
    assert SmtpTarget.parse("smtp://127.0.0.1:1025") == SmtpTarget("127.0.0.1", 1025,
                                                                   "opportunistic")
    target = SmtpTarget.parse("smtps://us%40r:p%3Ass@mail.example.org:465")
    assert (target.tls, target.username, target.password) == ("implicit", "us@r", "p:ss")
    assert "p:ss" not in repr(target)
    # A password is never sent without TLS: smtp:// with credentials requires STARTTLS.
    assert SmtpTarget.parse("smtp://u:p@mail.example.org").tls == "starttls"
    assert SmtpTarget.parse("smtp+starttls://mail.example.org").port == 587
    for bad in ("http://mail.example.org", "smtp://", "smtp://h:99999", "smtp://h/x",
                "smtps://u:secretpw@h?x=1"):
        with pytest.raises(ConfigError) as caught:
            SmtpTarget.parse(bad)
        assert "secretpw" not in str(caught.value)


def test_ca_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        SmtpMailer(SmtpTarget("h", 25, "starttls"), ca_file=tmp_path / "missing.pem")


# -- delivery ---------------------------------------------------------------------------


async def test_plain_delivery_text_html_token_and_erasure(backend: Backend) -> None:
    now = Now()
    async with open_db(backend) as db:
        user_id = await add_user(db, email="alice@example.test")
        mail_id = await enqueue(db, now, user_id=user_id)
        stored = (await rows(db))[0]
        assert TOKEN not in str(stored)  # sealed while it waits
        with SmtpServer("plain") as smtp:
            mailer = SmtpMailer(SmtpTarget("127.0.0.1", smtp.port, "opportunistic"))
            report = await deliver(db, mailer, now)
            assert report.sent == [mail_id]
            [message] = smtp.inbox.messages
        assert message["From"] == SENDER and message["To"] == "alice@example.test"
        assert message["Subject"] == "Reset your password for Example"
        assert message.get_content_type() == "multipart/alternative"
        assert token_from_mail(message) == TOKEN
        plain, rich = parts(message)
        assert f"{ORIGIN}/reset-password?token={TOKEN}" in plain
        assert f'href="{ORIGIN}/reset-password?token={TOKEN}"' in rich
        done = (await rows(db))[0]
        assert done["status"] == "sent" and done["attempts"] == 1
        assert done["secret_sealed"] is None and done["params"] is None
        assert await audit_names(db) == ["mail_sent"]
        # Delivered once: a second pass finds nothing.
        assert (await deliver(db, mailer, now)).sent == []


async def test_starttls_with_a_self_signed_ca(backend: Backend, pki: Pki) -> None:
    now = Now()
    async with open_db(backend) as db:
        await enqueue(db, now)
        with SmtpServer("starttls", pki) as smtp:
            target = SmtpTarget("127.0.0.1", smtp.port, "opportunistic")
            # Without the CA the certificate is refused, never silently accepted.
            untrusting = SmtpMailer(target)
            report = await deliver(db, untrusting, now)
            assert report.retrying and not smtp.inbox.messages
            assert "SSL" in str((await rows(db))[0]["last_error"]) or "Cert" in str(
                (await rows(db))[0]["last_error"])
            now.advance(POLICY.retry_base)
            report = await deliver(db, SmtpMailer(target, ca_file=pki.ca_file), now)
            assert len(report.sent) == 1
            assert smtp.inbox.secure == [True]
            assert token_from_mail(smtp.inbox.messages[0]) == TOKEN


async def test_starttls_required_refuses_a_server_without_it(backend: Backend) -> None:
    now = Now()
    async with open_db(backend) as db:
        await enqueue(db, now)
        with SmtpServer("plain") as smtp:
            report = await deliver(
                db, SmtpMailer(SmtpTarget("127.0.0.1", smtp.port, "starttls")), now
            )
            assert report.retrying and not smtp.inbox.messages


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_implicit_tls_with_login(backend: Backend, pki: Pki) -> None:
    now = Now()
    async with open_db(backend) as db:
        await enqueue(db, now)
        with SmtpServer("implicit", pki, auth=True) as smtp:
            url = f"smtps://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}"
            wrong = SmtpMailer(SmtpTarget.parse(url.replace(SMTP_PASSWORD, "nope")),
                               ca_file=pki.ca_file)
            report = await deliver(db, wrong, now)
            assert report.retrying  # a configuration error keeps the mail queued
            assert SMTP_PASSWORD not in str(await rows(db))
            now.advance(POLICY.retry_base)
            report = await deliver(db, SmtpMailer(SmtpTarget.parse(url), ca_file=pki.ca_file),
                                   now)
            assert len(report.sent) == 1 and smtp.inbox.secure == [True]


async def test_4xx_is_retried_with_back_off(backend: Backend) -> None:
    now = Now()
    async with open_db(backend) as db:
        await enqueue(db, now)
        with SmtpServer("plain") as smtp:
            smtp.inbox.refuse = ["451 4.3.0 try again later", "421 4.7.0 busy"]
            mailer = SmtpMailer(SmtpTarget("127.0.0.1", smtp.port, "opportunistic"))
            assert (await deliver(db, mailer, now)).retrying
            first = (await rows(db))[0]
            assert first["last_error"] == "SMTP 451: SMTPDataError"
            assert (first["next_attempt_at"] - now()).total_seconds() == 30
            # Not due yet: nothing is tried.
            now.advance(29)
            report = await deliver(db, mailer, now)
            assert (report.sent, report.retrying) == ([], [])
            now.advance(1)
            assert (await deliver(db, mailer, now)).retrying  # 421
            second = (await rows(db))[0]
            assert (second["next_attempt_at"] - now()).total_seconds() == 60  # doubled
            now.advance(60)
            assert len((await deliver(db, mailer, now)).sent) == 1
        assert (await rows(db))[0]["attempts"] == 3
        assert len(smtp.inbox.messages) == 1


async def test_5xx_and_too_many_attempts_give_up_audited(backend: Backend) -> None:
    now = Now()
    async with open_db(backend) as db:
        permanent = await enqueue(db, now, token="tok_permanent_" + "x" * 30)
        with SmtpServer("plain") as smtp:
            smtp.inbox.refuse = ["550 5.1.1 no such mailbox"]
            mailer = SmtpMailer(SmtpTarget("127.0.0.1", smtp.port, "opportunistic"))
            assert (await deliver(db, mailer, now)).failed == [permanent]
            retried = await enqueue(db, now, valid_for=86400)
            smtp.inbox.refuse = ["451 later"] * 3
            for _ in range(2):
                assert (await deliver(db, mailer, now)).retrying == [retried]
                now.advance(POLICY.retry_max)
            assert (await deliver(db, mailer, now)).failed == [retried]  # 3rd of 3
        for row in await rows(db):
            assert row["status"] == "failed" and row["secret_sealed"] is None
        assert await audit_names(db) == ["mail_failed", "mail_failed"]


async def test_an_expired_token_is_not_mailed(backend: Backend) -> None:
    now = Now()
    async with open_db(backend) as db:
        await enqueue(db, now, valid_for=60)
        now.advance(61)
        with SmtpServer("plain") as smtp:
            mailer = SmtpMailer(SmtpTarget("127.0.0.1", smtp.port, "opportunistic"))
            assert len((await deliver(db, mailer, now)).failed) == 1
            assert smtp.inbox.messages == []


async def test_a_restarted_worker_picks_up_undelivered_rows(backend: Backend) -> None:
    now = Now()
    async with open_db(backend) as first:
        ids = [await enqueue(first, now, token=f"tok_restart_{i}_" + "y" * 30) for i in range(3)]
        # The first process claims the rows and dies before sending any.
        claimed = await OutboxStore(first).claim(
            claim_id="dead-worker", now=now(),
            until=now() + timedelta(seconds=POLICY.claim_ttl), limit=10)
        assert [row.id for row in claimed] == ids
    with SmtpServer("plain") as smtp:
        mailer = SmtpMailer(SmtpTarget("127.0.0.1", smtp.port, "opportunistic"))
        async with open_db(backend) as second:  # a new engine: the restarted process
            assert (await deliver(second, mailer, now)).sent == []  # still claimed
            now.advance(POLICY.claim_ttl)
            assert (await deliver(second, mailer, now)).sent == ids
        tokens = sorted(token_from_mail(m) for m in smtp.inbox.messages)
        assert tokens == sorted(f"tok_restart_{i}_" + "y" * 30 for i in range(3))


async def test_workers_at_once_deliver_each_mail_once(backend: Backend) -> None:
    now = Now()
    async with open_db(backend) as a, open_db(backend) as b, open_db(backend) as c:
        ids = [await enqueue(a, now, token=f"tok_race_{i:02d}_" + "z" * 30) for i in range(12)]
        with SmtpServer("plain") as smtp:
            mailer = SmtpMailer(SmtpTarget("127.0.0.1", smtp.port, "opportunistic"))
            reports = await asyncio.gather(*(
                deliver_due(outbox_on(db), mailer, POLICY, auditor_for(db, now), now=now,
                            batch=5)
                for db in (a, b, c, a, b, c)
            ))
            sent = sorted(i for report in reports for i in report.sent)
            assert sent == ids
            assert len(smtp.inbox.messages) == 12
        async with a.connect() as conn:
            left = await conn.execute(
                sa.select(sa.func.count()).select_from(mail_outbox)
                .where(mail_outbox.c.status != "sent"))
            assert left.scalar_one() == 0
