"""One bench worker: drains the outbox of the bench database until nothing is due."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    import django
    from django.conf import settings

    django.setup()
    settings.ICARUS_SMTP_CA_FILE = os.environ["BENCH_CA_FILE"]
    settings.ICARUS_SMTP_PORTS = {int(os.environ["BENCH_PORT"]): "starttls"}
    from wagtail_icarus_smtp import outbox

    sent = 0
    while True:
        result = outbox.drain()
        sent += result.sent
        if not (result.sent or result.deferred or result.failed):
            break
    print(sent)


if __name__ == "__main__":
    main()
