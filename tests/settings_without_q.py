"""The test settings without django-q2, for the system check that reports it."""

from tests.settings import *  # noqa: F403 (a variant of the test settings)
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django_q"]
