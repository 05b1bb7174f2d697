"""The "Zustellbarkeit" panel as an editor sees it, and who may ask for a new check."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf

from tests.utils import XHR, committed, configure, edit_url, german
from wagtail_icarus_smtp.models import DeliverabilityReport, SmtpLiveConfiguration, SmtpSettings

pytestmark = pytest.mark.django_db

DOMAIN = "dropzone.example"
NO_SPF = {
    DOMAIN: {"MX": [(10, "mx00.ionos.de")]},
    f"_dmarc.{DOMAIN}": {"TXT": ["v=DMARC1; p=none"]},
}


def panel_html(client):
    page = client.get(edit_url()).content.decode()
    match = re.search(
        r"<div class=\"icarus-smtp-deliverability\".*?</template>\s*</div>", page, re.S
    )
    assert match, "no deliverability panel on the page"
    return match.group(0)


def text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def as_ionos():
    SmtpLiveConfiguration.objects.update(host="smtp.ionos.de")


def test_panel_in_german_shows_each_check_and_the_spf_record_to_copy(
    client, dns_zone, server, smtp_editor
):
    dns_zone(NO_SPF)
    configure(server)
    as_ionos()
    client.force_login(german(smtp_editor))
    with committed():
        client.post(reverse("wagtail_icarus_smtp:deliverability"), **XHR)

    html = panel_html(client)
    shown = text(html)

    assert "Zustellbarkeit" in client.get(edit_url()).content.decode()
    assert f"Domain {DOMAIN}, geprüft am" in shown
    assert re.search(r'data-check="spf" data-state="fail"', html)
    assert "Kein SPF-Eintrag" in shown
    assert "Diesen Eintrag hinzufügen" in shown
    assert 'data-icarus-copy="v=spf1 include:_spf-eu.ionos.com ~all"' in html
    assert f'data-icarus-copy="{DOMAIN}"' in html
    assert re.search(r'data-check="dmarc" data-state="pass"', html)
    assert "DMARC-Richtlinie „none“" in shown
    assert re.search(r'data-check="dkim" data-state="info"', html)
    assert "Authentication-Results" in shown
    assert re.search(r'data-check="mx" data-state="pass"', html)
    assert "Neu prüfen" in shown


def test_panel_says_could_not_be_checked_when_the_dns_is_silent(client, silent_dns, server, editor):
    configure(server)
    client.force_login(german(editor))

    shown = text(panel_html(client))

    assert "Konnte nicht geprüft werden" in shown
    assert "Status" in client.get(edit_url()).content.decode()  # the page works


def test_panel_before_the_setup_is_complete(client, editor):
    SmtpSettings.load()
    client.force_login(german(editor))

    assert "Wird geprüft, sobald die Einrichtung abgeschlossen ist." in text(panel_html(client))


def test_check_again_asks_the_dns_and_answers_with_the_new_panel(
    client, dns_zone, server, smtp_editor
):
    zone = dns_zone(NO_SPF).zone
    configure(server)
    as_ionos()
    zone.records[DOMAIN]["TXT"] = ["v=spf1 include:_spf-eu.ionos.com -all"]
    zone.records["_spf-eu.ionos.com"] = {"TXT": ["v=spf1 ip4:212.227.0.0/16 -all"]}
    client.force_login(smtp_editor)

    url = reverse("wagtail_icarus_smtp:deliverability")
    with committed():  # the worker picks the task up once the request has committed
        response = client.post(url, **XHR)

    assert response.status_code == 202
    assert response.json()["pending"] is True
    assert "Checking again" in response.json()["html"]
    data = client.get(url, **XHR).json()  # what the page's script polls
    assert data["pending"] is False
    assert re.search(r'data-check="spf" data-state="pass"', data["html"])
    report = DeliverabilityReport.objects.get()
    assert report.requested_at <= report.checked_at


def test_check_again_without_a_live_configuration_is_refused(client, editor):
    SmtpSettings.load()
    client.force_login(editor)

    response = client.post(reverse("wagtail_icarus_smtp:deliverability"), **XHR)

    assert response.status_code == 409
    assert not DeliverabilityReport.objects.exists()


def test_check_again_is_rate_limited(client, dns_zone, server, smtp_editor, settings):
    dns_zone(NO_SPF)
    configure(server)
    settings.ICARUS_SMTP_RATE_LIMITS = {"dnscheck": (2, 30, 600)}
    client.force_login(smtp_editor)
    url = reverse("wagtail_icarus_smtp:deliverability")

    codes = [client.post(url, **XHR).status_code for _ in range(3)]

    assert codes == [202, 202, 429]


def test_only_editors_with_the_setting_permission_see_or_trigger_the_check(
    client, dns_zone, server, admin_only_user, smtp_editor
):
    zone = dns_zone(NO_SPF).zone
    configure(server)
    url = reverse("wagtail_icarus_smtp:deliverability")
    asked = len(zone.queries)

    client.force_login(admin_only_user)
    assert client.get(url, **XHR).status_code == 403
    assert client.post(url, **XHR).status_code == 403
    assert client.post(url).status_code in (302, 403)
    assert len(zone.queries) == asked
    assert "spf_missing" not in client.get(url).content.decode()

    client.logout()
    response = client.post(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]

    client.force_login(smtp_editor)
    assert client.get(url, **XHR).status_code == 200
    with committed():
        assert client.post(url, **XHR).status_code == 202
    assert len(zone.queries) > asked


def test_the_sites_own_sender_domain_is_shown_for_information(
    client, dns_zone, server, editor, settings
):
    settings.DEFAULT_FROM_EMAIL = "Buchung <buchung@club.example>"  # goes into Reply-To
    dns_zone({**NO_SPF, "club.example": {"MX": [(10, "mx.club.example")]}})
    configure(server)
    client.force_login(german(editor))

    shown = text(panel_html(client))

    assert "Zur Information:" in shown
    assert "Antworten gehen an club.example" in shown
    assert "mx.club.example" in shown


def test_a_check_no_worker_picked_up_is_explained(client, server, editor, monkeypatch):
    configure(server)
    client.force_login(german(editor))
    monkeypatch.setattr(Conf, "SYNC", False)  # queued, and no worker runs
    with committed():
        client.post(reverse("wagtail_icarus_smtp:deliverability"), **XHR)
    assert "Wird erneut geprüft" in text(panel_html(client))

    # Five minutes later, nobody has picked the check up.
    DeliverabilityReport.objects.update(
        checked_at=timezone.now() - timedelta(minutes=10),
        requested_at=timezone.now() - timedelta(minutes=5),
    )

    data = client.get(reverse("wagtail_icarus_smtp:deliverability"), **XHR).json()
    assert data["stale"] is True
    assert "Offenbar läuft kein Hintergrundprozess" in text(data["html"])


def test_dns_text_is_shown_as_text_never_as_html(client, dns_zone, server, editor):
    dns_zone({DOMAIN: {"TXT": ['v=spf1 <img src=x onerror="alert(1)"> ~all']}})
    configure(server)
    client.force_login(editor)

    html = panel_html(client)

    assert "<img" not in html
    assert "&lt;img" in html
