"""Fixtures shared by the suite: a test CA, local TLS SMTP servers, saved settings."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from tests import dnsserver, mailservers, oauthservers, smtpservers

PASSWORD = "S3cret-Passw0rd!xyz"
MAILBOX = "system@dropzone.example"
#: A German mailbox password: AUTH must carry it in UTF-8 (RFC 4616).
UMLAUT_PASSWORD = "Fallschirm-Straße-äöü"
REFUSED_SENDER = "refused@dropzone.example"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters live in the cache; every test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _drains_do_not_linger(settings):
    """A drain a test runs ends as soon as the outbox is empty; the tests of lingering
    (and the real workers of the qcluster tests) keep the default."""
    settings.ICARUS_SMTP_DRAIN_LINGER = 0


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch):
    """Tests never ask a real DNS server: numeric addresses and ``localhost`` resolve
    locally, every other name does not resolve (tests that need one set a resolver)."""
    from wagtail_icarus_smtp.smtp import hostguard

    def local_only(host, port, *args, **kwargs):
        if host.lower().rstrip(".") == "localhost":
            host = "127.0.0.1"
        kwargs["flags"] = kwargs.get("flags", 0) | socket.AI_NUMERICHOST
        return socket.getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(hostguard, "resolver", local_only)


@pytest.fixture(scope="session", autouse=True)
def _local_dns():
    """Every test asks a local DNS server whose zone is empty (NXDOMAIN, at once) unless
    it starts its own (``dns_zone``): the suite never asks a public DNS server. Worker
    processes (qcluster tests) get the same server through the environment."""
    from django.test import override_settings

    server = dnsserver.DnsServer(dnsserver.Zone({})).start()
    os.environ["ICARUS_TEST_DNS"] = server.address
    with override_settings(ICARUS_SMTP_DNS_NAMESERVERS=[server.address]):
        yield server
    server.stop()


@pytest.fixture
def dns_zone(settings):
    """Start a local DNS server for ``records`` (see ``tests.dnsserver.Zone``) and point
    the deliverability checks at it; stopped at teardown."""
    started = []

    def start(records, *, chase_cnames=True):
        server = dnsserver.DnsServer(dnsserver.Zone(records, chase_cnames=chase_cnames))
        started.append(server.start())
        settings.ICARUS_SMTP_DNS_NAMESERVERS = [server.address]
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def silent_dns(settings):
    """A DNS server that never answers, and a short deadline for the checks."""
    server = dnsserver.SilentServer().start()
    settings.ICARUS_SMTP_DNS_NAMESERVERS = [server.address]
    settings.ICARUS_SMTP_DNS_TIMEOUT = 1
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ca():
    return smtpservers.default_ca()


@pytest.fixture
def start_server(ca):
    """Start a local SMTP server (``smtpservers.SmtpServer`` arguments); stopped at teardown."""
    started = []

    def start(cls=smtpservers.SmtpServer, **kwargs):
        if cls is smtpservers.SmtpServer:
            kwargs.setdefault("ca", ca)
            kwargs.setdefault("users", {MAILBOX: PASSWORD})
        server = cls(**kwargs)
        server.__enter__()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.__exit__(None, None, None)


@pytest.fixture
def trust(settings, ca):
    """Trust the test CA and allow the given server ports (``trust(port, mode)``)."""
    settings.ICARUS_SMTP_CA_FILE = ca.ca_file
    ports = {}

    def allow(port, mode="starttls"):
        ports[port] = mode
        settings.ICARUS_SMTP_PORTS = dict(ports)

    return allow


@pytest.fixture
def server(start_server, trust):
    """A STARTTLS + AUTH server that the plugin trusts."""
    smtp = start_server(mode="starttls")
    trust(smtp.port, "starttls")
    return smtp


@pytest.fixture
def editor(django_user_model):
    return django_user_model.objects.create_superuser("editor", "editor@example.com", "pw")


@pytest.fixture
def smtp_editor(django_user_model):
    """A non-superuser editor who holds only "access admin" and "change SMTP settings"
    (the user the security tests are about; a superuser fixture proves nothing there).
    Password: ``pw``."""
    from django.contrib.auth.models import Group, Permission

    user = django_user_model.objects.create_user("smtp-editor", "smtp-editor@example.com", "pw")
    group = Group.objects.create(name="SMTP editors")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="change_smtpsettings"),
    )
    user.groups.add(group)
    return user


@pytest.fixture
def owner(django_user_model):
    """A superuser (site owner) with an e-mail address: the one a takeover is after."""
    return django_user_model.objects.create_superuser("owner", "owner@dropzone.example", "pw")


@pytest.fixture
def admin_only_user(django_user_model):
    """May use the Wagtail admin, but not change the SMTP settings."""
    from django.contrib.auth.models import Group, Permission

    user = django_user_model.objects.create_user("moderator", "m@example.com", "pw")
    group = Group.objects.create(name="SMTP-less moderators")
    group.permissions.add(Permission.objects.get(codename="access_admin"))
    user.groups.add(group)
    return user


@pytest.fixture
def qcluster(server, ca):
    """A real django-q2 cluster process on the test database (ORM broker)."""
    from tests.utils import ROOT, worker_env

    process = subprocess.Popen(
        [sys.executable, "-m", "django", "qcluster"],
        env=worker_env(server, ca),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def our_backend(settings):
    """Django's test runner swaps in the locmem backend; select ours explicitly."""
    settings.EMAIL_BACKEND = "wagtail_icarus_smtp.backends.EmailBackend"


@pytest.fixture
def postfix(ca, trust):
    """Postfix + Dovecot SASL on loopback (``tests.mailservers``), trusted and allowed;
    users: ``MAILBOX`` with ``UMLAUT_PASSWORD``."""
    mailservers.require(mailservers.POSTFIX_MASTER, mailservers.DOVECOT)
    with mailservers.PostfixDovecot({MAILBOX: UMLAUT_PASSWORD}, ca) as server:
        trust(server.port)
        yield server


@pytest.fixture
def exim(ca, trust):
    """Exim on loopback (``tests.mailservers``), trusted and allowed; users: ``MAILBOX``
    with ``UMLAUT_PASSWORD`` and ``REFUSED_SENDER`` (refused at MAIL FROM, multi-line)."""
    mailservers.require(mailservers.EXIM)
    users = {MAILBOX: UMLAUT_PASSWORD, REFUSED_SENDER: UMLAUT_PASSWORD}
    with mailservers.Exim(users, ca, refused_sender=REFUSED_SENDER) as server:
        trust(server.port)
        yield server


@pytest.fixture
def endpoint(ca, settings):
    """A local HTTPS token endpoint (Microsoft and Google) that the plugin trusts."""
    from wagtail_icarus_smtp.smtp import oauth

    oauth.forget()
    settings.ICARUS_SMTP_CA_FILE = ca.ca_file
    with oauthservers.TokenEndpoint(ca) as running:
        settings.ICARUS_SMTP_MICROSOFT_LOGIN_URL = running.login_url
        yield running
    oauth.forget()


@pytest.fixture
def xserver(start_server, trust, endpoint, ca):
    """A STARTTLS server that accepts only ``AUTH XOAUTH2`` with a token of ``endpoint``."""
    smtp = start_server(oauthservers.XOAuth2Server, endpoint=endpoint, ca=ca, users={MAILBOX: ""})
    trust(smtp.port, "starttls")
    return smtp
