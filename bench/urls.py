"""The peers' URLs (none: their commands only run Django's system checks)."""

urlpatterns = []
