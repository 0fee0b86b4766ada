"""Encoding checks on top of the sniffer: EUC-JP look-alikes and readable codec names."""

import codecs

from portal.core.errors import LoadFailed
from portal.geo.encoding import sniff_encoding

_HALF_WIDTH_KANA = range(0xFF61, 0xFFA0)
LABELS = {
    "cp932": "CP932 (Shift_JIS)",
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "euc_jp": "EUC-JP",
}


def detect_encoding(sample: bytes) -> str:
    """Return the codec of Japanese text: UTF-8 (with or without BOM), CP932 or EUC-JP."""
    try:
        detected = sniff_encoding(sample)
    except LoadFailed:
        if decodes(sample, "euc_jp"):
            return "euc_jp"
        raise
    if detected == "cp932":
        return "euc_jp" if looks_like_euc_jp(sample) else "cp932"
    # The general detector may name EUC-KR or GB2312 for EUC-JP bytes (the same layout);
    # Japanese municipal files are EUC-JP far more often.
    if detected not in ("utf-8", "utf-8-sig") and decodes(sample, "euc_jp"):
        return "euc_jp"
    return detected


def guess_encoding(sample: bytes) -> str | None:
    """Like `detect_encoding`, but None when nothing fits."""
    try:
        return detect_encoding(sample)
    except LoadFailed:
        return None


def looks_like_euc_jp(sample: bytes) -> bool:
    """Tell EUC-JP text, which also decodes as CP932 but into half-width katakana noise.

    Real CP932 text of half-width katakana only (old ｶﾅ columns) is also valid EUC-JP; it
    decodes to kana alone, whereas EUC-JP read as CP932 mixes kana with stray kanji.
    """
    if not decodes(sample, "euc_jp"):
        return False
    as_cp932 = sample.decode("cp932", errors="replace")
    wide = [ch for ch in as_cp932 if ord(ch) > 0x7F]
    kana = sum(1 for ch in wide if ord(ch) in _HALF_WIDTH_KANA)
    return len(wide) > kana and kana * 3 > len(wide)


def decodes(sample: bytes, codec: str) -> bool:
    """Tell whether a sample decodes, allowing a multi-byte character cut at its end."""
    try:
        codecs.getincrementaldecoder(codec)().decode(sample, final=False)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def label(codec: str) -> str:
    """Name a codec the way people know it."""
    return LABELS.get(codec, codec)


def file_setting(codec: str) -> str:
    """The value to write in a .cpg file or an `encoding:` setting for a codec."""
    return {"cp932": "CP932", "euc_jp": "EUC-JP"}.get(codec, "UTF-8" if "utf" in codec else codec)
