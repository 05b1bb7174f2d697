"""Several processes/threads at once (as on PostgreSQL with several workers)."""

import threading

import pytest
from django.db import connection

from tests.utils import site_editor, submit
from wagtail_icarus_smtp.models import SmtpSettings
from wagtail_icarus_smtp.setup import live


@pytest.mark.django_db(transaction=True)
def test_concurrent_saves_get_distinct_versions_and_only_the_newest_goes_live(server):
    SmtpSettings.load()  # the row and the editor exist before the editors race
    site_editor()
    barrier = threading.Barrier(4)
    errors = []

    def save(index):
        try:
            barrier.wait(timeout=10)
            form = submit(port=str(server.port), from_name=f"Editor {index}", run_tasks=False)
            assert not form.errors, form.errors
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    smtp_settings = SmtpSettings.load()
    running = smtp_settings.events.filter(status="running")
    versions = sorted(running.values_list("version", flat=True))
    assert len(set(versions)) == len(versions)  # no two saves shared a version
    assert smtp_settings.version == max(versions)
    # Every queued test now finishes; only the newest version may go live.
    results = [live.promote(smtp_settings.pk, version, duration=0.1) for version in versions]
    assert [event is not None for event in results] == [v == max(versions) for v in versions]
    assert SmtpSettings.load().live_config.version == max(versions)
