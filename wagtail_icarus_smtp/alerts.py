"""Alerts (placeholder, filled in below)."""


def evaluate(result=None):
    return []
