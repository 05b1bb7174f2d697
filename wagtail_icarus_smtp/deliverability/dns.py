"""DNS lookups for the deliverability checks, with dnspython and no third party.

One ``Resolver`` serves one check: all of its queries share one total deadline
(``ICARUS_SMTP_DNS_TIMEOUT``), so a server that never answers costs that long and no
longer. CNAMEs are followed (also when a server answers with the alias only), and a TXT
record split into several strings is joined into one text, as RFC 7208 §3.3 says.
A name that does not exist, or has no record of the type asked for, is an empty answer;
only a lookup that could not be made raises ``Unavailable``.
"""

import time

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from .. import conf

#: More aliases in a row than this are a loop (or a misconfiguration).
MAX_CNAME_CHAIN = 8


class Unavailable(Exception):
    """The lookup could not be made: no answer within the deadline, or every name server
    failed (SERVFAIL, REFUSED, unreachable). Says nothing about the record itself."""


def parse_nameservers(values):
    """``["ip", "ip:port", "[ip6]:port"]`` as dnspython name servers."""
    servers = []
    for value in values:
        value = value.strip()
        if value.startswith("["):
            address, _bracket, rest = value[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 53
        elif value.count(":") == 1:
            address, _colon, port = value.partition(":")
            port = int(port)
        else:
            address, port = value, 53
        servers.append(dns.nameserver.Do53Nameserver(address, port))
    return servers


def _base_resolver():
    configured = conf.get("DNS_NAMESERVERS")
    if configured:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = parse_nameservers(configured)
    else:
        resolver = dns.resolver.Resolver()
    resolver.cache = None  # results are stored per check run, not per query
    return resolver


class Resolver:
    """Queries for one check, all within ``deadline`` seconds (default: the setting)."""

    def __init__(self, *, deadline=None):
        seconds = conf.get("DNS_TIMEOUT") if deadline is None else deadline
        self.deadline = time.monotonic() + seconds
        self._resolver = _base_resolver()

    def txt(self, name):
        """The TXT records at ``name`` (aliases followed), each as one joined text."""
        return [
            b"".join(rdata.strings).decode("utf-8", "replace")
            for rdata in self._records(name, dns.rdatatype.TXT)
        ]

    def mx(self, name):
        """``[(preference, host)]`` at ``name``, lowest preference first; ``host`` is
        ``""`` for a null MX (RFC 7505: the domain accepts no mail)."""
        records = self._records(name, dns.rdatatype.MX)
        return sorted(
            (rdata.preference, rdata.exchange.to_text(omit_final_dot=True).lower())
            for rdata in records
        )

    def cname(self, name):
        """The target of the alias at ``name``, or ``""`` when it is no alias."""
        answer = self._query(name, dns.rdatatype.CNAME)
        if answer is None or answer.rrset is None:
            return ""
        return answer.rrset[0].target.to_text(omit_final_dot=True).lower()

    def _records(self, name, rdtype):
        for _hop in range(MAX_CNAME_CHAIN):
            answer = self._query(name, rdtype)
            if answer is None:
                return []
            if answer.rrset is not None:
                return list(answer.rrset)
            target = answer.canonical_name
            if target == dns.name.from_text(name):
                return []
            # The server named an alias but not what it points to: ask for the target.
            name = target.to_text()
        raise Unavailable(f"CNAME chain longer than {MAX_CNAME_CHAIN} at {name}")

    def _query(self, name, rdtype):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise Unavailable("deadline passed")
        try:
            return self._resolver.resolve(
                name, rdtype, lifetime=remaining, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return None
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
            raise Unavailable(type(error).__name__) from error
        except dns.exception.DNSException as error:  # malformed name or answer
            raise Unavailable(type(error).__name__) from error
