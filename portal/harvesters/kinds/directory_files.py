"""Files of a directory entry: a consistent copy, then what to store and what to load."""

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from portal.core.errors import HarvestFailed, LoadFailed
from portal.geo.archives import extract_zip
from portal.geo.csv_points import PointColumns
from portal.geo.xml_safety import check_xml_safe
from portal.harvesters.base import HarvestedFile
from portal.harvesters.kinds.directory_walk import (
    LAYERED_FILES,
    SHAPEFILE_CORE,
    SINGLE_FILES,
    Entry,
    looks_geojson,
)

JGD2011_ZONE_BASE = 6668  # zone I is EPSG:6669 … zone XIX is EPSG:6687


@dataclass(frozen=True)
class LoadSettings:
    """How to read an entry's files, from its sidecar and the source config."""

    encoding: str | None = None
    source_crs: str | None = None  # forced for every file of the entry
    zone: int | None = None  # for files that do not say their CRS
    point_columns: PointColumns | None = None


def zone_crs(zone: int) -> str:
    """The JGD2011 plane rectangular system of a zone (系番号)."""
    return f"EPSG:{JGD2011_ZONE_BASE + zone}"


def copy_parts(entry: Entry, work: Path) -> tuple[dict[Path, Path], bytes]:
    """Copy the parts (a consistent snapshot) and hash them; Shapefile parts get one stem."""
    digest = hashlib.sha256()
    copies: dict[Path, Path] = {}
    stem = entry.primary.name.rsplit(".", 1)[0]
    for part in entry.parts:
        before = part.stat()
        name = part.name
        if entry.kind == "shapefile":
            # GDAL finds `road.dbf` beside `road.shp`, not `Road.DBF`.
            suffix = ".shp.xml" if name.lower().endswith(".shp.xml") else part.suffix.lower()
            name = stem + suffix
        target = work / name
        digest.update(name.encode() + b"\0")
        with part.open("rb") as source, target.open("wb") as sink:
            while chunk := source.read(1024 * 1024):
                digest.update(chunk)
                sink.write(chunk)
        after = part.stat()
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise HarvestFailed(
                f"{part.name} changed while it was being read (is it still being copied?); "
                "the next run will try again"
            )
        copies[part] = target
    return copies, digest.digest()


def harvested_files(
    entry: Entry,
    copies: dict[Path, Path],
    work: Path,
    settings: LoadSettings,
    title: str,
    limit: int,
) -> list[HarvestedFile]:
    """The files to store and the layers to load for one entry."""
    original = copies[entry.primary]
    if entry.kind == "shapefile":
        shp = _complete_shapefile(original)
        stored = _zip_parts(sorted(copies.values()), work / (shp.stem + ".zip"))
        return [
            HarvestedFile(stored, stored.name, "SHP", load=False),
            _layer(shp, settings, store=False),
        ]
    if entry.kind == "zip":
        unpacked = extract_zip(original, work / "unzipped", max_total_bytes=limit)
        layers = _zip_layers(original.name, unpacked, settings, title)
        only_shapefiles = all(f.path.suffix.lower() == ".shp" for f in layers)
        return [
            HarvestedFile(original, original.name, "SHP" if only_shapefiles else "ZIP", load=False),
            *layers,
        ]
    if entry.kind == "layered":
        suffix = original.suffix.lower()
        return [
            HarvestedFile(original, original.name, LAYERED_FILES[suffix], load=False),
            *_every_layer(original, settings, title),
        ]
    return [_layer(original, settings, store=True)]


def _layer(
    path: Path,
    settings: LoadSettings,
    *,
    store: bool,
    source_layer: str | None = None,
    title: str | None = None,
) -> HarvestedFile:
    """A file to load, with the encoding, CRS and point columns the settings give."""
    suffix = path.suffix.lower()
    declares_crs = suffix not in {".csv", ".shp"} or (
        suffix == ".shp" and ".prj" in _siblings(path)
    )
    zone = None if declares_crs else settings.zone
    fields: dict[str, Any] = {
        "path": path,
        "name": path.name,
        "format": SINGLE_FILES.get(suffix, suffix.lstrip(".").upper()),
        "store": store,
        "source_layer": source_layer,
        "encoding": settings.encoding,
        "source_crs": settings.source_crs or (zone_crs(zone) if zone else None),
        "title": title,
    }
    if settings.point_columns is not None and suffix == ".csv":
        fields["point_columns"] = settings.point_columns
    return HarvestedFile(**fields)


def _every_layer(path: Path, settings: LoadSettings, title: str) -> list[HarvestedFile]:
    """One file per layer of a GeoPackage or KML (a KML is checked for XXE first)."""
    if path.suffix.lower() == ".kml":
        check_xml_safe(path)
    try:
        names = [str(row[0]) for row in pyogrio.list_layers(path)]
    except (DataSourceError, DataLayerError, OSError, RuntimeError) as exc:
        raise LoadFailed(f"{path.name}: GDAL cannot read this file ({exc})") from exc
    if not names:
        raise LoadFailed(f"{path.name}: the file holds no layers")
    single = len(names) == 1
    return [
        _layer(
            path,
            settings,
            store=False,
            source_layer=name,
            title=None if single else f"{title} - {name}",
        )
        for name in names
    ]


def _zip_layers(
    label: str, unpacked: list[Path], settings: LoadSettings, title: str
) -> list[HarvestedFile]:
    """The data files of an unpacked zip, each with its layers."""
    layers: list[HarvestedFile] = []
    for path in sorted(unpacked):
        suffix = path.suffix.lower()
        if suffix == ".shp":
            layers.append(_layer(_complete_shapefile(path), settings, store=False))
        elif suffix in LAYERED_FILES:
            layers += _every_layer(path, settings, title)
        elif suffix in SINGLE_FILES and (suffix != ".json" or looks_geojson(path)):
            layers.append(_layer(path, settings, store=False))
    if not layers:
        raise LoadFailed(
            f"{label}: the zip holds no Shapefile, GeoPackage, GeoJSON, KML, CSV or XLSX file"
        )
    if len(layers) > 1:
        for layer in layers:
            layer.title = layer.title or f"{title} - {layer.path.stem}"
    return layers


def _complete_shapefile(path: Path) -> Path:
    """Refuse a Shapefile without its .shp, .shx or .dbf part."""
    present = _siblings(path)
    missing = sorted(SHAPEFILE_CORE - set(present))
    if missing:
        raise LoadFailed(
            f"{path.stem}: the Shapefile is incomplete: the {', '.join(missing)} "
            f"part{'s are' if len(missing) > 1 else ' is'} missing (a Shapefile needs .shp, "
            ".shx and .dbf, and usually .prj and .cpg); copy every part"
        )
    return present[".shp"]


def _siblings(path: Path) -> dict[str, Path]:
    """The files sharing a stem with `path`, by lower-case suffix."""
    prefix = path.stem.lower() + "."
    return {
        p.suffix.lower(): p
        for p in path.parent.iterdir()
        if p.name.lower().startswith(prefix) and p.name.count(".") == path.name.count(".")
    }


def _zip_parts(parts: list[Path], target: Path) -> Path:
    """Pack a Shapefile's parts into one zip, as it travels for download."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in parts:
            archive.write(part, part.name)
    return target
