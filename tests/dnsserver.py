"""A real DNS server on 127.0.0.1 for the deliverability tests (dnslib), zones per test.

``Zone`` answers from a dict: ``{name: {"TXT": [...], "MX": [(10, host)], "CNAME": target}}``.
A TXT value given as a tuple is sent as several strings in one record (as long SPF
records are published). CNAMEs are followed inside the zone like a recursive resolver
does, unless ``chase_cnames=False`` (then only the alias is answered). Names not in the
zone get NXDOMAIN. ``SilentServer`` binds a port and never answers.
"""

import copy
import socket
import threading

from dnslib import CNAME, MX, QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer

TTL = 60
MAX_CHAIN = 8


def free_port():
    """A port that is free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def _rdata(rtype, value):
    if rtype == "TXT":
        return TXT(list(value) if isinstance(value, tuple) else value)
    if rtype == "MX":
        priority, host = value
        return MX(host or ".", priority)
    if rtype == "CNAME":
        return CNAME(value)
    raise ValueError(rtype)


class Zone(BaseResolver):
    def __init__(self, records, *, chase_cnames=True):
        self.records = {
            name.lower().rstrip("."): copy.deepcopy(types) for name, types in records.items()
        }
        self.chase_cnames = chase_cnames
        self.queries = []

    def _add(self, reply, name, rtype, values):
        values = values if isinstance(values, list) else [values]
        for value in values:
            reply.add_answer(RR(name, getattr(QTYPE, rtype), rdata=_rdata(rtype, value), ttl=TTL))

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        rtype = QTYPE[request.q.qtype]
        self.queries.append((name, rtype))
        if name not in self.records:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for _hop in range(MAX_CHAIN):
            types = self.records.get(name)
            if types is None:
                break
            if "CNAME" in types and rtype != "CNAME":
                self._add(reply, name, "CNAME", types["CNAME"])
                if not self.chase_cnames:
                    break
                name = types["CNAME"].lower().rstrip(".")
                continue
            if rtype in types:
                self._add(reply, name, rtype, types[rtype])
            break
        return reply


class DnsServer:
    """UDP and TCP (for truncated answers) on one port of 127.0.0.1."""

    def __init__(self, zone):
        self.zone = zone
        self.port = free_port()
        logger = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data")
        self.servers = [
            DNSServer(zone, address="127.0.0.1", port=self.port, tcp=tcp, logger=logger)
            for tcp in (False, True)
        ]

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        for server in self.servers:
            threading.Thread(
                target=server.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
            ).start()
        return self

    def stop(self):
        for server in self.servers:
            server.server.shutdown()
            server.server.server_close()


class SilentServer:
    """Receives DNS queries and never answers."""

    def __init__(self):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        return self

    def stop(self):
        self.socket.close()
