"""The Solr-style filter query (`fq`) of package_search: a small, strict subset.

Supported: `field:value`, `field:"quoted value"`, a leading `+`, terms ANDed (by space or
`AND`), `metadata_modified:[FROM TO TO]` with `*` or an ISO date on either side, and `*:*`.
Anything else is refused with a message naming the part that could not be used.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from portal.api.ckan.envelope import CkanError, validation_error

FIELDS = ("organization", "groups", "tags", "res_format", "license_id", "name", "id")
RANGE_FIELD = "metadata_modified"
# Terms CKAN clients add that every dataset here satisfies.
ALWAYS_TRUE = {"dataset_type": "dataset", "type": "dataset", "state": "active"}
NO_MATCH_ID = "00000000-0000-0000-0000-000000000000"
EXAMPLE = "metadata_modified:[2024-01-01T00:00:00Z TO *]"

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NOW = re.compile(r"^NOW(?:([+-])(\d+)(DAYS?|HOURS?|MINUTES?))?(?:/(DAY|HOUR))?$")
_IN_Q = re.compile(
    r"(?:^|(?<=\s))\+?(?:" + "|".join((*FIELDS, RANGE_FIELD)) + r'):(?:"[^"]*"|\[[^\]]*\]|\S+)'
)


@dataclass
class FilterQuery:
    """What an `fq` asks for: exact field values (ANDed) and a modification period."""

    filters: dict[str, list[str]] = field(default_factory=dict)
    modified_since: datetime | None = None
    modified_until: datetime | None = None

    def add(self, name: str, value: str) -> None:
        """Require a field to have a value."""
        self.filters.setdefault(name, []).append(value)


def parse_fq(texts: list[str], into: FilterQuery | None = None) -> FilterQuery:
    """Parse `fq` (and `fq_list`) texts into one `FilterQuery`; refuse what is not understood."""
    query = into or FilterQuery()
    for text in texts:
        for term in _terms(text):
            _apply(query, term)
    return query


def split_q(q: str) -> tuple[str, list[str]]:
    """Move `field:value` terms of known fields out of `q` into filter texts."""
    q = q.strip()
    if q in ("*:*", "*"):
        return "", []
    found = [m.group(0) for m in _IN_Q.finditer(q)]
    return (_IN_Q.sub(" ", q).strip(), found) if found else (q, [])


def _fail(message: str) -> CkanError:
    return validation_error({"fq": [message]})


def _terms(text: str) -> list[tuple[str, str]]:
    """Split a filter text into (field, raw value) pairs."""
    terms: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, word = i, _word_at(text, i)
        if word in ("AND", "&&"):
            i += len(word)
            continue
        if word in ("OR", "||", "NOT") or text[i] in "()!":
            raise _fail(f"{word!r}: OR, NOT and parentheses are not supported; terms are ANDed")
        if text[i] == "-":
            raise _fail(f"{word!r}: excluding with '-' is not supported")
        if text[i] == "+":
            i += 1
        match = _FIELD.match(text, i)
        if text.startswith("*:*", i):
            i += 3
            continue
        if not match or match.end() >= n or text[match.end()] != ":":
            raise _fail(f"{word!r} is not of the form field:value")
        name, i = match.group(0), match.end() + 1
        value, i = _value(text, i, start)
        terms.append((name, value))
    return terms


def _value(text: str, i: int, start: int) -> tuple[str, int]:
    """Read one value at `i`: quoted, a [range], or a bare word; return it and the next index."""
    n = len(text)
    if i >= n or text[i].isspace():
        raise _fail(f"{text[start:i]!r} has no value after the colon")
    if text[i] == '"':
        end = i + 1
        chars: list[str] = []
        while end < n and text[end] != '"':
            if text[end] == "\\" and end + 1 < n:
                end += 1
            chars.append(text[end])
            end += 1
        if end >= n:
            raise _fail(f"{text[start:]!r}: the quotation mark is never closed")
        return '"' + "".join(chars), end + 1
    if text[i] in "[{":
        closing = text.find("]" if text[i] == "[" else "}", i)
        if closing < 0:
            raise _fail(f"{text[start:]!r}: the range is never closed with ']' (write {EXAMPLE})")
        return text[i : closing + 1], closing + 1
    chars = []
    while i < n and not text[i].isspace():
        if text[i] == "\\" and i + 1 < n:
            i += 1
        chars.append(text[i])
        i += 1
    return "".join(chars), i


def _apply(query: FilterQuery, term: tuple[str, str]) -> None:
    name, raw = term
    quoted = raw.startswith('"')
    value = raw[1:] if quoted else raw
    if name == RANGE_FIELD:
        since, until = _range(value) if not quoted and value[:1] in "[{" else (_date(value),) * 2
        if since and (query.modified_since is None or since > query.modified_since):
            query.modified_since = since
        if until and (query.modified_until is None or until < query.modified_until):
            query.modified_until = until
        return
    if name in ALWAYS_TRUE:
        if value != ALWAYS_TRUE[name]:
            query.add("id", NO_MATCH_ID)
        return
    if name not in FIELDS:
        allowed = ", ".join((*FIELDS, RANGE_FIELD))
        raise _fail(f"{name}:{raw!s}: unknown field {name!r}; use one of {allowed}")
    if not quoted and ("*" in value or "?" in value):
        raise _fail(f"{name}:{value}: wildcards are not supported; give the exact value")
    if not value:
        raise _fail(f"{name}: the value is empty")
    query.add(name, value)


def _range(text: str) -> tuple[datetime | None, datetime | None]:
    inner = text[1:-1].strip()
    parts = inner.split()
    if len(parts) != 3 or parts[1] != "TO":
        raise _fail(f"{RANGE_FIELD}:{text}: a range must look like {EXAMPLE}")
    return _date(parts[0]), _date(parts[2])


def _date(text: str) -> datetime | None:
    """Parse a Solr date: `*`, an ISO 8601 date or time (UTC unless an offset is given), NOW."""
    if text == "*":
        return None
    now = _NOW.match(text)
    if now:
        return _solr_now(now)
    try:
        if len(text) < 10 or text[4] != "-":
            raise ValueError(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(
            f"{RANGE_FIELD}: {text!r} is not a date; use ISO 8601 such as 2024-01-01T00:00:00Z "
            f"(for example {EXAMPLE})"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _solr_now(match: re.Match[str]) -> datetime:
    sign, amount, unit, rounding = match.groups()
    value = datetime.now(UTC)
    if amount:
        span = {"D": timedelta(days=1), "H": timedelta(hours=1), "M": timedelta(minutes=1)}
        delta = span[unit[0]] * int(amount)
        value = value + delta if sign == "+" else value - delta
    if rounding == "DAY":
        value = value.replace(hour=0, minute=0, second=0, microsecond=0)
    elif rounding == "HOUR":
        value = value.replace(minute=0, second=0, microsecond=0)
    return value


def _word_at(text: str, i: int) -> str:
    return text[i:].split()[0] if text[i:].split() else text[i:]
