"""The bench's settings: the test settings with SQLite tuned as production sites run it
(write-ahead log, normal sync) — Django's default rollback journal fsyncs every commit.
``bench_send.py --postgres`` switches to PostgreSQL (``ICARUS_TEST_DB=postgres``)."""

from tests.settings import *  # noqa: F403 (a variant of the test settings)
from tests.settings import DATABASES

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
