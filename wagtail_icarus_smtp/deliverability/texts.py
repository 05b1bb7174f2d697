"""What the deliverability results say, in the editor's language.

Results are stored as machine codes with their values; ``describe`` turns one into the
text for the panel and the command, at the time it is shown.
"""

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import checks

LABELS = {
    checks.SPF: "SPF",
    checks.DKIM: "DKIM",
    checks.DMARC: "DMARC",
    checks.MX: "MX",
    checks.REPLY_TO: "Reply-To",
}

#: Shown for each state, and the symbol the panel and the command print.
SYMBOLS = {
    checks.PASS: "✓",
    checks.WARN: "⚠",
    checks.FAIL: "✗",
    checks.INFO: "ℹ",  # noqa: RUF001 (the information sign, meant)
    checks.UNKNOWN: "?",
}
STATE_LABELS = {
    checks.PASS: _("OK"),
    checks.WARN: _("Warning"),
    checks.FAIL: _("Missing or wrong"),
    checks.INFO: _("Cannot be checked from outside"),
    checks.UNKNOWN: _("Could not be checked"),
}

MESSAGES = {
    "provider_domain": _(
        "%(domain)s belongs to the mail provider itself: it maintains SPF, DKIM and DMARC. "
        "You need no DNS records."
    ),
    "dns_unavailable": _(
        "Could not be checked: the DNS did not answer in time. Sending is not affected; "
        "the check is repeated later."
    ),
    "spf_ok": _("SPF record found: %(record)s (%(lookups)s of 10 DNS lookups)."),
    "spf_ok_unverified": _(
        "SPF record found: %(record)s (%(lookups)s of 10 DNS lookups). Whether it covers "
        "your provider's servers cannot be checked for this provider: ask its support."
    ),
    "spf_missing": _(
        "No SPF record: receivers cannot tell that your provider may send e-mails for "
        "%(domain)s, and Gmail, Outlook.com and others file them as spam or refuse them."
    ),
    "spf_multiple": _(
        "%(count)s SPF records found, only one is allowed: receivers ignore them all. "
        "Replace them with this one record."
    ),
    "spf_invalid": _("The SPF record is not valid (“%(term)s”): receivers treat it as an error."),
    "spf_too_many_lookups": _(
        "The SPF record needs %(lookups)s DNS lookups; receivers stop at 10 and treat it "
        "as an error (RFC 7208). Remove the includes of services you no longer use."
    ),
    "spf_include_broken": _(
        "The SPF record includes %(target)s, which has no (or more than one) SPF record: "
        "receivers treat the whole record as an error."
    ),
    "spf_provider_missing": _(
        "The SPF record does not allow the servers of %(provider)s (include:%(include)s "
        "is missing): e-mails sent through %(provider)s fail SPF."
    ),
    "spf_weak_all": _(
        "The SPF record ends in “%(all)s”: it does not tell receivers to distrust other "
        "servers, so forged e-mails in the name of %(domain)s pass. End it in “~all”."
    ),
    "dkim_ok": _("DKIM key published (%(selectors)s)."),
    "dkim_missing_microsoft": _(
        "The DKIM records of Microsoft 365 are missing (%(selectors)s): e-mails are not "
        "signed for %(domain)s. Add these CNAME records; the exact value (with your "
        "tenant in place of <tenant>) is shown in the Microsoft Defender portal under "
        "Email authentication → DKIM. Then switch DKIM signing on there."
    ),
    "dkim_missing_google": _(
        "No DKIM key at google._domainkey.%(domain)s: generate one in the Google Admin "
        "console (Apps → Google Workspace → Gmail → Authenticate email), add it as this "
        "TXT record (the key in place of <key>), then click “Start authentication”."
    ),
    "dkim_not_enabled": _(
        "The DKIM CNAME records exist, but no key is published behind them: switch DKIM "
        "signing on for %(domain)s in the Microsoft Defender portal (Email "
        "authentication → DKIM)."
    ),
    "dkim_not_checkable": _(
        "DKIM cannot be checked from outside: only your provider knows the key's name "
        "(selector). To verify, send a test e-mail to a Gmail mailbox, open it with "
        "“Show original” and look for “dkim=pass” with “header.d=%(domain)s” in "
        "Authentication-Results."
    ),
    "dmarc_ok": _("DMARC policy “%(policy)s”: %(meaning)s %(reports)s"),
    "dmarc_missing": _(
        "No DMARC record: since 2024 Gmail and Yahoo, and since May 2025 Outlook.com, "
        "refuse or spam-file e-mails from domains without one. This record only watches "
        "(p=none) and sends the reports to the mailbox."
    ),
    "dmarc_multiple": _(
        "%(count)s DMARC records found at %(host)s, only one is allowed: receivers ignore "
        "them all. Delete all but one."
    ),
    "dmarc_invalid": _(
        "The DMARC record at %(host)s has no valid policy (p=none, quarantine or reject): "
        "receivers ignore it."
    ),
    "mx_ok": _("E-mails to %(domain)s are received by %(hosts)s."),
    "mx_missing": _(
        "No MX record: replies to the site's e-mails bounce, and some receivers refuse "
        "e-mails from domains that cannot receive any."
    ),
    "mx_null": _("%(domain)s declares that it receives no e-mails (null MX): replies bounce."),
    "reply_to_ok": _(
        "Replies go to %(domain)s (the site's own sender address, kept as Reply-To); it "
        "receives e-mails (%(hosts)s)."
    ),
    "reply_to_missing": _(
        "Replies go to %(domain)s (the site's own sender address, kept as Reply-To), "
        "which has no MX record: replies bounce."
    ),
}

POLICY_MEANINGS = {
    "none": _("receivers only report, e-mails that fail are delivered as usual."),
    "quarantine": _("e-mails that fail go to the spam folder."),
    "reject": _("e-mails that fail are refused."),
}

ACTIONS = {
    "add": _("Add this record"),
    "replace": _("Replace the existing record with"),
}


def describe(result):
    """The text for one stored result (a dict from ``Result.as_dict``)."""
    params = dict(result.get("params", {}))
    if result["code"] == "dmarc_ok":
        params["meaning"] = POLICY_MEANINGS[params["policy"]]
        params["reports"] = (
            gettext("Reports go to %(rua)s.") % {"rua": params["rua"]}
            if params.get("rua")
            else gettext("No reports are requested (rua).")
        )
    template = MESSAGES.get(result["code"])
    if template is None:
        return result["code"]
    try:
        return str(template) % params
    except (KeyError, TypeError, ValueError):  # a result stored by an older version
        return str(template)


def rows(results):
    """The results as the panel and the command show them."""
    return [
        {
            "check": result["check"],
            "label": LABELS.get(result["check"], result["check"]),
            "state": result["state"],
            "symbol": SYMBOLS.get(result["state"], "?"),
            "state_label": str(STATE_LABELS.get(result["state"], "")),
            "text": describe(result),
            "records": [
                {**record, "action_label": str(ACTIONS.get(record["action"], ""))}
                for record in result.get("records", [])
            ],
        }
        for result in results
    ]
