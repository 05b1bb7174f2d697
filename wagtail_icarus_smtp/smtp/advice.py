"""The exact fix for a refused OAuth sign-in, read from the reply we kept.

The failure category says what kind of thing went wrong; for OAuth the reply says
precisely which one (an ``AADSTS`` number, ``535 5.7.3``, Google's ``unauthorized_client``),
and the fix differs for each. For Microsoft 365 the PowerShell commands come with the
tenant, the app and the mailbox filled in. Nothing here is secret: ids and the mailbox.
"""

import dataclasses
import re

from django.utils.translation import gettext as _

MICROSOFT365 = "microsoft365"
GOOGLE = "google"
ENHANCED = re.compile(r"\b5\.7\.(3|139)\b")


@dataclasses.dataclass(frozen=True)
class Advice:
    fix: str
    commands: str = ""


def _secret_value():
    return _(
        "The client secret is wrong. In the app registration under Certificates & "
        "secrets, copy the secret's Value (not the Secret ID) and enter it here."
    )


def _secret_expired():
    return _(
        "The client secret has expired. Create a new client secret under Certificates & "
        "secrets, enter its value and its new expiry date here, and save."
    )


def _app_not_in_tenant():
    return _(
        "The application (client ID) was not found in this tenant: check the client ID, "
        "and that the app was registered in this tenant (or consented to in it)."
    )


def _tenant_unknown():
    return _(
        "The tenant was not found: enter the Directory (tenant) ID from the app "
        "registration's overview page, or the tenant's domain."
    )


#: AADSTS number -> the fix.
AADSTS = {
    "7000215": _secret_value,
    "7000222": _secret_expired,
    "700016": _app_not_in_tenant,
    "90002": _tenant_unknown,
}


def for_failure(category, reply, config):
    """``Advice`` for a failure of ``config`` (draft or live row), or ``None`` when the
    category's general fix is all there is to say."""
    method = getattr(config, "auth_method", "")
    reply = reply or ""
    if method == MICROSOFT365:
        return _microsoft(category, reply, config)
    if method == GOOGLE:
        return _google(reply, config)
    return None


def _microsoft(category, reply, config):
    found = re.search(r"AADSTS(\d+)", reply)
    if found and found.group(1) in AADSTS:
        return Advice(AADSTS[found.group(1)]())
    enhanced = ENHANCED.search(reply)
    if reply.startswith("535") and enhanced and enhanced.group(1) == "3":
        return Advice(
            _(
                "Microsoft issued a token, but the app may not send as this mailbox: "
                "Exchange Online needs the app's service principal and a permission on "
                "the mailbox. An Exchange administrator runs (the object ID is the one "
                "of the Enterprise application, not of the app registration):"
            ),
            _commands(config, permission=True),
        )
    if category == "auth_disabled" or (enhanced and enhanced.group(1) == "139"):
        return Advice(
            _(
                "SMTP AUTH is switched off for this mailbox or the whole tenant. An "
                "Exchange administrator switches it on for the mailbox:"
            ),
            _commands(config, permission=False),
        )
    return None


def _commands(config, *, permission):
    mailbox = config.email or "<mailbox>"
    app = config.oauth_client_id or "<client-id>"
    lines = [f"Connect-ExchangeOnline -Organization {config.oauth_tenant_id or '<tenant>'}"]
    if permission:
        lines += [
            f"New-ServicePrincipal -AppId {app} -ObjectId <enterprise-app-object-id>",
            f"Add-MailboxPermission -Identity {mailbox} -User <enterprise-app-object-id> "
            "-AccessRights FullAccess",
        ]
    lines.append(f"Set-CASMailbox -Identity {mailbox} -SmtpClientAuthenticationDisabled $false")
    return "\n".join(lines)


def _google(reply, config):
    if "unauthorized_client" in reply:
        return Advice(
            _(
                "Domain-wide delegation is not granted for this scope. In the Google Admin "
                "console under Security → Access and data control → API controls → "
                "Domain-wide delegation, add the service account's client ID (client_id "
                "in the key file) with the scope https://mail.google.com/ — it can take a "
                "few minutes to apply."
            )
        )
    if reply.startswith("535"):
        return Advice(
            _(
                "Google refused the token for %(mailbox)s: the mailbox must be a user of "
                "the Workspace domain that granted the delegation, with Gmail switched on."
            )
            % {"mailbox": config.email}
        )
    return None
