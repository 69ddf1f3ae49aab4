"""The sql check: a value meant to be one literal must not change the statement around it.

The value is tokenized (a small SQL lexer: strings with quote doubling and, for MySQL, backslash
escapes; numbers; identifiers; quoted identifiers; `--`, `#` and `/* */` comments, where the
content of MySQL's executable `/*! */` comments is read as SQL) and judged as it would be read in
each place an application puts it: bare (a number or an identifier), and after each quote
character it contains (the value closes the application's quoted literal there). Comments
count as spaces, so `UNION/**/SELECT` is `UNION SELECT`. Refused, in any of those readings:

- a second statement after `;` (`1; DROP TABLE t`, `x'; exec xp_cmdshell 'dir'--`);
- `UNION [ALL] SELECT`;
- a condition that does not depend on the row: `OR 1=1`, `OR 2>1`, `OR 'a'='a'`, `OR x=x`,
  `OR 1`, `AND 1=2`, `OR f(..) > 64` (and `||` / `&&` for OR / AND);
- after a closing quote: a comment, `;`, a comparison or concatenation, or a keyword that
  continues a query (`OR name LIKE '%a%'`, `ORDER BY 1`, `UNION`, ...);
- functions and catalogs used to probe a database (`SLEEP(`, `pg_sleep(`, `WAITFOR DELAY`,
  `INTO OUTFILE`, `@@version`, `information_schema`).

Ordinary text passes: apostrophes in names (`O'Brien and Sons`), prose with `and` / `or`, a `;`
followed by an ordinary sentence. The lexer is one possessive pattern, so a value is read in
linear time; values over the kind's limit (`SanitizeConfig.max_chars`) are refused unread.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Final

from callgate.gate.middleware.sanitize.config import SanitizeConfig, too_long

_LEX_STD: Final = r"""
  (?P<exec>/\*!\d{0,6})
| (?P<cmt>/\*(?:[^*]++|\*(?!/))*+(?:\*/)?|--[^\n\r]*+|\#[^\n\r]*+|\*/)
| (?P<str>[nNbBxXeE]?'(?:[^']++|'')*+'?|"(?:[^"]++|"")*+"?)
| (?P<qid>`[^`]*+`?)
| (?P<num>0[xX][0-9a-fA-F]*+|0[bB][01]*+|(?:\d++(?:\.\d*+)?|\.\d++)(?:[eE][+-]?\d++)?)
| (?P<var>@@?[\w$.]*+)
| (?P<id>[^\W\d]\w*+|\$\w*+)
| (?P<op><=>|<>|!=|<=|>=|\|\||&&|::|[^\s\w])
"""
# MySQL reads a backslash inside a string as an escape: `'a\' OR 1=1 -- '` is one string there.
_LEX_MYSQL: Final = _LEX_STD.replace(
    r"""'(?:[^']++|'')*+'?|"(?:[^"]++|"")*+"?""",
    r"""'(?:[^'\\]++|\\.|'')*+'?|"(?:[^"\\]++|\\.|"")*+"?""",
)
# Leading spaces belong to the token; trailing ones match the end (never a failed match that
# the scanner would retry from every following position).
_TOKEN_STD: Final = re.compile(r"\s*+(?:" + _LEX_STD + r"|\Z)", re.VERBOSE | re.DOTALL)
_TOKEN_MYSQL: Final = re.compile(r"\s*+(?:" + _LEX_MYSQL + r"|\Z)", re.VERBOSE | re.DOTALL)

Token = tuple[str, str]  # (kind, lower-cased text)
_LITERAL_KINDS: Final = frozenset({"str", "num"})
_LITERAL_WORDS: Final = frozenset({"null", "true", "false"})
_COMPARE: Final = frozenset({"=", "<", ">", "<=", ">=", "<>", "!=", "<=>"})
_COMPARE_WORDS: Final = frozenset({"like", "rlike", "regexp", "in", "is", "between", "glob"})
_OR_AND: Final = frozenset({"or", "and", "xor", "||", "&&"})
_ARITHMETIC: Final = frozenset({"+", "-", "*", "/", "%", "^", "div", "mod"})
_PROBE_FUNCS: Final = frozenset(
    {
        "sleep",
        "pg_sleep",
        "benchmark",
        "load_file",
        "xp_cmdshell",
        "xp_dirtree",
        "xp_regread",
        "sp_executesql",
        "dbms_pipe",
        "dbms_lock",
        "utl_http",
        "utl_inaddr",
        "extractvalue",
        "updatexml",
        "randomblob",
        "sys_eval",
        "sys_exec",
        "lo_import",
        "lo_export",
        "pg_read_file",
        "pg_ls_dir",
    }
)
_CATALOGS: Final = frozenset(
    {
        "information_schema",
        "pg_catalog",
        "pg_shadow",
        "sqlite_master",
        "sqlite_schema",
        "sysobjects",
        "syscolumns",
        "all_tables",
        "user_tables",
    }
)
_OBJECTS: Final = frozenset(
    {
        "table",
        "database",
        "schema",
        "index",
        "view",
        "user",
        "function",
        "procedure",
        "trigger",
        "role",
        "login",
        "sequence",
        "type",
        "extension",
        "column",
        "constraint",
    }
)
_LEADS_TO_CALL: Final = (
    _OR_AND
    | _COMPARE
    | _ARITHMETIC
    | frozenset(
        [
            "not",
            "select",
            ";",
            "(",
            ",",
            "like",
            "rlike",
            "regexp",
            "if",
            "when",
            "then",
            "else",
            "by",
            "where",
            "in",
            "return",
            "returning",
            "exec",
            "execute",
            "call",
        ]
    )
)
#: the tokens a signal starts at; every other token is passed over with one set lookup
_TRIGGERS: Final = (
    _OR_AND | _PROBE_FUNCS | _CATALOGS | frozenset({";", "union", "waitfor", "into", "("})
)
_AFTER_QUOTE_WORDS: Final = frozenset(
    {
        "union",
        "select",
        "insert",
        "update",
        "delete",
        "drop",
        "exec",
        "execute",
        "order",
        "group",
        "having",
        "waitfor",
        "into",
        "limit",
        "procedure",
        "where",
        "from",
        "collate",
        "offset",
        "returning",
    }
)


def tokenize(text: str, mysql: bool = False) -> list[Token]:
    """The tokens of `text` (comments included as kind "cmt"; executable comments vanish so
    their content reads as SQL). Characters the lexer cannot place are skipped."""
    pattern = _TOKEN_MYSQL if mysql else _TOKEN_STD
    out: list[Token] = []
    for m in pattern.finditer(text):
        kind = m.lastgroup
        if kind is not None and kind != "exec":
            out.append((kind, m.group(kind).lower()))
    return out


def detect_sql(value: str, config: SanitizeConfig) -> str | None:
    """Why `value` would change an SQL statement it is placed in, or None."""
    if problem := too_long(value, "sql", config):
        return problem
    # Judged in NFKC form: some servers map fullwidth quotes and letters to ASCII, and the
    # form keeps every ASCII character of the raw value, so it shows all the raw value does.
    value = unicodedata.normalize("NFKC", value)
    readings = [False, True] if re.search(r"\\['\"]", value) else [False]
    for mysql in readings:
        if problem := _judge(tokenize(value, mysql)):
            return problem
        for quote in ("'", '"', "`"):
            pos = value.find(quote)
            if pos >= 0:
                after = tokenize(value[pos + 1 :], mysql)
                if problem := _after_quote(after) or _judge(after):
                    return problem
    return None


class _Seq:
    """The significant tokens (comments dropped) and where each parenthesis closes, found in
    one pass so skipping a group is O(1), never a rescan."""

    __slots__ = ("closes", "toks")

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.toks = [t for t in tokens if t[0] != "cmt"]
        self.closes: dict[int, int] = {}
        opened: list[int] = []
        for i, (_, text) in enumerate(self.toks):
            if text == "(":
                opened.append(i)
            elif text == ")" and opened:
                self.closes[opened.pop()] = i + 1


def _significant(tokens: Sequence[Token]) -> _Seq:
    return _Seq(tokens)


def _judge(tokens: Sequence[Token]) -> str | None:
    """Signals that hold wherever the tokens stand in a statement."""
    sig = _significant(tokens)
    for i, (kind, text) in enumerate(sig.toks):
        if text not in _TRIGGERS and kind != "var":
            continue
        if kind == "op" and text == ";" and _statement_at(sig, i + 1):
            return "contains a second SQL statement after ';' (stacked query)"
        if kind == "id" and text == "union" and _union_select(sig, i + 1):
            return "contains UNION SELECT"
        if text in _OR_AND and kind in ("id", "op") and _always_decided(sig, i + 1):
            return "contains a condition that is always true or always false (tautology)"
        if problem := _probe(sig, i):
            return problem
    return None


def _at(sig: _Seq, i: int) -> Token:
    return sig.toks[i] if i < len(sig.toks) else ("end", "")


def _statement_at(sig: _Seq, i: int) -> bool:
    """Whether a statement that does something starts at `i` (after a ';')."""
    kind, word = _at(sig, i)
    nxt, nxt2 = _at(sig, i + 1), _at(sig, i + 2)
    if kind != "id":
        return False
    if word == "select":
        return _select_list(sig, i + 1)
    if word in ("insert", "replace", "merge"):
        return nxt[1] in ("into", "ignore", "low_priority", "overwrite")
    if word == "update":
        return nxt[0] in ("id", "qid") and nxt2[1] == "set"
    if word == "delete":
        return nxt[1] == "from" or (nxt[0] in ("id", "qid") and nxt2[1] == "from")
    if word in ("drop", "create", "alter"):
        return nxt[1] in _OBJECTS or nxt[1] in ("or", "temporary", "unique", "if")
    if word == "truncate":
        return nxt[1] == "table" or (nxt[0] in ("id", "qid") and nxt2[0] in ("end", "op"))
    if word in ("exec", "execute"):
        return nxt[0] in ("str", "var", "op") or nxt[1].startswith(("xp_", "sp_", "immediate"))
    if word in ("shutdown", "checkpoint"):
        return nxt[0] in ("end", "op") or nxt[1] == "with"
    if word in ("grant", "revoke"):
        return any(_at(sig, j)[1] in ("to", "on", "from") for j in range(i + 1, i + 9))
    if word in ("declare", "set"):
        return nxt[0] == "var" or (nxt[0] == "id" and nxt2[1] in ("=", ":="))
    return _other_statement(word, nxt, nxt2)


def _other_statement(word: str, nxt: Token, nxt2: Token) -> bool:
    if word == "copy":
        return nxt[0] in ("id", "qid") and nxt2[1] in ("from", "to", "(")
    if word == "attach":
        return nxt[1] == "database" or nxt[0] == "str"
    if word == "call":
        return nxt[0] == "id" and nxt2[1] == "("
    if word == "waitfor":
        return nxt[1] in ("delay", "time")
    if word == "load":
        return nxt[1] in ("data", "xml")
    if word == "with":
        return nxt[0] in ("id", "qid") and nxt2[1] in ("as", "(")
    if word == "pragma":
        return nxt[0] == "id"
    return False


def _select_list(sig: _Seq, i: int) -> bool:
    """`select` followed by something only a query has: `*`, a literal, a call, a variable,
    or a column list ending in FROM (`select a time that works` is a sentence)."""
    kind, text = _at(sig, i)
    if kind in _LITERAL_KINDS or kind == "var" or text in _LITERAL_WORDS or text in ("*", "("):
        return True
    if kind in ("id", "qid"):
        nxt = _at(sig, i + 1)[1]
        return nxt in ("(", ",", "from", ".")
    return False


def _union_select(sig: _Seq, i: int) -> bool:
    if _at(sig, i)[1] in ("all", "distinct"):
        i += 1
    while _at(sig, i)[1] == "(":
        i += 1
    return _at(sig, i)[1] == "select"


def _operand(sig: _Seq, i: int) -> tuple[str, str, int]:
    """The operand starting at `i`, arithmetic included (`3*2`): (kind, text, next index).
    Kinds: lit (only literals), id, call, group, expr (a mix), none."""
    kind, text, j = _term(sig, i)
    while kind != "none" and _at(sig, j)[1] in _ARITHMETIC:
        kind2, _, k = _term(sig, j + 1)
        if kind2 == "none":
            break
        kind, j = ("lit" if kind == kind2 == "lit" else "expr"), k
    return kind, text, j


def _term(sig: _Seq, i: int) -> tuple[str, str, int]:
    """One term of an operand; a call or a parenthesised group is skipped to its closing
    parenthesis."""
    while _at(sig, i)[1] in ("not", "!", "-", "+", "~"):
        i += 1
    kind, text = _at(sig, i)
    if kind in _LITERAL_KINDS or text in _LITERAL_WORDS:
        return "lit", text.strip("'\"").lstrip("nbxe'"), i + 1
    if kind == "op" and text == "(":
        return "group", text, _close(sig, i)
    if kind in ("id", "qid", "var"):
        if _at(sig, i + 1)[1] == "(":
            return "call", text, _close(sig, i + 1)
        j = i + 1
        while _at(sig, j)[1] == "." and _at(sig, j + 1)[0] in ("id", "qid"):
            j += 2
        return "id", text, j
    return "none", text, i


def _close(sig: _Seq, i: int) -> int:
    """Index after the parenthesis closing the one at `i` (the end if it never closes)."""
    return sig.closes.get(i, len(sig.toks))


def _always_decided(sig: _Seq, i: int) -> bool:
    """After OR / AND: a comparison whose result does not depend on the row (`1=1`, `'a'='a'`,
    `x=x`, `2>1`), a bare literal ending the condition (`OR 1`, `OR true`), or a call compared
    with a literal (`AND ascii(substr(...))>64`)."""
    kind, text, j = _operand(sig, i)
    if kind == "none":
        return False
    op = _at(sig, j)
    if op[1] == "is" and kind != "none":  # `OR id IS NOT NULL` holds for every row
        k = j + 1 + (_at(sig, j + 1)[1] == "not")
        return _at(sig, k)[1] in ("null", "true", "false", "unknown")
    if op[1] in _COMPARE or op[1] in _COMPARE_WORDS:
        kind2, text2, _ = _operand(sig, j + 1 + (op[1] == "not"))
        if kind == "lit" and kind2 in ("lit", "group"):
            return True
        if kind2 == "lit" and kind in ("call", "group"):
            return True
        return kind == kind2 == "id" and text == text2
    if kind == "lit":
        return op[0] == "end" or op[1] in (";", ")", "or", "and", "||", "&&")
    return False


def _probe(sig: _Seq, i: int) -> str | None:
    kind, text = sig.toks[i]
    nxt = _at(sig, i + 1)[1]
    if kind == "id" and text in _PROBE_FUNCS and nxt in ("(", ".") and _in_sql(sig, i):
        return f"calls {text}, a function used in injection probes"
    if kind == "id" and text in _CATALOGS:
        return f"reads the {text} catalog"
    if kind == "var" and text.startswith("@@"):
        return f"reads the server variable {text}"
    if kind == "id" and text == "waitfor" and nxt in ("delay", "time"):
        return "contains WAITFOR (a time-based probe)"
    if kind == "id" and text == "into" and nxt in ("outfile", "dumpfile"):
        return f"writes a file (INTO {nxt.upper()})"
    if kind == "op" and text == "(" and _at(sig, i + 1)[1] == "select":
        return "contains a subquery"
    return None


def _in_sql(sig: _Seq, i: int) -> bool:
    """A call at `i` reads as SQL: an operator or keyword leads to it (`1 AND SLEEP(5)`), or
    its arguments are all literals and calls (`pg_sleep(10)`), unlike `sleep (8 hours)`."""
    if i > 0 and sig.toks[i - 1][1] in _LEADS_TO_CALL:
        return True
    if _at(sig, i + 1)[1] != "(":
        return True  # dbms_pipe.receive_message(...)
    for j in range(i + 2, min(_close(sig, i + 1) - 1, i + 34)):  # a bounded look
        kind, text = sig.toks[j]
        if kind in ("id", "qid") and text not in _LITERAL_WORDS and _at(sig, j + 1)[1] != "(":
            return False
    return True


def _after_quote(tokens: Sequence[Token]) -> str | None:
    """The value closed the application's quoted literal: what follows must not be SQL."""
    i = 0
    while i < len(tokens) and tokens[i][1] == ")":
        i += 1
    kind, text = tokens[i] if i < len(tokens) else ("end", "")
    if kind == "cmt":
        return "closes a quoted literal and comments out the rest of the statement"
    if kind == "op" and (text == ";" or text in _COMPARE or text in ("||", "&&")):
        return "closes a quoted literal and continues with SQL"
    if kind != "id":
        return None
    if text in _AFTER_QUOTE_WORDS:
        return "closes a quoted literal and continues with SQL"
    if text in _OR_AND or text in _COMPARE_WORDS or text == "not":
        sig = _significant(tokens[i + 1 :])
        okind, _, j = _operand(sig, 0)
        if okind in ("lit", "group", "call") or _at(sig, j)[1] in _COMPARE | _COMPARE_WORDS:
            return "closes a quoted literal and continues with SQL"
    return None
