"""The url check: a value a tool will fetch must not reach the machine's own network.

The URL is parsed (`urllib.parse`), its host percent-decoded and normalised the way browsers and
resolvers do (IDNA/UTS 46 mapping: fullwidth letters, the ideographic full stop `。`), then judged
on what it *is*, not how it is spelled:

- scheme allow-list; no credentials, backslashes, whitespace or control characters;
- an IP address in any spelling (IPv4 decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`,
  short `127.1`; IPv6 with a zone id) is unwrapped to every IPv4 address it carries (mapped,
  compatible, 6to4, Teredo, NAT64, ISATAP) and each must be globally routable and outside
  the blocked networks (cloud metadata such as 169.254.169.254, 100.100.100.200, the CGNAT
  range);
- a name that is one label (`http://metadata/`), ends in a local suffix (`.localhost`,
  `.internal`, ...), or embeds a non-global address (`127.0.0.1.nip.io`,
  `app-10-0-0-1.sslip.io`, `7f000001.nip.io`) is refused without asking any DNS;
- optionally (`url_resolve_dns`), the name is resolved and every address is judged the same way.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Final
from urllib.parse import unquote, urlsplit

from callgate.gate.middleware.sanitize.config import SanitizeConfig, host_matches, too_long

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_DOTS: Final = re.compile("[\u3002\uff0e\uff61]")
_NUMERIC_LABEL: Final = re.compile(r"(?:0[xX][0-9a-fA-F]{0,32}|[0-9]{1,40})")
_DASHED_QUAD: Final = re.compile(r"(?<![0-9])(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})(?![0-9])")
_HEX8: Final = re.compile(r"(?:^|-)([0-9a-f]{8})$")
_NAT64: Final = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def detect_url(value: str, config: SanitizeConfig) -> str | None:
    """Why fetching `value` could reach an internal address, or None."""
    if problem := too_long(value, "url", config):
        return problem
    for ch in value:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"contains whitespace or a control character (U+{ord(ch):04X})"
    if "\\" in value.split("?", 1)[0].split("#", 1)[0]:
        return "contains a backslash before the query (browsers read it as '/')"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme not in config.url_schemes:
        allowed = ", ".join(sorted(config.url_schemes))
        return f"uses scheme {scheme or '(none)'!r}; allowed: {allowed}"
    if "@" in parts.netloc:
        return "contains credentials (user:password@host)"
    host, problem = _normalise_host(parts.hostname or "")
    if problem:
        return problem
    return _host_problem(host, config)


def _normalise_host(raw: str) -> tuple[str, str | None]:
    """The host as a resolver sees it: percent-decoded, dots unified, UTS 46 mapped."""
    try:
        host = unquote(raw, errors="strict") if "%" in raw and ":" not in raw else raw
    except UnicodeError:
        return "", "has a host name that is not valid UTF-8 once percent-decoded"
    if any(c.isspace() or c in "/\\@?#" or ord(c) < 0x20 for c in host):
        return "", "has a host name with forbidden characters"
    host = _DOTS.sub(".", unicodedata.normalize("NFKC", host)).lower().rstrip(".")
    if not host:
        return "", "has no host"
    if len(host) > 253:
        return "", "has a host name longer than 253 characters"
    if ":" in host or host.isascii():
        return host, None
    try:
        return _to_ascii(host), None
    except UnicodeError:
        return "", "has a host name that is not a valid internationalised name"


def _to_ascii(host: str) -> str:
    """IDNA 2008 with the UTS 46 mapping when the `idna` package is there, else the standard
    library's IDNA 2003 codec (which also maps compatibility forms and case)."""
    try:
        import idna
    except ImportError:  # pragma: no cover - idna ships with most installs
        return host.encode("idna").decode("ascii")
    return str(idna.encode(host, uts46=True).decode("ascii"))


def _host_problem(host: str, config: SanitizeConfig) -> str | None:
    if host in config.url_allow_hosts:
        return None
    if config.url_only_hosts is not None and not host_matches(host, config.url_only_hosts):
        return f"host {host!r} is not in the allowed list"
    ip, bad_number = parse_ip(host)
    if bad_number:
        return f"host {host!r} is neither a valid IP address nor a name"
    if ip is not None:
        problem = ip_problem(ip, config)
        return f"{problem} ({host})" if problem else None
    if "." not in host:
        return f"points to a single-label host name ({host}), resolved on the local network"
    if host_matches(host, config.url_blocked_domains):
        return f"points to an internal host name ({host})"
    for embedded in embedded_ips(host):
        if problem := ip_problem(embedded, config):
            return f"names an address inside it ({embedded}) that {problem}"
    if config.url_resolve_dns:
        return _resolved_problem(host, config)
    return None


def parse_ip(host: str) -> tuple[IPAddress | None, bool]:
    """(address, False) for an IP literal in any spelling; (None, True) for a host that looks
    numeric but is no address (browsers refuse it); (None, False) for a name."""
    h = host.strip("[]")
    if ":" in h:
        try:
            return ipaddress.IPv6Address(h.split("%", 1)[0]), False
        except ValueError:
            return None, True
    labels = h.split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None, False
    return _legacy_ipv4(labels)


def _legacy_ipv4(labels: list[str]) -> tuple[IPAddress | None, bool]:
    """The IPv4 parser browsers use: 1 to 4 parts, each decimal, octal (leading 0) or hex
    (0x); the last part fills the remaining bytes (`127.1`, `2130706433`)."""
    if len(labels) > 4:
        return None, True
    numbers: list[int] = []
    for label in labels:
        if not _NUMERIC_LABEL.fullmatch(label):
            return None, True
        if label[:2].lower() == "0x":
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            if any(c in "89" for c in label):
                return None, True
            numbers.append(int(label, 8))
        else:
            numbers.append(int(label))
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None, True
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value), False


def _carried(ip: IPAddress) -> Iterator[IPAddress]:
    """Every IPv4 address an IPv6 `ip` carries (mapped, compatible, 6to4, Teredo, NAT64,
    ISATAP), then `ip` itself: the carried address is what the packet finally reaches."""
    if isinstance(ip, ipaddress.IPv6Address):
        yield from _embedded_v4(ip)
    yield ip


def _embedded_v4(ip: ipaddress.IPv6Address) -> Iterator[IPAddress]:
    if ip.ipv4_mapped is not None:
        yield ip.ipv4_mapped
    if ip.sixtofour is not None:
        yield ip.sixtofour
    if ip.teredo is not None:
        yield from ip.teredo
    packed = ip.packed
    low32 = ipaddress.IPv4Address(packed[12:])
    if packed[:12] == bytes(12) and int(ip) > 1:  # ::a.b.c.d (IPv4-compatible)
        yield low32
    if any(ip in net for net in _NAT64) or packed[:12] == bytes(8) + b"\xff\xff\x00\x00":
        yield low32
    if packed[8:12] in (b"\x00\x00\x5e\xfe", b"\x02\x00\x5e\xfe"):  # ISATAP interface id
        yield low32


@lru_cache(maxsize=32)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def ip_problem(ip: IPAddress, config: SanitizeConfig) -> str | None:
    """Why a URL must not reach `ip` (or an address it carries), or None."""
    blocked = _networks(config.url_blocked_networks)
    for addr in _carried(ip):
        if str(addr) in config.url_allow_hosts:
            continue
        if addr.is_loopback:
            return "points to a loopback address"
        if addr.is_link_local:
            return "points to a link-local address (cloud metadata lives there)"
        if any(addr.version == net.version and addr in net for net in blocked):
            return "points to a blocked network (cloud metadata or shared address space)"
        if addr.is_private:
            return "points to a private network address"
        if addr.is_multicast or addr.is_unspecified or addr.is_reserved or not addr.is_global:
            return "points to a reserved or non-routable address"
    return None


def embedded_ips(host: str) -> Iterable[IPAddress]:
    """IPv4 addresses a wildcard-DNS name spells inside it (`10.0.0.1.nip.io`,
    `app-127-0-0-1.sslip.io`, `7f000001.nip.io`): such names resolve to that address."""
    labels = host.split(".")
    for i in range(len(labels) - 3):
        quad = labels[i : i + 4]
        if all(p.isdigit() and len(p) <= 3 and int(p) < 256 for p in quad):
            yield ipaddress.IPv4Address(".".join(quad))
    for m in _DASHED_QUAD.finditer(host):
        if all(int(g) < 256 for g in m.groups()):
            yield ipaddress.IPv4Address(".".join(m.groups()))
    for label in labels[:-1]:
        if hexed := _HEX8.search(label):
            yield ipaddress.IPv4Address(int(hexed.group(1), 16))


def _system_resolver(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None)]


def _resolved_problem(host: str, config: SanitizeConfig) -> str | None:
    resolve = config.url_resolver or _system_resolver
    try:
        addresses = list(resolve(host))
    except (OSError, UnicodeError):
        return f"host {host!r} does not resolve"
    if not addresses:
        return f"host {host!r} does not resolve"
    for text in addresses:
        ip, bad = parse_ip(text)
        if ip is None or bad:
            return f"host {host!r} resolves to {text!r}, which is not an address"
        if problem := ip_problem(ip, config):
            return f"host {host!r} resolves to {ip}, which {problem}"
    return None
