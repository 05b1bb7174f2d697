"""Provider presets: server and port of the seed's providers, and what editors must know.

One place for the data: the form's choice field, the server-side fill-in and the page's
JavaScript (a JSON script tag, see ``as_json_data``) all read ``PROVIDERS``.
"""

import dataclasses

from django.utils.translation import gettext_lazy as _

OTHER = "other"
MICROSOFT365_METHOD = "microsoft365"

#: DKIM schemes (``Provider.dkim``). Microsoft 365: two CNAMEs, ``selector1._domainkey``
#: and ``selector2._domainkey``, pointing into the tenant's ``onmicrosoft.com`` domain.
#: Google Workspace: a TXT record at ``google._domainkey`` (the default selector).
DKIM_MICROSOFT = "microsoft365"
DKIM_GOOGLE = "google"

#: The time windows of a send limit (``Provider.send_limit``, the form's period field)
#: and their length in seconds.
PER_HOUR = "hour"
PER_MINUTE = "minute"
WINDOW_SECONDS = {PER_HOUR: 3600, PER_MINUTE: 60}


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
    #: The ``include:`` that authorises the provider's sending hosts in a customer
    #: domain's SPF record (``""``: the provider documents none we could confirm).
    spf_include: str = ""
    #: How the provider publishes DKIM keys for customer domains: ``DKIM_MICROSOFT``,
    #: ``DKIM_GOOGLE`` or ``""`` (not documented: the key cannot be checked from outside).
    dkim: str = ""
    #: ``(priority, host)`` of the MX records for customer domains; ``{domain}`` is the
    #: domain with its dots as dashes (Microsoft's scheme). Empty: server-specific.
    mx: tuple = ()
    #: The provider's documented limit of e-mails one mailbox may send per
    #: ``send_limit_period`` (``PER_HOUR`` or ``PER_MINUTE``); ``None`` where none is
    #: documented for an hour or a minute.
    send_limit: int | None = None
    send_limit_period: str = PER_HOUR


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
        # https://www.ionos.de/hilfe/domains/mailserver-und-verwandte-records-konfigurieren/spam-versand-vermeiden-mit-spf-record
        # (IONOS SPF: "v=spf1 include:_spf-eu.ionos.com ~all"); MX: mx00/mx01.ionos.de,
        # https://www.ionos.de/hilfe/domains/mailserver-und-verwandte-records-konfigurieren/
        spf_include="_spf-eu.ionos.com",
        mx=((10, "mx00.ionos.de"), (10, "mx01.ionos.de")),
        # https://www.ionos.com/help/email/general-topics/what-are-the-mass-mailing-limits/
        # Mail Basic / Mail Business: 500 e-mails per hour for mailboxes older than 30
        # days (50, 100, 400 in the first week, second week, first month); over the
        # limit: "450 Mail send limit exceeded".
        send_limit=500,
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
        # Strato's help pages (strato.de/faq/mail) set SPF for domains in Strato's DNS
        # automatically but name no include for other DNS hosts that we could confirm:
        # left empty, so the check does not claim a missing include it cannot know.
        # No send limit per hour or minute documented that we could confirm: empty.
    ),
    Provider(
        "all-inkl",
        "All-Inkl",
        "smtp.all-inkl.com",
        587,
        (),
        _("Log in with the full e-mail address of the mailbox and its password."),
        # https://all-inkl.com/wichtig/anleitungen/kas/tools/dns-werkzeuge/spf-eintrag-anlegen_482.html
        # and the KAS default record "v=spf1 a mx include:spf.kasserver.com ~all".
        # MX hosts are per server (w0xxxxxx.kasserver.com): not guessed here.
        # No send limit per hour or minute documented that we could confirm: empty.
        spf_include="spf.kasserver.com",
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
        # SPF: https://support.google.com/a/answer/10685031 ("include:_spf.google.com");
        # DKIM: https://support.google.com/a/answer/174124 (default selector "google");
        # MX: https://support.google.com/a/answer/174125 ("smtp.google.com", priority 1).
        spf_include="_spf.google.com",
        dkim=DKIM_GOOGLE,
        mx=((1, "smtp.google.com"),),
        # Google documents daily limits only (https://support.google.com/a/answer/166852,
        # 500 a day for Gmail accounts): no limit per hour or minute, left empty.
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
        # SPF: https://learn.microsoft.com/defender-office-365/email-authentication-spf-configure
        # ("include:spf.protection.outlook.com"); DKIM: selector1/selector2 CNAMEs,
        # https://learn.microsoft.com/defender-office-365/email-authentication-dkim-configure;
        # MX: "<domain-with-dashes>.mail.protection.outlook.com", priority 0,
        # https://learn.microsoft.com/microsoft-365/enterprise/external-domain-name-system-records
        spf_include="spf.protection.outlook.com",
        dkim=DKIM_MICROSOFT,
        mx=((0, "{domain}.mail.protection.outlook.com"),),
        # https://learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits#sending-limits
        # "Message rate limit: 30 messages per minute" (and 10,000 recipients a day).
        send_limit=30,
        send_limit_period=PER_MINUTE,
    ),
)

BY_KEY = {provider.key: provider for provider in PROVIDERS}

#: Domains whose mailboxes the provider itself runs (freemail): SPF, DKIM and DMARC of
#: these are the provider's business, the site owner cannot and need not add records.
MAILBOX_PROVIDER_DOMAINS = frozenset(
    {
        *(domain for provider in PROVIDERS for domain in provider.domains),
        "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "gmx.com", "web.de", "t-online.de",
        "freenet.de", "mail.de", "posteo.de", "yahoo.com", "yahoo.de", "icloud.com",
        "me.com", "aol.com", "aol.de", "mailbox.org", "proton.me", "protonmail.com",
    }
)  # fmt: skip

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


#: The form fields a preset fills in (``Provider`` attributes of the same name). The
#: page's script applies every one of them, so a new preset field only goes here.
PRESET_FIELDS = ("host", "port", "auth_method", "send_limit", "send_limit_period")
#: Preset fields whose empty value keeps the editor's choice; any other is applied
#: empty too (a provider without a documented limit clears the previous one's).
KEPT_WHEN_EMPTY = ("auth_method",)


def as_json_data():
    """The presets for the page's JavaScript, texts in the active language.

    ``fields`` are the form values a preset sets (an empty sign-in method keeps the
    editor's choice, an empty limit clears the previous one);
    "Other provider" clears the server fields of the previous preset."""
    data = {
        provider.key: {
            "label": provider.label,
            "domains": list(provider.domains),
            "hint": str(provider.hint),
            "fields": {
                name: getattr(provider, name)
                for name in PRESET_FIELDS
                if name not in KEPT_WHEN_EMPTY or getattr(provider, name)
            },
        }
        for provider in PROVIDERS
    }
    data[OTHER] = {
        "label": str(_("Other provider")),
        "domains": [],
        "hint": str(OTHER_HINT),
        # The server, port and limit of the previous preset are cleared; the sign-in
        # method and the limit's period stay as they are.
        "fields": {name: "" for name in ("host", "port", "send_limit")},
    }
    return data


def for_mailbox(host, email):
    """The provider of a mailbox: from its SMTP server, else from its address's domain.

    Returns a ``Provider`` or ``None`` (another provider, or nothing known).
    """
    return BY_KEY.get(for_host(host)) or BY_KEY.get(suggest(email))


def is_provider_domain(domain):
    """``domain`` belongs to a mail provider itself (gmail.com, gmx.de, …)."""
    return domain.lower().rstrip(".") in MAILBOX_PROVIDER_DOMAINS
