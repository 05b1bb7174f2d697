from django.urls import include, path
from wagtail import hooks

from . import outbox_admin  # noqa: F401 (registers the outbox admin hooks)  # isort: skip
from . import views

app_name = "wagtail_icarus_smtp"


@hooks.register("register_admin_urls")
def register_admin_urls():
    urls = [path("status/", views.status_view, name="status")]
    return [path("icarus-smtp/", include((urls, app_name), namespace=app_name))]


@hooks.register("register_log_actions")
def register_log_actions(actions):
    from . import audit

    audit.register(actions)


@hooks.register("before_edit_setting")
def mark_password_sensitive(request, instance):
    """Django's error reports then show the submitted password as ``****``."""
    from .models import SmtpSettings

    if isinstance(instance, SmtpSettings):
        request.sensitive_post_parameters = ["password"]
