"""The settings form: validates what the editor typed and hands it to ``drafts``.

Empty fields are allowed (a partial save is the state "Setup started"); malformed
values are form errors and nothing is saved. The password is write-only.

Whoever decides where site mail goes reads every password-reset mail, so changing the
connection target (server, port or e-mail/login) is an owner-level action: the stored
password never follows a changed target (it must be typed again), and the editor
confirms the change with their own admin password in the same form.
"""

import re

from django import forms
from django.core.validators import validate_ipv46_address
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from wagtail.admin.forms import WagtailAdminModelForm

from .. import conf, providers
from ..setup import drafts
from ..smtp import crypto, headers, hostguard
from . import ratelimit

HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

#: The fields a complete configuration needs (``SmtpSettings.missing_fields()``).
REQUIRED_FIELDS = ("email", "password", "host", "port")
#: Where mail goes: changing one of these is an owner-level action.
TARGET_FIELDS = ("host", "port", "email")


class SmtpSettingsForm(WagtailAdminModelForm):
    password = forms.CharField(
        label=_("Password"),
        required=False,
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Password for SMTP login. With two-factor authentication, an app password."),
    )
    confirm_password = forms.CharField(
        label=_("Your admin password"),
        required=False,
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "current-password"}),
        help_text=_(
            "Only needed when you change the server, the port or the e-mail address: "
            "whoever controls the mail server can read every e-mail the site sends, "
            "including password-reset links. Confirm such a change with the password "
            "you use to log in here."
        ),
    )
    provider = forms.ChoiceField(
        label=_("Provider"),
        required=False,
        choices=providers.choices,
        help_text=_("Fills in server and port for the common providers."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.previous_connection = self.instance.connection_data()
        self.previous_target = self.target(self.instance.__dict__)
        self.previous_enabled = self.instance.enabled
        if self.instance._password_encrypted:
            self.fields["password"].widget.attrs["placeholder"] = gettext(
                "A password is stored. Leave empty to keep it."
            )
        self.fields["provider"].initial = providers.for_host(self.instance.host)

    def missing_fields(self):
        """Required fields that are still empty, for display only (red frames).

        Not form errors: a partial form may be saved (the state "Setup started"). On a
        submitted form, fields with a real error are left to that error.
        """
        if not self.is_bound:
            return self.instance.missing_fields()
        missing = []
        for name in REQUIRED_FIELDS:
            if name in self.errors:
                continue
            if name == "password" and self.instance._password_encrypted:
                continue
            if not str(self.data.get(self.add_prefix(name), "")).strip():
                missing.append(name)
        return missing

    def clean_from_name(self):
        value = self.cleaned_data["from_name"].strip()
        headers.check_display_name(value)
        return value

    def clean_email(self):
        value = self.cleaned_data["email"].strip()
        if value:
            headers.check_address(value)
        return value

    def clean_host(self):
        value = self.cleaned_data["host"].strip().lower().rstrip(".")
        if not value:
            return value
        try:
            validate_ipv46_address(value)
        except forms.ValidationError:
            pass
        else:
            self._check_host_allowed(value)
            return value
        labels = value.split(".")
        if len(value) > 253 or not all(HOST_LABEL.match(label) for label in labels):
            raise forms.ValidationError(
                _(
                    "Enter a server name such as smtp.example.com "
                    "(letters, digits, hyphens and dots) or an IP address."
                ),
                code="invalid_host",
            )
        self._check_host_allowed(value)
        return value

    def _check_host_allowed(self, host):
        try:
            hostguard.check(host)
        except hostguard.HostNotAllowed as error:
            raise forms.ValidationError(
                _(
                    "This server address points into an internal network and is not "
                    "allowed. Enter the public SMTP server of your mail provider."
                ),
                code="host_not_allowed",
            ) from error

    def clean_port(self):
        value = self.cleaned_data["port"]
        allowed = sorted(conf.get("PORTS"))
        if value is not None and value not in allowed:
            raise forms.ValidationError(
                _("Port %(port)s is not allowed. Allowed ports: %(allowed)s."),
                code="port_not_allowed",
                params={"port": value, "allowed": ", ".join(str(port) for port in allowed)},
            )
        return value

    def clean(self):
        """A chosen preset fills in an empty server (and port) — also without JavaScript."""
        cleaned_data = super().clean()
        preset = providers.BY_KEY.get(cleaned_data.get("provider") or "")
        if preset and not cleaned_data.get("host") and "host" not in self.errors:
            cleaned_data["host"] = preset.host
            if not cleaned_data.get("port") and "port" not in self.errors:
                cleaned_data["port"] = preset.port
        if self.target_changed():
            self._check_target_change()
        return cleaned_data

    @staticmethod
    def target(values):
        """``(host, port, email)`` of a model instance's values or cleaned data."""
        return tuple(values.get(name) or None for name in TARGET_FIELDS)

    def target_changed(self):
        """The submitted server, port or e-mail differs from the stored one.

        Only decided on valid values: a field with an error changes nothing anyway.
        """
        if any(name in self.errors for name in TARGET_FIELDS):
            return False
        return self.target(self.cleaned_data) != self.previous_target

    @sensitive_variables("password", "confirmation")
    def _check_target_change(self):
        """A changed target needs the editor's own admin password, and the mailbox
        password typed again: the stored one never follows a new server. (A target
        left incomplete reaches no server; the password is asked for once it is.)"""
        password = self.cleaned_data.get("password")
        complete = all(self.target(self.cleaned_data))
        if complete and self.instance._password_encrypted and not password:
            self.add_error(
                "password",
                forms.ValidationError(
                    _("The server was changed: please enter the password again."),
                    code="password_required_for_new_target",
                ),
            )
        confirmation = self.cleaned_data.get("confirm_password")
        user = self.for_user
        if not confirmation:
            self.add_error(
                "confirm_password",
                forms.ValidationError(
                    _(
                        "You are changing where the site's e-mails go. "
                        "Confirm with your admin password."
                    ),
                    code="confirmation_required",
                ),
            )
            return
        try:
            ratelimit.hit("reauth", user)  # every try counts: no guessing through this form
        except ratelimit.RateLimited as error:
            self.add_error("confirm_password", str(error))
            return
        if user is None or not user.is_authenticated or not user.check_password(confirmation):
            self.add_error(
                "confirm_password",
                forms.ValidationError(
                    _("This is not your admin password. Nothing was saved."),
                    code="confirmation_wrong",
                ),
            )

    @sensitive_variables("password")
    def _post_clean(self):
        super()._post_clean()
        password = self.cleaned_data.get("password")
        if password:
            self.instance._password_encrypted = crypto.encrypt(password)
        if not self.errors and drafts.needs_test(self.instance, self.previous_connection):
            try:
                ratelimit.hit("test", self.for_user)
            except ratelimit.RateLimited as error:
                self.add_error(None, str(error))

    def save(self, commit=True):
        instance = super().save(commit=False)
        if commit:
            drafts.save(
                instance,
                previous_connection=self.previous_connection,
                previous_target=self.previous_target,
                previous_enabled=self.previous_enabled,
                user=self.for_user,
            )
        return instance
