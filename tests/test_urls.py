import csv
import unicodedata
from pathlib import Path

import idna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.urls import MAX_URL_LENGTH, NormalisedUrl, UrlError, display_host, normalise_host, normalise_url

CITIZENLAB = Path("/work/shared/data/citizenlab")


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("http://example.com/", "http://example.com/"),
        ("http://example.com", "http://example.com/"),
        ("  https://example.com/a  \n", "https://example.com/a"),
        ("HTTP://EXAMPLE.COM/Path/Kept", "http://example.com/Path/Kept"),
        ("example.com", "http://example.com/"),
        ("example.com/path?q=1", "http://example.com/path?q=1"),
        ("www.example.com:8080/x", "http://www.example.com:8080/x"),
        ("localhost:8080", "http://localhost:8080/"),
        ("//example.com/x", "http://example.com/x"),
        ("http://example.com:80/", "http://example.com/"),
        ("https://example.com:443/", "https://example.com/"),
        ("http://example.com:443/", "http://example.com:443/"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:/", "http://example.com/"),
        ("http://example.com/a#fragment", "http://example.com/a"),
        ("http://example.com/#/route?x=1", "http://example.com/"),
        ("http://example.com?x=1", "http://example.com/?x=1"),
        ("http://example.com./a", "http://example.com/a"),
        ("http://1.2.3.4/dns-query?dns=AAAB", "http://1.2.3.4/dns-query?dns=AAAB"),
        ("http://[2001:DB8:0:0::1]:8080/a", "http://[2001:db8::1]:8080/a"),
        ("https://[::1]/", "https://[::1]/"),
        ("http://my_blog.example/", "http://my_blog.example/"),
        ("http://example.com/a b", "http://example.com/a%20b"),
        ("http://example.com/%7e/%2F", "http://example.com/%7e/%2F"),
        ("http://example.com/100%", "http://example.com/100%25"),
        ("http://example.com/ü?q=ü&a[]=1", "http://example.com/%C3%BC?q=%C3%BC&a[]=1"),
        (
            "https://fcm.googleapis.com/$discovery/rest?version=v1",
            "https://fcm.googleapis.com/$discovery/rest?version=v1",
        ),
        ("http://Trẻem-Việt.vn/Đường", "http://xn--trem-vit-d40dve.vn/%C4%90%C6%B0%E1%BB%9Dng"),
        ("http://XN--TREM-VIT-D40DVE.VN/", "http://xn--trem-vit-d40dve.vn/"),
        ("bücher.example", "http://xn--bcher-kva.example/"),
        ("ｅｘａｍｐｌｅ．com", "http://example.com/"),  # full-width letters and dot (UTS 46 mapping)
        ("http://việt.example。/", "http://xn--vit-5kz.example/"),  # full-width trailing dot is the root
    ],
)
def test_normalises(raw: str, url: str) -> None:
    assert normalise_url(raw).url == url


def test_fields() -> None:
    assert normalise_url("HTTPS://Trẻem-Việt.vn:8443/Đường?x=1#top") == NormalisedUrl(
        url="https://xn--trem-vit-d40dve.vn:8443/%C4%90%C6%B0%E1%BB%9Dng?x=1",
        scheme="https",
        host="xn--trem-vit-d40dve.vn",
        port=8443,
        path_query="/%C4%90%C6%B0%E1%BB%9Dng?x=1",
    )
    assert normalise_url("example.com") == NormalisedUrl(
        url="http://example.com/", scheme="http", host="example.com", port=80, path_query="/"
    )
    ipv6 = normalise_url("https://[2001:db8::1]/")
    assert (ipv6.host, ipv6.port) == ("2001:db8::1", 443)  # no brackets in host: ready for a socket


@pytest.mark.parametrize(
    "host", ["Trẻem-Việt.vn", "bộ-công-an.example", "ĐƯỜNG-PHỐ.example", "xn--trem-vit-d40dve.vn", "faß.de"]
)
def test_unicode_hosts_match_idna_uts46(host: str) -> None:
    assert normalise_url(f"http://{host}/").host == idna.encode(host, uts46=True).decode("ascii")


def test_decomposed_vietnamese_is_the_same_host() -> None:
    # Some Vietnamese keyboards type tone marks as combining characters (NFD).
    composed = "http://Trẻem-Việt.vn/"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert normalise_url(decomposed).host == normalise_url(composed).host == "xn--trem-vit-d40dve.vn"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty URL"),
        ("   ", "empty URL"),
        ("ftp://example.com/", "unsupported scheme 'ftp'"),
        ("mailto:someone@example.com", "unsupported scheme 'mailto'"),
        ("javascript:alert(1)", "unsupported scheme 'javascript'"),
        ("http:/example.com", "expected '//' after 'http:'"),
        ("http://", "no host"),
        ("http:///path", "no host"),
        ("http://.", "no host"),
        ("http://example.com:99999/", "bad port 99999"),
        ("http://example.com:0/", "bad port 0"),
        ("http://example.com:8o/", "bad port '8o'"),
        ("example.com:abc", "bad port 'abc'"),
        ("http://exa mple.com/", "bad host name"),
        ("http://-bad.example/", "bad host name"),
        ("http://a..b/", "empty label"),
        ("http://" + "a" * 64 + ".example/", "bad host name"),
        ("http://" + ("a" * 60 + ".") * 5 + "example/", "too long"),
        ("http://xn--zz.example/", "bad host name"),  # punycode that does not decode
        ("http://1.2.3.999/", "bad IPv4 address"),
        ("http://01.2.3.4/", "bad IPv4 address"),
        ("http://2001:db8::1/", "must be in brackets"),
        ("http://[2001:db8::1/", "closing ']'"),
        ("http://[2001:db8::zz]/", "bad IPv6 address"),
        ("http://[fe80::1%25eth0]/", "zone"),
        ("http://[::1]x/", "after the IPv6 address"),
        ("http://user:secret@example.com/", "user name or password"),
        ("http://example.com/a\nhttp://b.example/", "control character"),
        ("http://exa\tmple.com/", "control character"),
    ],
)
def test_rejects(raw: str, message: str) -> None:
    with pytest.raises(UrlError) as caught:
        normalise_url(raw)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("ascii_host", "shown"),
    [
        ("xn--trem-vit-d40dve.vn", "trẻem-việt.vn"),
        ("example.com", "example.com"),
        ("my_blog.example", "my_blog.example"),
        ("2001:db8::1", "2001:db8::1"),
        ("xn--zz.example", "xn--zz.example"),  # cannot be decoded: shown as is
    ],
)
def test_display_host(ascii_host: str, shown: str) -> None:
    assert display_host(ascii_host) == shown


def test_real_citizen_lab_urls_normalise_and_are_stable() -> None:
    for name in ("vn.csv", "global.csv"):
        with (CITIZENLAB / name).open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) > 400, name  # the shared copy: 411 and 1722 URLs
        for row in rows:
            normalised = normalise_url(row["url"])
            assert normalise_url(normalised.url) == normalised
            assert normalised.url.isascii()


_PATH_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="#"), max_size=30
)


@settings(max_examples=200, deadline=None)
@given(path=_PATH_TEXT, query=_PATH_TEXT)
def test_normalising_twice_changes_nothing(path: str, query: str) -> None:
    first = normalise_url(f"http://example.com/{path}?{query}")
    assert normalise_url(first.url) == first
    assert first.url.isascii() and " " not in first.url


@pytest.mark.parametrize(
    "raw",
    [
        '=HYPERLINK("http://evil.example","x")',  # a spreadsheet formula is not a URL
        "=1+2",
        "+example.com",
        "-example.com",
        "@example.com",
        '=HYPERLINK("http://evil.example"',  # what is left of it in a CSV cell split at the comma
    ],
)
def test_spreadsheet_formulas_are_not_urls(raw: str) -> None:
    with pytest.raises(UrlError):
        normalise_url(raw)


def test_a_url_over_the_length_limit_is_refused_with_a_short_message() -> None:
    at_limit = "http://example.com/" + "a" * (MAX_URL_LENGTH - len("http://example.com/"))
    assert normalise_url(at_limit).url == at_limit
    with pytest.raises(UrlError) as caught:
        normalise_url(at_limit + "a")
    assert str(caught.value) == f"URL is too long ({MAX_URL_LENGTH + 1} characters, at most {MAX_URL_LENGTH})"


@pytest.mark.parametrize(
    "raw",
    [
        "http://" + "a" * 5000 + ".example/",
        "http://" + "ü" * 2000 + ".example/",
        # Soft hyphens: UTS 46 deletes them, the length check counts them.
        "http://" + "\u00ad" * 1020 + "a.example/",
        "http://" + "-" * 1000 + "/",
        "http://[" + "1:" * 1000 + "]/",
        "http://example.com:" + "9x" * 1000 + "/",
        "x" * 1000 + "://example.com/",
        "http://1.2.3." + "9" * 1000 + "/",
    ],
)
def test_error_messages_quote_little_of_a_huge_url(raw: str) -> None:
    with pytest.raises(UrlError) as caught:
        normalise_url(raw)
    assert len(str(caught.value)) < 300


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.from_regex(r"(https?://)?[^/?#]{0,30}(:\d{0,6})?[/?#]?.{0,20}")))
def test_any_text_gives_a_normalised_url_or_a_url_error(raw: str) -> None:
    try:
        normalised = normalise_url(raw)
    except UrlError as exc:
        assert str(exc)
    else:
        assert normalised.url.isascii() and normalised.url.startswith(("http://", "https://"))
        assert normalise_url(normalised.url) == normalised


# ---------------------------------------------------------------------------------------------------------
# normalise_host: the one host normaliser (lists, config, fingerprints)


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("Warning.Example.VN.", "warning.example.vn"),
        ("cảnhbáo.vn", "xn--cnhbo-0qa6344c.vn"),
        ("CẢNHBÁO.VN", "xn--cnhbo-0qa6344c.vn"),
        ("some_blog.blogspot.com", "some_blog.blogspot.com"),
        ("10.0.0.2", "10.0.0.2"),
        ("[2001:DB8::0:1]", "2001:db8::1"),
        ("2001:DB8::0:1", "2001:db8::1"),  # bare, as urlsplit().hostname gives it
        ("::1", "::1"),
    ],
)
def test_normalise_host(text: str, host: str) -> None:
    assert normalise_host(text) == host


@pytest.mark.parametrize(
    "text",
    ["", ".", "http://warn.vn/", "warn.vn/x", "bad_host!", "300.1.1.1", "-x.vn", "a..vn", "[::1", "[fe80::1%eth0]",
     "xn--zz.vn", "a" * 64 + ".vn"],
)  # fmt: skip
def test_normalise_host_rejects(text: str) -> None:
    with pytest.raises(UrlError):
        normalise_host(text)


@pytest.mark.parametrize("host", ["Example.COM", "cảnhbáo.vn", "1.2.3.4", "[2001:db8::1]", "trẻem-việt.vn."])
def test_a_url_host_is_the_normalised_host(host: str) -> None:
    """A host in the config compares equal to the same host in a list URL."""
    assert normalise_url(f"http://{host}/").host == normalise_host(host)
