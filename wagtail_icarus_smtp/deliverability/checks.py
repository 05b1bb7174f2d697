"""SPF, DKIM, DMARC and MX of one domain: what is published, judged, and what to add.

Each check asks the DNS through a ``dns.Resolver`` of its own (its own deadline) and
returns a ``Result``: a state, a message code with its values (translated when shown,
see ``texts``) and the records to add. A lookup that cannot be made is the state
``UNKNOWN`` ("could not be checked"), never an error. Nothing here touches the database.
"""

import dataclasses
import ipaddress
import re

from .. import providers
from . import records
from .dns import Resolver, Unavailable

PASS = "pass"  # noqa: S105 (a check state, not a password)
WARN = "warn"
FAIL = "fail"
#: Not checkable from outside (DKIM of most hosters): says how to verify instead.
INFO = "info"
#: The DNS did not answer: "could not be checked".
UNKNOWN = "unknown"

SPF = "spf"
DKIM = "dkim"
DMARC = "dmarc"
MX = "mx"
#: The domain of the site's own From address, which goes into Reply-To: information only.
REPLY_TO = "reply_to"
CHECKS = (SPF, DKIM, DMARC, MX)

#: RFC 7208 §4.6.4: evaluating an SPF record may cause at most 10 DNS lookups.
SPF_MAX_LOOKUPS = 10
#: Mechanisms and modifiers that cost a DNS lookup (RFC 7208 §4.6.4).
SPF_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
DMARC_POLICIES = ("none", "quarantine", "reject")

_SPF_ALL = re.compile(r"[+?~-]?all", re.IGNORECASE)
_SPF_MECHANISM = re.compile(
    r"(?P<qualifier>[+?~-]?)(?P<name>all|include|a|mx|ptr|ip4|ip6|exists)"
    r"(?::(?P<arg>[^/\s]+))?(?P<cidr>/\d{1,3}(?://\d{1,3})?|//\d{1,3})?",
    re.IGNORECASE,
)
_SPF_MODIFIER = re.compile(r"(?P<name>[a-z][a-z0-9_.-]*)=(?P<arg>\S*)", re.IGNORECASE)


@dataclasses.dataclass
class Result:
    check: str
    state: str
    code: str
    params: dict = dataclasses.field(default_factory=dict)
    records: list = dataclasses.field(default_factory=list)

    def as_dict(self):
        return {
            "check": self.check,
            "state": self.state,
            "code": self.code,
            "params": self.params,
            "records": [record.as_dict() for record in self.records],
        }


def domain_of(address):
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def run_all(domain, *, provider=None, mailbox="", reply_to_domain=""):
    """The four checks for ``domain`` (and the Reply-To information), in order.

    ``provider`` is a ``providers.Provider`` or ``None``; ``mailbox`` receives the DMARC
    reports in the suggested record. Each check has its own deadline.
    """
    domain = domain.lower().rstrip(".")
    if providers.is_provider_domain(domain):
        results = [Result(check, PASS, "provider_domain", {"domain": domain}) for check in CHECKS]
    else:
        results = [
            _guarded(SPF, spf, domain, provider),
            _guarded(DKIM, dkim, domain, provider),
            _guarded(DMARC, dmarc, domain, mailbox or f"postmaster@{domain}"),
            _guarded(MX, mx, domain, provider),
        ]
    if reply_to_domain and reply_to_domain != domain:
        results.append(_guarded(REPLY_TO, reply_to, reply_to_domain))
    return results


def _guarded(check, function, *args):
    try:
        return function(*args, Resolver())
    except Unavailable:
        return Result(check, UNKNOWN, "dns_unavailable", {"domain": args[0]})


# -- SPF ---------------------------------------------------------------------------------


def spf_records(resolver, domain):
    return [
        text.strip()
        for text in resolver.txt(domain)
        if text.strip().lower() == "v=spf1" or text.strip().lower().startswith("v=spf1 ")
    ]


def spf_syntax_error(record):
    """The first term of ``record`` that is not valid SPF, or ``""``."""
    for term in record.split()[1:]:
        mechanism = _SPF_MECHANISM.fullmatch(term)
        if mechanism is None:
            if _SPF_MODIFIER.fullmatch(term) is None:
                return term
            continue
        name, arg = mechanism["name"].lower(), mechanism["arg"]
        if name in ("include", "exists") and not arg:
            return term
        if name in ("ip4", "ip6") and not _valid_network(arg, mechanism["cidr"], name):
            return term
        if name == "all" and (arg or mechanism["cidr"]):
            return term
    return ""


def _valid_network(address, cidr, name):
    if not address:
        return False
    try:
        network = ipaddress.ip_network(address + (cidr or ""), strict=False)
    except ValueError:
        return False
    return network.version == (4 if name == "ip4" else 6)


@dataclasses.dataclass
class _SpfTree:
    lookups: int = 0
    includes: set = dataclasses.field(default_factory=set)
    broken: list = dataclasses.field(default_factory=list)


def _terms(record):
    """``(name, arg)`` of each term after ``v=spf1``, names lower-case."""
    for term in record.split()[1:]:
        mechanism = _SPF_MECHANISM.fullmatch(term)
        if mechanism is not None:
            yield mechanism["name"].lower(), (mechanism["arg"] or "").lower()
            continue
        modifier = _SPF_MODIFIER.fullmatch(term)
        if modifier is not None:
            yield modifier["name"].lower(), modifier["arg"].lower()


def _walk(resolver, record, tree, depth=0):
    """Count the lookups of ``record`` and of every record it includes."""
    terms = list(_terms(record))
    has_all = any(name == "all" for name, _arg in terms)
    for name, arg in terms:
        if name not in SPF_LOOKUP_TERMS or (name == "redirect" and has_all):
            continue
        tree.lookups += 1
        if name not in ("include", "redirect") or "%" in arg:  # macros: not expandable
            continue
        tree.includes.add(arg.rstrip("."))
        if tree.lookups > SPF_MAX_LOOKUPS or depth >= SPF_MAX_LOOKUPS:
            continue
        found = spf_records(resolver, arg)
        if len(found) != 1:
            tree.broken.append(arg)
            continue
        _walk(resolver, found[0], tree, depth + 1)


def _all_term(record):
    """The record's ``all`` term as written (``"+all"`` for a bare ``all``), or ``""``."""
    for term in record.split()[1:]:
        if _SPF_ALL.fullmatch(term):
            return term.lower() if term[0] in "+?~-" else "+" + term.lower()
    return ""


def spf(domain, provider, resolver):
    found = spf_records(resolver, domain)
    include = provider.spf_include if provider is not None else ""
    if not found:
        return Result(
            SPF, FAIL, "spf_missing", {"domain": domain}, [records.spf_new(domain, provider)]
        )
    if len(found) > 1:
        merged = records.spf_merged(domain, found, include=include)
        return Result(SPF, FAIL, "spf_multiple", {"count": len(found)}, [merged])
    record = found[0]
    params = {"domain": domain, "record": record}
    error = spf_syntax_error(record)
    if error:
        replacement = dataclasses.replace(records.spf_new(domain, provider), action=records.REPLACE)
        return Result(SPF, FAIL, "spf_invalid", {**params, "term": error}, [replacement])
    tree = _SpfTree()
    _walk(resolver, record, tree)
    params["lookups"] = tree.lookups
    if tree.lookups > SPF_MAX_LOOKUPS:
        return Result(SPF, FAIL, "spf_too_many_lookups", params)
    if tree.broken:
        return Result(SPF, FAIL, "spf_include_broken", {**params, "target": tree.broken[0]})
    all_term = _all_term(record)
    has_redirect = any(name == "redirect" for name, _arg in _terms(record))
    missing_include = bool(include) and include not in tree.includes
    weak_all = all_term in ("+all", "?all") or (not all_term and not has_redirect)
    if missing_include or weak_all:
        fixed = records.spf_fixed(domain, record, include=include if missing_include else "")
        if missing_include:
            params.update(provider=provider.label, include=include)
            return Result(SPF, FAIL, "spf_provider_missing", params, [fixed])
        return Result(SPF, WARN, "spf_weak_all", {**params, "all": all_term or "—"}, [fixed])
    if provider is None:
        return Result(SPF, PASS, "spf_ok_unverified", params)
    return Result(SPF, PASS, "spf_ok", params)


# -- DKIM --------------------------------------------------------------------------------


def has_dkim_key(texts):
    """One of ``texts`` is a DKIM key record with a key (an empty ``p=`` is revoked)."""
    for text in texts:
        match = re.search(r"(?:^|;)\s*p=([^;]*)", text)
        if match and match.group(1).strip():
            return True
    return False


def dkim(domain, provider, resolver):
    scheme = provider.dkim if provider is not None else ""
    if scheme == providers.DKIM_MICROSOFT:
        return _dkim_microsoft(domain, resolver)
    if scheme == providers.DKIM_GOOGLE:
        name = f"google._domainkey.{domain}"
        if has_dkim_key(resolver.txt(name)):
            return Result(DKIM, PASS, "dkim_ok", {"selectors": name})
        return Result(
            DKIM, FAIL, "dkim_missing_google", {"domain": domain}, records.dkim_google(domain)
        )
    label = provider.label if provider is not None else ""
    return Result(DKIM, INFO, "dkim_not_checkable", {"domain": domain, "provider": label})


def _dkim_microsoft(domain, resolver):
    names = [f"{selector}._domainkey.{domain}" for selector in ("selector1", "selector2")]
    targets = {name: resolver.cname(name) for name in names}
    missing = [name for name, target in targets.items() if not target]
    if missing:
        wanted = [record for record in records.dkim_microsoft(domain) if record.host in missing]
        return Result(
            DKIM,
            FAIL,
            "dkim_missing_microsoft",
            {"domain": domain, "selectors": ", ".join(missing)},
            wanted,
        )
    if not any(has_dkim_key(resolver.txt(target)) for target in targets.values()):
        return Result(DKIM, WARN, "dkim_not_enabled", {"domain": domain})
    return Result(DKIM, PASS, "dkim_ok", {"selectors": ", ".join(names)})


# -- DMARC -------------------------------------------------------------------------------


def dmarc_tags(record):
    tags = {}
    for part in record.split(";"):
        key, _equals, value = part.partition("=")
        if key.strip():
            tags.setdefault(key.strip().lower(), value.strip())
    return tags


def _dmarc_names(domain):
    """Where a receiver looks: the domain, then its organisational domain (here: the
    last two labels, RFC 7489 §6.6.3 without the public suffix list)."""
    labels = domain.split(".")
    names = [domain]
    if len(labels) > 2:
        names.append(".".join(labels[-2:]))
    return names


def dmarc(domain, mailbox, resolver):
    found, where = [], domain
    for name in _dmarc_names(domain):
        found = [
            text.strip()
            for text in resolver.txt(f"_dmarc.{name}")
            if text.strip().lower().startswith("v=dmarc1")
        ]
        if found:
            where = name
            break
    if not found:
        return Result(
            DMARC, FAIL, "dmarc_missing", {"domain": domain}, [records.dmarc_new(domain, mailbox)]
        )
    params = {"domain": domain, "record": found[0], "host": f"_dmarc.{where}"}
    if len(found) > 1:
        return Result(DMARC, FAIL, "dmarc_multiple", {**params, "count": len(found)})
    tags = dmarc_tags(found[0])
    policy = tags.get("p", "").lower()
    if where != domain and tags.get("sp"):
        policy = tags["sp"].lower()
    if policy not in DMARC_POLICIES:
        replacement = dataclasses.replace(records.dmarc_new(where, mailbox), action=records.REPLACE)
        return Result(DMARC, FAIL, "dmarc_invalid", params, [replacement])
    params.update(policy=policy, rua=tags.get("rua", ""))
    return Result(DMARC, PASS, "dmarc_ok", params)


# -- MX ----------------------------------------------------------------------------------


def _mx_hosts(resolver, domain):
    return [(priority, host) for priority, host in resolver.mx(domain)]


def mx(domain, provider, resolver):
    hosts = _mx_hosts(resolver, domain)
    if not hosts:
        return Result(MX, WARN, "mx_missing", {"domain": domain}, records.mx_for(domain, provider))
    if all(host in ("", ".", "@") for _priority, host in hosts):
        return Result(MX, WARN, "mx_null", {"domain": domain}, records.mx_for(domain, provider))
    names = ", ".join(host for _priority, host in hosts)
    return Result(MX, PASS, "mx_ok", {"domain": domain, "hosts": names})


def reply_to(domain, resolver):
    """Replies go to the site's own From domain: it should receive mail."""
    hosts = [host for _priority, host in _mx_hosts(resolver, domain) if host not in ("", ".")]
    if hosts:
        return Result(REPLY_TO, PASS, "reply_to_ok", {"domain": domain, "hosts": ", ".join(hosts)})
    return Result(REPLY_TO, WARN, "reply_to_missing", {"domain": domain})
