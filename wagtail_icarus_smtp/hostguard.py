"""Host guard: the SMTP server an editor types must be a public address.

A host name is resolved once; every address it resolves to must be public (a mix of
public and internal fails), and the connection then goes to one of exactly those
addresses while TLS still verifies the certificate against the host name — so a DNS
answer that changes between the check and the connection cannot redirect it.
``ICARUS_SMTP_ALLOWED_HOSTS`` exempts host names or networks (an internal relay, the
demo and tests on 127.0.0.1).
"""

import ipaddress
import smtplib
import socket

from django.utils.translation import gettext_lazy as _

from . import conf
from .exceptions import IcarusSmtpError

#: Replaced in tests by a resolver that answers what a test needs (e.g. rebinding).
resolver = socket.getaddrinfo

NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class HostNotAllowed(IcarusSmtpError, smtplib.SMTPException):
    """Callers of ``send_mail`` catch ``SMTPException``/``OSError``; so can they here."""

    category = "host_not_allowed"
    default_message = _("This server address is not allowed for outgoing mail on this site.")


def _embedded_ipv4(address):
    """The IPv4 address carried inside an IPv6 one (mapped, NAT64, 6to4), if any."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in network for network in NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour
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
    """True for a global unicast address (embedded IPv4 checked too)."""
    address = ipaddress.ip_address(address)
    if not address.is_global or address.is_multicast:
        return False
    embedded = _embedded_ipv4(address)
    return embedded is None or (embedded.is_global and not embedded.is_multicast)


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
