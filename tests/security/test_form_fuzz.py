"""Property-based: arbitrary unicode in every field never crashes the form, never lets a
header-breaking value through, and an invalid submission saves nothing."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.utils import submit
from wagtail_icarus_smtp.models import SmtpSettings
from wagtail_icarus_smtp.smtp import headers

pytestmark = pytest.mark.django_db

HOST = re.compile(r"^[a-z0-9.:-]*$")
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
interesting = st.sampled_from(
    ["\r\n", "\n", "\x00", "=?utf-8?q?", "\u2028", "\u202e", "<", ">", "@", ",", ";", '"', "\\"]
)
field_value = st.one_of(text, st.lists(st.one_of(text, interesting), max_size=6).map("".join))


def snapshot():
    row = SmtpSettings.load()
    return (row.from_name, row.email, row.host, row.port, row._password_encrypted, row.version)


@pytest.fixture
def roomy_limits(settings):
    settings.ICARUS_SMTP_RATE_LIMITS = {"test": (10**6, 10**6, 600), "testmail": (5, 20, 600)}


@pytest.mark.parametrize("field", ["from_name", "email", "password", "host", "port"])
def test_any_unicode_in_one_field(roomy_limits, field):
    @FUZZ
    @given(value=field_value)
    def check(value):
        before = snapshot()
        # No task runs: a valid host could otherwise be dialled for real.
        form = submit(run_tasks=False, **{field: value})
        after = SmtpSettings.load()
        if form.errors:
            assert snapshot() == before
            return
        headers.check_display_name(after.from_name)
        if after.email:
            headers.check_address(after.email)
        assert HOST.match(after.host)
        assert after.port in (None, 465, 587)

    check()


@FUZZ
@given(name=field_value, email=field_value, host=field_value)
def test_the_admin_view_never_answers_500(client, editor, roomy_limits, name, email, host):
    client.force_login(editor)
    url = f"/admin/settings/wagtail_icarus_smtp/smtpsettings/{SmtpSettings.load().pk}/"
    data = {"from_name": name, "email": email, "host": host, "port": "587", "password": ""}

    response = client.post(url, data)

    assert response.status_code in (200, 302)
