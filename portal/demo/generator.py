"""The demo city generator: writes every department's sample files, deterministically."""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from portal.core.municipality import is_valid_code
from portal.demo.city import DemoFile, demo_files
from portal.demo.gen_barriers import write_barriers
from portal.demo.gen_common import SampleCity, prefecture_name
from portal.demo.gen_evacuation import write_evacuation_sites
from portal.demo.gen_places import chocho_list
from portal.demo.gen_population import CHOCHO_PER_SCALE, write_population
from portal.demo.gen_roads import build_street_grid, write_road_ledger
from portal.demo.gen_water import write_water_mains
from portal.demo.gen_zoning import write_zoning
from portal.demo.sidecars import sidecar_path, write_sidecar

# Each dataset draws from its own stream, so changing one never reshuffles the others.
_STREAMS = ("streets", "zoning", "water_mains", "barriers", "evacuation_sites", "population")


def generate_demo_city(
    out_dir: Path,
    *,
    scale: int = 1,
    municipality_code: str = "442020",
    municipality_name: str = "別府市",
    seed: int = 442020,
    sidecars: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the demo city's department file drop under `out_dir`, deterministically.

    With `sidecars`, each file gets the `<stem>.meta.yaml` that the directory harvester
    publishes it by (dataset name, titles, tags, layer id, visibility…); without, the drop
    is bare, as departments hand files over, and sidecars of an earlier run are removed.
    Returns the data files written (not their sidecars).
    """
    check_generator_arguments(scale, municipality_code, municipality_name)
    city = SampleCity(municipality_code, municipality_name)
    root = Path(out_dir).resolve()
    seeds = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    rng = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, seeds, strict=True)}
    grid = build_street_grid(rng["streets"], scale)
    chocho = chocho_list(CHOCHO_PER_SCALE * scale)

    writers: dict[str, Callable[[Path], int]] = {
        "roads": lambda path: write_road_ledger(path, grid, rng["streets"]),
        "zoning": lambda path: write_zoning(path, grid, rng["zoning"], scale, city),
        "water_mains": lambda path: write_water_mains(path, grid, rng["water_mains"]),
        "barriers": lambda path: write_barriers(path, grid, rng["barriers"], scale),
        "evacuation_sites": lambda path: write_evacuation_sites(
            path, grid, rng["evacuation_sites"], scale, city, chocho
        ),
        "population": lambda path: write_population(path, rng["population"], city, chocho),
    }
    written: list[Path] = []
    for demo_file in demo_files(municipality_code):
        path = root / demo_file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        _writer_for(writers, demo_file)(path)
        if sidecars:
            write_sidecar(root, demo_file)
        else:
            sidecar_path(root, demo_file).unlink(missing_ok=True)
        written.append(path)
        if progress is not None:
            progress(demo_file.path)
    return written


def check_generator_arguments(scale: int, municipality_code: str, municipality_name: str) -> None:
    """Raise ValueError, with a message a user can act on, for arguments the generator refuses."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an integer of 1 or more, got {scale!r}")
    if not is_valid_code(municipality_code):
        raise ValueError(
            f"municipality_code must be a six-digit 全国地方公共団体コード with a valid check "
            f"digit (e.g. 442020), got {municipality_code!r}"
        )
    prefecture_name(municipality_code)
    try:
        # The road ledger and the evacuation list are CP932 files, as real ones are.
        municipality_name.encode("cp932")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"municipality_name {municipality_name!r} has characters CP932 cannot store"
        ) from error
    if not municipality_name.strip():
        raise ValueError("municipality_name must not be empty")


def _writer_for(
    writers: dict[str, Callable[[Path], int]], demo_file: DemoFile
) -> Callable[[Path], int]:
    """Return the writer for a demo file's layer, failing loudly if city.py grew a new one."""
    try:
        return writers[demo_file.layer_id]
    except KeyError:
        raise ValueError(f"no generator for demo layer {demo_file.layer_id!r}") from None
