"""Deliverability: are the DNS records in place that receivers (Gmail, Outlook.com, GMX)
check before they accept the site's mail? SPF, DKIM, DMARC and MX of the mailbox's
domain, checked locally with dnspython, with the exact record to add for each gap.

``dns`` asks the name servers, ``checks`` judges the answers, ``records`` builds the
records to add, ``texts`` says it in the editor's language, ``run`` checks the live
configuration and stores the result. ``admin/deliverability`` shows it to editors.
"""
