"""Host guard: the SMTP server an editor types must be a public address.

A host name is resolved once; every address it resolves to must be public (a mix of
public and internal fails), and the connection then goes to one of exactly those
addresses while TLS still verifies the certificate against the host name — so a DNS
answer that changes between the check and the connection cannot redirect it.
"Public" is decided by explicit tables taken from IANA's special-purpose address
registries, never by ``ipaddress``' ``is_global``, whose answer has changed between
Python patch releases (CVE-2024-4032); IPv6 forms that carry an IPv4 address are judged
by that address or refused.
``ICARUS_SMTP_ALLOWED_HOSTS`` exempts host names or networks (an internal relay, the
demo and tests on 127.0.0.1).
"""

import ipaddress
import smtplib
import socket

from django.utils.translation import gettext_lazy as _

from .. import conf
from ..exceptions import IcarusSmtpError

#: Replaced in tests by a resolver that answers what a test needs (e.g. rebinding).
resolver = socket.getaddrinfo


def _networks(*cidrs):
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


#: IPv4 blocks that IANA's special-purpose registry lists as not globally reachable,
#: plus multicast and the reserved 240/4 (with 255.255.255.255). Everything else is a
#: public unicast address. The registry's anycast exceptions inside 192.0.0.0/24 (PCP,
#: TURN) are no mail servers and stay refused with the block.
IPV4_REFUSED = _networks(
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # private
    "100.64.0.0/10",  # shared address space (CGNAT)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local (cloud metadata)
    "172.16.0.0/12",  # private
    "192.0.0.0/24",  # IETF protocol assignments (DS-Lite, NAT64 discovery, …)
    "192.0.2.0/24",  # documentation
    "192.88.99.0/24",  # deprecated 6to4 relay anycast
    "192.168.0.0/16",  # private
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation
    "203.0.113.0/24",  # documentation
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, limited broadcast
)

#: Global unicast IPv6 is 2000::/3 only (loopback, unspecified, ULA, link-local,
#: multicast, discard and the translation prefixes all lie outside it) ...
IPV6_GLOBAL = ipaddress.ip_network("2000::/3")
#: ... minus the blocks inside it that the registry lists as not globally reachable.
#: Its exceptions inside 2001::/23 (anycast, AS112, ORCHID, DRIP) are no mail servers.
IPV6_REFUSED = _networks(
    "2001::/23",  # IETF protocol assignments, incl. Teredo 2001::/32, benchmarking
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation
    "5f00::/16",  # segment routing (SRv6) SIDs
)

#: IPv6 forms that reach an IPv4 address through a translator or tunnel; they are
#: judged by the IPv4 address they carry: (prefix, bits right of the IPv4 address).
IPV4_CARRIERS = (
    (ipaddress.ip_network("::ffff:0:0/96"), 0),  # IPv4-mapped
    (ipaddress.ip_network("64:ff9b::/96"), 0),  # NAT64 well-known prefix (RFC 6052)
    (ipaddress.ip_network("2002::/16"), 80),  # 6to4: bits 16-47
)
#: Forms that carry an IPv4 address too but never name a public server: refused whatever
#: they carry. Most lie outside 2000::/3 anyway; they are listed so that no later edit of
#: the tables above lets them through. IPv4-compatible ::/96 (deprecated),
#: IPv4-translated ::ffff:0:0:0/96 (RFC 2765), local-use NAT64 64:ff9b:1::/48 (RFC 8215,
#: the IPv4 address sits around the "u" octet there), Teredo 2001::/32.
IPV4_CARRIERS_REFUSED = _networks("::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48", "2001::/32")


class HostNotAllowed(IcarusSmtpError, smtplib.SMTPException):
    """Callers of ``send_mail`` catch ``SMTPException``/``OSError``; so can they here."""

    category = "host_not_allowed"
    default_message = _("This server address is not allowed for outgoing mail on this site.")


def _carried_ipv4(address):
    """The IPv4 address an IPv6 address reaches through a translator or tunnel, if any."""
    for network, shift in IPV4_CARRIERS:
        if address in network:
            return ipaddress.IPv4Address((int(address) >> shift) & 0xFFFFFFFF)
    return None


def _allowed_networks():
    networks = []
    for entry in conf.get("ALLOWED_HOSTS"):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a host name, handled by _allowed_name
    return networks


def _allowed_name(host):
    names = {entry.lower().rstrip(".") for entry in conf.get("ALLOWED_HOSTS")}
    return host.lower().rstrip(".") in names


def is_public(address):
    """True for a global unicast address, decided by the tables above alone (the
    standard library's ``is_global`` differs between Python patch levels)."""
    address = ipaddress.ip_address(address)
    if address.version == 4:
        return not any(address in network for network in IPV4_REFUSED)
    carried = _carried_ipv4(address)
    if carried is not None:
        return is_public(carried)
    if any(address in network for network in IPV4_CARRIERS_REFUSED):
        return False
    return address in IPV6_GLOBAL and not any(address in network for network in IPV6_REFUSED)


def is_allowed(address):
    address = ipaddress.ip_address(address)
    if any(address in network for network in _allowed_networks()):
        return True
    return is_public(address)


def resolve(host, port):
    """Resolve ``host`` once and return its addresses, all vetted; raise otherwise.

    Numeric forms such as ``127.1``, ``2130706433`` or ``0x7f000001`` resolve to the
    address they stand for and are judged by it.
    """
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as error:
        raise socket.gaierror(socket.EAI_NONAME, "invalid host name") from error
    addresses = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in addresses:
            addresses.append(sockaddr[0].split("%")[0])
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    if _allowed_name(host):
        return addresses
    refused = [address for address in addresses if not is_allowed(address)]
    if refused:
        raise HostNotAllowed(reply=f"{host} → {', '.join(refused)}")
    return addresses


def check(host):
    """For the form: raise ``HostNotAllowed`` if ``host`` resolves to a refused address.

    A name that does not resolve (yet) is not this guard's business: the connection
    test will report it as a connection failure.
    """
    try:
        resolve(host, 0)
    except HostNotAllowed:
        raise
    except (OSError, UnicodeError):
        return
