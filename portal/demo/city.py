"""The demo city: its departments and the files each department drops."""

from dataclasses import dataclass

from portal.core.principal import Visibility

SAMPLE_LABEL = "サンプル"
CENTER_LAT = 33.2846
CENTER_LON = 131.4914


@dataclass(frozen=True)
class DemoDepartment:
    """A department of the demo city."""

    slug: str
    name: str
    name_en: str


@dataclass(frozen=True)
class DemoFile:
    """One file in a department's drop folder, and the layer (or table) it becomes."""

    department: str
    path: str
    title: str
    title_en: str
    layer_id: str
    visibility: Visibility = Visibility.public
    shared_with: tuple[str, ...] = ()
    encoding: str | None = None


DEPARTMENTS: tuple[DemoDepartment, ...] = (
    DemoDepartment("doboku", "土木課", "Civil Engineering Division"),
    DemoDepartment("toshikeikaku", "都市計画課", "City Planning Division"),
    DemoDepartment("suido", "上下水道局", "Water and Sewerage Bureau"),
    DemoDepartment("fukushi", "福祉課", "Welfare Division"),
    DemoDepartment("bosai", "防災危機管理課", "Disaster Prevention Division"),
    DemoDepartment("shimin", "市民課", "Citizens Division"),
)


def demo_files(municipality_code: str) -> tuple[DemoFile, ...]:
    """Return the files of the demo city's drop, relative to its root folder."""
    return (
        DemoFile(
            "doboku",
            "doboku/road_ledger.shp",
            f"道路台帳（{SAMPLE_LABEL}）",
            "Road ledger (sample)",
            "roads",
            encoding="CP932",
        ),
        DemoFile(
            "toshikeikaku",
            "toshikeikaku/youto_chiiki.gpkg",
            f"用途地域（{SAMPLE_LABEL}）",
            "Zoning (sample)",
            "zoning",
        ),
        DemoFile(
            "suido",
            "suido/water_mains.geojson",
            f"上水道管路（{SAMPLE_LABEL}）",
            "Water mains (sample)",
            "water_mains",
            visibility=Visibility.department,
            shared_with=("doboku",),
        ),
        DemoFile(
            "fukushi",
            "fukushi/barrier_free.csv",
            f"バリアフリー情報（{SAMPLE_LABEL}）",
            "Barrier-free points (sample)",
            "barriers",
        ),
        DemoFile(
            "bosai",
            f"bosai/{municipality_code}_evacuation_space.csv",
            f"指定緊急避難場所一覧（{SAMPLE_LABEL}）",
            "Designated evacuation sites (sample)",
            "evacuation_sites",
            encoding="CP932",
        ),
        DemoFile(
            "shimin",
            "shimin/population_by_chocho_age.xlsx",
            f"地域・年齢別人口（{SAMPLE_LABEL}）",
            "Population by district and age (sample)",
            "population",
        ),
    )
