from django.core.management.base import BaseCommand, CommandError

from wagtail_icarus_smtp import providers
from wagtail_icarus_smtp.deliverability import checks, run, texts


class Command(BaseCommand):
    help = (
        "Check SPF, DKIM, DMARC and MX of the live mailbox's domain (or --domain) and "
        "print the DNS records to add. Exit code 0 only when SPF and DMARC pass."
    )

    def add_arguments(self, parser):
        parser.add_argument("--domain", help="check this domain instead of the mailbox's")
        parser.add_argument(
            "--provider",
            choices=sorted(providers.BY_KEY),
            help="the provider that sends for --domain (default: the live configuration's)",
        )

    def handle(self, *args, domain=None, provider=None, **options):
        target = run.live_target()
        chosen = providers.BY_KEY.get(provider or "")
        if domain:
            mailbox = target[3] if target else ""
            live_provider = target[2] if target else None
            self.stdout.write(f"Domain: {domain}")
            results = [
                result.as_dict()
                for result in run.check_domain(
                    domain, provider=chosen or live_provider, mailbox=mailbox
                )
            ]
        elif target is None:
            raise CommandError(
                "No live SMTP configuration yet: complete the setup, or pass --domain."
            )
        else:
            report = run.check_live(force=True)
            self.stdout.write(f"Domain: {report.domain}")
            results = report.results
        for row in texts.rows(results):
            self.stdout.write(f"{row['label']:<9}{row['symbol']} {row['state']:<8}{row['text']}")
            for record in row["records"]:
                priority = f"{record['priority']} " if record["priority"] is not None else ""
                self.stdout.write(
                    f"         {record['action_label']}: {record['host']}  {record['type']}  "
                    f"{priority}{record['value']}"
                )
        states = {result["check"]: result["state"] for result in results}
        if not (states.get(checks.SPF) == checks.PASS and states.get(checks.DMARC) == checks.PASS):
            raise SystemExit(1)
