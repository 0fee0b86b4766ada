"""Sniffing and transcoding the text encodings found in Japanese municipal files."""

import codecs
import shutil
from pathlib import Path

from charset_normalizer import from_bytes

from portal.core.errors import LoadFailed

SNIFF_BYTES = 256 * 1024
_JAPANESE_LEGACY = {
    "shift_jis",
    "cp932",
    "shift_jis_2004",
    "shift_jisx0213",
    "euc_jp",
    "iso2022_jp",
}


def sniff_encoding(sample: bytes) -> str:
    """Return the Python codec name of a Japanese text sample: utf-8-sig, utf-8 or cp932."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if _decodes(sample, "utf-8"):
        return "utf-8"
    if _decodes(sample, "cp932"):
        # CP932 is a superset of Shift_JIS that real files need (①, №, NEC specials).
        return "cp932"
    best = from_bytes(sample).best()
    if best is None:
        raise LoadFailed("the text encoding could not be recognised (expected UTF-8 or CP932)")
    return "cp932" if best.encoding in _JAPANESE_LEGACY else best.encoding


def _decodes(sample: bytes, encoding: str) -> bool:
    """Tell whether a sample decodes, allowing a multi-byte character cut at its end."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def transcode_to_utf8(source: Path, target: Path, encoding: str) -> None:
    """Copy a text file to `target` as UTF-8 without BOM, streaming."""
    try:
        with (
            source.open("r", encoding=encoding, newline="") as reader,
            target.open("w", encoding="utf-8", newline="") as writer,
        ):
            shutil.copyfileobj(reader, writer, 1024 * 1024)
    except UnicodeDecodeError as exc:
        raise LoadFailed(
            f"{source.name}: byte {exc.start} is not valid {encoding}; "
            "save the file as UTF-8 or CP932 (Shift_JIS)"
        ) from exc
