"""The conformance classes the portal's OGC APIs implement."""

FEATURES_1 = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
FEATURES_2 = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf"
FEATURES_3 = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf"
FEATURES_4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"
COMMON_1 = "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf"
COMMON_2 = "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf"
TILES_1 = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf"
TMS_2 = "http://www.opengis.net/spec/tms/2.0/conf"
RECORDS_1 = "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf"

CONFORMS_TO = [
    f"{COMMON_1}/core",
    f"{COMMON_1}/landing-page",
    f"{COMMON_1}/json",
    f"{COMMON_1}/html",
    f"{COMMON_1}/oas30",
    f"{COMMON_2}/collections",
    f"{FEATURES_1}/core",
    f"{FEATURES_1}/oas30",
    f"{FEATURES_1}/html",
    f"{FEATURES_1}/geojson",
    f"{FEATURES_2}/crs",
    # QGIS pushes filters to the server only when all four of these are declared.
    f"{FEATURES_3}/queryables",
    f"{FEATURES_3}/queryables-query-parameters",
    f"{FEATURES_3}/filter",
    f"{FEATURES_3}/features-filter",
    f"{CQL2}/cql2-text",
    f"{CQL2}/cql2-json",
    f"{CQL2}/basic-cql2",
    f"{CQL2}/advanced-comparison-operators",
    f"{CQL2}/basic-spatial-functions",
    f"{CQL2}/basic-spatial-functions-plus",
    f"{CQL2}/spatial-functions",
    f"{CQL2}/temporal-functions",
    f"{FEATURES_4}/create-replace-delete",
    f"{FEATURES_4}/update",
    f"{FEATURES_4}/features",
    f"{TILES_1}/core",
    f"{TILES_1}/tileset",
    f"{TILES_1}/tilesets-list",
    f"{TILES_1}/geodata-tilesets",
    f"{TILES_1}/dataset-tilesets",
    f"{TILES_1}/mvt",
    f"{TMS_2}/tilematrixset",
    f"{TMS_2}/json-tilematrixset",
    f"{RECORDS_1}/core",
    f"{RECORDS_1}/record-core",
    f"{RECORDS_1}/record-collection",
    f"{RECORDS_1}/json",
    f"{RECORDS_1}/html",
]
