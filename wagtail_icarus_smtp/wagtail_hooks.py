from django.templatetags.static import static
from django.urls import include, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.admin_url_finder import register_admin_url_finder

from . import audit
from .admin import deliverability, delivery_log, draft_admin, permissions, urlfinders, views
from .admin.dashboard import SmtpStatusDashboardPanel
from .models import SmtpSettings

app_name = "wagtail_icarus_smtp"

# Log entries, reports and search link our rows to their admin pages.
for model, finder in urlfinders.FINDERS.items():
    register_admin_url_finder(model, finder)


@hooks.register("register_admin_urls")
def register_admin_urls():
    urls = [
        path("status/", views.status_view, name="status"),
        path("status/fragment/", views.status_fragment_view, name="status_fragment"),
        path("banner/", views.banner_view, name="banner"),
        path("test-email/", views.testmail_view, name="testmail"),
        path("discard-draft/", draft_admin.DiscardDraftView.as_view(), name="discard_draft"),
        path("deliverability/", deliverability.deliverability_view, name="deliverability"),
        path("history/", views.HistoryView.as_view(), name="history"),
        path(
            "history/results/",
            views.HistoryView.as_view(results_only=True),
            name="history_results",
        ),
    ]
    return [path("icarus-smtp/", include((urls, app_name), namespace=app_name))]


@hooks.register("register_log_actions")
def register_log_actions(actions):
    audit.register(actions)


@hooks.register("before_edit_setting")
def mark_password_sensitive(request, instance):
    """Django's error reports then show the submitted password as ``****``."""
    if isinstance(instance, SmtpSettings):
        request.sensitive_post_parameters = ["password"]


@hooks.register("after_edit_setting")
def tell_what_saving_did(request, instance):
    """Say what saving did ("Saved: the connection is being tested.") instead of
    Wagtail's "SMTP settings updated."."""
    if isinstance(instance, SmtpSettings):
        draft_admin.replace_saved_message(request, instance)


@hooks.register("insert_global_admin_js")
def global_admin_js():
    """On every admin page, after Wagtail's core.js: the request helper our Stimulus
    controllers share, and the banner while no mail goes out (only the permitted see it;
    its controller asks ``views.banner_view``, which answers 403 to everyone else)."""
    return format_html(
        '<script src="{}"></script><script src="{}"></script>'
        '<div hidden data-controller="icarus-smtp-banner" data-icarus-smtp-banner-url-value="{}">'
        "</div>",
        static("wagtail_icarus_smtp/js/request.js"),
        static("wagtail_icarus_smtp/js/banner.js"),
        reverse("wagtail_icarus_smtp:banner"),
    )


@hooks.register("construct_homepage_panels")
def add_dashboard_panel(request, panels):
    if permissions.user_can_change(request.user):
        panels.append(SmtpStatusDashboardPanel())


@hooks.register("register_admin_urls")
def register_outbox_urls():
    namespace = delivery_log.NAMESPACE
    return [
        path("icarus-smtp/outbox/", include((delivery_log.urls(), namespace), namespace=namespace))
    ]


@hooks.register("register_reports_menu_item")
def register_delivery_log_menu_item():
    return delivery_log.DeliveryLogMenuItem(
        _("Delivery log"),
        reverse(f"{delivery_log.NAMESPACE}:index"),
        name="icarus-smtp-delivery-log",
        icon_name="mail",
        order=900,
    )
