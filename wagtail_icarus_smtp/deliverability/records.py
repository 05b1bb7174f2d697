"""The DNS records an editor should add (or put in place of one), ready to copy.

Every function returns ``Record`` values: host name, type and value exactly as a DNS
provider's form asks for them. ``action`` says whether the record is new (``add``) or
takes the place of the one found (``replace``).
"""

import dataclasses
import re

ADD = "add"
REPLACE = "replace"

#: The ``all`` term an SPF record should end in: unlisted senders soft-fail.
SOFT_ALL = "~all"


@dataclasses.dataclass(frozen=True)
class Record:
    host: str
    type: str
    value: str
    action: str = ADD
    #: ``(priority)`` for MX records, else ``None``.
    priority: int | None = None

    def as_dict(self):
        return dataclasses.asdict(self)


def spf_new(domain, provider):
    """An SPF record for a domain that has none."""
    if provider is not None and provider.spf_include:
        return Record(domain, "TXT", f"v=spf1 include:{provider.spf_include} {SOFT_ALL}")
    # Unknown provider: its MX hosts are a guess that often holds for hosters that
    # receive and send on the same machines; the panel says to confirm it.
    return Record(domain, "TXT", f"v=spf1 mx {SOFT_ALL}")


def spf_fixed(domain, current, *, include=""):
    """``current`` with ``include:<include>`` added before its ``all`` term and a
    ``+all``/``?all``/``all`` (or a missing one) turned into ``~all``."""
    terms = current.split()
    all_index = next(
        (index for index, term in enumerate(terms) if re.fullmatch(r"[+?~-]?all", term, re.I)),
        None,
    )
    if all_index is None:
        terms.append(SOFT_ALL)
        all_index = len(terms) - 1
    elif terms[all_index].lower() not in ("~all", "-all"):
        terms[all_index] = SOFT_ALL
    if include:
        terms.insert(all_index, f"include:{include}")
    return Record(domain, "TXT", " ".join(terms), action=REPLACE)


def dmarc_new(domain, mailbox):
    """A DMARC record that only watches (``p=none``) and sends the reports to the
    mailbox, so nothing is lost while SPF and DKIM are being put right."""
    return Record(f"_dmarc.{domain}", "TXT", f"v=DMARC1; p=none; rua=mailto:{mailbox}")


def dkim_microsoft(domain):
    """Microsoft 365's two DKIM CNAMEs. The tenant part (``<tenant>``) is shown in the
    Microsoft Defender portal (Email authentication → DKIM) next to the domain."""
    dashed = domain.replace(".", "-")
    return [
        Record(
            f"{selector}._domainkey.{domain}",
            "CNAME",
            f"{selector}-{dashed}._domainkey.<tenant>.onmicrosoft.com",
        )
        for selector in ("selector1", "selector2")
    ]


def dkim_google(domain):
    """Google Workspace's DKIM key: the value is generated in the Admin console."""
    return [Record(f"google._domainkey.{domain}", "TXT", "v=DKIM1; k=rsa; p=<key>")]


def mx_for(domain, provider):
    """The provider's MX records for ``domain``; empty when they are server-specific."""
    if provider is None:
        return []
    dashed = domain.replace(".", "-")
    return [
        Record(domain, "MX", host.format(domain=dashed), priority=priority)
        for priority, host in provider.mx
    ]


def spf_merged(domain, found, *, include=""):
    """One record in place of several: every term once, a single ``~all`` at the end."""
    terms = []
    for record in found:
        for term in record.split()[1:]:
            if not re.fullmatch(r"[+?~-]?all", term, re.I) and term not in terms:
                terms.append(term)
    if include and f"include:{include}" not in terms:
        terms.append(f"include:{include}")
    return Record(domain, "TXT", " ".join(["v=spf1", *terms, SOFT_ALL]), action=REPLACE)
