"""Publish the demo city's files as catalog datasets, each with its original and its layer."""

import io
import zipfile
from dataclasses import dataclass
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
from portal.demo.city import DemoFile, demo_files
from portal.geo.models import Layer


@dataclass(frozen=True)
class DemoDataset:
    """Catalog metadata for one demo file."""

    name: str
    notes: str
    tags: tuple[str, ...]
    groups: tuple[str, ...]
    license_id: str = "pdl-1.0"
    standard_dataset: str | None = None
    update_frequency: str = "irregular"


DATASETS: dict[str, DemoDataset] = {
    "roads": DemoDataset(
        "road-ledger",
        "市道の道路台帳（サンプル）。路線名・幅員・路線種別・延長を持つ道路区間の線データです。",
        ("道路", "道路台帳", "市道", "サンプル"),
        ("transport-tourism", "housing-land-construction"),
        update_frequency="annual",
    ),
    "zoning": DemoDataset(
        "youto-chiiki",
        "都市計画法に基づく用途地域（サンプル）。"
        "国土数値情報 A29 の用途地域コード、建ぺい率、容積率を持つ面データです。",
        ("用途地域", "都市計画", "サンプル"),
        ("housing-land-construction",),
        license_id="cc-by-4.0",
    ),
    "water_mains": DemoDataset(
        "water-mains",
        "上水道の管路（サンプル）。口径・管種・布設年度を持ちます。重要インフラのため庁内の関係部署にのみ共有しています。",
        ("上水道", "管路", "インフラ", "サンプル"),
        ("energy-water",),
    ),
    "barriers": DemoDataset(
        "barrier-free",
        "歩行空間のバリアフリー情報（サンプル）。段差・勾配・有効幅員を国土交通省の歩行空間ネットワークデータの区分で示します。",
        ("バリアフリー", "歩行空間", "車いす", "サンプル"),
        ("social-security-health", "transport-tourism"),
    ),
    "evacuation_sites": DemoDataset(
        "evacuation-space",
        "指定緊急避難場所の一覧（サンプル）。自治体標準オープンデータセットの形式で、災害種別ごとの対応を示します。",
        ("避難場所", "防災", "自治体標準オープンデータセット", "サンプル"),
        ("justice-safety-environment",),
        standard_dataset="A-03",
        update_frequency="annual",
    ),
    "population": DemoDataset(
        "population-by-chocho-age",
        "町丁別・年齢（5歳階級）別・男女別の人口と世帯数（サンプル）。",
        ("人口", "世帯", "統計", "自治体標準オープンデータセット", "サンプル"),
        ("population-households",),
        standard_dataset="A-04",
        update_frequency="monthly",
    ),
}


def publish_demo_catalog(
    session: Session, storage: Storage, root: Path, *, municipality_code: str, max_bytes: int
) -> list[str]:
    """Create the datasets of the demo files that are not in the catalog yet; return names."""
    existing = set(session.execute(select(Dataset.name)).scalars())
    created = []
    for demo_file in demo_files(municipality_code):
        spec = DATASETS[demo_file.layer_id]
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
                name=f"{demo_file.title}（元ファイル）",
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
