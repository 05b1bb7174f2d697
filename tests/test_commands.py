"""The management commands, run as an operator would."""

import pytest
from django.core.management import CommandError, call_command

from tests.utils import configure, submit
from wagtail_icarus_smtp.models import SmtpSettings

pytestmark = pytest.mark.django_db


def test_status_exits_zero_only_when_complete_and_enabled(server, capsys):
    configure(server)

    call_command("icarus_smtp_status")

    out = capsys.readouterr().out
    assert "Status: complete" in out
    assert "Sending: enabled" in out


@pytest.mark.parametrize("enabled", [None, "on"])
def test_status_exits_non_zero_otherwise(server, capsys, enabled):
    submit(port=str(server.port), password="falsch", enabled=enabled)

    with pytest.raises(SystemExit) as exit_info:
        call_command("icarus_smtp_status")

    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "Status: failed" in out
    assert "Failure: auth" in out


def test_validate_runs_the_test_inline(server, capsys):
    submit(port=str(server.port), run_tasks=False)
    assert SmtpSettings.load().status == "running"

    call_command("icarus_smtp_validate")

    assert SmtpSettings.load().status == "complete"
    assert "now live" in capsys.readouterr().out


def test_validate_reports_failures(server):
    submit(port=str(server.port), password="falsch", run_tasks=False)

    with pytest.raises(CommandError, match="auth"):
        call_command("icarus_smtp_validate")
    assert SmtpSettings.load().failure_category == "auth"


def test_validate_refuses_incomplete_settings():
    submit(host="", password="")

    with pytest.raises(CommandError, match="missing: password, host"):
        call_command("icarus_smtp_validate")


def test_sendtest_delivers_through_the_live_configuration(server, capsys):
    configure(server)

    call_command("icarus_smtp_sendtest", to="kunde@example.com")

    message = server.wait_for_messages(1)[0]
    assert message.rcpt_tos == ["kunde@example.com"]
    assert "SMTP" in message.message["Subject"]
    assert "sent to kunde@example.com" in capsys.readouterr().out


def test_sendtest_says_when_nothing_was_sent(server):
    configure(server, enabled=None)

    with pytest.raises(CommandError, match="Nothing was sent"):
        call_command("icarus_smtp_sendtest", to="kunde@example.com")
    assert server.messages == []
