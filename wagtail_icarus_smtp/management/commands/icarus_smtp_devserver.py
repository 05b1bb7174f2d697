from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from wagtail_icarus_smtp import conf, devserver


class Command(BaseCommand):
    help = (
        "Run a local SMTP server on 127.0.0.1 with STARTTLS and AUTH for development: "
        "its CA is written to a file the site trusts (ICARUS_SMTP_CA_FILE), every "
        "received mail is saved as an .eml file and summed up here. Stop with Ctrl-C."
    )
    # A development tool: it must start even while the site's setup is still incomplete.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=devserver.DEFAULT_PORT)
        parser.add_argument("--user", default=devserver.DEFAULT_USER, help="mailbox / login")
        parser.add_argument("--password", default=devserver.DEFAULT_PASSWORD)
        parser.add_argument(
            "--ca-file",
            default=None,
            help="where to write the CA certificate (default: ICARUS_SMTP_CA_FILE if set, "
            f"else ./{devserver.DEFAULT_CA_FILE})",
        )
        parser.add_argument("--maildir", default=devserver.DEFAULT_MAILDIR + "/")
        parser.add_argument(
            "--any-sender",
            action="store_true",
            help="accept any envelope sender, not only the mailbox that logged in",
        )

    def handle(self, *args, **options):
        if not 0 < options["port"] < 65536:
            raise CommandError(f"--port must be between 1 and 65535, not {options['port']}.")
        configured_ca = getattr(settings, "ICARUS_SMTP_CA_FILE", None)
        server = devserver.DevServer(
            port=options["port"],
            user=options["user"],
            password=options["password"],
            ca_file=options["ca_file"] or configured_ca or devserver.DEFAULT_CA_FILE,
            maildir=options["maildir"],
            any_sender=options["any_sender"],
            report=self.report,
        )
        try:
            server.serve_forever(on_started=lambda s: self.banner(s, configured_ca))
        except devserver.DevServerError as exc:
            raise CommandError(str(exc)) from exc
        self.report("Development SMTP server stopped.")

    def report(self, message, style=None):
        self.stdout.write(style(message) if style else message)
        self.stdout.flush()

    def banner(self, server, configured_ca):
        lines = [
            f"Development SMTP server on {server.host}:{server.port} "
            "(STARTTLS required before AUTH; Ctrl-C stops it).",
            "Enter in the Wagtail admin, Settings → SMTP-Einstellungen:",
        ]
        lines += [f"  {label + ':':<13}{value}" for label, value in server.admin_values().items()]
        lines += [
            f"CA certificate: {server.ca_file}",
            f"Received mail:  {server.maildir}/",
        ]
        self.report("\n".join(lines), self.style.SUCCESS)
        for warning in self.setup_warnings(server, configured_ca):
            self.report(warning, self.style.WARNING)

    def setup_warnings(self, server, configured_ca):
        if not configured_ca:
            yield (
                "ICARUS_SMTP_CA_FILE is not set: the site will not trust this server. "
                f'Add ICARUS_SMTP_CA_FILE = "{server.ca_file}" to the settings.'
            )
        elif Path(configured_ca).resolve() != server.ca_file:
            yield (
                f"ICARUS_SMTP_CA_FILE is {configured_ca}, but the CA was written to "
                f"{server.ca_file}: the site will not trust this server."
            )
        ports = conf.get("PORTS")
        if ports.get(server.port) != "starttls":
            wanted = dict(sorted({**ports, server.port: "starttls"}.items()))
            yield (
                f"Port {server.port} is not allowed as a STARTTLS port on this site. "
                f"Add it: ICARUS_SMTP_PORTS = {wanted!r}"
            )
