"""Walk a department drop folder and group its files into harvestable entries.

A Shapefile's parts (same stem, any letter case) form one entry; so does a zip holding
data files. Hidden files, Office lock files and sidecars are not entries.
"""

import fnmatch
import hashlib
import os
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from portal.core.errors import HarvestFailed
from portal.harvesters.kinds.directory_meta import (
    FILE_SIDECARS,
    FOLDER_SIDECARS,
    SMARTMAP_ATTRIBUTES,
    SMARTMAP_CONFIG,
)

SHAPEFILE_PARTS = {
    ".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".fbn", ".fbx", ".ain",
    ".aih", ".atx", ".ixs", ".mxs", ".qmd", ".xml",
}  # fmt: skip
SHAPEFILE_CORE = {".shp", ".shx", ".dbf"}
SINGLE_FILES = {".csv": "CSV", ".xlsx": "XLSX", ".geojson": "GeoJSON", ".json": "GeoJSON"}
LAYERED_FILES = {".gpkg": "GPKG", ".kml": "KML"}
LOADABLE = {".shp", *SINGLE_FILES, *LAYERED_FILES}
PEEK_BYTES = 64 * 1024


@dataclass
class Entry:
    """One future dataset: its kind, its files, and the sidecars that describe it."""

    kind: str  # shapefile | zip | layered | single
    root: Path
    primary: Path
    parts: list[Path]
    sidecars: list[Path] = field(default_factory=list)
    smartmap: bool = False

    @property
    def remote_id(self) -> str:
        """The entry's path relative to the drop folder."""
        return self.primary.relative_to(self.root).as_posix()

    def signature(self, extra: str) -> str:
        """A cheap change mark: every file's size and mtime, plus `extra` (the config)."""
        digest = hashlib.sha1(extra.encode())
        for path in [*self.parts, *self.sidecars]:
            status = path.stat()
            digest.update(f"{path.name}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
        return f"stat:{digest.hexdigest()[:24]}"


def walk(root: Path, *, recursive: bool, include: list[str], exclude: list[str]) -> list[Entry]:
    """Return the entries of a drop folder, sorted by path."""
    entries: list[Entry] = []
    for folder, names in _folders(root, recursive):
        entries += _entries_of(root, folder, names)
    chosen = [e for e in entries if _wanted(e.remote_id, include, exclude)]
    return sorted(chosen, key=lambda entry: entry.remote_id)


def _folders(root: Path, recursive: bool) -> list[tuple[Path, list[str]]]:
    """Every folder with its visible file names; links out of the drop are not followed."""
    found = []
    for current, dirs, files in os.walk(root, followlinks=False, onerror=_unreadable):
        dirs[:] = sorted(d for d in dirs if not _hidden(d)) if recursive else []
        folder = Path(current)
        names = [n for n in sorted(files) if not _hidden(n) and _inside(folder / n, root)]
        found.append((folder, names))
    return found


def _unreadable(error: OSError) -> None:
    # Skipping the folder would withdraw its datasets as if its files were deleted.
    raise HarvestFailed(
        f"the folder {error.filename} cannot be read ({error.strerror}); nothing was changed. "
        "Check its permissions, or exclude it"
    )


def _entries_of(root: Path, folder: Path, names: list[str]) -> list[Entry]:
    lower = {name.lower(): name for name in names}
    smartmap = SMARTMAP_CONFIG in lower
    folder_sidecars = [folder / lower[n] for n in FOLDER_SIDECARS if n in lower]
    groups: dict[str, list[Path]] = defaultdict(list)
    entries: list[Entry] = []
    for name in names:
        key = name.lower()
        if key in FOLDER_SIDECARS or key.endswith(FILE_SIDECARS):
            continue
        if smartmap and key in (SMARTMAP_CONFIG, SMARTMAP_ATTRIBUTES):
            continue
        path = folder / name
        stem, suffix = _split(name)
        if suffix in SHAPEFILE_PARTS:
            groups[stem.lower()].append(path)
        elif suffix in SINGLE_FILES and (suffix != ".json" or looks_geojson(path)):
            entries.append(Entry("single", root, path, [path]))
        elif suffix in LAYERED_FILES:
            entries.append(Entry("layered", root, path, [path]))
        elif suffix == ".zip" and _zip_has_data(path):
            entries.append(Entry("zip", root, path, [path]))
    for parts in groups.values():
        suffixes = {_split(p.name)[1] for p in parts}
        if not suffixes & SHAPEFILE_CORE:
            continue  # a lone .xml or .prj is not data
        primary = next((p for p in parts if _split(p.name)[1] == ".shp"), sorted(parts)[0])
        entries.append(Entry("shapefile", root, primary, sorted(parts)))
    for entry in entries:
        entry.sidecars = _file_sidecars(entry.primary, lower) + folder_sidecars
        entry.smartmap = smartmap and len(entries) == 1
        if entry.smartmap:
            entry.sidecars += [
                folder / lower[n] for n in (SMARTMAP_CONFIG, SMARTMAP_ATTRIBUTES) if n in lower
            ]
    return entries


def _file_sidecars(primary: Path, lower: dict[str, str]) -> list[Path]:
    stem = _split(primary.name)[0].lower()
    return [primary.parent / lower[stem + s] for s in FILE_SIDECARS if stem + s in lower]


def _split(name: str) -> tuple[str, str]:
    """Stem and lower-case suffix; ArcGIS's `name.shp.xml` belongs to `name`."""
    if name.lower().endswith(".shp.xml"):
        return name[:-8], ".xml"
    stem, dot, suffix = name.rpartition(".")
    return (stem, "." + suffix.lower()) if dot and stem else (name, "")


def _hidden(name: str) -> bool:
    # ~$ files are Office locks; Thumbs.db and desktop.ini are Windows Explorer's.
    return name.startswith((".", "~$")) or name.lower() in {"thumbs.db", "desktop.ini"}


def _inside(path: Path, root: Path) -> bool:
    """Keep links only when they point at a file inside the drop folder."""
    if not path.is_symlink():
        return True
    target = path.resolve()
    return target.is_file() and target.is_relative_to(root)


def looks_geojson(path: Path) -> bool:
    """Tell whether a .json file looks like GeoJSON (others, such as meta.json, are not data)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(PEEK_BYTES)
    except OSError:
        return True  # fetching it will say what is wrong
    return b'"type"' in head and b"Feature" in head


def _zip_has_data(path: Path) -> bool:
    """A zip is harvested when it lists a data file (a damaged one too, to report it)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return True
    return any(_split(PurePosixPath(name).name)[1] in LOADABLE for name in names)


def _wanted(remote_id: str, include: list[str], exclude: list[str]) -> bool:
    """Match globs against the relative path or the file name."""
    name = remote_id.rsplit("/", 1)[-1]

    def hit(pattern: str) -> bool:
        return fnmatch.fnmatch(remote_id, pattern) or fnmatch.fnmatch(name, pattern)

    if include and not any(hit(p) for p in include):
        return False
    return not any(hit(p) for p in exclude)
