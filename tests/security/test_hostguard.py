"""No way into internal networks through the SMTP host field."""

import socket

import pytest

from tests.utils import submit
from wagtail_icarus_smtp.models import SmtpSettings
from wagtail_icarus_smtp.smtp import hostguard, transport

INTERNAL = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "localhost",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.10",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fd00::1",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::1",
    # Round two: forms that passed where the stdlib's is_global let them (CVE-2024-4032).
    "::127.0.0.1",  # IPv4-compatible
    "::ffff:0:127.0.0.1",  # IPv4-translated (RFC 2765)
    "192.0.0.192",  # IETF protocol assignments
    "64:ff9b:1:7f00:0:100:5db8:d70e",  # local-use NAT64 (RFC 8215): 127.0.0.1 per RFC 6052
    "64:ff9b:1::5db8:d70e",  # the whole local-use NAT64 block, whatever it carries
    "64:ff9b::c000:c0",  # NAT64 of 192.0.0.192
    "::ffff:192.0.0.192",
    "2002:c000:c0::1",  # 6to4 of 192.0.0.192
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "192.88.99.1",
    "198.18.0.1",
    "240.0.0.1",
    "2001:db8::1",
    "3fff::1",
    "5f00::1",
    "100::1",
]


@pytest.fixture
def guarded(settings):
    """The default: no exemptions (the suite otherwise allows loopback for its servers)."""
    settings.ICARUS_SMTP_ALLOWED_HOSTS = []


@pytest.mark.parametrize("host", INTERNAL)
def test_the_form_refuses_internal_addresses(guarded, host, db):
    form = submit(host=host)

    assert "internal network" in " ".join(form.errors["host"])
    assert SmtpSettings.load().host == ""


@pytest.mark.parametrize("host", INTERNAL)
def test_connect_refuses_internal_addresses(guarded, host):
    """Again at connect time (task and backend), for data that reached the database."""
    mailbox = transport.Mailbox(host, 587, "a@example.com", "pw")

    with pytest.raises(hostguard.HostNotAllowed):
        transport.connect(mailbox, transport.Deadline(2))


def fake_resolver(*answers):
    """A resolver answering ``answers`` (one list of addresses per call) in turn."""
    calls = []

    def resolve(host, port, type=0, **kwargs):
        addresses = answers[min(len(calls), len(answers) - 1)]
        calls.append(host)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    resolve.calls = calls
    return resolve


def test_a_mix_of_public_and_internal_addresses_fails(guarded, monkeypatch):
    monkeypatch.setattr(hostguard, "resolver", fake_resolver(["93.184.215.14", "127.0.0.1"]))

    with pytest.raises(hostguard.HostNotAllowed):
        hostguard.resolve("mixed.example", 587)


def test_dns_rebinding_only_the_vetted_address_is_dialled(guarded, monkeypatch):
    """Public on the first answer, loopback on the second: we resolve once and dial
    the vetted address. (The dial is recorded and refused: no traffic leaves.)"""
    resolver = fake_resolver(["93.184.215.14"], ["127.0.0.1"])
    monkeypatch.setattr(hostguard, "resolver", resolver)
    dialled = []

    def create_connection(address, timeout=None, source_address=None):
        dialled.append(address[0])
        raise ConnectionRefusedError(111, "refused in test")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    mailbox = transport.Mailbox("rebind.example", 587, "a@example.com", "pw")

    with pytest.raises(ConnectionRefusedError):
        transport.connect(mailbox, transport.Deadline(2))

    assert resolver.calls == ["rebind.example"]
    assert dialled == ["93.184.215.14"]


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
        "::ffff:93.184.215.14",  # IPv4-mapped, judged by the IPv4 address
        "64:ff9b::5db8:d70e",  # NAT64 (DNS64 answers this for IPv4-only servers)
        "2002:5db8:d70e::1",  # 6to4
    ],
)
def test_public_addresses_pass(address):
    assert hostguard.is_public(address)


@pytest.mark.parametrize(
    ("address", "public"),
    [("::127.0.0.1", False), ("::ffff:0:127.0.0.1", False), ("3fff::1", False), ("8.8.8.8", True)],
)
def test_the_verdict_does_not_ask_the_standard_library(monkeypatch, address, public):
    """``is_global``/``is_private`` vary by Python patch level: the tables decide alone."""
    import ipaddress

    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for name in ("is_global", "is_private", "is_reserved", "is_loopback"):
            monkeypatch.setattr(cls, name, property(lambda self: pytest.fail("stdlib asked")))

    assert hostguard.is_public(address) is public


@pytest.mark.parametrize(
    ("allowed", "host"),
    [(["relay.internal.example"], "relay.internal.example"), (["10.0.0.0/8"], "10.20.30.40")],
)
def test_allowed_hosts_exempt_names_and_networks(settings, monkeypatch, allowed, host):
    settings.ICARUS_SMTP_ALLOWED_HOSTS = allowed
    monkeypatch.setattr(hostguard, "resolver", fake_resolver(["10.20.30.40"]))

    assert hostguard.resolve(host, 587) == ["10.20.30.40"]


@pytest.mark.django_db
def test_the_task_reports_host_not_allowed(guarded, settings, monkeypatch, server):
    """The form let the name through (it did not resolve yet); at connect time it did."""
    settings.ICARUS_SMTP_ALLOWED_HOSTS = []
    monkeypatch.setattr(hostguard, "resolver", fake_resolver(["10.0.0.5"]))
    monkeypatch.setattr(hostguard, "check", lambda host: None)  # as if DNS changed later

    submit(host="smtp.sneaky.example", port=str(server.port))

    smtp_settings = SmtpSettings.load()
    assert smtp_settings.failure_category == "host_not_allowed"
    assert "10.0.0.5" in smtp_settings.current_event.reply
    assert server.sessions == 0
