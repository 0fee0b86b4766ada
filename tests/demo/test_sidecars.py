import hashlib
from pathlib import Path

import pytest
import yaml

from portal.demo.city import demo_files
from portal.demo.generator import generate_demo_city
from portal.demo.sidecars import sidecar_path
from portal.harvesters.kinds.directory_meta import entry_sidecar

SIDECARS = {
    "doboku/road_ledger.meta.yaml": ("road-ledger", "roads", "public"),
    "toshikeikaku/youto_chiiki.meta.yaml": ("youto-chiiki", "zoning", "public"),
    "suido/water_mains.meta.yaml": ("water-mains", "water_mains", "department"),
    "fukushi/barrier_free.meta.yaml": ("barrier-free", "barriers", "public"),
    "bosai/442020_evacuation_space.meta.yaml": (
        "evacuation-space",
        "evacuation_sites",
        "public",
    ),
    "shimin/population_by_chocho_age.meta.yaml": (
        "population-by-chocho-age",
        "population",
        "public",
    ),
}


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drop")
    generate_demo_city(root, sidecars=True)
    return root


def _tree(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_each_file_gets_a_sidecar_named_after_its_stem(drop: Path) -> None:
    found = {p.relative_to(drop).as_posix() for p in drop.rglob("*.meta.yaml")}
    assert found == set(SIDECARS)
    for demo_file in demo_files("442020"):
        assert sidecar_path(drop, demo_file).is_file()


def test_sidecars_carry_the_catalog_entry_and_the_sample_label(drop: Path) -> None:
    for relative, (name, layer_id, visibility) in SIDECARS.items():
        text = (drop / relative).read_text(encoding="utf-8")
        assert text.startswith("# サンプル市のデータ目録情報")
        fields = yaml.safe_load(text)
        assert (fields["name"], fields["layer_id"], fields["visibility"]) == (
            name,
            layer_id,
            visibility,
        )
        assert fields["title"].endswith("（サンプル）")
        assert fields["title_en"].endswith("(sample)")
        assert "サンプル" in fields["tags"] and "サンプル" in fields["notes"]
        assert fields["groups"] and fields["license_id"] in ("pdl-1.0", "cc-by-4.0")
    water = yaml.safe_load((drop / "suido/water_mains.meta.yaml").read_text(encoding="utf-8"))
    assert water["shared_with"] == ["doboku"]
    roads = yaml.safe_load((drop / "doboku/road_ledger.meta.yaml").read_text(encoding="utf-8"))
    assert roads["encoding"] == "CP932" and "shared_with" not in roads
    evacuation = yaml.safe_load(
        (drop / "bosai/442020_evacuation_space.meta.yaml").read_text(encoding="utf-8")
    )
    assert evacuation["standard_dataset"] == "A-03" and evacuation["encoding"] == "CP932"


def test_the_directory_harvester_accepts_every_sidecar(drop: Path) -> None:
    for demo_file in demo_files("442020"):
        path = sidecar_path(drop, demo_file)
        sidecar, extras, raw = entry_sidecar([path], Path(demo_file.path).name, smartmap=False)
        assert sidecar.name == demo_file.dataset.name
        assert sidecar.title == demo_file.title
        assert sidecar.layer_id == demo_file.layer_id
        assert sidecar.visibility == demo_file.visibility
        assert tuple(sidecar.shared_with or ()) == demo_file.shared_with
        assert extras == {} and raw == path.name.encode() + b"\0" + path.read_bytes()


def test_a_drop_with_sidecars_is_byte_identical_between_runs(drop: Path, tmp_path: Path) -> None:
    generate_demo_city(tmp_path, sidecars=True)
    assert _tree(tmp_path) == _tree(drop)


def test_a_bare_drop_written_over_one_with_sidecars_drops_them(drop: Path, tmp_path: Path) -> None:
    generate_demo_city(tmp_path, sidecars=True)
    generate_demo_city(tmp_path)
    assert not list(tmp_path.rglob("*.meta.yaml"))
    data = {k: v for k, v in _tree(drop).items() if not k.endswith(".meta.yaml")}
    assert _tree(tmp_path) == data
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
