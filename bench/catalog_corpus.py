"""A synthetic catalog of N datasets for search benchmarks, bulk-loaded with real lexemes."""

import io
import random
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from portal.catalog.textsearch import document_lexemes, normalize

BASE_TITLES = (
    ("指定緊急避難場所一覧", "災害時に身を守るための指定緊急避難場所の所在地と対応する災害種別"),
    ("指定避難所一覧", "災害時に生活する指定避難所の所在地と収容人数"),
    ("AED設置箇所一覧", "公共施設などに設置された自動体外式除細動器の設置場所"),
    ("地域・年齢別人口", "町丁別・年齢別・男女別の人口と世帯数"),
    ("公衆トイレ一覧", "公園や駅前の公衆トイレと多機能トイレの有無"),
    ("子育て施設一覧", "保育園・幼稚園・認定こども園・児童館の一覧"),
    ("文化財一覧", "国・県・市指定の有形文化財と史跡"),
    ("医療機関一覧", "病院・診療所・歯科医院の所在地と診療科目"),
    ("観光施設一覧", "温泉・展望台・美術館などの観光施設"),
    ("イベント一覧", "市が主催するイベントと講演会の日程"),
    ("公共施設一覧", "市役所・公民館・図書館などの公共施設"),
    ("介護サービス事業所一覧", "訪問介護・デイサービスなどの事業所"),
    ("消防水利施設一覧", "消火栓と防火水槽の位置"),
    ("学校給食献立情報", "小中学校の給食の献立とアレルギー情報"),
    ("小中学校通学区域", "小学校と中学校の通学区域（学区）"),
    ("公衆無線LANアクセスポイント一覧", "無料で使える公衆無線LAN（Wi-Fi）の場所"),
    ("食品等営業許可・届出一覧", "飲食店などの営業許可と届出"),
    ("用途地域", "都市計画法に基づく用途地域と建ぺい率・容積率"),
    ("道路台帳", "市道の路線名・幅員・延長"),
    ("上水道管路", "上水道の口径・管種・布設年度"),
    ("バリアフリー情報", "段差・スロープ・エレベーターなど歩行空間のバリアフリー情報"),
    ("ごみ収集日", "地区別のごみ・資源物の収集日と分別区分"),
    ("ハザードマップ（洪水浸水想定区域）", "河川が氾濫した場合の浸水の深さ"),
    ("バス停留所", "コミュニティバスの停留所と路線"),
    ("Bus stops", "Community bus stops and routes in English"),
)
AREAS = tuple(f"{name}地区" for name in (
    "中央", "北部", "南部", "東部", "西部", "浜脇", "亀川", "鉄輪", "明礬", "石垣",
    "朝日", "大平山", "境川", "南立石", "青山", "荘園", "上人", "野口", "山の手", "西",
))  # fmt: skip
YEARS = tuple(range(2015, 2027))
DEPARTMENTS = ("bench_a", "bench_b", "bench_c", "bench_d")
FORMATS = ("CSV", "XLSX", "GeoJSON", "PDF", "SHP")


@dataclass(frozen=True)
class Corpus:
    """What was loaded."""

    datasets: int
    public: int


def load_corpus(url: str, size: int, *, seed: int = 20261123, log: Callable[[str], None]) -> Corpus:
    """Insert `size` datasets (about 90 % public) with tags and resources via COPY."""
    rng = random.Random(seed)
    lexemes: dict[tuple[int, int], tuple[str, str, str]] = {}
    for base_index, (title, notes) in enumerate(BASE_TITLES):
        for area_index, area in enumerate(AREAS):
            lexemes[base_index, area_index] = (
                document_lexemes(title, area),
                document_lexemes(notes, area),
                normalize(f"{title} {area} {notes}"),
            )
    log(f"corpus: {len(lexemes)} lexeme sets ready; writing {size:,} datasets")
    rows, tags, resources = io.StringIO(), io.StringIO(), io.StringIO()
    public = 0
    for number in range(size):
        base_index, area_index = rng.randrange(len(BASE_TITLES)), rng.randrange(len(AREAS))
        title, notes = BASE_TITLES[base_index]
        year = rng.choice(YEARS)
        visibility = rng.choices(("public", "internal", "department"), (90, 5, 5))[0]
        public += visibility == "public"
        title_lexemes, notes_lexemes, text = lexemes[base_index, area_index]
        full_title = f"{title}（{AREAS[area_index]}・{year}年度）"
        department = DEPARTMENTS[number % len(DEPARTMENTS)]
        dataset_tags = sorted({title.split("一覧")[0][:10], AREAS[area_index], str(year)})
        file_format = rng.choice(FORMATS)
        rows.write(
            "\t".join(
                (f"bench-{number:06d}", full_title, f"{notes}（{AREAS[area_index]}）", department,
                 visibility, f"{title_lexemes} {year}", notes_lexemes, text,
                 f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                 "|".join(dataset_tags), file_format)
            )
            + "\n"
        )  # fmt: skip
        for tag in dataset_tags:
            tags.write(f"bench-{number:06d}\t{tag}\n")
        resources.write(f"bench-{number:06d}\t{file_format}\n")
    with psycopg.connect(url, autocommit=False) as connection:
        _copy_all(connection, rows, tags, resources)
        connection.commit()
    with psycopg.connect(url, autocommit=True) as connection:
        for table in ("datasets", "dataset_tags", "resources"):
            connection.execute(f"VACUUM ANALYZE portal.{table}")
    return Corpus(size, public)


def _copy_all(
    connection: psycopg.Connection, rows: io.StringIO, tags: io.StringIO, resources: io.StringIO
) -> None:
    for department in DEPARTMENTS:
        connection.execute(
            "INSERT INTO portal.departments (slug, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (department, f"ベンチ{department[-1]}課"),
        )
    connection.execute(
        "CREATE TEMP TABLE staging (name text, title text, notes text, department text, "
        "visibility text, title_lexemes text, notes_lexemes text, search_text text, modified date, "
        "tags text, format text)"
    )
    with connection.cursor().copy("COPY staging FROM STDIN") as copy:
        copy.write(rows.getvalue())
    connection.execute(
        "INSERT INTO portal.datasets (name, title, notes, department_id, visibility, license_id, "
        "search_vector, search_text, tag_list, public_formats, created_at, modified_at) "
        "SELECT s.name, s.title, s.notes, d.id, s.visibility, 'pdl-1.0', "
        "setweight(to_tsvector('simple', s.title_lexemes), 'A') || "
        "setweight(to_tsvector('simple', s.notes_lexemes), 'B'), s.search_text, "
        "string_to_array(s.tags, '|'), ARRAY[s.format], s.modified, s.modified "
        "FROM staging s JOIN portal.departments d ON d.slug = s.department"
    )
    connection.execute("CREATE TEMP TABLE staging_tags (name text, tag text)")
    with connection.cursor().copy("COPY staging_tags FROM STDIN") as copy:
        copy.write(tags.getvalue())
    connection.execute(
        "INSERT INTO portal.dataset_tags (dataset_id, tag) SELECT d.id, t.tag "
        "FROM staging_tags t JOIN portal.datasets d ON d.name = t.name ON CONFLICT DO NOTHING"
    )
    connection.execute("CREATE TEMP TABLE staging_resources (name text, format text)")
    with connection.cursor().copy("COPY staging_resources FROM STDIN") as copy:
        copy.write(resources.getvalue())
    connection.execute(
        "INSERT INTO portal.resources (dataset_id, name, format, kind, url) "
        "SELECT d.id, d.title, r.format, 'url', 'https://example.invalid/' || d.name "
        "FROM staging_resources r JOIN portal.datasets d ON d.name = r.name"
    )
