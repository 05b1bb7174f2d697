"""The bench's settings: the test settings with SQLite tuned as production sites run it
(write-ahead log, normal sync) — Django's default rollback journal fsyncs every commit."""

from tests.settings import *  # noqa: F403 (a variant of the test settings)
from tests.settings import DATABASES

DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
)
