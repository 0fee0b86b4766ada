"""Publish the demo files directly as catalog datasets, without the harvester.

The demo itself goes through the directory harvester (`portal.demo.harvest`); this path
remains for tests that build a second portal from the same drop.
"""

import io
import zipfile
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.catalog.datasets import create_dataset, set_dataset_shares
from portal.catalog.models import Dataset
from portal.catalog.resources import add_resource
from portal.catalog.schemas import DatasetCreate, ResourceCreate
from portal.core.principal import SYSTEM, Visibility
from portal.core.storage import Storage
from portal.demo.city import DemoDataset, DemoFile, demo_files
from portal.geo.models import Layer


def publish_demo_catalog(
    session: Session, storage: Storage, root: Path, *, municipality_code: str, max_bytes: int
) -> list[str]:
    """Create the datasets of the demo files that are not in the catalog yet; return names."""
    existing = set(session.execute(select(Dataset.name)).scalars())
    created = []
    for demo_file in demo_files(municipality_code):
        spec = demo_file.dataset
        if spec.name in existing:
            continue
        layer = session.get(Layer, demo_file.layer_id)
        create_dataset(
            session,
            SYSTEM,
            DatasetCreate(
                name=spec.name,
                title=demo_file.title,
                title_en=demo_file.title_en,
                notes=spec.notes,
                department=demo_file.department,
                visibility=demo_file.visibility,
                license_id=spec.license_id,
                tags=list(spec.tags),
                groups=list(spec.groups),
                update_frequency=spec.update_frequency,
                standard_dataset=spec.standard_dataset,
                bbox=_bbox(layer.bbox if layer else None),
            ),
        )
        if demo_file.shared_with:
            set_dataset_shares(session, SYSTEM, spec.name, list(demo_file.shared_with), ip=None)
        _add_original(session, storage, root, demo_file, spec, max_bytes, municipality_code)
        if layer is not None:
            kind = "地図レイヤ" if layer.geometry_type else "表データ"
            add_resource(
                session,
                SYSTEM,
                spec.name,
                ResourceCreate(
                    name=f"{demo_file.title}（{kind}）",
                    format="GeoJSON" if layer.geometry_type else "CSV",
                    layer_id=layer.id,
                    visibility=demo_file.visibility,
                ),
            )
        created.append(spec.name)
    return created


def _add_original(
    session: Session,
    storage: Storage,
    root: Path,
    demo_file: DemoFile,
    spec: DemoDataset,
    max_bytes: int,
    municipality_code: str,
) -> None:
    """Attach the file as dropped; a Shapefile travels as a zip of all its parts."""
    path = root / demo_file.path
    stream: BinaryIO
    if path.suffix == ".shp":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(path.parent.glob(path.stem + ".*")):
                archive.write(part, part.name)
        buffer.seek(0)
        stream, file_name, file_format = buffer, path.stem + ".zip", "SHP"
    else:
        stream, file_name, file_format = path.open("rb"), path.name, ""
    with stream:
        add_resource(
            session,
            SYSTEM,
            spec.name,
            ResourceCreate(
                name=demo_file.original_name,
                format=file_format,
                visibility=Visibility(demo_file.visibility),
            ),
            upload=stream,
            file_name=file_name,
            storage=storage,
            max_bytes=max_bytes,
            municipality_code=municipality_code,
        )


def _bbox(values: list[float] | None) -> tuple[float, float, float, float] | None:
    """A layer's extent as a dataset bbox."""
    if not values:
        return None
    minx, miny, maxx, maxy = values
    return (minx, miny, maxx, maxy)
