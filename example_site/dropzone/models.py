"""The demo's pages: a home page and a booking form that mails the customer and the dropzone.

Every mail goes through Django's mail API, so through the site's ``EMAIL_BACKEND`` (or
``MAILERS``) — which is wagtail-icarus-smtp's backend: the mailbox set in the admin.
"""

from django import forms
from django.db import models
from django.template.loader import render_to_string
from modelcluster.fields import ParentalKey
from wagtail.admin.mail import send_mail
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel, MultiFieldPanel
from wagtail.contrib.forms.forms import FormBuilder
from wagtail.contrib.forms.models import AbstractEmailForm, AbstractFormField
from wagtail.contrib.forms.panels import FormSubmissionsPanel
from wagtail.fields import RichTextField
from wagtail.models import Page


class HomePage(Page):
    intro = RichTextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    subpage_types = ["dropzone.BookingFormPage"]
    max_count = 1

    class Meta:
        verbose_name = "Startseite"


class BookingFormField(AbstractFormField):
    page = ParentalKey("BookingFormPage", on_delete=models.CASCADE, related_name="form_fields")


class BookingFormBuilder(FormBuilder):
    def create_date_field(self, field, options):
        # The browser's date picker; it submits ISO dates, which DateField accepts.
        options["widget"] = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        return super().create_date_field(field, options)


class BookingFormPage(AbstractEmailForm):
    """Booking request: notification to ``to_address``, confirmation to the customer."""

    form_builder = BookingFormBuilder

    intro = RichTextField(blank=True)
    thank_you_text = RichTextField(blank=True)
    confirmation_subject = models.CharField(
        "Betreff der Bestätigung",
        max_length=255,
        default="Ihre Buchungsanfrage bei der Dropzone Musterstadt",
    )

    content_panels = [
        *AbstractEmailForm.content_panels,
        FormSubmissionsPanel(),
        FieldPanel("intro"),
        InlinePanel("form_fields", label="Formularfelder"),
        FieldPanel("thank_you_text"),
        MultiFieldPanel(
            [
                FieldRowPanel([FieldPanel("from_address"), FieldPanel("to_address")]),
                FieldPanel("subject"),
            ],
            "Benachrichtigung an die Dropzone",
        ),
        FieldPanel("confirmation_subject"),
    ]
    parent_page_types = ["dropzone.HomePage"]
    subpage_types = []

    class Meta:
        verbose_name = "Buchungsformular"

    def customer_address(self, form):
        """The address the customer entered: the form's first e-mail field."""
        for field in self.get_form_fields():
            if field.field_type == "email":
                return form.cleaned_data.get(field.clean_name) or None
        return None

    def process_form_submission(self, form):
        submission = super().process_form_submission(form)  # stores it, notifies to_address
        self.send_confirmation(form)
        return submission

    def send_mail(self, form):
        """The notification to the dropzone; a reply goes straight to the customer."""
        customer = self.customer_address(form)
        send_mail(
            self.subject,
            self.render_email(form),
            [address.strip() for address in self.to_address.split(",") if address.strip()],
            self.from_address,
            reply_to=[customer] if customer else None,
        )

    def send_confirmation(self, form):
        customer = self.customer_address(form)
        if not customer:
            return
        context = {
            "page": self,
            "name": form.cleaned_data.get("name", ""),
            "summary": self.render_email(form),
        }
        send_mail(
            self.confirmation_subject,
            render_to_string("dropzone/emails/booking_confirmation.txt", context),
            [customer],
            self.from_address,
        )
