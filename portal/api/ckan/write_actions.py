"""Writes for staff tokens: package_create, package_patch, resource_create.

CKAN's dictionaries are mapped onto the same schemas the web forms use, so the API accepts
and refuses exactly what the staff pages do.
"""

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from portal.api.ckan.context import ActionContext
from portal.api.ckan.envelope import AUTHORIZATION, CkanError, validation_error
from portal.api.ckan.params import Params
from portal.catalog.datasets import create_dataset, get_dataset, patch_dataset
from portal.catalog.departments import department_id_by_slug
from portal.catalog.licenses import get_license
from portal.catalog.package import package_dict, resource_dict
from portal.catalog.resources import add_resource
from portal.catalog.schemas import DatasetCreate, DatasetUpdate, ResourceCreate
from portal.core.errors import Conflict, InvalidInput, NotFound
from portal.core.principal import Visibility

Model = TypeVar("Model", bound=BaseModel)

# CKAN's name of a field -> the schema's name.
RENAMED = {
    "owner_org": "department",
    "url": "source_url",
    "maintainer": "contact_name",
    "maintainer_email": "contact_email",
}
COPIED = (
    "name", "title", "title_en", "notes", "version", "license_id", "update_frequency",
    "temporal_start", "temporal_end", "standard_dataset", "visibility", "bbox", "department",
)  # fmt: skip
FROM_EXTRAS = ("update_frequency", "standard_dataset", "temporal_start", "temporal_end", "title_en")


def package_create(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Create a dataset (staff token; owner_org is the department slug)."""
    _require_staff(ctx, "package_create")
    fields = _dataset_fields(params)
    _check_references(ctx, fields)
    data = _validate(DatasetCreate, fields)
    try:
        create_dataset(ctx.session, ctx.principal, data, ip=ctx.ip)
    except Conflict as exc:
        raise validation_error({"name": [f"That URL is already in use. ({exc.message})"]}) from exc
    for given in _resources(params):
        add_resource(ctx.session, ctx.principal, data.name, _resource(given, None), ip=ctx.ip)
    return package_dict(ctx.base_url, get_dataset(ctx.session, ctx.principal, data.name))


def package_patch(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Change the given fields of a dataset (staff token; id is its name or id)."""
    _require_staff(ctx, "package_patch")
    current = get_dataset(ctx.session, ctx.principal, params.required("id"))
    fields = _dataset_fields(params)
    for key, now in (("name", current.name), ("department", current.department.slug)):
        if key in fields and fields.pop(key) != now:
            shown = "owner_org" if key == "department" else key
            raise validation_error({shown: [f"{shown} cannot be changed through the API"]})
    if "visibility" not in params and fields.get("visibility") is Visibility.internal:
        # `private: true` only marks a public dataset internal; it never widens a department one.
        if current.visibility is not Visibility.public:
            fields.pop("visibility")
    _check_references(ctx, fields)
    data = _validate(DatasetUpdate, fields)
    view = patch_dataset(ctx.session, ctx.principal, current.name, data, ip=ctx.ip)
    return package_dict(ctx.base_url, view)


def resource_create(ctx: ActionContext, params: Params) -> dict[str, Any]:
    """Add a link or an uploaded file (multipart field `upload`) to a dataset (staff token)."""
    _require_staff(ctx, "resource_create")
    dataset = get_dataset(ctx.session, ctx.principal, params.required("package_id"))
    upload = params.files.get("upload")
    given = {k: v for k, v in params.data.items() if k != "upload"}
    data = _resource(given, upload.filename if upload else None)
    added = add_resource(
        ctx.session,
        ctx.principal,
        dataset.name,
        data,
        upload=upload.file if upload else None,
        file_name=upload.filename if upload else None,
        storage=ctx.storage,
        max_bytes=ctx.settings.max_upload_bytes,
        municipality_code=ctx.settings.municipality_code,
        ip=ctx.ip,
    )
    view = get_dataset(ctx.session, ctx.principal, dataset.name)
    return resource_dict(ctx.base_url, view, added)


def _require_staff(ctx: ActionContext, action: str) -> None:
    if not ctx.principal.is_staff:
        raise CkanError(
            AUTHORIZATION,
            403,
            f"{action} needs a staff API token in the Authorization or X-CKAN-API-Key header",
        )


def _dataset_fields(params: Params) -> dict[str, Any]:
    """Map a CKAN package dictionary onto the dataset schema's fields (only those given)."""
    given = params.data
    fields: dict[str, Any] = {}
    extras = _extras(given.get("extras"))
    for key in FROM_EXTRAS:
        if key in extras:
            fields[key] = extras.pop(key)
    if "spatial" in extras:
        fields["bbox"] = _bbox_of(extras.pop("spatial"))
    if extras:
        fields["extras"] = extras
    for key, value in given.items():
        if key in RENAMED:
            fields[RENAMED[key]] = value
        elif key in COPIED:
            fields[key] = value
    if "private" in given and "visibility" not in given:
        private = str(given["private"]).lower() in ("true", "1")
        fields["visibility"] = Visibility.internal if private else Visibility.public
    if "tags" in given or "tag_string" in given:
        fields["tags"] = _names(given.get("tags"), "tags") + [
            t for t in str(given.get("tag_string") or "").split(",") if t.strip()
        ]
    if "groups" in given:
        fields["groups"] = _names(given.get("groups"), "groups")
    return fields


def _check_references(ctx: ActionContext, fields: dict[str, Any]) -> None:
    """Name the field when the licence or department does not exist."""
    problems: dict[str, list[str]] = {}
    if fields.get("license_id") is not None:
        try:
            get_license(str(fields["license_id"]))
        except InvalidInput as exc:
            problems["license_id"] = [exc.message]
    if fields.get("department"):
        try:
            department_id_by_slug(ctx.session, str(fields["department"]))
        except NotFound:
            problems["owner_org"] = [f"Organization does not exist: {fields['department']!r}"]
    if problems:
        raise validation_error(problems)


def _validate(model: type[Model], fields: dict[str, Any]) -> Model:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems: dict[str, list[str]] = {}
        for error in exc.errors():
            location = error.get("loc") or ("data",)
            key = str(location[0])
            key = next((ckan for ckan, ours in RENAMED.items() if ours == key), key)
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            problems.setdefault(key, []).append(
                "Missing value" if error["type"] == "missing" else message
            )
        raise validation_error(problems) from None
    except InvalidInput as exc:
        raise validation_error({"data": [exc.message]}) from None


def _resource(given: dict[str, Any], file_name: str | None) -> ResourceCreate:
    fields = {k: v for k, v in given.items() if k in ResourceCreate.model_fields}
    if file_name is not None:
        fields.pop("url", None)
    elif not fields.get("url"):
        fields.pop("url", None)
    if not str(fields.get("name") or "").strip():
        source = file_name or str(fields.get("url") or "")
        fields["name"] = source.rstrip("/").rsplit("/", 1)[-1] or "resource"
    return _validate(ResourceCreate, fields)


def _resources(params: Params) -> list[dict[str, Any]]:
    raw = params.get("resources") or []
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise validation_error({"resources": ["must be a list of resource objects"]})
    return raw


def _names(raw: Any, key: str) -> list[str]:
    """Read CKAN's [{name: …}] (or a list of strings, or a comma-separated string)."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.lstrip().startswith("[") else raw.split(",")
        except ValueError:
            raise validation_error({key: [f"is not a valid JSON list: {raw!r}"]}) from None
    if not isinstance(raw, list):
        raise validation_error({key: ['must be a list of {"name": …} objects']})
    names: list[str] = []
    for item in raw:
        value = item.get("name") or item.get("id") if isinstance(item, dict) else item
        if not isinstance(value, str) or not value.strip():
            raise validation_error({key: [f"each item needs a name, got {item!r}"]})
        names.append(value.strip())
    return names


def _extras(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    if isinstance(raw, list) and all(isinstance(e, dict) and "key" in e for e in raw):
        return {str(e["key"]): e.get("value") for e in raw}
    raise validation_error({"extras": ['must be a list of {"key": …, "value": …} objects']})


def _bbox_of(spatial: Any) -> list[float]:
    """Return the bounding box of a GeoJSON geometry given as the `spatial` extra."""
    try:
        geometry = json.loads(spatial) if isinstance(spatial, str) else spatial
        points: list[Any] = []
        stack = [geometry["coordinates"]]
        while stack:
            item = stack.pop()
            if item and isinstance(item[0], int | float):
                points.append(item)
            else:
                stack.extend(item)
        xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
        return [min(xs), min(ys), max(xs), max(ys)]
    except (ValueError, TypeError, KeyError, IndexError):
        raise validation_error({"spatial": ["must be a GeoJSON geometry"]}) from None
