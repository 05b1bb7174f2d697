"""Provider presets: server and port of the seed's providers, and what editors must know.

One place for the data: the form's choice field, the server-side fill-in and the page's
JavaScript (a JSON script tag, see ``as_json_data``) all read ``PROVIDERS``.
"""

import dataclasses

from django.utils.translation import gettext_lazy as _

OTHER = "other"
MICROSOFT365_METHOD = "microsoft365"


@dataclasses.dataclass(frozen=True)
class Provider:
    key: str
    label: str
    host: str
    port: int
    #: E-mail domains that suggest this provider.
    domains: tuple = ()
    #: What an editor has to know about this provider (app password, SMTP AUTH, sender).
    hint: str = ""
    #: The sign-in method the preset selects ("" keeps the editor's choice).
    auth_method: str = ""


PROVIDERS = (
    Provider(
        "ionos",
        "IONOS / 1&1",
        "smtp.ionos.de",
        587,
        ("ionos.de", "1und1.de", "online.de"),
        _(
            "IONOS accepts only the mailbox itself as sender: the e-mail address must be "
            "exactly the mailbox you log in with."
        ),
    ),
    Provider(
        "strato",
        "Strato",
        "smtp.strato.de",
        587,
        ("strato.de",),
        _(
            "Strato refuses sender addresses of other domains: use the address of the "
            "mailbox itself."
        ),
    ),
    Provider(
        "all-inkl",
        "All-Inkl",
        "smtp.all-inkl.com",
        587,
        (),
        _("Log in with the full e-mail address of the mailbox and its password."),
    ),
    Provider(
        "gmail",
        "Gmail",
        "smtp.gmail.com",
        587,
        ("gmail.com", "googlemail.com"),
        _(
            "Gmail accepts only an app password: switch on 2-step verification in your "
            "Google account, then create an app password under Security → App passwords "
            "and enter it here. It stops working when you change your Google password. "
            "Google Workspace domains can use a service account instead (sign-in method "
            "Google Workspace); personal Gmail accounts keep using app passwords."
        ),
    ),
    Provider(
        "microsoft365",
        "Microsoft 365",
        "smtp.office365.com",
        587,
        ("outlook.com", "hotmail.com", "live.com", "outlook.de", "hotmail.de", "live.de"),
        _(
            "Microsoft switches SMTP login with a password off by default for existing "
            "tenants from the end of December 2026, so sign in with an app registration "
            "(OAuth 2.0) instead — see the setup guide."
        ),
        MICROSOFT365_METHOD,
    ),
)

BY_KEY = {provider.key: provider for provider in PROVIDERS}

OTHER_HINT = _(
    "Take the server and port from your provider's help pages: 587 (STARTTLS) or "
    "465 (SSL/TLS). The server must support TLS."
)


def choices():
    """Choices for the form's provider field: the presets, then "Other"."""
    return [
        ("", "---------"),
        *((provider.key, provider.label) for provider in PROVIDERS),
        (OTHER, _("Other provider")),
    ]


def suggest(email):
    """The key of the provider that hosts ``email``'s domain, or ``""``."""
    domain = email.rpartition("@")[2].strip().lower()
    for provider in PROVIDERS:
        if domain in provider.domains:
            return provider.key
    return ""


def for_host(host):
    """The key of the provider whose server is ``host``, ``OTHER`` or ``""``."""
    if not host:
        return ""
    for provider in PROVIDERS:
        if provider.host == host.lower():
            return provider.key
    return OTHER


def as_json_data():
    """The presets for the page's JavaScript, texts in the active language."""
    data = {
        provider.key: {
            "label": provider.label,
            "host": provider.host,
            "port": provider.port,
            "domains": list(provider.domains),
            "hint": str(provider.hint),
            "auth_method": provider.auth_method,
        }
        for provider in PROVIDERS
    }
    data[OTHER] = {
        "label": str(_("Other provider")),
        "host": "",
        "port": None,
        "domains": [],
        "hint": str(OTHER_HINT),
    }
    return data
