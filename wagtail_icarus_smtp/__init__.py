"""Wagtail admin settings for the site's outgoing SMTP mailbox."""

__version__ = "0.1.0.dev0"
