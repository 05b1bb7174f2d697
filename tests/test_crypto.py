"""Encryption at rest, key derivation and failing closed on a wrong key."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.core import mail

from tests.utils import committed, configure
from wagtail_icarus_smtp.admin import report
from wagtail_icarus_smtp.exceptions import PasswordUnreadable
from wagtail_icarus_smtp.models import OutboxMessage, SmtpSettings
from wagtail_icarus_smtp.setup import live
from wagtail_icarus_smtp.smtp import crypto

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def test_configured_keys_first_encrypts_all_decrypt(settings):
    settings.ICARUS_SMTP_ENCRYPTION_KEYS = [KEY_A]
    token = crypto.encrypt("geheim")

    settings.ICARUS_SMTP_ENCRYPTION_KEYS = [KEY_B, KEY_A]

    assert crypto.decrypt(token) == "geheim"
    assert Fernet(KEY_B).decrypt(crypto.encrypt("neu").encode()) == b"neu"


def test_without_keys_secret_key_and_fallbacks_are_used(settings):
    settings.ICARUS_SMTP_ENCRYPTION_KEYS = None
    settings.SECRET_KEY = "old-secret-key-" + "x" * 40
    token = crypto.encrypt("geheim")

    settings.SECRET_KEY = "new-secret-key-" + "y" * 40
    settings.SECRET_KEY_FALLBACKS = ["old-secret-key-" + "x" * 40]
    assert crypto.decrypt(token) == "geheim"

    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(PasswordUnreadable):
        crypto.decrypt(token)


def test_ciphertext_is_not_the_password():
    assert "geheim" not in crypto.encrypt("geheim")


@pytest.mark.django_db
def test_a_wrong_key_fails_closed(server, settings, caplog):
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"
    settings.ICARUS_SMTP_ENCRYPTION_KEYS = [KEY_A]
    configure(server)

    settings.ICARUS_SMTP_ENCRYPTION_KEYS = [KEY_B]

    smtp_settings = SmtpSettings.load()
    assert smtp_settings.status == "failed"
    assert smtp_settings.failure_category == "password_unreadable"
    shown = report.build(smtp_settings)
    assert "can no longer be read" in shown["explanation"]
    assert live.load().reason == live.PASSWORD_UNREADABLE
    with caplog.at_level(logging.WARNING, logger="wagtail_icarus_smtp"), committed():
        assert mail.send_mail("x", "y", None, ["a@example.com"]) == 1  # held (issue 5)
    assert server.messages == []
    assert OutboxMessage.objects.get().status == "held"
    assert server.auth_attempts == 1  # only the original test; no login with ciphertext
    assert "password_unreadable" in caplog.text
