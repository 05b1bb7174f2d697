"""The deliverability check as the site runs it: after a setup, periodically, on request,
from the command line — stored, alerting once, never in the way of setup or sending."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from tests.conftest import MAILBOX
from tests.utils import committed, configure
from wagtail_icarus_smtp import signals, tasks
from wagtail_icarus_smtp.deliverability import texts
from wagtail_icarus_smtp.models import DeliverabilityReport, SmtpLiveConfiguration, SmtpSettings

pytestmark = pytest.mark.django_db

DOMAIN = "dropzone.example"
GOOD = {
    DOMAIN: {"TXT": ["v=spf1 include:_spf-eu.ionos.com ~all"], "MX": [(10, "mx00.ionos.de")]},
    "_spf-eu.ionos.com": {"TXT": ["v=spf1 ip4:212.227.0.0/16 -all"]},
    f"_dmarc.{DOMAIN}": {"TXT": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@dropzone.example"]},
}


def states(report):
    return {row["check"]: row["state"] for row in report.results}


@pytest.fixture
def alerts_sent():
    sent = []

    def receive(sender, **kwargs):
        sent.append(kwargs)

    signals.alert.connect(receive, dispatch_uid="test-deliverability-alerts")
    yield sent
    signals.alert.disconnect(dispatch_uid="test-deliverability-alerts")


def as_ionos():
    """The live mailbox is an IONOS one (the test server stands in for smtp.ionos.de)."""
    SmtpLiveConfiguration.objects.update(host="smtp.ionos.de")


def test_a_successful_setup_checks_the_mailbox_domain_in_the_background(dns_zone, server):
    dns_zone(GOOD)

    configure(server)

    report = SmtpSettings.load().deliverability
    assert report.domain == DOMAIN
    assert report.checked_at is not None
    assert states(report) == {"spf": "pass", "dkim": "info", "dmarc": "pass", "mx": "pass"}


def test_a_dns_server_that_never_answers_does_not_hold_up_the_setup(silent_dns, server):
    smtp_settings = configure(server)

    assert smtp_settings.status == "complete"
    report = smtp_settings.deliverability
    assert states(report)["spf"] == "unknown"
    with translation.override("de"):
        spf = texts.rows(report.results)[0]
    assert spf["state_label"] == "Konnte nicht geprüft werden"
    assert "Der Versand ist davon nicht betroffen" in spf["text"]


def test_the_periodic_check_reuses_a_fresh_result_for_an_hour(dns_zone, server):
    zone = dns_zone(GOOD).zone
    configure(server)
    asked = len(zone.queries)

    with committed():
        tasks.health_check()
    assert len(zone.queries) == asked  # younger than an hour: kept

    # An hour later (the health check runs hourly; a few minutes early still count).
    DeliverabilityReport.objects.update(checked_at=timezone.now() - timedelta(minutes=56))
    with committed():
        tasks.health_check()
    assert len(zone.queries) > asked


def test_check_again_always_asks(dns_zone, server):
    zone = dns_zone(GOOD).zone
    configure(server)
    asked = len(zone.queries)

    tasks.check_deliverability(force=True)

    assert len(zone.queries) > asked


def test_a_check_that_turns_from_pass_to_fail_raises_the_alert_once(dns_zone, server, alerts_sent):
    zone = dns_zone(GOOD).zone
    configure(server)
    as_ionos()
    tasks.check_deliverability(force=True)
    assert states(SmtpSettings.load().deliverability)["spf"] == "pass"
    assert alerts_sent == []

    del zone.records[DOMAIN]["TXT"]  # someone deleted the SPF record
    tasks.check_deliverability(force=True)
    tasks.check_deliverability(force=True)
    with committed():
        tasks.health_check()

    dns_alerts = [alert for alert in alerts_sent if alert["kind"] == "dns_changed"]
    assert len(dns_alerts) == 1
    assert dns_alerts[0]["active"] is True
    assert "SPF" in dns_alerts[0]["message"]
    assert SmtpSettings.load().deliverability.regressed == ["spf"]

    zone.records[DOMAIN]["TXT"] = ["v=spf1 include:_spf-eu.ionos.com ~all"]
    tasks.check_deliverability(force=True)

    dns_alerts = [alert for alert in alerts_sent if alert["kind"] == "dns_changed"]
    assert [alert["active"] for alert in dns_alerts] == [True, False]


def test_a_dns_outage_neither_raises_nor_ends_the_alert(dns_zone, server, alerts_sent, request):
    zone = dns_zone(GOOD).zone
    configure(server)
    del zone.records[DOMAIN]["TXT"]
    tasks.check_deliverability(force=True)
    assert len(alerts_sent) == 1

    request.getfixturevalue("silent_dns")  # from now on nobody answers
    tasks.check_deliverability(force=True)
    assert states(SmtpSettings.load().deliverability)["spf"] == "unknown"
    assert SmtpSettings.load().deliverability.regressed == ["spf"]
    assert len(alerts_sent) == 1


def test_a_check_failing_from_the_start_raises_no_alert(dns_zone, server, alerts_sent):
    dns_zone({})

    configure(server)
    tasks.check_deliverability(force=True)

    assert states(SmtpSettings.load().deliverability)["spf"] == "fail"
    assert [a for a in alerts_sent if a["kind"] == "dns_changed"] == []


# -- the command ---------------------------------------------------------------------------


def test_command_exits_zero_when_spf_and_dmarc_pass(dns_zone, server, capsys):
    dns_zone(GOOD)
    configure(server)
    as_ionos()

    call_command("icarus_smtp_dnscheck")

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"Domain: {DOMAIN}"
    assert lines[1].startswith("SPF      ✓ pass")
    assert lines[2].startswith("DKIM     ℹ info")  # noqa: RUF001 (the sign printed)
    assert lines[3].startswith("DMARC    ✓ pass")
    assert "quarantine" in lines[3]
    assert lines[4].startswith("MX       ✓ pass")


def test_command_exits_one_and_prints_the_records_to_add(dns_zone, capsys):
    dns_zone({})

    with pytest.raises(SystemExit) as exit_info:
        call_command("icarus_smtp_dnscheck", "--domain", "club.example", "--provider", "ionos")

    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "SPF      ✗ fail" in out
    assert "Add this record: club.example  TXT  v=spf1 include:_spf-eu.ionos.com ~all" in out
    assert "Add this record: _dmarc.club.example  TXT  v=DMARC1; p=none" in out
    assert "Add this record: club.example  MX  10 mx00.ionos.de" in out


def test_command_exits_one_when_dmarc_is_missing(dns_zone, server, capsys):
    zone = dict(GOOD)
    del zone[f"_dmarc.{DOMAIN}"]
    dns_zone(zone)
    configure(server)

    with pytest.raises(SystemExit) as exit_info:
        call_command("icarus_smtp_dnscheck")

    assert exit_info.value.code == 1
    assert "DMARC    ✗ fail" in capsys.readouterr().out


def test_command_exits_one_when_the_dns_does_not_answer(silent_dns, capsys):
    with pytest.raises(SystemExit) as exit_info:
        call_command("icarus_smtp_dnscheck", "--domain", DOMAIN)

    assert exit_info.value.code == 1
    assert "SPF      ? unknown" in capsys.readouterr().out


def test_command_for_a_providers_own_domain_passes(dns_zone, capsys):
    dns_zone({})

    call_command("icarus_smtp_dnscheck", "--domain", "gmx.de")

    assert "gmx.de belongs to the mail provider itself" in capsys.readouterr().out


def test_command_without_a_live_configuration_asks_for_a_domain():
    with pytest.raises(CommandError, match="--domain"):
        call_command("icarus_smtp_dnscheck")


def test_command_checks_a_mailbox_of_the_live_configuration(dns_zone, server, capsys):
    dns_zone(GOOD)
    configure(server)

    call_command("icarus_smtp_dnscheck", "--domain", DOMAIN)

    assert MAILBOX.split("@")[1] in capsys.readouterr().out
