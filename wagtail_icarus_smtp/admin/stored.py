"""The settings as stored, for the panels of the settings page.

The edit view's own instance is the form's: a rejected submission has changed it in
memory, and it reads the live configuration and the deliverability report one query
each. ``SmtpSettings.load()`` reads the row with both (``select_related``), once per
request, and is what the panels show.
"""


def stored(bound_panel):
    """The stored settings of ``bound_panel``'s instance (read once per request)."""
    instance, request = bound_panel.instance, bound_panel.request
    if request is None or not instance.pk:
        return instance
    found = type(instance).load(request_or_site=request)
    return found if found.pk == instance.pk else instance
