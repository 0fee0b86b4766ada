"""Japanese full-text search: lexemes for ``to_tsvector('simple', …)`` and ``to_tsquery``.

Tokenizer, chosen by measurement on this machine (2 cores; 1,000 catalog titles with descriptions
of 170 characters on average; the 50 relevance queries of tests/catalog): SudachiPy 0.7.0 with
SudachiDict-core 20261015 loads in 55-130 ms, memory-maps its dictionary (+5 MiB private memory,
file pages shared by all workers), tokenizes 190-215k tokens/s, indexes 750-1,650 entries/s,
1.1-2.1 ms per 500-character description (2.5-3.7 ms with cold caches, so 2-6 minutes for 100k
descriptions on one core), ships 1.8 MB + 76.9 MB of wheels (198 MB installed) and ranks the
expected entry first for 50 of 50 queries. Janome 0.5.0 loads in 250-360 ms, takes +79 MiB private
memory per process, tokenizes 9.5-11k tokens/s, needs 12-14 ms per entry and 30 ms per 500
characters (about 54 minutes for 100k), ships a 19.7 MB wheel (203 MB installed) and gets 43 of 50
through the same pipeline: IPADIC has no normalised forms (ひなんじょ), no sub-words (市水道局),
splits Wi-Fi and misreads kana-only queries (こそだて → こそ+だ+て).

Documents are indexed with each morpheme's surface (split mode C), Sudachi's normalised form, its
mode-A sub-words, hiragana readings and prefix/suffix compounds (避難+所 → 避難所). A query becomes
terms that are ANDed, each a list of alternatives that are ORed. Kanji terms are not widened to
their readings: homophones (公園/講演, both こうえん) would flood the results. A kana-only query
matches readings, so ひなん finds 避難. Rank with the title weighted (``setweight(…, 'A')``):
lexemes are deduplicated, so repetition in a description cannot say what an entry is about.
"""

import re
import unicodedata
from functools import lru_cache

from portal.catalog.japanese import (
    CONTENT,
    PREFIX,
    STOP,
    SUFFIX,
    Morph,
    analyse,
    is_kana,
    to_hiragana,
)

MAX_LEXEME_CHARS = 48
MAX_QUERY_CHARS = 200
MAX_TERMS = 12

_WORD = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")
# Control characters are refused by PostgreSQL text; lone surrogates cannot be encoded at all.
_UNSAFE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def normalize(text: str) -> str:
    """NFKC-fold, lower-case and collapse whitespace: the form for trigrams and comparison."""
    text = _UNSAFE.sub(" ", unicodedata.normalize("NFKC", text))
    return _SPACE.sub(" ", text).strip().lower()


@lru_cache(maxsize=1 << 14)
def _clean(form: str, parts: bool) -> tuple[str, ...]:
    # Only letters and digits reach PostgreSQL, so its parser keeps each lexeme whole and no
    # user input can carry tsquery syntax; "wi-fi" is indexed as "wifi" and as "wi", "fi".
    words = _WORD.findall(form.lower())
    if not words:
        return ()
    lexemes = ["".join(words), *words] if parts and len(words) > 1 else ["".join(words)]
    return tuple(lexeme for lexeme in lexemes if len(lexeme) <= MAX_LEXEME_CHARS)


def _groups(morphs: list[Morph]) -> list[list[Morph]]:
    """Attach prefixes and suffixes to their content word; stop morphemes break groups."""
    groups: list[list[Morph]] = []
    pending: list[Morph] = []
    open_group = False
    for morph in morphs:
        if morph.kind == STOP:
            groups.extend([p] for p in pending)
            pending, open_group = [], False
        elif morph.kind == PREFIX:
            pending.append(morph)
            open_group = False
        elif morph.kind == SUFFIX and open_group:
            groups[-1].append(morph)
        else:
            groups.append([*pending, morph])
            pending, open_group = [], True
    groups.extend([p] for p in pending)
    return groups


def _head(group: list[Morph]) -> Morph:
    return next((m for m in group if m.kind == CONTENT), group[0])


def _spellings(morph: Morph) -> list[str]:
    forms = [morph.surface, morph.normalized]
    if is_kana(morph.surface):
        forms.append(to_hiragana(morph.surface))
    return forms


def _joined(group: list[Morph]) -> list[str]:
    if len(group) == 1:
        return []
    return ["".join(m.surface for m in group), "".join(m.normalized for m in group)]


def _whole(group: list[Morph]) -> list[str]:
    return [*_joined(group), *_spellings(_head(group))]


@lru_cache(maxsize=1 << 14)
def _morph_lexemes(morph: Morph) -> tuple[str, ...]:
    forms = [morph.surface, morph.normalized, morph.reading, to_hiragana(morph.surface)]
    for piece in morph.pieces:
        if piece.kind != STOP:
            forms += [piece.surface, piece.normalized, piece.reading]
    return tuple(dict.fromkeys(lexeme for form in forms for lexeme in _clean(form, parts=True)))


def document_lexemes(*texts: str) -> str:
    """Space-separated, deduplicated lexemes of texts for ``to_tsvector('simple', …)``."""
    seen: dict[str, None] = {}
    for text in texts:
        for group in _groups(analyse(normalize(text))) if text else []:
            for form in _joined(group):
                seen.update(dict.fromkeys(_clean(form, parts=True)))
            for morph in group:
                seen.update(dict.fromkeys(_morph_lexemes(morph)))
    return " ".join(seen)


def _alternatives(forms: list[str]) -> list[str]:
    return list(dict.fromkeys(lexeme for form in forms for lexeme in _clean(form, parts=False)))


def _kana_terms(chunk: str) -> list[list[str]]:
    """Kana matches readings; Sudachi adds kanji spellings and word breaks where it is sure."""
    morphs = [m for m in analyse(chunk) if m.kind != STOP]
    whole = [to_hiragana(chunk), chunk]
    # Sudachi cuts unknown kana strings into junk (といれ → と+入れ): only dictionary nouns of
    # two or more kana are trusted, and the chunk is split only when it is made of nothing else.
    words = [m for m in morphs if m.noun and m.known and len(m.surface) > 1]
    if len(words) > 1 and len(words) == len(morphs):
        return [_alternatives([*_spellings(m), *whole]) for m in words]
    kanji = [m.normalized for m in words if not is_kana(m.normalized)]
    return [_alternatives([*whole, *kanji])] if morphs else []


def _chunk_terms(chunk: str) -> list[list[str]]:
    letters = "".join(_WORD.findall(chunk))
    if is_kana(letters):
        return _kana_terms(letters)
    terms: list[list[str]] = []
    for group in _groups(analyse(chunk)):
        whole = _whole(group)
        pieces = [p for p in _head(group).pieces if p.kind == CONTENT]
        if len(pieces) > 1:
            terms += [_alternatives([*_spellings(p), *whole]) for p in pieces]
        else:
            terms.append(_alternatives([*whole, *(f for p in pieces for f in _spellings(p))]))
    return terms


def query_lexemes(query: str) -> list[list[str]]:
    """Terms of a user query, ANDed; each term is a list of alternative lexemes, ORed."""
    terms: list[list[str]] = []
    for chunk in normalize(query)[:MAX_QUERY_CHARS].split(" "):
        for term in _chunk_terms(chunk):
            if term and term not in terms:
                terms.append(term)
    return terms[:MAX_TERMS]


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _prefixable(lexeme: str) -> bool:
    latin = lexeme.isascii() and lexeme.isalnum() and not lexeme.isdigit()
    return len(lexeme) > 1 and (latin or is_kana(lexeme))


def to_tsquery_text(query: str) -> str | None:
    """Injection-safe text for ``to_tsquery('simple', …)``; None when nothing is searchable."""
    terms = query_lexemes(query)
    if not terms:
        return None
    # Kana and Latin in the last term are often still being typed (ひな → ひなん, ae → aed);
    # kanji arrive whole from the input method, and a trailing space marks a finished word.
    typing = not query[-1:].isspace()
    parts = []
    for index, term in enumerate(terms):
        prefix = typing and index == len(terms) - 1
        alternatives = (_quote(x) + (":*" if prefix and _prefixable(x) else "") for x in term)
        parts.append("(" + " | ".join(alternatives) + ")")
    return " & ".join(parts)
