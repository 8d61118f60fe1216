"""Text -> Query (nodes.py): the grammar (grammar.lark, parsed by lark's LALR parser) gives
the structure; each qualifier's values are then read and checked, so every error names
its position (1-based, in characters) and what was expected there."""

import re
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput, UnexpectedToken

from audit.events.fields import BY_NAME
from audit.explore import vocabulary as v
from audit.explore.filter_fields import CONTROL_RE, MAX_VALUES, moment_parse
from audit.explore.query import nodes as n

MAX_QUERY_LENGTH = 2000
MAX_TERMS = 50
MAX_METADATA_KEY = 128
_NUMBER_RE = re.compile(r"^(>=|<=|>|<|=)?(-?\d{1,15}(?:\.\d{1,6})?)$")
_EXPECTED = {  # terminal -> how the message names it
    "NEG": None,
    "QUALIFIER": 'a word, a "phrase" or a qualifier such as actor:',
    "WORD": 'a word, a "phrase" or a qualifier such as actor:',
    "VALUE": "a value (no space after the colon)",
    "QUOTED": None,
    "COMMA": 'a "," and another value',
    "_WS": "a space",
    "$END": "the end of the query",
}
_FOUND = {"_WS": "a space", "$END": "the end of the query", "COMMA": '","', "NEG": '"-"'}


class QuerySyntaxError(ValueError):
    """A query that does not parse; `position` is 1-based."""

    def __init__(self, position: int, message: str):
        self.position, self.message = position, message
        super().__init__(f"position {position}: {message}")


def _check_qualifier_name(token: Token) -> Token:
    """Lexer callback: an unknown qualifier is an error at once, where it stands."""
    name, dot, _ = token.value[:-1].partition(".")
    qualifier = v.QUALIFIER_BY_NAME.get(name.lower())
    if qualifier is None or bool(dot) != (qualifier.kind == v.METADATA_MATCH):
        names = ", ".join(f"{q.name}:" if q.kind != v.METADATA_MATCH else "metadata.<key>:" for q in v.QUALIFIERS)
        raise QuerySyntaxError(
            token.start_pos + 1,
            f"expected a qualifier ({names}), found {token.value!r}; put text with a colon in quotes to search it",
        )
    return token


@cache
def _lark() -> Lark:
    grammar = (Path(__file__).parent / "grammar.lark").read_text()
    return Lark(grammar, parser="lalr", lexer="contextual", lexer_callbacks={"QUALIFIER": _check_qualifier_name})


def _syntax_error(text: str, error: UnexpectedInput) -> QuerySyntaxError:
    if isinstance(error, UnexpectedToken):
        token = error.token
        position = len(text) if token.type == "$END" else token.start_pos
        wanted = list(dict.fromkeys(_EXPECTED.get(name, name) for name in sorted(error.expected)))
        found = _FOUND.get(token.type, repr(str(token)))
    else:
        position = error.pos_in_stream
        char = text[position]
        if char == '"':
            return QuerySyntaxError(position + 1, 'expected a closing " for the quote opened here')
        if char == "\\":
            return QuerySyntaxError(position + 1, "expected a character after the backslash")
        wanted = list(dict.fromkeys(_EXPECTED.get(name, name) for name in sorted(error.allowed or ())))
        found = repr(char)
    wanted = [item for item in wanted if item] or ["a term"]
    return QuerySyntaxError(position + 1, f"expected {' or '.join(wanted)}, found {found}")


def _pattern(token: Token) -> n.Pattern:
    """A value's text: quotes make everything literal; bare, a backslash escapes and `*` is a wildcard."""
    raw = token.value
    if token.type == "QUOTED":
        return n.Pattern((re.sub(r"\\(.)", r"\1", raw[1:-1], flags=re.S),))
    chunks, chunk, escaped = [], [], False
    for char in raw:
        if escaped:
            chunk.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            chunks.append("".join(chunk))
            chunk = []
        else:
            chunk.append(char)
    chunks.append("".join(chunk))
    return n.Pattern(tuple(chunks))


def _literal(token: Token) -> str:
    """A value where `*` has no meaning (metadata, numbers, times, field names)."""
    return _pattern(token).text


def _metadata_key(qualifier: Token) -> str:
    key_text = qualifier.value[len("metadata.") : -1]
    if key_text.startswith('"'):
        key = re.sub(r"\\(.)", r"\1", key_text[1:-1], flags=re.S)
    else:
        key = re.sub(r"\\(.)", r"\1", key_text, flags=re.S)
    if not key or len(key) > MAX_METADATA_KEY or CONTROL_RE.search(key):
        raise QuerySyntaxError(qualifier.start_pos + 1, f"expected a metadata key of 1–{MAX_METADATA_KEY} printable characters")
    return key


def _fail(token: Token, message: str):
    raise QuerySyntaxError(token.start_pos + 1, message)


def _match(name: str, values: list[Token]) -> tuple[n.Pattern, ...]:
    field = BY_NAME[v.QUALIFIER_BY_NAME[name].field]
    patterns = []
    for token in values:
        pattern = _pattern(token)
        if not pattern.text:
            _fail(token, f"expected a value after {name}:")
        if field.choices and not pattern.wildcard and pattern.text.lower() not in field.choices:
            _fail(token, f"expected one of {', '.join(field.choices)} after {name}:, found {pattern.text!r}")
        patterns.append(pattern)
    return tuple(patterns)


def _compare(name: str, values: list[Token]) -> tuple:
    clauses = []
    for token in values:
        found = _NUMBER_RE.match(_literal(token))
        if not found:
            _fail(token, f"expected a number, optionally after >, >=, <, <= or = ({name}:>=500), found {token.value!r}")
        clauses.append((found.group(1) or "=", float(found.group(2))))
    return tuple(clauses)


def _presence(name: str, values: list[Token]) -> tuple[str, ...]:
    fields = []
    for token in values:
        field = _literal(token)
        if field.startswith("metadata."):
            key = field[len("metadata.") :]
            if not key or len(key) > MAX_METADATA_KEY or CONTROL_RE.search(key):
                _fail(token, f"expected a metadata key of 1–{MAX_METADATA_KEY} printable characters")
        elif field.lower() in v.PRESENCE_FIELDS:
            field = field.lower()
        else:
            _fail(token, f"expected one of {', '.join(v.PRESENCE_FIELDS)} or metadata.<key> after {name}:, found {field!r}")
        fields.append(field)
    return tuple(fields)


def _qualified(tree: Tree, start: int, end: int) -> n.Term:
    qualifier, *values = tree.children
    if len(values) > MAX_VALUES:
        _fail(values[MAX_VALUES], f"expected at most {MAX_VALUES} values")
    name = qualifier.value.split(".", 1)[0].rstrip(":").lower()
    kind = v.QUALIFIER_BY_NAME[name].kind
    if kind == v.MATCH:
        return n.Match(start, end, name, _match(name, values))
    if kind == v.METADATA_MATCH:
        return n.MetadataMatch(start, end, _metadata_key(qualifier), tuple(_literal(token) for token in values))
    if kind == v.COMPARE:
        return n.Compare(start, end, name, _compare(name, values))
    if kind == v.PRESENCE:
        return n.Presence(start, end, name == "has", _presence(name, values))
    if len(values) > 1:
        _fail(values[1], f"expected one time after {name}:, found a second")
    try:
        return n.Window(start, end, name, moment_parse(_literal(values[0])))
    except ValueError as error:
        _fail(values[0], f"expected a time: {error}")


def _term(tree: Tree) -> n.Term:
    *neg, atom = tree.children
    tokens = list(atom.scan_values(lambda _: True)) if isinstance(atom, Tree) else [atom]
    start = neg[0].start_pos if neg else tokens[0].start_pos
    end = tokens[-1].end_pos
    if isinstance(atom, Tree):
        term = _qualified(atom, start, end)
    else:
        pattern = _pattern(atom)
        if not pattern.text.replace("*", ""):
            _fail(atom, 'expected text to search ("" and * alone match everything)')
        term = n.Text(start, end, pattern)
    return n.Not(start, end, term) if neg else term


def query_parse(text: str) -> n.Query:
    """Parse a query; raises QuerySyntaxError naming the position and what was expected."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(MAX_QUERY_LENGTH + 1, f"expected at most {MAX_QUERY_LENGTH} characters")
    found = CONTROL_RE.search(text.replace("\t", " "))
    if found:
        raise QuerySyntaxError(found.start() + 1, "expected printable text, found a control character")
    try:
        tree = _lark().parse(text)  # an unknown qualifier raises QuerySyntaxError from the lexer
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None
    terms = tree.children
    if len(terms) > MAX_TERMS:
        first = next(terms[MAX_TERMS].scan_values(lambda value: isinstance(value, Token)))
        raise QuerySyntaxError(first.start_pos + 1, f"expected at most {MAX_TERMS} terms")
    return n.Query(text, tuple(_term(term) for term in terms))
