"""The demo city: its departments, the files each drops, and their catalog entries."""

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
class DemoDataset:
    """The catalog entry a demo file becomes: what its sidecar tells the harvester."""

    name: str
    notes: str
    tags: tuple[str, ...]
    groups: tuple[str, ...]
    license_id: str = "pdl-1.0"
    standard_dataset: str | None = None
    update_frequency: str = "irregular"


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

    @property
    def dataset(self) -> DemoDataset:
        """Return the catalog entry of this file."""
        return DATASETS[self.layer_id]

    @property
    def original_name(self) -> str:
        """Return the name of the catalog resource that holds the file as dropped."""
        return f"{self.title}（元ファイル）"


DEPARTMENTS: tuple[DemoDepartment, ...] = (
    DemoDepartment("doboku", "土木課", "Civil Engineering Division"),
    DemoDepartment("toshikeikaku", "都市計画課", "City Planning Division"),
    DemoDepartment("suido", "上下水道局", "Water and Sewerage Bureau"),
    DemoDepartment("fukushi", "福祉課", "Welfare Division"),
    DemoDepartment("bosai", "防災危機管理課", "Disaster Prevention Division"),
    DemoDepartment("shimin", "市民課", "Citizens Division"),
)


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
