"""Which part of a stored failure text editors see as the server's reply.

A failure keeps one text (``Failure.reply``, stored in the history, the delivery log and
its attempts): either what the server answered (``"550 5.7.1 …"``), our own translated
explanation, or, when no server answered, the exception (``"ConnectionRefusedError:
[Errno 111] Connection refused"``). The last is no "server reply" and means nothing to
an editor: pages show the category's explanation and keep it as a technical detail in a
collapsible line. No import from the package: the admin's report uses it.
"""

import re

#: ``failures.classify`` writes an exception as ``"TypeName: text"``: a Python class name
#: (letters and digits, some lower case, no underscore). Not an identity provider's
#: answer such as ``"AADSTS7000215: …"`` or ``"unauthorized_client: …"``: that is the
#: server's reply.
TECHNICAL = re.compile(r"^(?=[A-Za-z0-9.]*[a-z])[A-Za-z][A-Za-z0-9.]*: ")


def split(text):
    """``(reply, detail)`` of a stored failure text; one of them is empty."""
    if text and TECHNICAL.match(text):
        return "", text
    return text or "", ""
