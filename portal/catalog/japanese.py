"""Japanese morphological analysis for search: one shared Sudachi tokenizer, morphemes as data."""

import re
import threading
from dataclasses import dataclass
from typing import Any

# Sudachi rejects inputs over 49,149 bytes; 4,000 characters stay below that even at 4 bytes each.
_CHUNK_CHARS = 4000
# Converting a morpheme costs more than finding it, and catalog vocabulary repeats a lot;
# at about 700 bytes an entry the cache stays near 20 MiB.
_CACHE_SIZE = 30_000

STOP_POS = frozenset(
    {"助詞", "助動詞", "補助記号", "記号", "空白", "接続詞", "連体詞", "感動詞", "代名詞"}
)
# Normalised forms of light verbs and formal nouns: they occur everywhere and say nothing.
STOP_LEMMAS = frozenset({"為る", "居る", "有る", "成る", "出来る", "こと", "事", "物", "為", "様"})
# Sudachi reads English words as katakana nouns, so English function words are caught by surface.
STOP_WORDS = frozenset("a an and are as at be by for from in is it of on or the to with".split())

CONTENT, PREFIX, SUFFIX, STOP = "content", "prefix", "suffix", "stop"

_KANA = re.compile("[\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff]+")
_KATAKANA_TO_HIRAGANA = {code: code - 0x60 for code in range(ord("ァ"), ord("ヶ") + 1)} | {
    ord("ヽ"): ord("ゝ"),
    ord("ヾ"): ord("ゞ"),
}


def to_hiragana(text: str) -> str:
    """Fold katakana to hiragana, leaving every other character as it is."""
    return text.translate(_KATAKANA_TO_HIRAGANA)


def is_kana(text: str) -> bool:
    """Whether text is non-empty and only hiragana, katakana and the prolonged sound mark."""
    return _KANA.fullmatch(text) is not None


@dataclass(frozen=True, slots=True, eq=False)
class Morph:
    """One morpheme reduced to what indexing needs; cached instances compare by identity."""

    surface: str
    normalized: str
    reading: str
    kind: str
    noun: bool = False
    known: bool = True
    pieces: tuple["Morph", ...] = ()


class _Analyser:
    """A Sudachi tokenizer in split mode C behind a lock: Sudachi tokenizers are not thread-safe."""

    def __init__(self) -> None:
        from sudachipy import Dictionary, SplitMode

        self._mode_a = SplitMode.A
        self._tokenizer = Dictionary(dict="core").tokenizer(mode=SplitMode.C)
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, str], Morph] = {}

    def analyse(self, text: str) -> list[Morph]:
        morphs: list[Morph] = []
        for chunk in _chunks(text):
            with self._lock:
                morphs.extend(self._cached(m) for m in self._tokenizer.tokenize(chunk))
        return morphs

    def _cached(self, m: Any) -> Morph:
        if m.is_oov():
            return self._convert(m)
        key = (m.word_id(), m.surface())
        morph = self._cache.get(key)
        if morph is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            morph = self._cache[key] = self._convert(m)
        return morph

    def _convert(self, m: Any, split: bool = True) -> Morph:
        pos = m.part_of_speech()
        surface, normalized = m.surface(), m.normalized_form()
        pieces: tuple[Morph, ...] = ()
        # Splitting costs most; two-character words rarely split, and only into single kanji.
        if split and len(surface) > 2 and pos[0] != "補助記号":
            pieces = tuple(
                self._convert(p, split=False) for p in m.split(self._mode_a, add_single=False)
            )
        return Morph(
            surface=surface,
            normalized=normalized,
            reading=_reading(m.reading_form(), pos),
            kind=_kind(surface, normalized, pos),
            noun=pos[0] == "名詞",
            known=not m.is_oov(),
            pieces=pieces,
        )


def _kind(surface: str, normalized: str, pos: tuple[str, ...]) -> str:
    if pos[0] in STOP_POS or normalized in STOP_LEMMAS or surface.lower() in STOP_WORDS:
        return STOP
    if pos[0] == "接頭辞":
        return PREFIX
    if pos[0] == "接尾辞":
        return SUFFIX
    return CONTENT


def _reading(reading: str, pos: tuple[str, ...]) -> str:
    # Readings of numerals ("ニレイニサン") and one-kana readings match far too much to be useful.
    if pos[1] == "数詞" or len(reading) < 2 or not is_kana(reading):
        return ""
    return to_hiragana(reading)


def _chunks(text: str) -> list[str]:
    if len(text) <= _CHUNK_CHARS:
        return [text]
    chunks: list[str] = []
    while text:
        cut = _CHUNK_CHARS
        if len(text) > cut:
            window = text[:cut]
            boundary = max(window.rfind(c) for c in "。\n ．.、")
            cut = boundary + 1 if boundary > cut // 2 else cut
        chunks.append(text[:cut])
        text = text[cut:]
    return chunks


_analyser: _Analyser | None = None
_analyser_lock = threading.Lock()


def analyse(text: str) -> list[Morph]:
    """Split text into mode-C morphemes with their mode-A pieces, using the shared tokenizer."""
    global _analyser
    if _analyser is None:
        with _analyser_lock:
            if _analyser is None:
                _analyser = _Analyser()
    return _analyser.analyse(text)
