"""All ``ICARUS_SMTP_*`` settings with their defaults, read at call time.

``conf.get("TIMEOUT")`` returns the project's value or the default below. Unknown
``ICARUS_SMTP_*`` names in the project settings are reported by a system check, and
the cache is dropped on ``setting_changed`` so ``override_settings`` works in tests.
"""

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import Signal

PREFIX = "ICARUS_SMTP_"

DEFAULTS = {
    # Fernet keys (urlsafe base64, 32 bytes). The first encrypts, all decrypt.
    # None: derive one key each from SECRET_KEY and SECRET_KEY_FALLBACKS.
    "ENCRYPTION_KEYS": None,
    # Port -> TLS mode. Only these ports are accepted in the form.
    "PORTS": {587: "starttls", 465: "ssl"},
    # Extra CA bundle (PEM) trusted in addition to the system trust store.
    "CA_FILE": None,
    # Total deadline in seconds for one whole SMTP exchange (test or send).
    "TIMEOUT": 15,
    # A connection test still "running" after TIMEOUT + this many seconds is stale.
    "STALE_MARGIN": 60,
    # Host names or networks (CIDR) the host guard lets through although they are not
    # public addresses, e.g. ["relay.internal", "10.0.0.0/8"]. Empty: only public ones.
    "ALLOWED_HOSTS": [],
    # action -> (per user, whole site, window in seconds) for actions that connect out or
    # send (an action left out of a site's own setting keeps the default below).
    # Counted in the database, so the limits hold across processes.
    "RATE_LIMITS": {
        "test": (10, 30, 600),
        "testmail": (5, 20, 600),
        "outbox": (20, 60, 600),
        # Confirmations with the editor's admin password (a changed mail server).
        "reauth": (10, 100, 600),
        # "Check again" of the deliverability panel (DNS queries).
        "dnscheck": (10, 30, 600),
    },
    # -- outbox (every accepted message is a row until it is delivered) --
    # Messages one worker claims and sends over one connection.
    "OUTBOX_BATCH_SIZE": 500,
    # Seconds a claimed batch belongs to its worker; after that another may take it over.
    "OUTBOX_LEASE": 300,
    # Connections a big backlog is sent over at once (all workers together; threads of
    # the draining worker, each claiming its own batches). Providers limit them too.
    "OUTBOX_CONNECTIONS": 2,
    # Seconds one drain task sends before it queues the next for the rest: keep it
    # well below django-q2's task "timeout" (which would kill it mid-batch).
    "DRAIN_SECONDS": 30,
    # Seconds a drain that emptied the outbox stays for more mail (looking every 50 ms),
    # so a burst of bookings goes out with it instead of one task each; 0: it ends.
    "DRAIN_LINGER": 1.0,
    # First retry after a temporary failure (seconds); doubles per attempt, with jitter.
    "RETRY_DELAY": 60,
    # Longest wait between two attempts (seconds).
    "RETRY_MAX_DELAY": 3600,
    # Seconds the outbox pauses when the provider answers that its send limit is
    # reached and no limit ("max. e-mails") is set (with one: the limit's window).
    "SEND_PAUSE": 900,
    # A message still not delivered this many seconds after it was accepted has failed.
    "MAX_AGE": 2 * 24 * 3600,
    # Days after which message bodies (they hold password-reset links) are deleted.
    "BODY_RETENTION": 7,
    # Days after which delivered or failed messages and their attempts are deleted.
    "LOG_RETENTION": 90,
    # -- alerts and health check --
    # Seconds a message may wait (held or deferred) before an alert is raised.
    "ALERT_AFTER": 3600,
    # Failed deliveries within ALERT_AFTER seconds that raise an alert.
    "ALERT_FAILURES": 3,
    # Seconds after which a still active alert is sent again.
    "ALERT_REMINDER": 24 * 3600,
    # Incoming-webhook URL (Slack, Teams, Mattermost) that receives alerts as JSON.
    "ALERT_WEBHOOK_URL": None,
    # -- OAuth 2.0 (Microsoft 365 app-only, Google Workspace service account) --
    # Microsoft identity platform; tokens come from {this}/{tenant}/oauth2/v2.0/token.
    # Sovereign clouds: https://login.microsoftonline.us, https://login.chinacloudapi.cn.
    "MICROSOFT_LOGIN_URL": "https://login.microsoftonline.com",
    # Days before ``oauth_secret_expires`` at which an alert is raised (each once).
    "SECRET_EXPIRY_WARNINGS": (30, 7),
    # Minutes between two health checks of the live configuration (django-q2 schedule).
    "HEALTH_CHECK_INTERVAL": 60,
    # -- hand-over --
    # True: send in the request right after its commit (sites that cannot run a worker;
    # the request then waits for the mail server). False: only wake the worker.
    "SEND_IN_REQUEST": False,
    # Seconds a wake-up may stay unanswered before the admin says no worker is running.
    "WORKER_GRACE": 60,
    # -- deliverability check (SPF, DKIM, DMARC, MX of the mailbox's domain) --
    # Name servers to ask, as "ip" or "ip:port" ("[ip6]:port"). None: the system resolver.
    "DNS_NAMESERVERS": None,
    # Total deadline in seconds for one check (all its DNS queries together).
    "DNS_TIMEOUT": 5,
    # Seconds a stored result is reused by the periodic check ("Neu prüfen" always asks).
    "DNS_CACHE": 3600,
}

TLS_MODES = ("starttls", "ssl")

_cache = {}

#: Sent when one of our settings (or ``SECRET_KEY``) changed, e.g. in tests: modules
#: that cache something derived from settings (keys, the TLS context) forget it.
reloaded = Signal()


def get(name):
    """Return the value of ``ICARUS_SMTP_<name>`` or its default."""
    if name not in DEFAULTS:
        raise KeyError(f"{PREFIX}{name} is not a setting of wagtail-icarus-smtp")
    if name not in _cache:
        _cache[name] = getattr(settings, PREFIX + name, DEFAULTS[name])
    return _cache[name]


def unknown_names():
    """Names in the project settings that start with the prefix but mean nothing to us."""
    return sorted(
        key
        for key in dir(settings)
        if key.startswith(PREFIX) and key[len(PREFIX) :] not in DEFAULTS
    )


def _reload(*, setting, **kwargs):
    if setting.startswith(PREFIX) or setting in ("SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        _cache.clear()
        reloaded.send(sender=None)


def connect_signals():
    setting_changed.connect(_reload, dispatch_uid="wagtail_icarus_smtp.conf")
