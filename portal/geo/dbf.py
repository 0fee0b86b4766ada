"""Check a Shapefile's .dbf before GDAL reads it: complete, and text in the expected encoding."""

from pathlib import Path

from portal.core.errors import LoadFailed
from portal.geo.encoding import SNIFF_BYTES
from portal.geo.encoding_check import (
    decodes,
    detect_encoding,
    file_setting,
    guess_encoding,
    label,
    looks_like_euc_jp,
)

HEADER_BYTES = 32
# What .cpg files say, as Python codecs. Unknown values are left to GDAL.
CPG_CODECS = {
    "utf-8": "utf-8", "utf8": "utf-8", "65001": "utf-8",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "cp932": "cp932",
    "932": "cp932", "ansi 932": "cp932", "windows-31j": "cp932", "ms932": "cp932",
    "euc-jp": "euc_jp", "eucjp": "euc_jp", "20932": "euc_jp", "51932": "euc_jp",
}  # fmt: skip


def cpg_codec(cpg: Path) -> str | None:
    """Return the Python codec a .cpg file names, or None when it names something else."""
    text = cpg.read_bytes()[:100].decode("ascii", errors="ignore").strip().lower()
    return CPG_CODECS.get(text)


def check_dbf_complete(dbf: Path) -> None:
    """Refuse a .dbf shorter than its header says (a copy that stopped half-way)."""
    with dbf.open("rb") as handle:
        header = handle.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES:
        raise LoadFailed(f"{dbf.name}: the .dbf file is empty or damaged; copy it again")
    records = int.from_bytes(header[4:8], "little")
    header_length = int.from_bytes(header[8:10], "little")
    record_length = int.from_bytes(header[10:12], "little")
    expected = header_length + records * record_length
    actual = dbf.stat().st_size
    if actual < expected:
        raise LoadFailed(
            f"{dbf.name}: the file is truncated ({actual:,} of {expected:,} bytes); "
            "copy the complete .dbf again"
        )


def text_sample(dbf: Path, limit: int = SNIFF_BYTES) -> bytes:
    """Return the character fields of the first records, joined by newlines."""
    with dbf.open("rb") as handle:
        header = handle.read(HEADER_BYTES)
        header_length = int.from_bytes(header[8:10], "little")
        record_length = int.from_bytes(header[10:12], "little")
        descriptors = handle.read(max(header_length - HEADER_BYTES, 0))
        fields, offset = [], 1  # each record starts with its deletion flag
        for start in range(0, len(descriptors) - 31, 32):
            if descriptors[start] == 0x0D:
                break
            length = descriptors[start + 16]
            if descriptors[start + 11 : start + 12] in (b"C", b"M"):
                fields.append((offset, length))
            offset += length
        if not fields or record_length <= 0:
            return b""
        handle.seek(header_length)
        data = handle.read(min(limit, record_length * 5_000))
    values = []
    for start in range(0, len(data) - record_length + 1, record_length):
        record = data[start : start + record_length]
        values += [record[o : o + n].rstrip(b" \x00") for o, n in fields]
    return b"\n".join(value for value in values if value)


def choose_dbf_encoding(dbf: Path, codec: str | None, declared_by: str | None) -> str | None:
    """Return the codec to read a .dbf with, or refuse text that does not match a declared one.

    `codec` is what the caller or the .cpg declared (None: detect it); `declared_by` says who,
    for the message.
    """
    sample = text_sample(dbf)
    if codec is not None:
        if not decodes(sample, codec) or (codec == "cp932" and looks_like_euc_jp(sample)):
            raise LoadFailed(_mismatch(dbf, sample, codec, declared_by or "the setting"))
        return codec
    return detect_encoding(sample) if sample else None


def _mismatch(dbf: Path, sample: bytes, codec: str, declared_by: str) -> str:
    guess = guess_encoding(sample)
    if guess and guess != codec:
        fix = (
            f"it looks like {label(guess)}: correct the .cpg file to say {file_setting(guess)}, "
            f"or set encoding: {file_setting(guess)} in the sidecar (meta.yaml)"
        )
    else:
        fix = "save the Shapefile again as UTF-8 or CP932 (Shift_JIS)"
    return f"{dbf.name}: the attribute text is not {label(codec)} as {declared_by} says; {fix}"
