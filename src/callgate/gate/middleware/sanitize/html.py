"""The html check: a value that will be put into a page as markup must not run anything.

The allow-list sanitiser `nh3` (html5ever's parser, the one a browser engine uses) does the
judging: the value is cleaned twice, once with the allow-list (ordinary formatting tags,
harmless attributes, safe URL schemes) and once keeping every tag and attribute it contains;
if the two differ, the allow-list removed something, and the first such tag, attribute or URL
is named. Both runs serialise the same way, so harmless differences of spelling (`a < b`,
unquoted attributes) never count. On top of that, because a tool may decode entities again:

- entities are decoded to a fixed point (`&amp;#106;avascript:` is `javascript:`), invisible
  characters dropped, and `javascript:`, `vbscript:`, `livescript:` and HTML or SVG `data:`
  URLs refused anywhere;
- `style` attributes are read as CSS with escapes decoded: `expression(`, `@import`,
  `behavior:`, `-moz-binding` and `url(` to a script are refused.

Needs the `sanitize` extra (nh3).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, Final

from callgate.gate.middleware.sanitize.config import (
    EXTRA_HINT,
    SanitizeConfig,
    SanitizerUnavailable,
    too_long,
)

_MARKUP: Final = re.compile(r"<[A-Za-z!/?]")
_TAG_NAME: Final = re.compile(r"</?([A-Za-z][A-Za-z0-9:_-]{0,63})")

_ATTR_NAME: Final = re.compile(r"[\s/\"']([^\s\"'<>/=]{1,64})\s*+=")
_INVISIBLE: Final = re.compile(
    "[\\s\\x00-\\x1f\\x7f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]+"
)
_BAD_URL: Final = re.compile(
    r"(javascript|vbscript|livescript|mocha):|data:(?:text/html|application/xhtml|image/svg)",
    re.IGNORECASE,
)
_CSS_ESCAPE: Final = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)", re.DOTALL)
_CSS_BAD: Final = re.compile(
    r"expression\(|@import|behavior:|-moz-binding|url\((?:[\"']?)(?:javascript|vbscript|data):",
    re.IGNORECASE,
)
#: elements that run, load or submit something, or change how the page around them parses
_ACTIVE_TAGS: Final = frozenset(
    [
        "script",
        "style",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "base",
        "meta",
        "link",
        "form",
        "input",
        "button",
        "textarea",
        "select",
        "option",
        "keygen",
        "isindex",
        "svg",
        "math",
        "template",
        "noscript",
        "xmp",
        "plaintext",
        "noembed",
        "noframes",
        "video",
        "audio",
        "source",
        "track",
        "marquee",
        "param",
        "portal",
        "title",
        "image",
        "html",
        "head",
        "body",
        "slot",
        "dialog",
    ]
)
#: attributes whose value is a URL or markup: kept only where the allow-list keeps them
_URL_ATTRS: Final = frozenset(
    [
        "href",
        "src",
        "action",
        "formaction",
        "data",
        "srcdoc",
        "xlink:href",
        "background",
        "poster",
        "codebase",
        "dynsrc",
        "lowsrc",
        "srcset",
        "ping",
        "manifest",
        "icon",
        "longdesc",
        "usemap",
        "archive",
        "classid",
        "profile",
        "itemtype",
        "http-equiv",
        "content",
        "style",
    ]
)
_STRICT_ATTRS: Final = frozenset({"class", "id", "title", "lang", "dir", "style"})
_SCRIPT_SCHEMES: Final = frozenset(
    {"javascript", "vbscript", "livescript", "mocha", "data", "file", "blob", "filesystem"}
)


def _nh3() -> Any:
    try:
        import nh3
    except ImportError as exc:
        raise SanitizerUnavailable(f"the html check needs nh3: {EXTRA_HINT}") from exc
    return nh3


def decode_entities(text: str, rounds: int = 8) -> str:
    """`text` with HTML entities decoded until nothing changes (at most `rounds` times)."""
    for _ in range(rounds):
        if "&" not in text:
            break
        nxt = html.unescape(text)
        if nxt == text:
            break
        text = nxt
    return text


def _css_problem(css: str) -> str | None:
    def unescape(m: re.Match[str]) -> str:
        if m.group(1):
            code = int(m.group(1), 16)
            return chr(code) if 0 < code < 0x110000 else ""
        return m.group(2)

    squeezed = _INVISIBLE.sub("", _CSS_ESCAPE.sub(unescape, decode_entities(css)))
    squeezed = _strip_comments(squeezed)
    m = _CSS_BAD.search(squeezed)
    return f"contains a CSS construct that loads or runs code ({m.group(0)!r})" if m else None


def _strip_comments(css: str) -> str:
    """CSS without its comments (`expr/**/ession(` is `expression(`); linear, unlike a
    lazy pattern that rescans from every unterminated `/*`."""
    out: list[str] = []
    pos = 0
    while (start := css.find("/*", pos)) >= 0:
        out.append(css[pos:start])
        end = css.find("*/", start + 2)
        if end < 0:
            return "".join(out)
        pos = end + 2
    out.append(css[pos:])
    return "".join(out)


def detect_html(value: str, config: SanitizeConfig) -> str | None:
    """Why `value` could run script or load content when used as markup, or None."""
    if problem := too_long(value, "html", config):
        return problem
    squeezed = _INVISIBLE.sub("", decode_entities(value))
    m = _BAD_URL.search(squeezed)
    if m:
        return f"contains a {m.group(0).rstrip(':').lower()}: URL"
    # The markup is judged as given and, if it differs, once entities are decoded to a fixed
    # point (`&lt;script&gt;` becomes a tag in a tool that decodes before inserting).
    decoded = decode_entities(value)
    forms = [value, decoded]
    if value.rfind("<") > value.rfind(">"):  # a dangling tag ends at the page's next '>'
        forms.append(value + ">")
    for form in dict.fromkeys(forms):
        if _MARKUP.search(form) and (problem := _markup_problem(form)):
            return problem
    return None


def _markup_problem(value: str) -> str | None:
    nh3 = _nh3()
    tags = {t.lower() for t in _TAG_NAME.findall(value)}
    if active := sorted(tags & _ACTIVE_TAGS):  # also where a parser would not build it:
        return f"contains a <{active[0]}> tag"  # `<scr<script>`, conditional comments
    found: list[str] = []

    def watch(tag: str, attr: str, attr_value: str) -> str:
        if attr == "style" and not found and (problem := _css_problem(attr_value)):
            found.append(problem)
        return attr_value

    allowed = set(nh3.ALLOWED_TAGS) | (tags - _ACTIVE_TAGS)  # unknown elements are inert
    names = {a.lower() for a in _ATTR_NAME.findall(value)}
    inert = {n for n in names if not n.startswith("on") and n not in _URL_ATTRS}
    strict_attrs: dict[str, set[str]] = {k: set(v) for k, v in nh3.ALLOWED_ATTRIBUTES.items()}
    strict_attrs["*"] = inert | _STRICT_ATTRS
    strict = nh3.clean(
        value, tags=allowed, attributes=strict_attrs, link_rel=None, attribute_filter=watch
    )
    if found:
        return found[0]
    everything = nh3.clean(
        value,
        tags=allowed | tags,
        clean_content_tags=set(),
        attributes={"*": names | _STRICT_ATTRS | {"href", "src"}},
        url_schemes=set(nh3.ALLOWED_URL_SCHEMES) | _SCRIPT_SCHEMES,
        link_rel=None,
    )
    if strict == everything:
        return None
    return _first_difference(strict, everything, allowed)


def _first_difference(strict: str, everything: str, allowed: Mapping[str, Any] | set[str]) -> str:
    """Name what the allow-list removed: a tag, an attribute, or a URL."""
    for name in _TAG_NAME.findall(everything):
        if name.lower() not in allowed:
            return f"contains a <{name.lower()}> tag"
    kept = set(_ATTR_NAME.findall(strict))
    for name in _ATTR_NAME.findall(everything):
        if name not in kept:
            if name.lower().startswith("on"):
                return f"contains an inline event handler ({name.lower()}=)"
            if name.lower() in _URL_ATTRS:
                return f"contains a URL the allow-list refuses ({name.lower()}=)"
            return f"contains an attribute the allow-list removes ({name.lower()}=)"
    return "contains markup the allow-list removes (a URL with an unsafe scheme)"
