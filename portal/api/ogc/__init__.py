"""The OGC APIs under `/ogc`: Features (Parts 1–4), Tiles and Records, filtered by caller."""

from fastapi import APIRouter

from portal.api.ogc import collections, items, landing, records, schemas, tiles

router = APIRouter(tags=["OGC API"])
# Records first: `/ogc/collections/catalog/...` must win over the layer routes' patterns.
for module in (landing, records, collections, schemas, tiles, items):
    router.include_router(module.router)
