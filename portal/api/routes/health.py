"""Health check for load balancers and operators."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from portal import __version__
from portal.api.deps import EngineDep, SettingsDep
from portal.core.database import check_connection
from portal.core.errors import DatabaseUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Health check")
def healthz(engine: EngineDep, settings: SettingsDep) -> JSONResponse:
    """Report whether the database and PostGIS answer."""
    try:
        postgis = check_connection(engine, settings.safe_database_url)
    except DatabaseUnavailable as exc:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "detail": exc.message},
            status_code=503,
        )
    if not postgis:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "ok",
                "detail": "PostGIS is not installed in the database; run `portal db upgrade`",
            },
            status_code=503,
        )
    return JSONResponse(
        {"status": "ok", "database": "ok", "postgis": postgis, "version": __version__}
    )
