"""Secret hygiene of the account flows (issue 11, point 8): with every logger at DEBUG,
the mail, one-time token, TOTP, recovery code, mfa_token and passkey flows (their
failures included) leave no token, code, TOTP secret, otpauth URI, SMTP password or
hash of any of them in a log line or an audit row. Phase 2 adds the HTTP side to
test_secret_hygiene.py once the routes exist."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import pyotp
import pytest
from test_totp import code_at, world_on

from jwtauth.errors import InvalidCredentials, InvalidGrant
from jwtauth.server.logs import JsonFormatter
from jwtauth.server.mail.outbox import DeliveryPolicy, Outbox, deliver_due
from jwtauth.server.mail.smtp import SmtpMailer, SmtpTarget
from jwtauth.server.mfa import recovery
from jwtauth.server.mfa.passkeys import PasskeyService, RelyingParty
from jwtauth.server.onetime import OneTimeTokens
from jwtauth.server.sealing import Sealer, SealPurpose
from jwtauth.server.store.outbox import OutboxStore

from accounts_kit import KEK, Now, add_user, audit_rows, auditor_for, open_db
from conftest import Backend
from smtp_kit import SMTP_PASSWORD, SMTP_USER, Pki, SmtpServer, make_pki, token_from_mail
from webauthn_kit import SoftAuthenticator

ORIGIN = "https://auth.example.test"


class Everything(logging.Handler):
    """Every record of every logger, rendered with its extra fields."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.formatter_ = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        # aiosmtpd ("mail.log") is the test's receiving mail server, which logs the
        # mail it receives at DEBUG as any relay may: that is the mailbox, not us.
        if not record.name.startswith("mail.log"):
            self.lines.append(self.formatter_.format(record))


@pytest.fixture
def captured() -> Everything:
    handler = Everything()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_no_secret_in_logs_or_audit(backend: Backend, captured: Everything, pki: Pki,
                                          tmp_path: Path) -> None:
    now = Now()
    secrets: set[str] = {SMTP_PASSWORD}
    codes: set[str] = set()
    async with open_db(backend) as db:
        auditor = auditor_for(db, now)
        outbox = Outbox(OutboxStore(db), Sealer(KEK, SealPurpose.MAIL_TOKEN))
        tokens = OneTimeTokens(db, outbox, auditor, now=now)
        user_id = await add_user(db, email="alice@example.test", verified=True)
        with SmtpServer("implicit", pki, auth=True) as smtp:
            url = f"smtps://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}"
            policy = DeliveryPolicy(sender="no-reply@example.test", site="Example")
            # A wrong SMTP password first: its failure is logged.
            wrong = SmtpMailer(SmtpTarget.parse(url.replace(SMTP_PASSWORD, "wrong-pass-99")),
                               ca_file=pki.ca_file)
            secrets.add("wrong-pass-99")
            await tokens.request_verification(user_id, origin=ORIGIN)
            await deliver_due(outbox, wrong, policy, auditor, now=now)
            now.advance(60)
            await tokens.request_reset(user_id, origin=ORIGIN)
            mailer = SmtpMailer(SmtpTarget.parse(url), ca_file=pki.ca_file)
            await deliver_due(outbox, mailer, policy, auditor, now=now)
            verify_token, reset_token = (token_from_mail(m) for m in smtp.inbox.messages)
        secrets |= {verify_token, reset_token}
        await tokens.verify_email(verify_token)
        with pytest.raises(InvalidGrant):
            await tokens.verify_email(verify_token)
        async with db.begin() as conn:
            await tokens.redeem_reset(conn, reset_token, now())

        world = world_on(db, now)
        enrolment = await world.totp.begin(user_id, account="alice")
        secrets |= {enrolment.secret, enrolment.otpauth_uri}
        first = code_at(enrolment.secret, world)
        recovery_codes = await world.totp.confirm(user_id, first)
        secrets |= {c for c in recovery_codes} | {
            recovery.hash_code(user_id, c) or "" for c in recovery_codes}
        now.advance(30)
        mfa_token = await world.mfa.issue(user_id, ["pwd"])
        secrets |= {mfa_token}
        with pytest.raises(InvalidCredentials):
            await world.mfa.complete(mfa_token, code=first)  # a replay
        second = code_at(enrolment.secret, world)
        await world.mfa.complete(mfa_token, code=second)
        other = await world.mfa.issue(user_id, ["pwd"])
        secrets.add(other)
        await world.mfa.complete(other, recovery_code=recovery_codes[0])
        codes |= {first, second}

        rp = RelyingParty.for_origin(ORIGIN, "Example")
        passkeys = PasskeyService(db, auditor, now=now)
        device = SoftAuthenticator()
        options = await passkeys.registration_options(rp, user_id, "alice")
        await passkeys.register(rp, user_id, device.create(options, ORIGIN))
        login = await passkeys.login_options(rp)
        await passkeys.authenticate(rp, login["challenge_id"], device.get(login["publicKey"],
                                                                           ORIGIN))
        bad = await passkeys.login_options(rp)
        with pytest.raises(InvalidCredentials):
            await passkeys.authenticate(rp, bad["challenge_id"],
                                        device.get(bad["publicKey"], ORIGIN, uv=False))
        events = json.dumps(await audit_rows(db), default=str)

    secrets |= {sha(s) for s in list(secrets)}
    text = "\n".join(captured.lines) + "\n" + events
    assert len(captured.lines) > 20 and "mail_sent" in text and "passkey_login_failed" in text
    for secret in secrets:
        assert len(secret) >= 8
        assert secret not in text, f"a secret ({secret[:10]}...) was logged"
    for code in codes:
        assert not re.search(rf"(?<!\d){code}(?!\d)", text), "a TOTP code was logged"
    assert pyotp.TOTP(enrolment.secret).now() not in re.findall(r'"code":\s*"(\d+)"', text)
