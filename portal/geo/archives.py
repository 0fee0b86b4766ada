"""Extract zip archives safely: no paths out of the folder, no links, no zip bombs."""

import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from portal.core.errors import LoadFailed

MAX_MEMBERS = 1_000
MAX_RATIO = 100
# Small members compress oddly well (blank DBF text, repeated XML) without being dangerous.
RATIO_FLOOR = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1


def extract_zip(
    archive_path: Path,
    target: Path,
    *,
    max_total_bytes: int,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_RATIO,
) -> list[Path]:
    """Check every member of a zip, then extract it under `target`; return the files written.

    Refuses absolute paths, `..`, links, encrypted members, too many members, a total
    expanded size over `max_total_bytes`, and members compressed more than `max_ratio`:1.
    """
    label = archive_path.name
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) > max_members:
                raise LoadFailed(
                    f"{label}: the zip holds {len(members):,} files, over the limit of "
                    f"{max_members:,}; zip only the data files"
                )
            planned = [(member, _check_member(label, member, max_ratio)) for member in members]
            total = sum(member.file_size for member in members)
            if total > max_total_bytes:
                raise LoadFailed(
                    f"{label}: the zip would expand to {format_bytes(total)}, over the "
                    f"{format_bytes(max_total_bytes)} limit; it may be a zip bomb, or the "
                    "data is too large for one file"
                )
            return [
                _extract(archive, member, target / relative, label)
                for member, relative in planned
                if relative is not None
            ]
    except zipfile.BadZipFile as exc:
        raise LoadFailed(f"{label}: not a readable zip archive ({exc}); zip it again") from exc


def format_bytes(size: int) -> str:
    """Show a byte count the way people read file sizes (KB, MB, GB)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TB"  # pragma: no cover - the loop always returns


def member_name(member: zipfile.ZipInfo) -> str:
    """The member's name, decoding the CP932 names Japanese Windows writes without a flag."""
    name = member.filename
    if not member.flag_bits & _UTF8_FLAG:
        try:
            name = name.encode("cp437").decode("cp932")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name.replace("\\", "/")


def _check_member(label: str, member: zipfile.ZipInfo, max_ratio: float) -> PurePosixPath | None:
    """Return where a member goes (None to skip it), or refuse it with the reason."""
    name = member_name(member)
    parts = PurePosixPath(name).parts
    if name.startswith("/") or _DRIVE.match(name) or ".." in parts:
        raise LoadFailed(
            f"{label}: the member {name!r} would be written outside the folder "
            "(an absolute path or ../); create the zip again from the data folder itself"
        )
    if stat.S_ISLNK(member.external_attr >> 16):
        raise LoadFailed(
            f"{label}: the member {name!r} is a symbolic link, which is not accepted; "
            "zip the files themselves"
        )
    if member.flag_bits & _ENCRYPTED_FLAG:
        raise LoadFailed(f"{label}: {name!r} is password-protected; zip it without a password")
    ratio = member.file_size / max(member.compress_size, 1)
    if member.file_size > RATIO_FLOOR and ratio > max_ratio:
        raise LoadFailed(
            f"{label}: the member {name!r} is compressed {ratio:,.0f}:1, over the "
            f"{max_ratio:,.0f}:1 limit; it looks like a zip bomb and was not opened"
        )
    # macOS adds resource forks (__MACOSX/, ._name) that would pass for data files.
    if parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts):
        return None
    return PurePosixPath(*parts)


def _extract(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, destination: Path, label: str
) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        # ZipExtFile stops at the declared size, which the total above already bounded.
        with archive.open(member) as source, destination.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1024 * 1024)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise LoadFailed(
            f"{label}: the member {member_name(member)!r} is damaged ({exc}); zip it again"
        ) from exc
    return destination
