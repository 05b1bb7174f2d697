from django.urls import include, path
from wagtail import hooks

from . import views

app_name = "wagtail_icarus_smtp"


@hooks.register("register_admin_urls")
def register_admin_urls():
    urls = [path("status/", views.status_view, name="status")]
    return [path("icarus-smtp/", include((urls, app_name), namespace=app_name))]
