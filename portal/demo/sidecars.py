"""The sidecars beside the demo files: what the directory harvester publishes them as."""

from pathlib import Path
from typing import Any

import yaml

from portal.demo.city import DemoFile
from portal.demo.gen_common import write_bytes_atomically

SIDECAR_SUFFIX = ".meta.yaml"
_HEADER = (
    "# サンプル市のデータ目録情報（directory ハーベスタが読むサイドカー）\n"
    "# Catalog metadata of the sample city, read by the directory harvester.\n"
)


def sidecar_path(root: Path, demo_file: DemoFile) -> Path:
    """Return where a demo file's sidecar goes: `<stem>.meta.yaml` beside the file."""
    path = root / demo_file.path
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def sidecar_fields(demo_file: DemoFile) -> dict[str, Any]:
    """Return the sidecar fields of a demo file, in a fixed order."""
    spec = demo_file.dataset
    fields: dict[str, Any] = {
        "name": spec.name,
        "title": demo_file.title,
        "title_en": demo_file.title_en,
        "notes": spec.notes,
        "tags": list(spec.tags),
        "groups": list(spec.groups),
        "license_id": spec.license_id,
        "update_frequency": spec.update_frequency,
        "standard_dataset": spec.standard_dataset,
        "layer_id": demo_file.layer_id,
        "visibility": demo_file.visibility.value,
        "shared_with": list(demo_file.shared_with) or None,
        "encoding": demo_file.encoding,
    }
    return {key: value for key, value in fields.items() if value is not None}


def write_sidecar(root: Path, demo_file: DemoFile) -> Path:
    """Write a demo file's sidecar (UTF-8 YAML, the same bytes every run) and return its path."""
    path = sidecar_path(root, demo_file)
    text = yaml.safe_dump(
        sidecar_fields(demo_file), allow_unicode=True, sort_keys=False, width=1000
    )
    write_bytes_atomically(path, (_HEADER + text).encode("utf-8"))
    return path
