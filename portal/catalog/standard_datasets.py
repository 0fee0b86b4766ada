"""自治体標準オープンデータセット: the 17 datasets, their columns in both editions, and aliases.

Sources: REFERENCE.md (dataset ids, slugs, the two location blocks, the A-03 columns and the
◎ fields listed there) and the real published files in the test corpus (the A-13 current and
A-01 old column lists are those of 焼津市's files, which follow the published layouts).
Where only the shared location block is known, `complete` is False and columns beyond the
block are not reported as unknown.
"""

import unicodedata
from dataclasses import dataclass, field

CURRENT = "current"
OLD = "old"

LOCATION_CURRENT: tuple[str, ...] = (
    "全国地方公共団体コード", "ID", "地方公共団体名", "名称", "名称_カナ", "名称_英字",
    "所在地_全国地方公共団体コード", "町字ID", "所在地_連結表記", "所在地_都道府県",
    "所在地_市区町村", "所在地_町字", "所在地_番地以下", "建物名等(方書)", "緯度", "経度",
)  # fmt: skip
LOCATION_OLD: tuple[str, ...] = (
    "都道府県コード又は市区町村コード", "NO", "都道府県名", "市区町村名", "名称", "名称_カナ",
    "住所", "方書", "緯度", "経度",
)  # fmt: skip
HAZARD_FLAGS: tuple[str, ...] = (
    "災害種別_洪水", "災害種別_崖崩れ、土石流及び地滑り", "災害種別_高潮", "災害種別_地震",
    "災害種別_津波", "災害種別_大規模な火事", "災害種別_内水氾濫", "災害種別_火山現象",
)  # fmt: skip
_EVACUATION_TAIL: tuple[str, ...] = (
    *HAZARD_FLAGS, "指定避難所との重複", "想定収容人数", "対象となる町会・自治会", "URL", "備考",
)  # fmt: skip
_TOILET_TAIL: tuple[str, ...] = (
    "高度の種別", "高度の値", "男性トイレ総数", "男性トイレ数（小便器）", "男性トイレ数（和式）",
    "男性トイレ数（洋式）", "女性トイレ総数", "女性トイレ数（和式）", "女性トイレ数（洋式）",
    "男女共用トイレ総数", "男女共用トイレ数（和式）", "男女共用トイレ数（洋式）",
    "バリアフリートイレ数", "車椅子使用者用トイレ有無", "乳幼児用設備設置トイレ有無",
    "オストメイト設置トイレ有無", "利用開始時間", "利用終了時間", "利用可能時間特記事項", "画像",
    "画像_ライセンス", "備考",
)  # fmt: skip
_PUBLIC_FACILITY_OLD: tuple[str, ...] = (
    "都道府県コード又は市区町村コード", "NO", "都道府県名", "市区町村名", "名称", "名称_カナ",
    "名称_通称", "POIコード", "住所", "方書", "緯度", "経度", "電話番号", "内線番号", "法人番号",
    "団体名", "利用可能曜日", "開始時間", "終了時間", "利用可能日時特記事項", "説明",
    "バリアフリー情報", "URL", "備考",
)  # fmt: skip

# Columns that hold a 全国地方公共団体コード (six digits with a check digit).
CODE_COLUMNS: tuple[str, ...] = (
    "全国地方公共団体コード",
    "所在地_全国地方公共団体コード",
    "都道府県コード又は市区町村コード",
)
# The one code column every row must fill, per edition.
PRIMARY_CODE = {CURRENT: "全国地方公共団体コード", OLD: "都道府県コード又は市区町村コード"}

# Header spellings seen in published files → the column they stand for. The English-name
# column is spelled both ways in the wild (and in the specifications of different datasets),
# so each spelling stands in for the other.
ALIASES: dict[str, tuple[str, ...]] = {
    "名称_英語": ("名称_英字",),
    "名称_英字": ("名称_英語",),
    "市区町村コード": ("都道府県コード又は市区町村コード", "全国地方公共団体コード"),
    "都道府県コード又は市区町村コード": ("全国地方公共団体コード",),
    "全国地方公共団体コード": ("都道府県コード又は市区町村コード",),
    "NO": ("ID",),
    "NO.": ("NO", "ID"),
    "ID": ("NO",),
    "住所": ("所在地_連結表記",),
    "所在地_連結表記": ("住所",),
    "方書": ("建物名等(方書)",),
    "建物名等(方書)": ("方書",),
}


@dataclass(frozen=True)
class Edition:
    """One edition's column layout of a standard dataset."""

    columns: tuple[str, ...]
    required: tuple[str, ...] = ()
    complete: bool = False
    flag_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class StandardDataset:
    """A 自治体標準オープンデータセット with what the portal knows of its layouts."""

    id: str
    title: str
    slug: str | None
    editions: dict[str, Edition] = field(default_factory=dict)

    @property
    def has_location(self) -> bool:
        """Tell whether rows carry 緯度/経度."""
        return any("緯度" in edition.columns for edition in self.editions.values())


def _point(current: tuple[str, ...] = (), old: tuple[str, ...] = ()) -> dict[str, Edition]:
    """Editions of a point dataset whose columns after the location block are not listed."""
    return {
        CURRENT: Edition(LOCATION_CURRENT + current),
        OLD: Edition(LOCATION_OLD + old),
    }


STANDARD_DATASETS: tuple[StandardDataset, ...] = (
    StandardDataset(
        "A-01",
        "公共施設一覧",
        "public_facility",
        {CURRENT: Edition(LOCATION_CURRENT), OLD: Edition(_PUBLIC_FACILITY_OLD, complete=True)},
    ),
    StandardDataset("A-02", "文化財一覧", "cultural_property", _point()),
    StandardDataset(
        "A-03",
        "指定緊急避難場所一覧",
        "evacuation_space",
        {
            CURRENT: Edition(
                LOCATION_CURRENT + ("標高", "電話番号") + _EVACUATION_TAIL,
                complete=True,
                flag_columns=HAZARD_FLAGS,
            ),
            # The 推奨 layout also has 内線番号 after 電話番号 (as 焼津市's file shows).
            OLD: Edition(
                LOCATION_OLD + ("標高", "電話番号", "内線番号") + _EVACUATION_TAIL,
                complete=True,
                flag_columns=HAZARD_FLAGS,
            ),
        },
    ),
    StandardDataset("A-04", "地域・年齢別人口", "population"),
    StandardDataset("A-05", "子育て施設一覧", "preschool", _point()),
    StandardDataset("A-06", "オープンデータ一覧", None),
    StandardDataset("A-07", "公衆無線LANアクセスポイント一覧", "public_wireless_lan", _point()),
    StandardDataset(
        "A-08",
        "AED設置箇所一覧",
        "aed",
        {
            CURRENT: Edition(LOCATION_CURRENT + ("設置位置",)),
            OLD: Edition(
                LOCATION_OLD + ("設置位置",), required=("名称", "名称_カナ", "住所", "設置位置")
            ),
        },
    ),
    StandardDataset("A-09", "介護サービス事業所一覧", "care_service", _point()),
    StandardDataset("A-10", "医療機関一覧", "hospital", _point()),
    StandardDataset("A-11", "観光施設一覧", "tourism", _point()),
    StandardDataset("A-12", "イベント一覧", "event"),
    StandardDataset(
        "A-13",
        "公衆トイレ一覧",
        "public_toilet",
        {
            CURRENT: Edition(
                LOCATION_CURRENT[:14] + ("設置位置", "緯度", "経度") + _TOILET_TAIL,
                required=("名称", "所在地_連結表記", "設置位置"),
                complete=True,
            ),
            OLD: Edition(LOCATION_OLD),
        },
    ),
    StandardDataset("A-14", "消防水利施設一覧", "fire_hydrant", _point()),
    StandardDataset("A-15", "食品等営業許可・届出一覧", "food_business_license"),
    StandardDataset("A-16", "学校給食献立情報", "school_lunch"),
    StandardDataset("A-17", "小中学校通学区域情報", "school_districts"),
)

BY_ID = {dataset.id: dataset for dataset in STANDARD_DATASETS}
BY_SLUG = {dataset.slug: dataset for dataset in STANDARD_DATASETS if dataset.slug}


def column_key(name: str) -> str:
    """Fold a header for comparison: NFKC (full-width brackets, digits), no spaces, upper."""
    folded = unicodedata.normalize("NFKC", name).replace("\ufeff", "")
    return "".join(folded.split()).upper()


def find_by_label(label: str) -> StandardDataset | None:
    """Return the dataset a tag or title names: `A-03`, `evacuation_space` or its title."""
    key = column_key(label)
    if not key:
        return None
    compact = key.replace("-", "").replace("_", "")
    if compact.startswith("A") and compact[1:].isdigit() and len(compact) <= 3:
        return BY_ID.get(f"A-{int(compact[1:]):02d}")
    for dataset in STANDARD_DATASETS:
        if dataset.slug and key == column_key(dataset.slug):
            return dataset
    # A title inside a longer label, as in 「指定緊急避難場所一覧（サンプル）」.
    for dataset in STANDARD_DATASETS:
        if column_key(dataset.title) in key:
            return dataset
    return None
