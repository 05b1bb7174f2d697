from django.apps import AppConfig


class DropzoneConfig(AppConfig):
    name = "example_site.dropzone"
    label = "dropzone"
    verbose_name = "Dropzone Musterstadt"
    default_auto_field = "django.db.models.BigAutoField"
