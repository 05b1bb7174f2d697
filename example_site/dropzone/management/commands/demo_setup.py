"""Create the demo's pages and an admin user; safe to run any number of times."""

from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand
from django.db import transaction
from wagtail.models import Page, Site

from example_site import demo
from example_site.dropzone.demo_admin import ensure_admin_user
from example_site.dropzone.models import BookingFormField, BookingFormPage, HomePage

HOME_INTRO = (
    "<p>Willkommen bei der Dropzone Musterstadt! Tandemsprünge, AFF-Ausbildung und "
    "Fun Jumps von April bis Oktober.</p>"
)
BOOKING_INTRO = (
    "<p>Schicken Sie uns Ihre Buchungsanfrage. Sie erhalten sofort eine Bestätigung "
    "per E-Mail, wir melden uns mit dem Termin.</p>"
)
THANK_YOU = (
    "<p>Ihre Anfrage ist bei uns eingegangen. Eine Bestätigung ist per E-Mail an Sie unterwegs.</p>"
)
# (label, field_type, required, choices)
BOOKING_FIELDS = [
    ("Name", "singleline", True, ""),
    ("E-Mail", "email", True, ""),
    ("Sprungtyp", "dropdown", True, "Tandem\nAFF\nFun Jump"),
    ("Datum", "date", True, ""),
    ("Nachricht", "multiline", False, ""),
]


class Command(BaseCommand):
    help = "Create the demo pages (home, booking form) and an admin user if none exists."

    def handle(self, *args, **options):
        with transaction.atomic():
            home = self.ensure_home_page()
            self.ensure_booking_page(home)
        self.ensure_admin_user()

    def ensure_home_page(self):
        home = HomePage.objects.first()
        if home is None:
            root = Page.get_first_root_node()
            home = root.add_child(
                instance=HomePage(
                    title="Dropzone Musterstadt", slug="dropzone-musterstadt", intro=HOME_INTRO
                )
            )
            home.save_revision().publish()
            self.stdout.write("Created the home page.")
        # Point the default site at it and drop Wagtail's "Welcome" page (a plain Page).
        site = Site.objects.filter(is_default_site=True).first() or Site(is_default_site=True)
        site.hostname, site.port = "localhost", 80
        site.site_name, site.root_page = "Dropzone Musterstadt", home
        site.save()
        plain_page = ContentType.objects.get_for_model(Page)
        Page.objects.filter(depth=2, content_type=plain_page, numchild=0).delete()
        return home

    def ensure_booking_page(self, home):
        if BookingFormPage.objects.exists():
            return
        page = BookingFormPage(
            title="Sprung buchen",
            slug="buchung",
            intro=BOOKING_INTRO,
            thank_you_text=THANK_YOU,
            from_address="buchung@dropzone-musterstadt.de",
            to_address="info@dropzone-musterstadt.de",
            subject="Neue Buchungsanfrage",
            form_fields=[
                BookingFormField(
                    sort_order=index,
                    label=label,
                    field_type=field_type,
                    required=required,
                    choices=choices,
                )
                for index, (label, field_type, required, choices) in enumerate(BOOKING_FIELDS)
            ],
        )
        home.add_child(instance=page)
        page.save_revision().publish()
        self.stdout.write("Created the booking form page.")

    def ensure_admin_user(self):
        user, created = ensure_admin_user()
        if created:
            self.stdout.write("Created the admin user.")
        if user is not None and user.check_password(demo.ADMIN_PASSWORD):
            login = f"{demo.ADMIN_USERNAME} / {demo.ADMIN_PASSWORD}"
        else:
            login = "(an admin user exists already — use its own password)"
        self.stdout.write(
            self.style.SUCCESS(f"Admin login: {demo.SITE_URL}/admin/  user / password: {login}")
        )
