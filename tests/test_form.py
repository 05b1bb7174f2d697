"""Form validation: clear errors for malformed values, partial saves allowed."""

import pytest

from tests.utils import submit
from wagtail_icarus_smtp.models import SmtpSettings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "keine-adresse", "valid email"),
        ("port", "70000", "not allowed"),
        ("port", "25", "Allowed ports: 465, 587"),
        ("port", "abc", "whole number"),
        ("host", "smtp example.com", "server name"),
        ("host", "smtp..example.com", "server name"),
        ("from_name", "Dropzone\r\nBcc: opfer@example.com", "line breaks"),
        ("from_name", "=?utf-8?q?x?=", "line breaks"),
        ("from_name", "Drop\u202ezone", "line breaks"),
        ("from_name", "x" * 101, "at most 100"),
    ],
)
def test_malformed_values_are_form_errors_and_nothing_is_saved(field, value, message):
    before = SmtpSettings.load()

    form = submit(**{field: value})

    assert message in " ".join(form.errors[field])
    after = SmtpSettings.load()
    assert (after.email, after.host, after.port, after._password_encrypted) == (
        before.email,
        before.host,
        before.port,
        before._password_encrypted,
    )
    assert not after.events.exists()


def test_empty_form_is_not_configured():
    form = submit(from_name="", email="", password="", host="", enabled=None)

    assert not form.errors
    assert SmtpSettings.load().status == "not_configured"


def test_partial_form_is_saved_as_setup_started():
    form = submit(password="", host="")

    assert not form.errors
    smtp_settings = SmtpSettings.load()
    assert smtp_settings.email == "system@dropzone.example"
    assert smtp_settings.status == "started"
    assert smtp_settings.missing_fields() == ["password", "host"]


def test_host_is_normalised():
    submit(password="", host="  SMTP.IONOS.DE. ")

    assert SmtpSettings.load().host == "smtp.ionos.de"
