"""Tool outputs read as objects with kinds, and which of them the user named.

A tool result becomes objects from, in order: the tool's own extractor
(`ProvenanceSource.extract`), its structured `data`, or its text parsed as JSON or YAML. Each
object gets a kind: the tool's declared kind for its top-level objects, else the object's own
``kind``/``type`` field, else the key that holds it (``{"files": [...]}`` holds files). Its ids
are the ``id`` field (of the object's kind) and every ``<kind>_id`` field (of that kind).

**Named objects.** The user names a thing ("delete report.pdf", "message Alice") and a tool
supplies its id. An object is named when one of its short name-like fields occurs in the user's
words as a *whole name* (all its tokens, in order), or as the first or last tokens of a longer
name ("Alice" for "Alice Chen") when nothing matches that span whole. Longest match wins: when
the user wrote "final report.pdf", the file called "report.pdf" is not named by it. Two
different objects named by the same words are ambiguous, and neither counts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from callgate.gate.middleware.provenance.text import TOKEN, TextIndex, classify, wordset
from callgate.messages import Message, ToolResult
from callgate.tools.provenance import ProvenanceSource

#: fields that describe a state or a quantity rather than name the object
_NOT_NAMES = wordset(
    "status state type kind category priority role visibility currency size date time "
    "start end created updated modified due amount price count total balance timezone tz "
    "location body content text description notes note snippet message summary preview "
    "html"
)
#: words too common to single out an object by themselves
_GENERIC = wordset(
    "a an the to of for and or in on at by with from my me our your new old all any this "
    "that file files doc docs document event events meeting meetings call message "
    "messages email emails mail note notes report reports item items account user users "
    "channel channels team general draft drafts list update updates payment payments "
    "invoice invoices bill bills txt pdf doc docx xlsx csv md png jpg com org net"
)
#: fields whose text anyone may write (a message, a status line)
_PROSE = wordset("body content text description notes note snippet message summary status html")
_MAX_NAME_TOKENS = 8
_MAX_NAME_CHARS = 80


@dataclass(slots=True)
class Obj:
    """One object read from a tool's output."""

    kind: str | None
    fields: list[tuple[str, str]]  # scalar fields, lists flattened
    ids: list[tuple[str, str]]  # (kind, value) of each id field
    label: str  # "tool (call_id)"
    id_keys: frozenset[str] = frozenset()
    name_keys: tuple[str, ...] = ()

    def key(self) -> tuple[str | None, str]:
        """Identity for de-duplication: the same object listed by two tools is one object."""
        own = [v for k, v in self.ids if k == self.kind]
        return (self.kind, own[0] if own else repr(sorted(self.fields)))


@dataclass(slots=True)
class Output:
    """One tool result: its text (for tracing) and its objects."""

    label: str
    tool: str
    texts: list[str]
    objects: list[Obj] = field(default_factory=list)
    source: ProvenanceSource | None = None
    _index: TextIndex | None = None

    def index(self) -> TextIndex:
        """The output's text, indexed once however many values are looked up in it."""
        if self._index is None:
            self._index = TextIndex(self.texts)
        return self._index

    @property
    def prose(self) -> list[str]:
        """Where free text lives: the whole text, or the prose fields of its objects."""
        if not self.objects:
            return self.texts
        return [v for o in self.objects for k, v in o.fields if _is_prose(k, v)]


def read_outputs(
    history: Sequence[Message],
    sources: Mapping[str, ProvenanceSource],
    open_world: frozenset[str] = frozenset(),
) -> list[Output]:
    """Every tool result in the history, read as text and objects.

    Structure must come from the tool, never from text an attacker wrote: a tool's structured
    `data` is read; text is parsed as JSON only when it is the gate's rendering of such data
    (no `data` kept, e.g. a resumed run) and the tool is not `open_world` (a fetched page that
    happens to be JSON is still the page's author's words); YAML and extractors only for tools
    that declare a `ProvenanceSource`.
    """
    out: list[Output] = []
    for m in history:
        if m.role != "tool":
            continue
        res = m.tool_result
        name = res.name if res else "tool"
        label = f"{res.name} ({res.call_id})" if res else "tool"
        src = sources.get(name)
        texts = _texts(m, res)
        output = Output(label, name, texts, source=src)
        for node in _structured(res, texts, src, name in open_world):
            output.objects += list(_walk(node, src.kind if src else None, label, src, None))
        out.append(output)
    return out


def _texts(m: Message, res: ToolResult | None) -> list[str]:
    texts = [m.content]
    if res is not None:
        if res.content and res.content != m.content:
            texts.append(res.content)
        data = plain(res.data)
        if isinstance(data, (dict, list)):
            texts.append(json.dumps(data, ensure_ascii=False, default=str))
        elif isinstance(data, str) and data not in texts:
            texts.append(data)
    return texts


def plain(value: Any) -> Any:
    """Dataclasses and Pydantic models (as tools return them) as plain dicts and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            return dump(mode="json")
        except Exception:  # noqa: BLE001 - not a Pydantic model after all
            return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _structured(
    res: ToolResult | None, texts: list[str], src: ProvenanceSource | None, open_world: bool
) -> list[Any]:
    if res is None:
        return []
    data = plain(res.data)
    if src is not None and src.extract is not None:
        payload = data if data is not None else res.content
        try:
            return [[dict(o) for o in src.extract(payload)]]
        except Exception:  # noqa: BLE001 - a broken extractor leaves the output untrusted text
            return []
    if isinstance(data, (dict, list)):
        return [data]
    declared = src is not None
    if (data is None and not open_world) or declared:
        for t in texts:
            parsed = parse_structured(t, yaml_too=declared)
            if parsed is not None:
                return [parsed]
    return []


def parse_structured(text: str, *, yaml_too: bool = True) -> Any:
    """JSON, else YAML (when PyYAML is installed) that is a mapping or a list; else None."""
    s = text.strip()
    if not s:
        return None
    if s[0] in "[{":
        try:
            value = json.loads(s)
        except ValueError:
            value = None
        if isinstance(value, (dict, list)):
            return value
    if not yaml_too or (":" not in s and not s.startswith("- ")):
        return None
    try:
        import yaml
    except ImportError:  # pragma: no cover - yaml is an optional extra
        return None
    try:
        value = yaml.safe_load(s)
    except Exception:  # noqa: BLE001 - not YAML: plain text
        return None
    return value if isinstance(value, (dict, list)) and _looks_like_records(value) else None


def _looks_like_records(value: Any) -> bool:
    """Prose with a colon parses as YAML too; keep only mappings of short scalar fields."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(i, dict) and len(i) >= 2 for i in items)


def singular(word: str) -> str:
    w = word.casefold()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("sses") or w.endswith("xes"):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def _walk(
    node: Any, kind: str | None, label: str, src: ProvenanceSource | None, parent_key: str | None
) -> Iterator[Obj]:
    if isinstance(node, list):
        for x in node:
            yield from _walk(x, kind, label, src, parent_key)
        return
    if not isinstance(node, dict):
        return
    own = kind or _own_kind(node, parent_key)
    obj = _make_obj(node, own, label, src)
    if obj.fields:
        yield obj
    for k, v in node.items():
        if isinstance(v, (dict, list)):
            # nested objects get their own kind: only top-level ones carry the declared kind,
            # except a wrapper {"files": [...]} whose list holds the declared objects
            inner = kind if (kind and obj.fields == [] and isinstance(v, list)) else None
            yield from _walk(v, inner, label, src, str(k))


def _own_kind(node: Mapping[str, Any], parent_key: str | None) -> str | None:
    for key in ("kind", "type", "object"):
        v = node.get(key)
        if isinstance(v, str) and 0 < len(v) <= 30 and " " not in v:
            return v.casefold()
    if parent_key:
        return singular(parent_key)
    id_kinds = [k[:-3].casefold() for k in node if isinstance(k, str) and k.endswith("_id")]
    return id_kinds[0] if len(id_kinds) == 1 else None


def _make_obj(
    node: Mapping[str, Any], kind: str | None, label: str, src: ProvenanceSource | None
) -> Obj:
    fields: list[tuple[str, str]] = []
    for k, v in node.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (str, int, float)):
            fields.append((str(k), str(v)))
        elif isinstance(v, list) and v and all(isinstance(x, (str, int, float)) for x in v):
            fields += [(str(k), str(x)) for x in v if not isinstance(x, bool)]
    declared = set(src.id_fields) if src and src.id_fields else set()
    ids: list[tuple[str, str]] = []
    id_keys: set[str] = set()
    for k, v in fields:
        lk = k.casefold()
        if lk in declared or k in declared or lk == "id":
            if kind:
                ids.append((kind, v))
            id_keys.add(k)
        elif lk.endswith("_id") or (k.endswith("Id") and len(k) > 2):
            ids.append((lk[:-3] if lk.endswith("_id") else lk[:-2], v))
            id_keys.add(k)
    if src is not None and src.name_fields:
        names = tuple(k for k, _ in fields if k in src.name_fields and k not in id_keys)
    else:
        names = tuple(
            k
            for k, v in fields
            if k not in id_keys and k.casefold() not in _NOT_NAMES and _name_like(v)
        )
    return Obj(kind, fields, ids, label, frozenset(id_keys), names)


def _is_prose(key: str, value: str) -> bool:
    return key.casefold() in _PROSE or len(TOKEN.findall(value)) > _MAX_NAME_TOKENS


def _name_like(value: str) -> bool:
    if len(value) > _MAX_NAME_CHARS:
        return False
    kind, _ = classify(value)
    if kind in ("email", "url", "code"):
        return True
    toks = [t.casefold() for t in TOKEN.findall(value)]
    if not 1 <= len(toks) <= _MAX_NAME_TOKENS:
        return False
    if any(len(t) >= 2 for t in _file_stem(value).split()):
        return True  # a file name with its extension is specific, even "report.pdf"
    return any(len(t) >= 3 and t.isalpha() and t not in _GENERIC for t in toks) or any(
        len(t) >= 2 and not t.isdigit() and any(c.isdigit() for c in t) for t in toks
    )


# ------------------------------------------------------------------------------- named objects


@dataclass(frozen=True, slots=True)
class Naming:
    """How the user named an object: the field, its words and whether the match was whole."""

    field: str
    words: str
    span: tuple[int, int]
    whole: bool


def _match(obj: Obj, trusted: TextIndex, addresses: bool) -> Naming | None:
    """The best way the user's words name `obj` (longest span, whole over partial).

    With `addresses` False, an address field (an owner's or sender's email) does not name the
    object: "email hr@acme.test" says nothing about the files hr@acme.test owns.
    """
    best: Naming | None = None
    for key, value in obj.fields:
        if key not in obj.name_keys:
            continue
        kind, norm = classify(value)
        if kind in ("email", "url", "code"):
            if not addresses:
                continue
            where = trusted.find(value)
            if where is not None:
                cand = Naming(key, value, (-1, -1), True)
                best = cand if best is None else best
            continue
        toks = norm.split()
        stem = _file_stem(value)
        if stem:
            toks_stem = stem.split()
            for start, end in trusted.runs(toks_stem):
                if not _inside_longer_word_run(trusted, start, end):
                    cand = Naming(key, stem, (start, end), True)
                    if best is None or _better(cand, best):
                        best = cand
        for cand in _spans(toks, key, trusted):
            if best is None or _better(cand, best):
                best = cand
    return best


def _file_stem(value: str) -> str:
    """ "Q3 report.pdf" -> "q3 report": a file is named whole by its name without extension."""
    base, dot, ext = value.strip().rpartition(".")
    if not dot or not base or not (1 <= len(ext) <= 5) or not ext.isalnum():
        return ""
    return " ".join(t.casefold() for t in TOKEN.findall(base))


def _spans(toks: list[str], key: str, trusted: TextIndex) -> Iterator[Naming]:
    for start, end in trusted.runs(toks):
        yield Naming(key, " ".join(toks), (start, end), True)
    n = len(toks)
    for k in range(n - 1, 0, -1):
        for part in (toks[:k], toks[n - k :]):
            if not any(len(t) >= 3 and t.isalpha() and t not in _GENERIC for t in part):
                continue
            for start, end in trusted.runs(part):
                if not _inside_longer_word_run(trusted, start, end):
                    yield Naming(key, " ".join(part), (start, end), False)


def _inside_longer_word_run(trusted: TextIndex, start: int, end: int) -> bool:
    """A partial name must not be glued to more of a file-like name ("report" in "report.pdf")."""
    after = trusted.seps[end] if end < len(trusted.seps) else "\x00"
    return after in (".", "_", "-") and end < len(trusted.tokens) and trusted.tokens[end] != "\x00"


def _better(a: Naming, b: Naming) -> bool:
    la, lb = a.span[1] - a.span[0], b.span[1] - b.span[0]
    return (a.whole, la) > (b.whole, lb)


def named_objects(
    objects: Sequence[Obj], trusted: TextIndex, *, addresses: bool = True
) -> dict[int, Naming]:
    """Which objects (by position in `objects`) the user named, and how.

    Longest match wins; among objects named by the very same words with the same strength,
    only one distinct object may remain, else the words are ambiguous and name none of them.
    """
    matches: list[tuple[int, Naming]] = []
    for i, obj in enumerate(objects):
        m = _match(obj, trusted, addresses)
        if m is not None:
            matches.append((i, m))
    # one representative per distinct reading (span, strength), and the objects behind it:
    # the user's text is short, so there are few readings however many objects there are
    readings: dict[tuple[tuple[int, int], bool], set[tuple[str | None, str]]] = {}
    for i, m in matches:
        readings.setdefault((m.span, m.whole), set()).add(objects[i].key())
    named: dict[int, Naming] = {}
    for i, m in matches:
        if any(_dominates(Naming("", "", span, whole), m) for span, whole in readings):
            continue
        if m.span != (-1, -1) and len(readings[(m.span, m.whole)]) > 1:
            continue  # the same words name two different objects: ambiguous
        named[i] = m
    return named


def _dominates(o: Naming, m: Naming) -> bool:
    """`o` is a strictly better reading of the user's words than `m` (longest match wins)."""
    if o.span == (-1, -1) or m.span == (-1, -1):
        return False
    (os_, oe), (ms, me) = o.span, m.span
    if os_ <= ms and me <= oe and (oe - os_) > (me - ms):
        return True
    return o.span == m.span and o.whole and not m.whole
