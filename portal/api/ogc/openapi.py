"""The OGC APIs' OpenAPI 3.0 document, self-contained so it resolves on a closed network."""

from typing import Any

from portal.api.ogc.common import GEOJSON, HTML, JSON, MVT, SCHEMA_JSON
from portal.geo.registry import LayerSummary

EXCEPTION = {"$ref": "#/components/responses/Exception"}
ITEMS_PARAMETERS = (
    "collectionId",
    "fItems",
    "bbox",
    "bbox-crs",
    "crs",
    "datetime",
    "limit",
    "offset",
    "cursor",
    "properties",
    "filter",
    "filter-lang",
    "filter-crs",
)
LAYER_TILE = "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"
TEXT = {"type": "string"}


def openapi_document(root: str, layers: list[LayerSummary] | None = None) -> dict[str, Any]:
    """Return the OpenAPI document for the OGC routes under `root` (the public `/ogc` URL).

    `layers` are the caller's visible layers: each gets its own items path listing its
    properties as query parameters, which is how GDAL finds what it may filter on the server.
    """
    collection = _path_parameter("collectionId", "コレクション (レイヤー) の ID / collection id")
    if layers:
        collection["schema"] = {"type": "string", "enum": [layer.id for layer in layers]}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "統合型GIS OGC API / integrated GIS OGC API",
            "version": "1.0.0",
            "description": "OGC API Features (Parts 1–4), Tiles and Records.",
        },
        "servers": [{"url": root}],
        "tags": [
            {"name": "Capabilities"},
            {"name": "Features"},
            {"name": "Tiles"},
            {"name": "Records"},
        ],
        "paths": {**_paths(), **_layer_paths(layers or [])},
        "components": {
            "parameters": {
                "collectionId": collection,
                "featureId": _path_parameter(
                    "featureId", "地物 ID / feature id", {"type": "integer", "minimum": 1}
                ),
                "tileMatrixSetId": _path_parameter(
                    "tileMatrixSetId",
                    "tile matrix set",
                    {"type": "string", "enum": ["WebMercatorQuad"]},
                ),
                "tileMatrix": _path_parameter(
                    "tileMatrix", "zoom", {"type": "integer", "minimum": 0, "maximum": 24}
                ),
                "tileRow": _path_parameter("tileRow", "row", {"type": "integer", "minimum": 0}),
                "tileCol": _path_parameter("tileCol", "column", {"type": "integer", "minimum": 0}),
                "f": _query(
                    "f", "出力形式 / output format", {"type": "string", "enum": ["json", "html"]}
                ),
                "fItems": _query(
                    "f",
                    "出力形式 / output format",
                    {
                        "type": "string",
                        "enum": ["json", "geojson", "html", "gpkg", "shp", "kml", "csv", "xlsx"],
                    },
                ),
                "bbox": _query(
                    "bbox",
                    "minx,miny,maxx,maxy (bbox-crs の軸順)",
                    {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                    explode=False,
                    style="form",
                ),
                "bbox-crs": _query("bbox-crs", "bbox の座標参照系 / CRS of bbox", TEXT),
                "crs": _query("crs", "出力の座標参照系 / output CRS", TEXT),
                "datetime": _query("datetime", "instant or interval (RFC 3339, '..' open)", TEXT),
                "limit": _query(
                    "limit",
                    "1 ページの件数 / page size",
                    {"type": "integer", "minimum": 1, "maximum": 10000, "default": 10},
                ),
                "offset": _query(
                    "offset",
                    "先頭からの件数 / rows to skip",
                    {"type": "integer", "minimum": 0, "default": 0},
                ),
                "cursor": _query(
                    "cursor",
                    "次ページの位置 (next リンクが付けます) / keyset cursor",
                    {"type": "integer", "minimum": 0},
                ),
                "properties": _query(
                    "properties",
                    "返す属性 / properties to return",
                    {"type": "array", "items": TEXT},
                    explode=False,
                    style="form",
                ),
                "filter": _query("filter", "CQL2 フィルター / CQL2 filter", TEXT),
                "filter-lang": _query(
                    "filter-lang",
                    "cql2-text or cql2-json",
                    {"type": "string", "enum": ["cql2-text", "cql2-json"]},
                ),
                "filter-crs": _query("filter-crs", "CRS of geometries in the filter", TEXT),
                "q": _query("q", "キーワード / keywords", TEXT),
                "ifMatch": {"name": "If-Match", "in": "header", "required": False, "schema": TEXT},
                "contentCrs": {
                    "name": "Content-Crs",
                    "in": "header",
                    "required": False,
                    "schema": TEXT,
                },
            },
            "schemas": {
                "exception": {
                    "type": "object",
                    "required": ["code"],
                    "properties": {"code": TEXT, "description": TEXT},
                },
                "link": {
                    "type": "object",
                    "required": ["href"],
                    "properties": {"href": TEXT, "rel": TEXT, "type": TEXT, "title": TEXT},
                },
                "featureCollection": {
                    "type": "object",
                    "required": ["type", "features"],
                    "properties": {
                        "type": {"type": "string", "enum": ["FeatureCollection"]},
                        "features": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/feature"},
                        },
                        "links": {"type": "array", "items": {"$ref": "#/components/schemas/link"}},
                        "numberMatched": {"type": "integer", "minimum": 0},
                        "numberReturned": {"type": "integer", "minimum": 0},
                        "timeStamp": {"type": "string", "format": "date-time"},
                    },
                },
                "feature": {
                    "type": "object",
                    "required": ["type", "geometry", "properties"],
                    "properties": {
                        "type": {"type": "string", "enum": ["Feature"]},
                        "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                        "geometry": {"type": "object", "nullable": True},
                        "properties": {"type": "object", "nullable": True},
                    },
                },
            },
            "responses": {
                "Exception": {
                    "description": "エラー / error",
                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/exception"}}},
                },
            },
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "API トークン (ptk_…)"}
            },
        },
    }


def _paths() -> dict[str, Any]:
    items_parameters = [_ref(name) for name in ITEMS_PARAMETERS]
    tile_path = [_ref(n) for n in ("tileMatrixSetId", "tileMatrix", "tileRow", "tileCol")]
    edit: list[dict[str, list[str]]] = [{"token": []}]
    return {
        "/": _get("Capabilities", "landing", "ランディングページ / landing page", [_ref("f")]),
        "/conformance": _get(
            "Capabilities", "conformance", "適合クラス / conformance", [_ref("f")]
        ),
        "/api": _get("Capabilities", "api", "この文書 / this document", []),
        "/collections": _get(
            "Capabilities", "collections", "コレクション / collections", [_ref("f")]
        ),
        "/collections/{collectionId}": _get(
            "Capabilities",
            "collection",
            "コレクション / collection",
            [_ref("collectionId"), _ref("f")],
        ),
        "/collections/{collectionId}/queryables": _get(
            "Features",
            "queryables",
            "検索可能な属性 / queryables",
            [_ref("collectionId")],
            SCHEMA_JSON,
        ),
        "/collections/{collectionId}/schema": _get(
            "Features", "schema", "スキーマ / schema", [_ref("collectionId")], SCHEMA_JSON
        ),
        "/collections/{collectionId}/items": {
            **_get("Features", "items", "地物 / features", items_parameters, GEOJSON),
            "post": _write(
                "createItem",
                "地物を追加 / add a feature",
                [_ref("collectionId"), _ref("contentCrs")],
                edit,
                201,
                body=True,
            ),
        },
        "/collections/{collectionId}/items/{featureId}": {
            **_get(
                "Features",
                "item",
                "地物 / one feature",
                [_ref("collectionId"), _ref("featureId"), _ref("crs"), _ref("f")],
                GEOJSON,
            ),
            "put": _write(
                "replaceItem",
                "地物を置換 / replace",
                [_ref("collectionId"), _ref("featureId"), _ref("ifMatch"), _ref("contentCrs")],
                edit,
                204,
                body=True,
            ),
            "patch": _write(
                "updateItem",
                "地物を更新 / update",
                [_ref("collectionId"), _ref("featureId"), _ref("ifMatch"), _ref("contentCrs")],
                edit,
                204,
                body=True,
            ),
            "delete": _write(
                "deleteItem",
                "地物を削除 / delete",
                [_ref("collectionId"), _ref("featureId"), _ref("ifMatch")],
                edit,
                204,
            ),
        },
        "/tileMatrixSets": _get("Tiles", "tileMatrixSets", "タイル行列集合 / tile matrix sets", []),
        "/tileMatrixSets/{tileMatrixSetId}": _get(
            "Tiles", "tileMatrixSet", "タイル行列集合 / tile matrix set", [_ref("tileMatrixSetId")]
        ),
        "/collections/{collectionId}/tiles": _get(
            "Tiles", "tilesets", "タイルセット / tilesets", [_ref("collectionId")]
        ),
        "/collections/{collectionId}/tiles/{tileMatrixSetId}": _get(
            "Tiles",
            "tileset",
            "タイルセット / tileset",
            [_ref("collectionId"), _ref("tileMatrixSetId")],
        ),
        LAYER_TILE: _get(
            "Tiles",
            "tile",
            "ベクトルタイル / vector tile",
            [_ref("collectionId"), *tile_path],
            MVT,
            binary=True,
        ),
        "/tiles": _get("Tiles", "portalTilesets", "全レイヤーのタイルセット / all layers", []),
        "/tiles/{tileMatrixSetId}": _get(
            "Tiles",
            "portalTileset",
            "全レイヤーのタイルセット / all layers",
            [_ref("tileMatrixSetId")],
        ),
        "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}": _get(
            "Tiles",
            "portalTile",
            "全レイヤーのタイル / tile of all layers",
            tile_path,
            MVT,
            binary=True,
        ),
    }


def _layer_paths(layers: list[LayerSummary]) -> dict[str, Any]:
    shared = [_ref(name) for name in ITEMS_PARAMETERS if name != "collectionId"]
    paths = {}
    for layer in layers:
        properties = [
            _query(column["name"], column["name"], {"type": "string"}) for column in layer.columns
        ]
        paths[f"/collections/{layer.id}/items"] = _get(
            "Features", f"items_{layer.id}", layer.title, [*shared, *properties], GEOJSON
        )
    return paths


def _get(
    tag: str,
    operation: str,
    summary: str,
    parameters: list[dict[str, Any]],
    media_type: str = JSON,
    *,
    binary: bool = False,
) -> dict[str, Any]:
    schema: dict[str, Any] = (
        {"type": "string", "format": "binary"} if binary else {"type": "object"}
    )
    content = {media_type: {"schema": schema}}
    if not binary:
        content[HTML] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {
        "200": {"description": summary, "content": content},
        "400": EXCEPTION,
        "404": EXCEPTION,
    }
    if binary:
        responses["204"] = {"description": "空のタイル / empty tile"}
    if operation == "item":
        responses["304"] = {"description": "変更なし / not modified"}
    return {
        "get": {
            "tags": [tag],
            "operationId": operation,
            "summary": summary,
            "parameters": parameters,
            "responses": responses,
        }
    }


def _write(
    operation: str,
    summary: str,
    parameters: list[dict[str, Any]],
    security: list[dict[str, list[str]]],
    success: int,
    *,
    body: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "tags": ["Features"],
        "operationId": operation,
        "summary": summary,
        "parameters": parameters,
        "security": security,
        "responses": {
            str(success): {"description": summary},
            "400": EXCEPTION,
            "401": EXCEPTION,
            "403": EXCEPTION,
            "404": EXCEPTION,
            "412": EXCEPTION,
            "413": EXCEPTION,
        },
    }
    if body:
        spec["requestBody"] = {
            "required": True,
            "content": {
                GEOJSON: {"schema": {"$ref": "#/components/schemas/feature"}},
                JSON: {"schema": {"$ref": "#/components/schemas/feature"}},
            },
        }
    return spec


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/parameters/{name}"}


def _path_parameter(
    name: str, description: str, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or TEXT,
    }


def _query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **extra,
    }
