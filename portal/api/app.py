"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from portal import __version__
from portal.api import ogc
from portal.api.errors import register_error_handlers
from portal.api.routes import (
    auth,
    ckan,
    dataset_pages,
    dcat,
    downloads,
    health,
    pages,
    staff,
    staff_datasets,
    staff_harvest,
)
from portal.core.database import create_db_engine, make_session_factory
from portal.core.settings import Settings, get_settings
from portal.core.storage import LocalStorage
from portal.geo.tile_cache import TileCache
from portal.web.i18n import LanguageMiddleware
from portal.web.templating import STATIC_DIR


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the portal application for `settings` (read from the environment by default)."""
    settings = settings or get_settings()
    engine = create_db_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title=f"{settings.municipality_name} オープンデータ・統合型GISポータル",
        version=__version__,
        description="Open data catalog and integrated GIS of "
        f"{settings.municipality_name_en} ({settings.municipality_code}).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.storage = LocalStorage(settings.data_dir)
    app.state.tile_cache = TileCache(settings.data_dir / "tiles")
    register_error_handlers(app)
    app.add_middleware(LanguageMiddleware, default=settings.default_language)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(auth.router)
    app.include_router(staff.router)
    app.include_router(staff_datasets.router)
    app.include_router(staff_harvest.router)
    app.include_router(ckan.router)
    app.include_router(dcat.router)
    app.include_router(dataset_pages.router)
    app.include_router(downloads.router)
    app.include_router(ogc.router)
    return app
