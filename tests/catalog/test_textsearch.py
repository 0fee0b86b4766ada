"""Japanese full-text search lexemes, unit-tested and checked against PostgreSQL."""

import re
import threading
from collections.abc import Iterator

import psycopg
import pytest

from portal.catalog import japanese
from portal.catalog.textsearch import document_lexemes, normalize, query_lexemes, to_tsquery_text

CATALOG = [
    (
        "指定緊急避難場所一覧",
        "災害時に身の安全を確保するための指定緊急避難場所と、避難生活を送るための指定避難所の名称、所在地、収容人数、対象とする災害の種別です。",
    ),
    (
        "AED設置箇所一覧",
        "市内の公共施設や商業施設に設置されているＡＥＤ（自動体外式除細動器）の設置場所と、利用できる曜日・時間帯です。",
    ),
    (
        "地域・年齢別人口",
        "住民基本台帳に基づく町丁目別・5歳階級別の男女別人口と世帯数です。毎月1日現在の数値を掲載しています。",
    ),
    (
        "用途地域",
        "都市計画法に基づき定めた用途地域の区域と、建ぺい率・容積率の指定状況を示すデータです。",
    ),
    (
        "道路台帳",
        "市が管理する市道の路線名、延長、幅員、起点・終点を記載した道路台帳の路線データです。",
    ),
    (
        "公衆トイレ一覧",
        "公園や駅前広場に設置された公衆トイレの所在地、多目的トイレやオストメイト対応の有無、利用時間です。",
    ),
    (
        "子育て施設一覧",
        "保育園、認定こども園、幼稚園、児童館、子育て支援センターの所在地、定員、開所時間の一覧です。",
    ),
    (
        "文化財一覧",
        "国・県・市が指定した有形・無形の文化財、史跡、名勝、天然記念物の名称、指定年月日、所在地です。",
    ),
    (
        "医療機関一覧",
        "市内の病院・診療所・歯科診療所の名称、診療科目、所在地、電話番号と休日当番医の情報です。",
    ),
    (
        "観光施設一覧",
        "市内の主な観光スポット、美術館・博物館、温泉施設の名称、所在地、営業時間、駐車場の有無です。",
    ),
    (
        "上水道管路",
        "市水道局が管理する配水管・送水管の管路データで、管種、口径、布設年度を属性として持ちます。",
    ),
    (
        "バリアフリー情報",
        "公共施設のバリアフリー対応状況（段差の解消、エレベーター、車いす対応トイレ、点字ブロックの有無）をまとめたデータです。",
    ),
    (
        "ごみ収集日",
        "地区ごとの燃やすごみ・資源ごみ・粗大ごみの収集曜日と、年末年始の収集日程です。",
    ),
    (
        "介護サービス事業所一覧",
        "居宅介護支援、訪問介護、通所介護（デイサービス）など介護保険サービス事業所の名称、所在地、サービスの種類です。",
    ),
    (
        "公共施設一覧",
        "市役所、支所、公民館、図書館、体育館など市が保有する公共施設の名称、所在地、電話番号、開館時間です。",
    ),
    ("消防水利施設一覧", "消火栓、防火水槽など消防水利施設の位置と種別、防火水槽の容量です。"),
    (
        "学校給食献立",
        "市立小学校・中学校の月ごとの学校給食の献立と、主な食材、エネルギー・たんぱく質などの栄養価です。",
    ),
    (
        "イベント一覧",
        "市や関係団体が主催するイベント、講座、講演会の開催日時、会場、申込方法です。",
    ),
    (
        "公衆無線LANアクセスポイント一覧",
        "市が設置した無料の公衆無線LAN（Wi-Fi）のアクセスポイントの設置場所とSSIDです。",
    ),
    (
        "食品等営業許可",
        "食品衛生法に基づく飲食店営業などの営業許可を受けた施設の名称、業種、許可年月日、有効期間です。",
    ),
    ("小中学校通学区域", "市立小学校・中学校の通学区域（学区）を町丁目ごとに示したデータです。"),
    (
        "人口統計",
        "国勢調査と住民基本台帳による人口・世帯数の推移と、出生・死亡・転入・転出の人口動態です。",
    ),
    (
        "都市計画図",
        "都市計画道路、市街化区域と市街化調整区域、地区計画など都市計画の決定内容を示した図面データです。",
    ),
    (
        "ハザードマップ（洪水浸水想定区域）",
        "想定最大規模の降雨で河川が氾濫した場合の洪水浸水想定区域と浸水深を示します。避難の目安にご活用ください。",
    ),
    (
        "Wi-Fi spots",
        "Locations of free public Wi-Fi access points in the city, with SSID and opening hours.",
    ),
    ("Bus stops", "Community bus stops with stop names, coordinates and route numbers."),
]

WIFI = ("公衆無線LANアクセスポイント一覧", "Wi-Fi spots")
POPULATION = ("地域・年齢別人口", "人口統計")
EXPECTED_TOP: dict[str, str | tuple[str, ...]] = {
    "避難所": "指定緊急避難場所一覧",
    "ひなん": "指定緊急避難場所一覧",
    "ヒナン": "指定緊急避難場所一覧",
    "ひなんじょ": "指定緊急避難場所一覧",
    "ひな": "指定緊急避難場所一覧",
    "避難": "指定緊急避難場所一覧",
    "避難場所": "指定緊急避難場所一覧",
    "ひなんばしょ": "指定緊急避難場所一覧",
    "ＡＥＤ": "AED設置箇所一覧",
    "aed": "AED設置箇所一覧",
    "人口": POPULATION,
    "トイレ": "公衆トイレ一覧",
    "といれ": "公衆トイレ一覧",
    "保育園": "子育て施設一覧",
    "子育て": "子育て施設一覧",
    "こそだて": "子育て施設一覧",
    "ほいくえん": "子育て施設一覧",
    "病院": "医療機関一覧",
    "びょういん": "医療機関一覧",
    "用途地域": "用途地域",
    "道路": "道路台帳",
    "水道": "上水道管路",
    "文化財": "文化財一覧",
    "観光": "観光施設一覧",
    "バリアフリー": "バリアフリー情報",
    "バリアフリートイレ": "バリアフリー情報",
    "介護": "介護サービス事業所一覧",
    "デイサービス": "介護サービス事業所一覧",
    "消火栓": "消防水利施設一覧",
    "しょうかせん": "消防水利施設一覧",
    "給食": "学校給食献立",
    "献立": "学校給食献立",
    "wifi": WIFI,
    "Wi-Fi": WIFI,
    "ＷｉＦｉ": WIFI,
    "無料 Wi-Fi": "公衆無線LANアクセスポイント一覧",
    "学区": "小中学校通学区域",
    "通学区域": "小中学校通学区域",
    "洪水": "ハザードマップ（洪水浸水想定区域）",
    "浸水": "ハザードマップ（洪水浸水想定区域）",
    "bus stops": "Bus stops",
    "BUS": "Bus stops",
    "ごみ": "ごみ収集日",
    "粗大ごみ": "ごみ収集日",
    "都市計画": "都市計画図",
    "営業許可": "食品等営業許可",
    "公共施設": "公共施設一覧",
    "図書館": "公共施設一覧",
    "イベント": "イベント一覧",
    "公衆無線LAN": "公衆無線LANアクセスポイント一覧",
}

TSQUERY_TERM = r"\('[^'\\ ]+'(:\*)?( \| '[^'\\ ]+'(:\*)?)*\)"
TSQUERY = re.compile(rf"{TSQUERY_TERM}( & {TSQUERY_TERM})*")
HOSTILE = [
    "'a' & !b | c:*",
    "\\",
    "\\\\'",
    ")))",
    "(((",
    "''",
    "'",
    "!",
    "a:*B",
    "<-> <2> & | !",
    "避難所' | '!",
    "ＡＥＤ'); DROP TABLE t; --",
    "\x00\x01\x7f",
    "a\ud800b",
    "x" * 10_000,
    "避難所 " * 2_000,
    "ひなん" * 3_400,
]


def lexemes(*texts: str) -> set[str]:
    return set(document_lexemes(*texts).split())


def is_katakana(text: str) -> bool:
    return all("\u30a1" <= c <= "\u30fa" for c in text)


def test_normalize_folds_width_case_and_whitespace() -> None:
    assert normalize("ＡＥＤ") == normalize("AED") == "aed"
    assert normalize("ｱｲｳ") == "アイウ"
    assert normalize("１２") == "12"
    assert normalize("  Wi-Fi\u3000スポット\n\t一覧 ") == "wi-fi スポット 一覧"
    assert normalize("a\x00b\ud800c") == "a b c"


def test_compounds_are_indexed_with_their_subwords() -> None:
    assert {"指定", "緊急", "避難", "場所", "一覧"} <= lexemes("指定緊急避難場所一覧")
    assert {"避難所", "避難", "所"} <= lexemes("指定避難所")
    assert {"消火栓", "消火"} <= lexemes("消火栓")
    assert {"通学区域", "通学", "区域"} <= lexemes("小中学校通学区域")


def test_readings_are_indexed_in_hiragana() -> None:
    assert {"ひなん", "ばしょ"} <= lexemes("避難場所")
    assert {"トイレ", "といれ"} <= lexemes("公衆トイレ")
    assert {"wifi", "わいふぁい"} <= lexemes("Wi-Fi")
    assert not any(is_katakana(lexeme) and len(lexeme) > 1 for lexeme in lexemes("避難場所"))


def test_particles_auxiliaries_and_punctuation_are_dropped() -> None:
    found = lexemes("避難所の一覧を、地図で表示します。（令和6年度）")
    assert {"避難所", "一覧", "地図", "表示"} <= found
    assert not found & {"の", "を", "で", "ます", "、", "。", "(", ")", "（", "）"}


def test_width_variants_produce_the_same_lexemes() -> None:
    assert lexemes("ＡＥＤ設置箇所") == lexemes("AED設置箇所")
    assert lexemes("ｱｸｾｽﾎﾟｲﾝﾄ") == lexemes("アクセスポイント")
    assert "12" in lexemes("１２月")
    assert "aed" in lexemes("ＡＥＤ")


def test_english_words_are_lower_cased_and_not_stemmed() -> None:
    found = lexemes("Bus Stops", "Community bus stops with stop names.")
    assert {"bus", "stops", "stop", "community", "names"} <= found
    assert not found & {"with", "Bus", "Stops"}


def test_document_lexemes_are_deduplicated() -> None:
    words = document_lexemes("避難所 避難所", "避難所と避難場所").split()
    assert len(words) == len(set(words))
    assert document_lexemes() == document_lexemes("") == ""


def test_query_lexemes_group_alternatives_into_terms() -> None:
    shelter, aed = query_lexemes("避難所 AED")
    assert {"避難所", "避難"} <= set(shelter)
    assert aed == ["aed"]
    assert query_lexemes("ＡＥＤ") == query_lexemes("aed") == [["aed"]]
    assert query_lexemes("Wi-Fi") == query_lexemes("ＷｉＦｉ") == [["wifi"]]


def test_kana_queries_are_folded_to_hiragana() -> None:
    assert query_lexemes("ヒナン")[0][0] == "ひなん"
    assert query_lexemes("ｱｲｳ")[0][0] == "あいう"
    assert "避難" in query_lexemes("ひなん")[0]


def test_kana_compounds_are_split_only_into_dictionary_nouns() -> None:
    shelter, place = query_lexemes("ひなんばしょ")
    assert {"ひなん", "避難"} <= set(shelter)
    assert {"ばしょ", "場所"} <= set(place)
    assert query_lexemes("といれ") == [["といれ"]]
    assert query_lexemes("しょうかせん") == [["しょうかせん"]]


def test_kanji_queries_are_not_widened_to_homophones() -> None:
    assert query_lexemes("公園") == [["公園"]]
    assert query_lexemes("講演") == [["講演"]]


def test_stop_words_alone_are_not_searchable() -> None:
    for query in ["", "   ", "の", "の、を。", "この", "the of", "！？"]:
        assert query_lexemes(query) == []
        assert to_tsquery_text(query) is None


@pytest.mark.parametrize(("title", "description"), CATALOG)
def test_every_entry_matches_a_query_for_its_own_text(title: str, description: str) -> None:
    found = lexemes(title, description)
    for text in (title, description):
        for term in query_lexemes(text):
            assert found & set(term), (text, term)


def test_prefix_matching_applies_to_kana_and_latin_being_typed() -> None:
    assert to_tsquery_text("ひな") == "('ひな':*)"
    assert to_tsquery_text("避難所 ae") == "('避難所' | '避難') & ('ae':*)"
    assert to_tsquery_text("aed ") == "('aed')"
    assert to_tsquery_text("避難") == "('避難')"
    assert to_tsquery_text("ひ") == "('ひ')"
    assert to_tsquery_text("2024") == "('2024')"


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_give_none_or_well_formed_tsquery_text(query: str) -> None:
    text = to_tsquery_text(query)
    assert text is None or TSQUERY.fullmatch(text), text


def test_long_texts_are_split_before_the_tokenizer() -> None:
    text = "指定緊急避難場所の一覧です。" * 5_000 + "あ" * 60_000
    assert {"避難", "一覧"} <= lexemes(text)


def test_the_tokenizer_is_created_once_and_shared_between_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = []

    class Counting(japanese._Analyser):
        def __init__(self) -> None:
            created.append(self)
            super().__init__()

    monkeypatch.setattr(japanese, "_analyser", None)
    monkeypatch.setattr(japanese, "_Analyser", Counting)
    expected = [document_lexemes(t, d) for t, d in CATALOG]
    monkeypatch.setattr(japanese, "_analyser", None)
    results: list[list[str]] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        results.append([document_lexemes(t, d) for t, d in CATALOG])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 8
    assert len(created) == 2


@pytest.fixture(scope="module")
def catalog_db(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection holding a TEMP table of the catalog, indexed as the portal indexes it."""
    with psycopg.connect(database_url) as connection:
        connection.execute(
            "CREATE TEMP TABLE entries (id int PRIMARY KEY, title text, lexemes text,"
            " document tsvector, ranked tsvector)"
        )
        for number, (title, description) in enumerate(CATALOG):
            connection.execute(
                "INSERT INTO entries VALUES (%(id)s, %(title)s, %(all)s,"
                " to_tsvector('simple', %(all)s),"
                " setweight(to_tsvector('simple', %(title_only)s), 'A')"
                " || to_tsvector('simple', %(all)s))",
                {
                    "id": number,
                    "title": title,
                    "all": document_lexemes(title, description),
                    "title_only": document_lexemes(title),
                },
            )
        yield connection


def test_postgres_keeps_every_lexeme_whole(catalog_db: psycopg.Connection) -> None:
    for lexeme_text, vector in catalog_db.execute(
        "SELECT lexemes, tsvector_to_array(document) FROM entries"
    ):
        assert set(vector) == set(lexeme_text.split())


@pytest.mark.parametrize("query", HOSTILE)
def test_postgres_accepts_tsquery_text_of_hostile_queries(
    catalog_db: psycopg.Connection, query: str
) -> None:
    text = to_tsquery_text(query)
    if text is not None:
        catalog_db.execute(
            "SELECT count(*) FROM entries WHERE document @@ to_tsquery('simple', %s)", (text,)
        )


@pytest.mark.parametrize(("query", "expected"), EXPECTED_TOP.items())
def test_search_ranks_the_expected_entry_first(
    catalog_db: psycopg.Connection, query: str, expected: str | tuple[str, ...]
) -> None:
    text = to_tsquery_text(query)
    assert text is not None
    matched = {
        title
        for (title,) in catalog_db.execute(
            "SELECT title FROM entries WHERE document @@ to_tsquery('simple', %s)", (text,)
        )
    }
    top = catalog_db.execute(
        "SELECT title FROM entries WHERE ranked @@ to_tsquery('simple', %(q)s)"
        " ORDER BY ts_rank(ranked, to_tsquery('simple', %(q)s)) DESC, id LIMIT 1",
        {"q": text},
    ).fetchone()
    wanted = {expected} if isinstance(expected, str) else set(expected)
    assert matched & wanted, (text, matched)
    assert top is not None and top[0] in wanted, (text, top)


@pytest.mark.parametrize("query", ["ロケット", "rocket", "避難 給食"])
def test_search_finds_nothing_for_unrelated_queries(
    catalog_db: psycopg.Connection, query: str
) -> None:
    text = to_tsquery_text(query)
    assert text is not None
    count = catalog_db.execute(
        "SELECT count(*) FROM entries WHERE document @@ to_tsquery('simple', %s)", (text,)
    ).fetchone()
    assert count == (0,)
