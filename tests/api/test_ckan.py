"""The CKAN Action API over real HTTP: envelope, search, facets, visibility and bad input."""

import json

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.api.ckan_support import catalog, error, result, suido
from tests.conftest import LiveServer
from tests.staff import Staff, make_staff

__all__ = ["catalog", "suido"]


# --- envelope and site -------------------------------------------------------------------------


def test_both_paths_and_both_methods_answer(http: httpx.Client, catalog: list[str]) -> None:
    assert result(http, "package_list") == catalog
    assert result(http, "package_list", prefix="/api/action/") == catalog
    assert result(http, "package_list", {"limit": 2, "offset": 1}, post=True) == catalog[1:3]
    form = http.post("/api/action/package_list", data={"limit": "1"})
    assert form.json()["result"] == catalog[:1]


def test_status_show_claims_ckan_compatibility(http: httpx.Client, live_server: LiveServer) -> None:
    status = result(http, "status_show")
    assert status["ckan_version"] == "2.10.4"
    assert status["locale_default"] == "ja"
    assert status["site_url"] == live_server.url
    assert "datastore" in status["extensions"] and status["site_title"]


def test_help_show_and_unknown_actions(http: httpx.Client) -> None:
    assert "Search datasets" in result(http, "help_show", {"name": "package_search"})
    unknown = error(http, "no_such_action", None, 400)
    assert unknown["message"] == "Bad request - Action name not known: no_such_action"
    assert error(http, "help_show", {"name": "nope"}, 404)["__type"] == "Not Found Error"


def test_a_body_that_is_not_json_is_a_bad_request(http: httpx.Client) -> None:
    response = http.post(
        "/api/3/action/package_search",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Bad request - JSON Error")
    listed = http.post(
        "/api/3/action/package_search", json=[1, 2], headers={"content-type": "application/json"}
    )
    assert listed.status_code == 400 and "object was required" in listed.text


def test_unknown_parameters_are_tolerated(http: httpx.Client, catalog: list[str]) -> None:
    names = result(
        http,
        "package_list",
        {"include_private": "true", "include_drafts": "false", "whatever": "x"},
    )
    assert names == catalog
    found = result(http, "package_search", {"q": "避難", "defType": "edismax", "qf": "x"})
    assert found["count"] >= 1


# --- package_search ----------------------------------------------------------------------------


def test_japanese_search_finds_the_evacuation_sites_first(
    http: httpx.Client, catalog: list[str]
) -> None:
    found = result(http, "package_search", {"q": "避難"})
    assert found["results"][0]["name"] == "evacuation-space"
    assert found["sort"] == "score desc, metadata_modified desc"
    first = found["results"][0]
    assert first["organization"]["name"] == "bosai" and first["resources"]
    assert {"search_facets", "facets", "count"} <= set(found)


def test_the_harvester_pages_through_every_public_dataset_once(
    http: httpx.Client, catalog: list[str]
) -> None:
    seen: list[str] = []
    start, count = 0, None
    while True:
        page = result(
            http,
            "package_search",
            {
                "fq": "metadata_modified:[2000-01-01T00:00:00Z TO *]",
                "sort": "id asc",
                "rows": 2,
                "start": start,
            },
        )
        count = page["count"]
        if not page["results"]:
            break
        seen += [p["name"] for p in page["results"]]
        ids = [p["id"] for p in page["results"]]
        assert ids == sorted(ids)
        start += 2
    assert len(seen) == len(set(seen)) == count
    assert sorted(seen) == sorted(result(http, "package_list"))
    assert "water-mains" not in seen


@pytest.mark.parametrize(
    ("fq", "expected"),
    [
        ("organization:bosai", {"evacuation-space"}),
        ('+tags:"避難場所"', {"evacuation-space"}),
        ("organization:bosai tags:防災", {"evacuation-space"}),
        ("organization:bosai AND tags:道路", set()),
        ("license_id:cc-by-4.0", {"youto-chiiki"}),
        ("name:road-ledger", {"road-ledger"}),
        ("groups:population-households", {"population-by-chocho-age"}),
        ("res_format:xlsx +organization:shimin", {"population-by-chocho-age"}),
        ("metadata_modified:[* TO 2000-01-01T00:00:00Z]", set()),
        ("+dataset_type:dataset organization:bosai", {"evacuation-space"}),
        ("dataset_type:harvest", set()),
        ("organization:suido", set()),
    ],
)
def test_fq_filters(http: httpx.Client, catalog: list[str], fq: str, expected: set[str]) -> None:
    found = result(http, "package_search", {"fq": fq, "rows": 100})
    assert {p["name"] for p in found["results"]} == expected
    assert found["count"] == len(expected)


def test_fq_list_q_fields_and_field_list(http: httpx.Client, catalog: list[str]) -> None:
    found = result(
        http,
        "package_search",
        [("fq_list", "organization:bosai"), ("fq_list", "tags:防災"), ("fl", "name,title")],
    )
    assert found["results"] == [{"name": "evacuation-space", "title": found["results"][0]["title"]}]
    by_q = result(http, "package_search", {"q": "organization:toshikeikaku"})
    assert {p["name"] for p in by_q["results"]} == {"youto-chiiki"}
    assert result(http, "package_search", {"q": "*:*"})["count"] == len(catalog)


def test_sorting_and_paging(http: httpx.Client, catalog: list[str]) -> None:
    by_name = result(http, "package_search", {"sort": "name asc", "rows": 1000})
    assert [p["name"] for p in by_name["results"]] == sorted(catalog)
    by_title = result(http, "package_search", {"sort": "title_string asc", "rows": 1000})
    titles = [p["title"] for p in by_title["results"]]
    assert titles == sorted(titles)
    newest = result(http, "package_search", {"sort": "metadata_modified desc", "rows": 1000})
    stamps = [p["metadata_modified"] for p in newest["results"]]
    assert stamps == sorted(stamps, reverse=True)
    page = result(http, "package_search", {"sort": "name asc", "rows": 2, "start": 2})
    assert [p["name"] for p in page["results"]] == sorted(catalog)[2:4]
    assert result(http, "package_search", {"rows": 0})["results"] == []


def test_spatial_filter(http: httpx.Client, catalog: list[str]) -> None:
    around_city = result(http, "package_search", {"ext_bbox": "131.0,33.0,132.0,33.6", "rows": 100})
    assert around_city["count"] >= 3
    far_away = result(http, "package_search", {"ext_bbox": "139.0,35.0,140.0,36.0"})
    assert far_away["count"] == 0


def test_facets_never_count_hidden_datasets(
    http: httpx.Client, catalog: list[str], suido: Staff
) -> None:
    facet_fields = json.dumps(["organization", "tags", "groups", "res_format", "license_id"])
    anonymous = result(http, "package_search", {"facet.field": facet_fields, "rows": 0})
    organizations = anonymous["facets"]["organization"]
    assert "suido" not in organizations
    assert sum(organizations.values()) == anonymous["count"] == len(catalog)
    assert "上水道" not in anonymous["facets"]["tags"]
    items = anonymous["search_facets"]["organization"]["items"]
    assert {i["name"] for i in items} == set(organizations)
    assert all(i["display_name"] and i["count"] >= 1 for i in items)
    assert anonymous["search_facets"]["organization"]["title"] == "organization"

    staff = {"facet.field": facet_fields, "rows": 100, "include_private": "true"}
    seen_by_suido = result(http, "package_search", staff, token=suido.token)
    assert seen_by_suido["facets"]["organization"]["suido"] == 1
    assert "water-mains" in {p["name"] for p in seen_by_suido["results"]}
    assert seen_by_suido["count"] == len(catalog) + 1

    public_only = dict(staff, include_private="false")
    narrowed = result(http, "package_search", public_only, token=suido.token)
    assert "suido" not in narrowed["facets"]["organization"]
    assert "water-mains" not in {p["name"] for p in narrowed["results"]}

    limited = result(http, "package_search", {"facet.field": '["tags"]', "facet.limit": 2})
    assert len(limited["search_facets"]["tags"]["items"]) == 2
    repeated = result(
        http, "package_search", [("facet.field", "organization"), ("facet.field", "groups")]
    )
    assert set(repeated["search_facets"]) == {"organization", "groups"}


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"fq": "metadata_modified:[2020 TO"}, "fq", "'metadata_modified:[2020 TO'"),
        ({"fq": "metadata_modified:[2020 TO *]"}, "fq", "'2020' is not a date"),
        ({"fq": "metadata_modified:[2024-01-01 *]"}, "fq", "a range must look like"),
        ({"fq": 'tags:"unclosed'}, "fq", "never closed"),
        ({"fq": "nonsense"}, "fq", "'nonsense' is not of the form field:value"),
        ({"fq": "colour:red"}, "fq", "unknown field 'colour'"),
        ({"fq": "organization:a OR organization:b"}, "fq", "OR, NOT and parentheses"),
        ({"fq": "-organization:bosai"}, "fq", "excluding with '-'"),
        ({"fq": "tags:"}, "fq", "no value after the colon"),
        ({"rows": "1001"}, "rows", "at most 1000"),
        ({"rows": "many"}, "rows", "must be an integer"),
        ({"start": "-1"}, "start", "at least 0"),
        ({"sort": "colour asc"}, "sort", "cannot sort by 'colour asc'"),
        ({"sort": "name sideways"}, "sort", "cannot sort by"),
        ({"facet.field": '["colour"]'}, "facet.field", "unknown facet 'colour'"),
        ({"facet.field": "[broken"}, "facet.field", "not a valid JSON list"),
        ({"ext_bbox": "1,2,3"}, "ext_bbox", "minx,miny,maxx,maxy"),
        ({"ext_bbox": "a,b,c,d"}, "ext_bbox", "minx,miny,maxx,maxy"),
        ({"ext_bbox": "10,10,0,0"}, "ext_bbox", "latitudes within"),
        ({"ext_bbox": "0,0,200,10"}, "ext_bbox", "longitudes within"),
        ({"include_private": "perhaps"}, "include_private", "true or false"),
    ],
)
def test_bad_search_input_is_a_validation_error(
    http: httpx.Client, catalog: list[str], params: dict[str, str], field: str, message: str
) -> None:
    problem = error(http, "package_search", params, 409)
    assert problem["__type"] == "Validation Error"
    assert message in " ".join(problem[field]), problem
    assert message in problem["message"]


def test_a_long_query_is_refused_not_crashed(http: httpx.Client) -> None:
    problem = error(http, "package_search", {"q": "避" * 600}, 409)
    assert "longer than" in problem["message"]


# --- package_show, lists, organizations, groups, tags, licences, resources ------------------------


def test_package_show_hides_what_the_caller_may_not_see(
    http: httpx.Client, catalog: list[str], suido: Staff, sessions: sessionmaker[Session]
) -> None:
    shown = result(http, "package_show", {"id": "evacuation-space"})
    assert shown["name"] == "evacuation-space" and shown["license_id"] == "pdl-1.0"
    assert result(http, "package_show", {"id": shown["id"]})["name"] == "evacuation-space"
    hidden = error(http, "package_show", {"id": "water-mains"}, 404)
    missing = error(http, "package_show", {"id": "no-such-dataset"}, 404)
    assert hidden["__type"] == missing["__type"] == "Not Found Error"
    assert error(http, "package_show", {}, 409)["id"] == ["Missing value"]
    assert result(http, "package_show", {"id": "water-mains"}, token=suido.token)["private"]
    doboku = make_staff(sessions, department="doboku")
    assert result(http, "package_show", {"id": "water-mains"}, token=doboku.token)
    fukushi = make_staff(sessions, department="fukushi")
    error(http, "package_show", {"id": "water-mains"}, 404, token=fukushi.token)


def test_a_bad_token_is_an_authorization_error(http: httpx.Client) -> None:
    problem = error(http, "package_list", None, 403, token="not-a-real-token")
    assert problem["__type"] == "Authorization Error"


def test_package_list_follows_the_callers_visibility(
    http: httpx.Client, catalog: list[str], suido: Staff
) -> None:
    assert "water-mains" not in catalog
    seen = result(http, "package_list", {"include_private": "false"}, token=suido.token)
    assert sorted(seen) == sorted([*catalog, "water-mains"])


def test_current_package_list_is_newest_first(http: httpx.Client, catalog: list[str]) -> None:
    listed = result(http, "current_package_list_with_resources", {"limit": 100})
    stamps = [p["metadata_modified"] for p in listed]
    assert stamps == sorted(stamps, reverse=True)
    assert {p["name"] for p in listed} == set(catalog)
    assert all("resources" in p for p in listed)
    assert len(result(http, "current_package_list_with_resources", {"limit": 2})) == 2


def test_organizations_count_only_visible_datasets(
    http: httpx.Client, catalog: list[str], suido: Staff
) -> None:
    names = result(http, "organization_list")
    assert {"bosai", "doboku", "suido"} <= set(names)
    anonymous = {o["name"]: o for o in result(http, "organization_list", {"all_fields": "true"})}
    assert anonymous["suido"]["package_count"] == 0
    assert anonymous["doboku"]["package_count"] == 1
    staff = result(http, "organization_list", {"all_fields": "true"}, token=suido.token)
    assert {o["name"]: o["package_count"] for o in staff}["suido"] == 1

    shown = result(http, "organization_show", {"id": "suido", "include_datasets": "true"})
    assert shown["package_count"] == 0 and shown["packages"] == []
    own = result(
        http, "organization_show", {"id": "suido", "include_datasets": "true"}, token=suido.token
    )
    assert [p["name"] for p in own["packages"]] == ["water-mains"]
    assert error(http, "organization_show", {"id": "nope"}, 404)["__type"] == "Not Found Error"


def test_groups(http: httpx.Client, catalog: list[str], suido: Staff) -> None:
    groups = result(http, "group_list", {"all_fields": "true"})
    assert len(groups) == 17
    counts = {g["name"]: g["package_count"] for g in groups}
    assert counts["energy-water"] == 0 and counts["population-households"] == 1
    shown = result(
        http, "group_show", {"id": "transport-tourism", "include_datasets": True}, post=True
    )
    assert {p["name"] for p in shown["packages"]} == {"road-ledger", "barrier-free"}
    hidden = result(http, "group_show", {"id": "energy-water", "include_datasets": "true"})
    assert hidden["packages"] == [] and hidden["package_count"] == 0
    mine = result(http, "group_show", {"id": "energy-water"}, token=suido.token)
    assert mine["package_count"] == 1
    error(http, "group_show", {"id": "nope"}, 404)


def test_tags_come_only_from_visible_datasets(
    http: httpx.Client, catalog: list[str], suido: Staff
) -> None:
    tags = result(http, "tag_list")
    assert "避難場所" in tags and "上水道" not in tags
    assert "上水道" in result(http, "tag_list", token=suido.token)
    assert result(http, "tag_list", {"query": "避難"}) == ["避難場所"]
    detailed = result(http, "tag_list", {"query": "避難", "all_fields": "true"})
    assert detailed[0]["name"] == "避難場所" and detailed[0]["vocabulary_id"] is None


def test_license_list(http: httpx.Client) -> None:
    licenses = {item["id"]: item for item in result(http, "license_list")}
    assert {"pdl-1.0", "cc-by-4.0", "jp-gsl-2.0", "cc-zero", "odc-odbl"} <= set(licenses)
    assert licenses["cc-by-4.0"]["url"].startswith("https://creativecommons.org/")


def test_resource_show(http: httpx.Client, catalog: list[str], suido: Staff) -> None:
    dataset = result(http, "package_show", {"id": "evacuation-space"})
    first = dataset["resources"][0]
    shown = result(http, "resource_show", {"id": first["id"]})
    assert shown == first and shown["package_id"] == dataset["id"]
    water = result(http, "package_show", {"id": "water-mains"}, token=suido.token)
    for resource in water["resources"]:
        assert error(http, "resource_show", {"id": resource["id"]}, 404)
        assert result(http, "resource_show", {"id": resource["id"]}, token=suido.token)
    error(http, "resource_show", {"id": "not-a-uuid"}, 404)
