import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.catalog.datasets import create_dataset, dataset_history, get_dataset, patch_dataset
from portal.catalog.schemas import DatasetCreate, DatasetUpdate
from portal.catalog.search import DatasetQuery, search_datasets
from portal.core.database import session_scope
from portal.core.errors import Forbidden, InvalidInput, NotFound
from portal.core.principal import ANONYMOUS, SYSTEM, Role
from portal.core.tokens import authenticate_token
from portal.demo.load import DemoLoad
from tests.staff import make_staff


@pytest.fixture(autouse=True)
def loaded(demo_city: list[DemoLoad]) -> list[DemoLoad]:
    return demo_city


def principal_of(sessions: sessionmaker[Session], department: str, role: Role = Role.viewer):  # type: ignore[no-untyped-def]
    staff = make_staff(sessions, department=department, role=role)
    with sessions() as session:
        return authenticate_token(session, staff.token, ip=None)


def test_an_editor_creates_a_dataset_and_the_change_is_recorded(
    sessions: sessionmaker[Session],
) -> None:
    editor = principal_of(sessions, "shimin", Role.editor)
    with session_scope(sessions) as session:
        view = create_dataset(
            session,
            editor,
            DatasetCreate(
                name="aed-locations",
                title="AED設置箇所一覧",
                department="shimin",
                tags=["AED", "救命"],
                groups=["social-security-health"],
                bbox=(131.4, 33.2, 131.6, 33.35),
            ),
        )
        assert view.department.slug == "shimin"
        assert view.tags == ["AED", "救命"]
        assert [g.name for g in view.groups] == ["social-security-health"]
        assert view.bbox is not None and view.bbox[0] == pytest.approx(131.4)
        patch_dataset(
            session, editor, "aed-locations", DatasetUpdate(notes="市内のAED", tags=["AED"])
        )
        history = dataset_history(session, editor, "aed-locations")
    assert [change.action for change in history] == ["updated", "created"]
    assert history[0].changes["tags"] == [["AED", "救命"], ["AED"]]
    assert history[0].actor.startswith("試験")


def test_a_viewer_cannot_create_and_the_error_names_the_role(
    sessions: sessionmaker[Session],
) -> None:
    viewer = principal_of(sessions, "shimin", Role.viewer)
    with (
        session_scope(sessions) as session,
        pytest.raises(Forbidden, match="needs the editor role"),
    ):
        create_dataset(
            session, viewer, DatasetCreate(name="nope-1", title="x", department="shimin")
        )


def test_an_editor_cannot_change_visibility(sessions: sessionmaker[Session]) -> None:
    editor = principal_of(sessions, "fukushi", Role.editor)
    with pytest.raises(Forbidden, match="needs the admin role"), session_scope(sessions) as session:
        patch_dataset(session, editor, "barrier-free", DatasetUpdate(visibility="internal"))  # type: ignore[arg-type]


def test_unknown_groups_and_licences_are_refused_with_the_choices(
    sessions: sessionmaker[Session],
) -> None:
    with (
        session_scope(sessions) as session,
        pytest.raises(InvalidInput, match="unknown group 'weather'"),
    ):
        create_dataset(
            session,
            SYSTEM,
            DatasetCreate(name="g-1", title="x", department="bosai", groups=["weather"]),
        )
    with pytest.raises(ValueError, match="unknown licence 'gpl'.*pdl-1.0"):
        DatasetCreate(name="l-1", title="x", department="bosai", license_id="gpl")


def test_hidden_datasets_are_not_found_for_outsiders(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        with pytest.raises(NotFound, match="dataset 'water-mains' not found"):
            get_dataset(session, ANONYMOUS, "water-mains")
    doboku = principal_of(sessions, "doboku")
    with session_scope(sessions) as session:
        assert get_dataset(session, doboku, "water-mains").department.slug == "suido"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("避難所", "evacuation-space"),
        ("ひなん", "evacuation-space"),
        ("用途地域", "youto-chiiki"),
        ("道路", "road-ledger"),
        ("人口", "population-by-chocho-age"),
        ("バリアフリー", "barrier-free"),
        ("ｂａｒｒｉｅｒ", "barrier-free"),
        ("Zoning", "youto-chiiki"),
    ],
)
def test_japanese_queries_find_the_demo_datasets(
    sessions: sessionmaker[Session], query: str, expected: str
) -> None:
    with session_scope(sessions) as session:
        result = search_datasets(session, ANONYMOUS, DatasetQuery(q=query))
    assert result.datasets, f"nothing found for {query}"
    assert result.datasets[0].name == expected


def test_facets_never_count_hidden_datasets(sessions: sessionmaker[Session]) -> None:
    fields = ("organization", "tags", "res_format", "groups", "license_id")
    suido = principal_of(sessions, "suido")
    with session_scope(sessions) as session:
        anonymous = search_datasets(session, ANONYMOUS, DatasetQuery(facet_fields=fields, rows=0))
        staff = search_datasets(session, suido, DatasetQuery(facet_fields=fields, rows=0))
    organizations = {item.name: item.count for item in anonymous.facets["organization"]}
    assert "suido" not in organizations
    assert {item.name for item in staff.facets["organization"]} >= {"suido"}
    assert "上水道" not in {item.name for item in anonymous.facets["tags"]}
    assert staff.count == anonymous.count + 1


def test_filters_sorting_and_paging(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        by_org = search_datasets(
            session, ANONYMOUS, DatasetQuery(filters={"organization": ["bosai"]})
        )
        page = search_datasets(
            session, ANONYMOUS, DatasetQuery(sort=(("name", "asc"),), rows=2, start=1)
        )
        everything = search_datasets(
            session, ANONYMOUS, DatasetQuery(sort=(("name", "asc"),), rows=100)
        )
        shp = search_datasets(session, ANONYMOUS, DatasetQuery(filters={"res_format": ["shp"]}))
    assert [d.name for d in by_org.datasets] == ["evacuation-space"]
    names = [d.name for d in everything.datasets]
    assert names == sorted(names)
    assert [d.name for d in page.datasets] == names[1:3]
    assert [d.name for d in shp.datasets] == ["road-ledger"]


def test_spatial_filters_by_bbox_and_point(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        beppu = search_datasets(
            session, ANONYMOUS, DatasetQuery(point=(131.4914, 33.2846), rows=100)
        )
        tokyo = search_datasets(session, ANONYMOUS, DatasetQuery(bbox=(139.6, 35.6, 139.8, 35.8)))
    assert "road-ledger" in {d.name for d in beppu.datasets}
    assert tokyo.count == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (DatasetQuery(rows=1001), "rows must be between 0 and 1000"),
        (DatasetQuery(start=-1), "start must be between 0 and 10,000,000"),
        (DatasetQuery(start=10**20), "start must be between 0 and 10,000,000"),
        (DatasetQuery(sort=(("password", "asc"),)), "cannot sort by 'password'"),
        (DatasetQuery(filters={"owner": ["x"]}), "unknown field 'owner'"),
        (DatasetQuery(facet_fields=("name",)), "cannot facet on 'name'"),
    ],
)
def test_bad_queries_are_refused(
    sessions: sessionmaker[Session], query: DatasetQuery, message: str
) -> None:
    with session_scope(sessions) as session, pytest.raises(InvalidInput, match=message):
        search_datasets(session, ANONYMOUS, query)


def test_injection_looking_queries_are_plain_text(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        for text in ("'; DROP TABLE portal.datasets; --", "a & !b | c:*", "%_\\", ")))"):
            search_datasets(session, ANONYMOUS, DatasetQuery(q=text))
        assert search_datasets(session, ANONYMOUS, DatasetQuery()).count >= 5
