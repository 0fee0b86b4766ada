"""The staff dataset and resource forms: reading, entries, schema fields, prefill, errors."""

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from portal.api.deps import PrincipalDep, SettingsDep, require_csrf
from portal.catalog.schemas import DatasetCreate, DatasetUpdate, ResourceCreate
from portal.catalog.views import DatasetView
from portal.core.errors import PayloadTooLarge

Errors = dict[str, list[str]]
Model = TypeVar("Model", DatasetCreate, DatasetUpdate)
TEXT_FIELDS = (
    "name", "title", "title_en", "notes", "department", "license_id", "tags",
    "update_frequency", "temporal_start", "temporal_end", "bbox", "contact_name",
    "contact_email", "standard_dataset", "visibility",
)  # fmt: skip
OPTIONAL = {
    "title_en", "update_frequency", "temporal_start", "temporal_end", "contact_name",
    "contact_email", "standard_dataset",
}  # fmt: skip
EDITABLE = (
    "title", "title_en", "notes", "license_id", "tags", "groups", "update_frequency",
    "temporal_start", "temporal_end", "bbox", "contact_name", "contact_email",
    "standard_dataset", "visibility",
)  # fmt: skip
RESOURCE_FIELDS = ("name", "description", "format", "url")
TAG_SEPARATORS = re.compile(r"[,、，]")
FORM_OVERHEAD = 64 * 1024  # room for the other fields of an upload form
BBOX_MESSAGE = "bbox must be four numbers in degrees: minx,miny,maxx,maxy (longitude first)"


async def read_form(request: Request) -> FormData:
    """Return the posted form (already parsed by FastAPI for the CSRF field)."""
    return await request.form()


async def read_upload_form(
    request: Request, principal: PrincipalDep, settings: SettingsDep
) -> AsyncIterator[FormData]:
    """Refuse an oversized upload before reading it, then parse the form and check CSRF."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_upload_bytes + FORM_OVERHEAD:
        raise PayloadTooLarge(
            f"the upload is larger than the limit of {settings.max_upload_bytes:,} bytes"
        )
    form = await request.form(max_files=1, max_fields=20)
    try:
        token = form.get("csrf_token")
        require_csrf(request, principal, token if isinstance(token, str) else "")
        yield form
    finally:
        await form.close()


FormDep = Annotated[FormData, Depends(read_form)]
UploadFormDep = Annotated[FormData, Depends(read_upload_form)]


class FormInvalid(Exception):
    """The form's entries failed validation; `errors` maps field names to messages."""

    def __init__(self, errors: Errors) -> None:
        super().__init__("; ".join(m for messages in errors.values() for m in messages))
        self.errors = errors


def entered(form: FormData) -> dict[str, Any]:
    """Return what was typed into the dataset form: strings, and the checked groups."""
    values: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        value = form.get(key)
        if isinstance(value, str):
            values[key] = value.replace("\r\n", "\n")
    if "groups_shown" in form:  # no box checked sends nothing; the marker tells it was a choice
        values["groups"] = [g for g in form.getlist("groups") if isinstance(g, str)]
    return values


def prefilled(view: DatasetView) -> dict[str, Any]:
    """Return a dataset's current metadata as the form shows it."""
    return {
        "name": view.name,
        "title": view.title,
        "title_en": view.title_en or "",
        "notes": view.notes,
        "department": view.department.slug,
        "license_id": view.license.id,
        "tags": ", ".join(view.tags),
        "groups": [g.name for g in view.groups],
        "update_frequency": view.update_frequency or "",
        "temporal_start": view.temporal_start.isoformat() if view.temporal_start else "",
        "temporal_end": view.temporal_end.isoformat() if view.temporal_end else "",
        "bbox": ",".join(str(v) for v in view.bbox) if view.bbox else "",
        "contact_name": view.contact_name or "",
        "contact_email": view.contact_email or "",
        "standard_dataset": view.standard_dataset or "",
        "visibility": view.visibility.value,
    }


def validate_new(values: dict[str, Any], group_names: set[str]) -> DatasetCreate:
    """Validate the new-dataset form with the schema the CKAN API uses."""
    return _validate(DatasetCreate, _schema_fields(values), values, group_names)


def validate_changes(
    values: dict[str, Any], view: DatasetView, group_names: set[str]
) -> DatasetUpdate:
    """Validate the edit form and keep only the fields that differ from the dataset."""
    fields = {k: v for k, v in _schema_fields(values).items() if k in EDITABLE}
    given = _validate(DatasetUpdate, fields, values, group_names)
    current = _current(view)
    changed = {
        key: getattr(given, key)
        for key in sorted(given.model_fields_set)
        if _canonical(key, getattr(given, key)) != current[key]
    }
    return DatasetUpdate.model_validate(changed)


def resource_entries(form: FormData) -> tuple[ResourceCreate, UploadFile | None, dict[str, str]]:
    """Validate the resource form: a file to upload or a link, with a name and format."""
    values = {k: _text(form, k) for k in RESOURCE_FIELDS}
    sent = form.get("upload")
    upload = sent if isinstance(sent, UploadFile) and sent.filename else None
    url = values.get("url", "")
    if upload and url:
        raise FormInvalid({"upload": ["give either a file or a link (url), not both"]})
    if not upload and not url:
        raise FormInvalid({"upload": ["choose a file to upload, or give a link (url)"]})
    fields: dict[str, Any] = {k: values.get(k, "") for k in ("name", "description", "format")}
    fields["url"] = None if upload else url
    if not fields["name"]:
        source = upload.filename if upload and upload.filename else url
        fields["name"] = source.rstrip("/").rsplit("/", 1)[-1] or "resource"
    try:
        return ResourceCreate.model_validate(fields), upload, values
    except ValidationError as exc:
        raise FormInvalid(errors_of(exc)) from None


def errors_of(exc: ValidationError) -> Errors:
    """Turn pydantic's errors into readable messages by form field."""
    errors: Errors = {}
    for error in exc.errors():
        location = error.get("loc") or ()
        field = str(location[0]) if location else "form"
        if field == "bbox" and len(location) > 1:
            message = BBOX_MESSAGE
        elif error["type"] == "missing":
            message = "this field is required"
        else:
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if message not in errors.setdefault(field, []):
            errors[field].append(message)
    return errors


def _validate(
    model: type[Model], fields: dict[str, Any], values: dict[str, Any], group_names: set[str]
) -> Model:
    errors: Errors = {}
    unknown = [g for g in values.get("groups", []) if g not in group_names]
    if unknown:
        errors["groups"] = [f"unknown group {unknown[0]!r}"]
    try:
        validated = model.model_validate(fields)
    except ValidationError as exc:
        errors = errors_of(exc) | errors
    if errors:
        raise FormInvalid(errors)
    return validated


def _schema_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Map form entries onto schema fields: blanks become None, tags and bbox are split."""
    fields: dict[str, Any] = {}
    for key, value in values.items():
        if key == "tags":
            fields[key] = [t for t in TAG_SEPARATORS.split(value) if t.strip()]
        elif key == "groups":
            fields[key] = list(value)
        elif key == "bbox":
            fields[key] = [p.strip() for p in value.split(",")] if value.strip() else None
        elif key in OPTIONAL:
            fields[key] = value.strip() or None
        else:
            fields[key] = value
    return fields


def _current(view: DatasetView) -> dict[str, Any]:
    return {
        "title": view.title,
        "title_en": view.title_en or None,
        "notes": view.notes,
        "license_id": view.license.id,
        "tags": sorted(view.tags),
        "groups": sorted(g.name for g in view.groups),
        "update_frequency": view.update_frequency or None,
        "temporal_start": view.temporal_start,
        "temporal_end": view.temporal_end,
        "bbox": tuple(view.bbox) if view.bbox else None,
        "contact_name": view.contact_name or None,
        "contact_email": view.contact_email or None,
        "standard_dataset": view.standard_dataset or None,
        "visibility": view.visibility,
    }


def _canonical(key: str, value: Any) -> Any:
    if key in ("tags", "groups"):
        return sorted(value or [])
    if isinstance(value, str) and key in OPTIONAL:
        return value or None
    return value


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""
