"""Load the demo city's file drop into the registry and PostGIS."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.departments import department_id_by_slug, ensure_department
from portal.core.database import session_scope
from portal.demo.city import DEPARTMENTS, demo_files
from portal.geo.loader import LoadResult, file_sha256, load_layer_from_file
from portal.geo.models import Layer
from portal.geo.registry import ensure_layer, share_layer

FileProgress = Callable[[str, int, int], None]


@dataclass
class DemoLoad:
    """What loading one demo file did."""

    layer_id: str
    path: Path
    result: LoadResult | None

    @property
    def skipped(self) -> bool:
        """Tell whether the file was unchanged since the last load."""
        return self.result is None


def load_demo_city(
    engine: Engine,
    sessions: sessionmaker[Session],
    root: Path,
    *,
    municipality_code: str,
    force: bool = False,
    progress: FileProgress | None = None,
) -> list[DemoLoad]:
    """Register the demo departments and layers, then load every changed file."""
    files = demo_files(municipality_code)
    with session_scope(sessions) as session:
        for department in DEPARTMENTS:
            ensure_department(
                session, slug=department.slug, name=department.name, name_en=department.name_en
            )
        for demo_file in files:
            ensure_layer(
                session,
                layer_id=demo_file.layer_id,
                title=demo_file.title,
                title_en=demo_file.title_en,
                department_id=department_id_by_slug(session, demo_file.department),
                visibility=demo_file.visibility,
            )
            if demo_file.shared_with:
                share_layer(
                    session,
                    layer_id=demo_file.layer_id,
                    department_ids=[
                        department_id_by_slug(session, s) for s in demo_file.shared_with
                    ],
                )
        loaded_hashes = dict(session.execute(select(Layer.id, Layer.source_sha256)).all())
    loads = []
    for demo_file in files:
        path = root / demo_file.path
        if not force and loaded_hashes.get(demo_file.layer_id) == file_sha256(path):
            loads.append(DemoLoad(demo_file.layer_id, path, None))
            continue

        def report(done: int, total: int, layer_id: str = demo_file.layer_id) -> None:
            if progress:
                progress(layer_id, done, total)

        result = load_layer_from_file(
            engine,
            layer_id=demo_file.layer_id,
            path=path,
            encoding=demo_file.encoding,
            progress=report,
        )
        loads.append(DemoLoad(demo_file.layer_id, path, result))
    return loads
