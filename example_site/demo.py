"""Facts of the demo that the setup command, the runner and the README share.

Plain constants, no Django import: ``run_demo.py`` reads them before Django starts.
"""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
VAR_DIR = BASE_DIR / "var"

SITE_URL = "http://127.0.0.1:8000"
WEB_HOST, WEB_PORT = "127.0.0.1", 8000

# A local demo on 127.0.0.1 only: a fixed, printed login is the point.
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "dropzone-demo"
ADMIN_EMAIL = "admin@dropzone-musterstadt.de"
# Wagtail's account form ("Name and e-mail", where the admin language is set too)
# requires both names.
ADMIN_FIRST_NAME = "Maria"
ADMIN_LAST_NAME = "Muster"

# The development SMTP server (manage.py icarus_smtp_devserver) and its mailbox.
SMTP_HOST = "localhost"
SMTP_PORT = 2525
SMTP_USER = "system@dropzone-musterstadt.de"
SMTP_PASSWORD = "demo-passwort"
SMTP_CA_FILE = VAR_DIR / "devserver-ca.pem"
SMTP_MAILDIR = VAR_DIR / "mail"
