"""CKAN Action API at /api/3/action/{name} and /api/action/{name}."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from portal.api.ckan.actions import check_action, run_action
from portal.api.ckan.context import ActionContext
from portal.api.ckan.envelope import CkanError, failure, from_domain
from portal.api.ckan.params import Params, read_params
from portal.api.deps import SessionDep, SettingsDep, StorageDep, base_url, client_ip, get_principal
from portal.core.errors import PortalError
from portal.core.settings import Settings
from portal.core.storage import Storage

router = APIRouter(tags=["CKAN Action API"])


async def ckan_action(
    name: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
) -> JSONResponse:
    """Call a CKAN action: GET query parameters, or a JSON, form or multipart POST body."""
    base = base_url(request)
    try:
        check_action(name)
        params = await read_params(request, max_upload_bytes=settings.max_upload_bytes)
    except CkanError as error:
        return failure(base, name, error)
    except PortalError as error:
        return failure(base, name, from_domain(error))
    try:
        return await run_in_threadpool(
            _call, name, request, session, settings, storage, params, base
        )
    finally:
        await params.close()


for _path, _documented in (("/api/3/action/{name}", True), ("/api/action/{name}", False)):
    for _method in ("GET", "POST"):
        router.add_api_route(
            _path,
            ckan_action,
            methods=[_method],
            operation_id=f"ckan_action_{_method.lower()}{'' if _documented else '_unversioned'}",
            include_in_schema=_documented,
        )


def _call(
    name: str,
    request: Request,
    session: Session,
    settings: Settings,
    storage: Storage,
    params: Params,
    base: str,
) -> JSONResponse:
    try:
        principal = get_principal(request, session)
    except PortalError as error:
        return failure(base, name, from_domain(error))
    context = ActionContext(session, principal, base, settings, storage, client_ip(request))
    return run_action(name, context, params)
