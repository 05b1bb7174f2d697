"""The settings form: validates what the editor typed and hands it to ``drafts``.

Empty fields are allowed (a partial save is the state "Setup started"); malformed
values are form errors and nothing is saved. The password is write-only.

Whoever decides where site mail goes reads every password-reset mail, so changing the
connection target (server, port or e-mail/login) is an owner-level action: the stored
password never follows a changed target (it must be typed again), and the editor
confirms the change with their own admin password in the same form.
"""

import json
import re
import urllib.parse

from django import forms
from django.core.validators import validate_ipv46_address
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from wagtail.admin.forms import WagtailAdminModelForm

from .. import audit, conf, providers
from ..models.settings import METHOD_FIELDS, PASSWORD, SECRET_COLUMNS
from ..setup import drafts
from ..smtp import crypto, headers, hostguard, oauth
from . import ratelimit

HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
#: "smtp.ionos.de:587" typed into the server field: a name (not IPv6) and a port.
HOST_WITH_PORT = re.compile(r"^([^:\[\]]+):(\d{1,5})$")

#: Where mail goes: changing one of these is an owner-level action. The tenant and the
#: app decide whose mailbox the secret opens, so they count as the target too.
TARGET_FIELDS = audit.TARGET
#: What the target needs to be complete (the OAuth ids only for their method).
TARGET_CORE = ("host", "port", "email")
#: A GUID (tenant and client IDs) or, for the tenant, a domain name.
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_KEY = 16 * 1024


def required_fields(method):
    """The fields a complete configuration needs with sign-in ``method``."""
    return ("email", *METHOD_FIELDS.get(method, METHOD_FIELDS[PASSWORD]), "host", "port")


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
    oauth_client_secret = forms.CharField(
        label=_("Client secret"),
        required=False,
        strip=True,
        max_length=1024,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "The secret's value from Certificates & secrets (not the secret ID). "
            "Write-only: it is never shown again."
        ),
    )
    google_service_account = forms.CharField(
        label=_("Service account key (JSON)"),
        required=False,
        strip=True,
        max_length=MAX_KEY,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text=_(
            "Paste the whole JSON key file of the service account. Write-only: it is "
            "never shown again."
        ),
    )
    provider = forms.ChoiceField(
        label=_("Provider"),
        required=False,
        choices=providers.choices,
        help_text=_(
            "Fills in server, port and the provider's send limit for the common providers."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.previous_connection = self.instance.connection_data()
        self.previous_target = self.target(self.instance.__dict__)
        self.previous_enabled = self.instance.enabled
        stored_texts = {
            "password": gettext("A password is stored. Leave empty to keep it."),
            "oauth_client_secret": gettext("A client secret is stored. Leave empty to keep it."),
            "google_service_account": gettext("A key is stored. Leave empty to keep it."),
        }
        for name, text in stored_texts.items():
            if getattr(self.instance, SECRET_COLUMNS[name]):
                self.fields[name].widget.attrs["placeholder"] = text
        self.fields["provider"].initial = providers.for_host(self.instance.host)
        # A browser cuts a longer name off silently at maxlength: the form says so instead.
        self.fields["from_name"].widget.attrs.pop("maxlength", None)
        if "auth_method" in self.fields:
            self.fields["auth_method"].required = False  # left out: the stored method
        if "send_limit_period" in self.fields:
            self.fields["send_limit_period"].required = False  # left out: per hour

    def missing_fields(self):
        """Required fields that are still empty, for display only (red frames).

        Not form errors: a partial form may be saved (the state "Setup started"). On a
        submitted form, fields with a real error are left to that error.
        """
        if not self.is_bound:
            return self.instance.missing_fields()
        missing = []
        method = self.data.get(self.add_prefix("auth_method")) or PASSWORD
        for name in required_fields(method):
            if name in self.errors:
                continue
            if name in SECRET_COLUMNS and getattr(self.instance, SECRET_COLUMNS[name]):
                continue
            if not str(self.data.get(self.add_prefix(name), "")).strip():
                missing.append(name)
        return missing

    def clean_from_name(self):
        value = self.cleaned_data["from_name"].strip()
        headers.check_display_name(value)
        return value

    def clean_send_limit(self):
        return self.cleaned_data.get("send_limit") or None  # 0: no limit, as empty

    def clean_send_limit_period(self):
        return self.cleaned_data.get("send_limit_period") or providers.PER_HOUR

    def clean_email(self):
        value = self.cleaned_data["email"].strip()
        if value:
            headers.check_address(value)
        return value

    def clean_host(self):
        value = self.cleaned_data["host"].strip().lower().rstrip(".")
        if not value:
            return value
        value = self._split_port(value)
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

    def _split_port(self, value):
        """``host:port`` typed into the server field: keep the host, and take the port
        over into the port field when that is empty or says the same; else say exactly
        what to do."""
        match = HOST_WITH_PORT.match(value)
        if match is None:
            return value
        host, port = match.group(1).rstrip("."), int(match.group(2))
        typed = str(self.data.get(self.add_prefix("port"), "")).strip()
        if typed and typed != str(port):
            raise forms.ValidationError(
                _(
                    "Enter the server name without “:%(port)s” and the port in the field "
                    "Port (it says %(typed)s)."
                ),
                code="host_with_port",
                params={"port": port, "typed": typed},
            )
        self.port_from_host = port
        return host

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
        if value is None and "host" in self.cleaned_data:
            value = getattr(self, "port_from_host", None)
        allowed = sorted(conf.get("PORTS"))
        if value is not None and value not in allowed:
            raise forms.ValidationError(
                _("Port %(port)s is not allowed. Allowed ports: %(allowed)s."),
                code="port_not_allowed",
                params={"port": value, "allowed": ", ".join(str(port) for port in allowed)},
            )
        return value

    def clean_auth_method(self):
        return self.cleaned_data.get("auth_method") or self.instance.auth_method or PASSWORD

    def clean_oauth_tenant_id(self):
        value = self.cleaned_data["oauth_tenant_id"].strip().lower()
        if value and not (GUID.match(value) or _is_domain(value)):
            raise forms.ValidationError(
                _(
                    "Enter the Directory (tenant) ID, e.g. "
                    "72f988bf-86f1-41af-91ab-2d7cd011db47, or the tenant's domain."
                ),
                code="invalid_tenant",
            )
        return value

    def clean_oauth_client_id(self):
        value = self.cleaned_data["oauth_client_id"].strip().lower()
        if value and not GUID.match(value):
            raise forms.ValidationError(
                _("Enter the Application (client) ID: 32 hex digits in the form 8-4-4-4-12."),
                code="invalid_client_id",
            )
        return value

    @sensitive_variables("value", "info")
    def clean_google_service_account(self):
        value = self.cleaned_data["google_service_account"]
        if not value:
            return value
        try:
            info = json.loads(value)
        except ValueError:
            info = None
        if not isinstance(info, dict):
            raise forms.ValidationError(
                _("Paste the whole JSON key file (it starts with { and ends with })."),
                code="invalid_key",
            )
        problem = oauth.key_problem(info)
        if problem:
            raise forms.ValidationError(problem, code="invalid_key")
        host = urllib.parse.urlsplit(info["token_uri"]).hostname
        try:
            hostguard.check(host)
        except hostguard.HostNotAllowed as error:
            raise forms.ValidationError(
                _("The key's token_uri points into an internal network and is not allowed."),
                code="host_not_allowed",
            ) from error
        return value

    def clean(self):
        """A chosen preset fills in an empty server (and port) — also without JavaScript."""
        cleaned_data = super().clean()
        preset = providers.BY_KEY.get(cleaned_data.get("provider") or "")
        if preset and not cleaned_data.get("host") and "host" not in self.errors:
            cleaned_data["host"] = preset.host
            if not cleaned_data.get("port") and "port" not in self.errors:
                cleaned_data["port"] = preset.port
            if preset.send_limit and not cleaned_data.get("send_limit"):
                cleaned_data["send_limit"] = preset.send_limit
                cleaned_data["send_limit_period"] = preset.send_limit_period
        if self.target_changed():
            self._check_target_change()
        return cleaned_data

    @staticmethod
    def target(values):
        """Where mail goes — server, port, e-mail, sign-in method and (for OAuth)
        tenant and app — of a model instance's values or cleaned data."""
        return audit.target(values)

    def target_changed(self):
        """The submitted server, port or e-mail differs from the stored one.

        Only decided on valid values: a field with an error changes nothing anyway.
        """
        if any(name in self.errors for name in TARGET_FIELDS):
            return False
        return self.target(self.cleaned_data) != self.previous_target

    @sensitive_variables("secret", "confirmation")
    def _check_target_change(self):
        """A changed target needs the editor's own admin password, and the secret of
        the sign-in method typed again: a stored password, client secret or key never
        follows a new server, tenant or app. (A target left incomplete reaches no
        server; the secret is asked for once it is.)"""
        method = self.cleaned_data.get("auth_method") or PASSWORD
        name = METHOD_FIELDS.get(method, METHOD_FIELDS[PASSWORD])[-1]
        secret = self.cleaned_data.get(name)
        complete = all(self.cleaned_data.get(field) for field in TARGET_CORE)
        if complete and getattr(self.instance, SECRET_COLUMNS[name]) and not secret:
            self.add_error(
                name,
                forms.ValidationError(
                    _("The server was changed: please enter the password again.")
                    if name == "password"
                    else _("Where mail goes was changed: please enter the secret again."),
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

    @sensitive_variables("secret")
    def _post_clean(self):
        super()._post_clean()
        for name, column in SECRET_COLUMNS.items():
            secret = self.cleaned_data.get(name)
            if secret:
                setattr(self.instance, column, crypto.encrypt(secret))
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


def _is_domain(value):
    labels = value.rstrip(".").split(".")
    return len(labels) >= 2 and len(value) <= 253 and all(HOST_LABEL.match(x) for x in labels)
