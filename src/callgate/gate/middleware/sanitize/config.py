"""What every sink check shares: its settings, the detector signature and the helpers that turn
an argument into the forms a check must judge.

Kept apart from the detectors so each sink module imports only this and the standard library
(plus its own optional parser), never another sink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import unquote

from callgate.errors import CallgateError

#: The extra that installs the parsers the html and email checks (and policy `matches`) need.
EXTRA_HINT = "pip install 'callgate[sanitize]'"

#: The most characters each check reads. A longer value is refused outright: every check stays
#: well under 10 ms on any value it accepts to read, and a value meant for one SQL literal, one
#: argv element, one path or one address is never that long. Override per kind in the config.
DEFAULT_MAX_CHARS: Mapping[str, int] = MappingProxyType(
    {"sql": 4096, "shell": 4096, "path": 4096, "url": 8192, "html": 8192, "email": 512}
)

#: Networks a URL may never reach besides every address that is not globally routable
#: (loopback, private, link-local, CGNAT, reserved ranges are refused through `is_global`).
#: These are public-looking addresses that answer as cloud metadata or host services.
DEFAULT_BLOCKED_NETWORKS: tuple[str, ...] = (
    "169.254.0.0/16",  # link-local, AWS/GCP/Azure/OpenStack metadata (169.254.169.254)
    "100.64.0.0/10",  # shared address space (CGNAT), Alibaba metadata (100.100.100.200)
    "168.63.129.16/32",  # Azure host wire server
    "fd00:ec2::/32",  # AWS IPv6 metadata (fd00:ec2::254)
)

#: Names that answer with a loopback address by construction, whatever the DNS says.
DEFAULT_BLOCKED_DOMAINS: tuple[str, ...] = (
    "localhost",
    "localtest.me",
    "lvh.me",
    "vcap.me",
    "lacolhost.com",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home.arpa",
    "instance-data",
)

#: Resolves a host name to its addresses (text); the default asks the system resolver.
Resolver = Callable[[str], Iterable[str]]


class SanitizerUnavailable(CallgateError):
    """A check's parser is not installed; the message names the extra to install."""


@dataclass(frozen=True, slots=True)
class SanitizeConfig:
    """Settings the detectors read.

    - `path_roots`: directories paths must stay inside (relative paths resolve against the
      first). Without roots, absolute paths are refused.
    - `url_schemes`: allowed URL schemes.
    - `url_allow_hosts`: hosts (names or IP literals) allowed even if private or loopback.
    - `url_only_hosts`: if set, the only hosts allowed ("example.com" also allows subdomains).
    - `url_blocked_networks` / `url_blocked_domains`: refused on top of every non-global address
      and the names in `DEFAULT_BLOCKED_DOMAINS` (subdomains included).
    - `url_resolve_dns`: also resolve host names and refuse those pointing at refused
      addresses; `url_resolver` replaces the system resolver (tests pass a table).
    - `email_domains`: if set, the only recipient domains allowed (subdomains included).
    - `shell_allow_options`: shell values may start with '-' (they are options, not positionals).
    - `max_chars`: per sink kind, the longest value a check reads (longer ones are refused).
    """

    path_roots: tuple[str, ...] = ()
    url_schemes: frozenset[str] = frozenset({"http", "https"})
    url_allow_hosts: frozenset[str] = frozenset()
    url_only_hosts: frozenset[str] | None = None
    url_blocked_networks: tuple[str, ...] = DEFAULT_BLOCKED_NETWORKS
    url_blocked_domains: tuple[str, ...] = DEFAULT_BLOCKED_DOMAINS
    url_resolve_dns: bool = False
    url_resolver: Resolver | None = None
    email_domains: frozenset[str] | None = None
    shell_allow_options: bool = False
    max_chars: Mapping[str, int] = field(default_factory=lambda: DEFAULT_MAX_CHARS)


Detector = Callable[[str, SanitizeConfig], str | None]


def too_long(value: str, kind: str, config: SanitizeConfig) -> str | None:
    """The refusal for a value longer than the check reads, else None."""
    limit = config.max_chars.get(kind, DEFAULT_MAX_CHARS.get(kind, 4096))
    if len(value) > limit:
        return f"is longer than {limit} characters, the most the {kind} check reads"
    return None


def percent_decodings(value: str, rounds: int = 8) -> list[str] | None:
    """`value` and each stage of percent-decoding it until nothing changes (double and triple
    encodings decode fully). None when it still changes after `rounds` stages."""
    stages = [value]
    for _ in range(rounds):
        if "%" not in stages[-1]:
            return stages
        nxt = unquote(stages[-1], errors="surrogateescape")
        if nxt == stages[-1]:
            return stages
        stages.append(nxt)
    return None


def host_matches(host: str, names: Iterable[str]) -> bool:
    """`host` is one of `names` or a subdomain of one."""
    return any(host == n or host.endswith("." + n) for n in names)
