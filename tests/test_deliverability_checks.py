"""SPF, DKIM, DMARC and MX judged from what a real DNS server on 127.0.0.1 answers."""

import time

import pytest

from wagtail_icarus_smtp import providers
from wagtail_icarus_smtp.deliverability import checks
from wagtail_icarus_smtp.deliverability.dns import Resolver, Unavailable

DOMAIN = "dropzone.example"
MAILBOX = f"system@{DOMAIN}"
IONOS = providers.BY_KEY["ionos"]
MICROSOFT = providers.BY_KEY["microsoft365"]
GOOGLE = providers.BY_KEY["gmail"]
DMARC_OK = {"TXT": ["v=DMARC1; p=reject; rua=mailto:dmarc@dropzone.example"]}


def by_check(results):
    return {result.check: result for result in results}


def run(provider=IONOS, **kwargs):
    return by_check(checks.run_all(DOMAIN, provider=provider, mailbox=MAILBOX, **kwargs))


def test_no_spf_record_fails_with_the_providers_record_to_add(dns_zone):
    dns_zone({DOMAIN: {"MX": [(10, "mx00.ionos.de")]}})

    spf = run()["spf"]

    assert (spf.state, spf.code) == ("fail", "spf_missing")
    [record] = spf.records
    assert (record.host, record.type, record.value, record.action) == (
        DOMAIN,
        "TXT",
        "v=spf1 include:_spf-eu.ionos.com ~all",
        "add",
    )


def test_spf_without_the_provider_include_fails_with_the_fixed_record(dns_zone):
    dns_zone(
        {
            DOMAIN: {"TXT": ["v=spf1 mx include:_spf.newsletter.example -all"]},
            "_spf.newsletter.example": {"TXT": ["v=spf1 ip4:192.0.2.0/24 -all"]},
        }
    )

    spf = run()["spf"]

    assert (spf.state, spf.code) == ("fail", "spf_provider_missing")
    assert spf.params["include"] == "_spf-eu.ionos.com"
    [record] = spf.records
    assert record.action == "replace"
    assert record.value == (
        "v=spf1 mx include:_spf.newsletter.example include:_spf-eu.ionos.com -all"
    )


def test_provider_include_found_through_a_nested_include_passes(dns_zone):
    dns_zone(
        {
            DOMAIN: {"TXT": ["v=spf1 include:_spf.dropzone.example ~all"]},
            "_spf.dropzone.example": {"TXT": ["v=spf1 include:_spf-eu.ionos.com ~all"]},
            "_spf-eu.ionos.com": {"TXT": ["v=spf1 ip4:212.227.0.0/16 -all"]},
        }
    )

    spf = run()["spf"]

    assert (spf.state, spf.code) == ("pass", "spf_ok")
    assert spf.params["lookups"] == 2


def test_spf_with_eleven_lookups_fails(dns_zone):
    zone = {DOMAIN: {"TXT": ["v=spf1 include:_spf-eu.ionos.com include:a.spf.example ~all"]}}
    zone["_spf-eu.ionos.com"] = {"TXT": ["v=spf1 ip4:212.227.0.0/16 -all"]}
    # 2 includes at the top, 4 in a.spf.example, "a mx" in b and c, "a" in d: 11.
    zone["a.spf.example"] = {
        "TXT": ["v=spf1 " + " ".join(f"include:{n}.spf.example" for n in "bcde") + " -all"]
    }
    for name in "bc":
        zone[f"{name}.spf.example"] = {"TXT": ["v=spf1 a mx -all"]}
    zone["d.spf.example"] = {"TXT": ["v=spf1 a -all"]}
    zone["e.spf.example"] = {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]}
    dns_zone(zone)

    spf = run()["spf"]

    assert spf.params["lookups"] == 11
    assert (spf.state, spf.code) == ("fail", "spf_too_many_lookups")


def test_spf_with_ten_lookups_passes(dns_zone):
    includes = " ".join(f"include:s{n}.spf.example" for n in range(9))
    zone = {DOMAIN: {"TXT": [f"v=spf1 include:_spf-eu.ionos.com {includes} -all"]}}
    zone["_spf-eu.ionos.com"] = {"TXT": ["v=spf1 ip4:212.227.0.0/16 -all"]}
    for n in range(9):
        zone[f"s{n}.spf.example"] = {"TXT": [f"v=spf1 ip4:192.0.2.{n} -all"]}
    dns_zone(zone)

    spf = run()["spf"]

    assert (spf.state, spf.params["lookups"]) == ("pass", 10)


@pytest.mark.parametrize("all_term", ["+all", "?all", "all"])
def test_plus_all_and_neutral_all_warn_with_a_tilde_all_record(dns_zone, all_term):
    dns_zone({DOMAIN: {"TXT": [f"v=spf1 include:_spf-eu.ionos.com {all_term}"]},
              "_spf-eu.ionos.com": {"TXT": ["v=spf1 ip4:212.227.0.0/16 -all"]}})  # fmt: skip

    spf = run()["spf"]

    assert (spf.state, spf.code) == ("warn", "spf_weak_all")
    assert spf.records[0].value == "v=spf1 include:_spf-eu.ionos.com ~all"


def test_spf_split_into_several_strings_is_joined(dns_zone):
    server = dns_zone(
        {
            DOMAIN: {
                "TXT": [
                    "google-site-verification=abc",
                    ("v=spf1 ip4:192.0.2.0/24 ", "include:_spf-eu.ionos.com ~all"),
                ]
            },
            "_spf-eu.ionos.com": {"TXT": ["v=spf1 ip4:212.227.0.0/16 -all"]},
        }
    )

    spf = run()["spf"]

    assert (spf.state, spf.code) == ("pass", "spf_ok")
    assert spf.params["record"] == "v=spf1 ip4:192.0.2.0/24 include:_spf-eu.ionos.com ~all"
    assert (DOMAIN, "TXT") in server.zone.queries


def test_two_spf_records_fail_with_one_merged_record(dns_zone):
    dns_zone({DOMAIN: {"TXT": ["v=spf1 mx -all", "v=spf1 include:_spf-eu.ionos.com ~all"]}})

    spf = run()["spf"]

    assert (spf.state, spf.code) == ("fail", "spf_multiple")
    assert spf.records[0].value == "v=spf1 mx include:_spf-eu.ionos.com ~all"


def test_invalid_spf_term_fails(dns_zone):
    dns_zone({DOMAIN: {"TXT": ["v=spf1 ip4:300.1.2.3 include:_spf-eu.ionos.com ~all"]}})

    spf = run()["spf"]

    assert (spf.state, spf.code, spf.params["term"]) == ("fail", "spf_invalid", "ip4:300.1.2.3")


def test_dmarc_missing_fails_with_a_watching_record(dns_zone):
    dns_zone({DOMAIN: {"TXT": ["v=spf1 -all"]}})

    dmarc = run()["dmarc"]

    assert (dmarc.state, dmarc.code) == ("fail", "dmarc_missing")
    [record] = dmarc.records
    assert (record.host, record.type, record.value) == (
        "_dmarc.dropzone.example",
        "TXT",
        "v=DMARC1; p=none; rua=mailto:system@dropzone.example",
    )


@pytest.mark.parametrize(
    ("record", "policy", "rua"),
    [
        ("v=DMARC1; p=none", "none", ""),
        (
            "v=DMARC1; p=reject; rua=mailto:d@dropzone.example",
            "reject",
            "mailto:d@dropzone.example",
        ),
        ("v=DMARC1;p=quarantine;pct=100", "quarantine", ""),
    ],
)
def test_dmarc_policy_and_reports_are_read(dns_zone, record, policy, rua):
    dns_zone({f"_dmarc.{DOMAIN}": {"TXT": [record]}})

    dmarc = run()["dmarc"]

    assert (dmarc.state, dmarc.params["policy"], dmarc.params["rua"]) == ("pass", policy, rua)


def test_dmarc_of_the_organisational_domain_covers_a_subdomain(dns_zone):
    dns_zone({f"_dmarc.{DOMAIN}": {"TXT": ["v=DMARC1; p=reject; sp=quarantine"]}})

    results = by_check(checks.run_all(f"mail.{DOMAIN}", provider=IONOS, mailbox=MAILBOX))

    assert results["dmarc"].params["policy"] == "quarantine"


def test_microsoft_dkim_cnames_with_a_published_key_pass(dns_zone):
    target = "selector1-dropzone-example._domainkey.dropzone.onmicrosoft.com"
    dns_zone(
        {
            f"selector1._domainkey.{DOMAIN}": {"CNAME": target},
            f"selector2._domainkey.{DOMAIN}": {"CNAME": target.replace("1", "2", 1)},
            target: {"TXT": [("v=DKIM1; k=rsa; ", "p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")]},
        }
    )

    dkim = run(MICROSOFT)["dkim"]

    assert (dkim.state, dkim.code) == ("pass", "dkim_ok")


def test_microsoft_dkim_cname_answered_without_its_target_is_followed(dns_zone):
    target = "selector1-dropzone-example._domainkey.dropzone.onmicrosoft.com"
    server = dns_zone(
        {
            f"selector1._domainkey.{DOMAIN}": {"CNAME": target},
            f"selector2._domainkey.{DOMAIN}": {"CNAME": "selector2.elsewhere.example"},
            target: {"TXT": ["v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"]},
        },
        chase_cnames=False,
    )

    dkim = run(MICROSOFT)["dkim"]

    assert dkim.state == "pass"
    assert (target, "TXT") in server.zone.queries  # asked for the alias' target itself


def test_microsoft_dkim_cnames_missing_fail_with_both_records(dns_zone):
    dns_zone({DOMAIN: {"TXT": ["v=spf1 include:spf.protection.outlook.com -all"]}})

    dkim = run(MICROSOFT)["dkim"]

    assert (dkim.state, dkim.code) == ("fail", "dkim_missing_microsoft")
    assert [(r.host, r.type, r.value) for r in dkim.records] == [
        (
            "selector1._domainkey.dropzone.example",
            "CNAME",
            "selector1-dropzone-example._domainkey.<tenant>.onmicrosoft.com",
        ),
        (
            "selector2._domainkey.dropzone.example",
            "CNAME",
            "selector2-dropzone-example._domainkey.<tenant>.onmicrosoft.com",
        ),
    ]


def test_microsoft_dkim_cnames_without_a_key_warn(dns_zone):
    dns_zone(
        {
            f"selector1._domainkey.{DOMAIN}": {"CNAME": "s1.dropzone.onmicrosoft.com"},
            f"selector2._domainkey.{DOMAIN}": {"CNAME": "s2.dropzone.onmicrosoft.com"},
        }
    )

    assert run(MICROSOFT)["dkim"].code == "dkim_not_enabled"


def test_google_dkim_key_is_looked_up_at_the_default_selector(dns_zone):
    dns_zone({f"google._domainkey.{DOMAIN}": {"TXT": ["v=DKIM1; k=rsa; p=MIIBIjAN"]}})

    assert run(GOOGLE)["dkim"].state == "pass"


def test_dkim_of_a_hoster_without_a_published_scheme_says_how_to_verify(dns_zone):
    dns_zone({})

    dkim = run(IONOS)["dkim"]

    assert (dkim.state, dkim.code) == ("info", "dkim_not_checkable")


def test_mx_missing_warns_with_the_providers_mx(dns_zone):
    dns_zone({DOMAIN: {"TXT": ["v=spf1 -all"]}})

    mx = run(MICROSOFT)["mx"]

    assert (mx.state, mx.code) == ("warn", "mx_missing")
    assert [(r.priority, r.value) for r in mx.records] == [
        (0, "dropzone-example.mail.protection.outlook.com")
    ]


def test_mx_present_passes(dns_zone):
    dns_zone({DOMAIN: {"MX": [(10, "mx01.ionos.de"), (5, "mx00.ionos.de")]}})

    mx = run()["mx"]

    assert (mx.state, mx.params["hosts"]) == ("pass", "mx00.ionos.de, mx01.ionos.de")


@pytest.mark.parametrize("domain", ["gmail.com", "gmx.de", "web.de", "t-online.de", "outlook.com"])
def test_a_providers_own_domain_needs_no_records(dns_zone, domain):
    server = dns_zone({})

    results = checks.run_all(domain, provider=None, mailbox=f"x@{domain}")

    assert [(r.check, r.state, r.code) for r in results] == [
        (check, "pass", "provider_domain") for check in ("spf", "dkim", "dmarc", "mx")
    ]
    assert server.zone.queries == []


def test_a_server_that_never_answers_ends_within_the_deadline(silent_dns):
    started = time.monotonic()

    results = run()

    elapsed = time.monotonic() - started
    assert [r.state for r in results.values()] == ["unknown", "info", "unknown", "unknown"]
    assert {r.code for r in results.values() if r.state == "unknown"} == {"dns_unavailable"}
    assert elapsed < 3 * 1 + 1.5  # three checks that ask, one second each


def test_one_deadline_covers_all_queries_of_a_check(silent_dns):
    resolver = Resolver(deadline=0.5)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        resolver.txt(DOMAIN)
    with pytest.raises(Unavailable, match="deadline passed"):
        resolver.txt(DOMAIN)
    assert time.monotonic() - started < 1.2


def test_reply_to_domain_is_reported_for_information(dns_zone):
    dns_zone({"buchung.example": {"MX": [(10, "mx.buchung.example")]}})

    results = run(reply_to_domain="buchung.example")

    assert (results["reply_to"].state, results["reply_to"].params["domain"]) == (
        "pass",
        "buchung.example",
    )
