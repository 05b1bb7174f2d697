#!/usr/bin/env python
"""Django's command-line utility for the demo site "Dropzone Musterstadt"."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The demo is the package ``example_site`` inside the repository: put the repository
    # root on the path, whatever the current directory is.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_site.settings")

    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
