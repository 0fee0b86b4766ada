"""The registry of CKAN actions, and the runner that wraps each call in CKAN's envelope."""

import logging
from typing import Any

from fastapi.responses import JSONResponse

from portal.api.ckan import catalog_actions as catalog
from portal.api.ckan import search_actions as search
from portal.api.ckan import write_actions as write
from portal.api.ckan.context import Action, ActionContext
from portal.api.ckan.datastore import datastore_search
from portal.api.ckan.envelope import (
    INTERNAL,
    CkanError,
    bad_request,
    failure,
    from_domain,
    success,
)
from portal.api.ckan.params import Params
from portal.core.errors import PortalError

log = logging.getLogger(__name__)


def help_show(ctx: ActionContext, params: Params) -> str:
    """Return the documentation of an action (name)."""
    name = params.required("name")
    if name not in ACTIONS:
        raise CkanError("Not Found Error", 404, f"action {name!r} not found")
    return ACTIONS[name].__doc__ or name


ACTIONS: dict[str, Action] = {
    "package_search": search.package_search,
    "package_show": search.package_show,
    "package_list": search.package_list,
    "current_package_list_with_resources": search.current_package_list_with_resources,
    "organization_list": catalog.organization_list,
    "organization_show": catalog.organization_show,
    "group_list": catalog.group_list,
    "group_show": catalog.group_show,
    "tag_list": catalog.tag_list,
    "license_list": catalog.license_list,
    "resource_show": catalog.resource_show,
    "status_show": catalog.status_show,
    "datastore_search": datastore_search,
    "help_show": help_show,
    "package_create": write.package_create,
    "package_patch": write.package_patch,
    "resource_create": write.resource_create,
}
WRITES = {"package_create", "package_patch", "resource_create"}


def check_action(name: str) -> None:
    """Refuse an unknown action name as CKAN does."""
    if name not in ACTIONS:
        raise bad_request(f"Action name not known: {name}")


def run_action(name: str, ctx: ActionContext, params: Params) -> JSONResponse:
    """Call an action and answer in CKAN's envelope; writes are committed on success."""
    try:
        check_action(name)
        result: Any = ACTIONS[name](ctx, params)
        if name in WRITES:
            ctx.session.commit()
        return success(ctx.base_url, name, result)
    except CkanError as error:
        ctx.session.rollback()
        return failure(ctx.base_url, name, error)
    except PortalError as error:
        ctx.session.rollback()
        return failure(ctx.base_url, name, from_domain(error))
    except Exception:
        ctx.session.rollback()
        log.exception("CKAN action %s failed", name)
        message = "an unexpected error occurred; it was logged"
        return failure(ctx.base_url, name, CkanError(INTERNAL, 500, message))
