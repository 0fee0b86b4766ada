"""Staff pages for the catalog: list, create and edit datasets, add resources, access, history."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from portal.api.deps import CsrfDep, PrincipalDep, SessionDep, SettingsDep, StorageDep, client_ip
from portal.api.errors import status_for
from portal.api.routes.catalog_common import HtmlPageRoute, human_size, local_time
from portal.api.routes.staff import _sign_in_first
from portal.api.routes.staff_dataset_form import (
    Errors,
    FormDep,
    FormInvalid,
    UploadFormDep,
    entered,
    prefilled,
    resource_entries,
    validate_changes,
    validate_new,
)
from portal.catalog.datasets import (
    create_dataset,
    dataset_history,
    get_dataset,
    patch_dataset,
    set_dataset_shares,
)
from portal.catalog.departments import DepartmentPublic, list_departments
from portal.catalog.groups import list_groups
from portal.catalog.licenses import DEFAULT_LICENSE_ID, LICENSES
from portal.catalog.resources import add_resource
from portal.catalog.schemas import FREQUENCIES, DatasetUpdate
from portal.catalog.search import DatasetQuery, search_datasets
from portal.catalog.sharing import dataset_access
from portal.catalog.views import DatasetView
from portal.core.accounts import require_role
from portal.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from portal.core.principal import Principal, Role, Visibility
from portal.web.templating import render

router = APIRouter(prefix="/staff/datasets", include_in_schema=False, route_class=HtmlPageRoute)
LIST_SIZE = 100


@dataclass(frozen=True)
class DepartmentSection:
    """One department's datasets on the staff list."""

    department: DepartmentPublic
    role: Role | None
    can_edit: bool
    can_admin: bool
    count: int
    datasets: list[DatasetView]
    page: int


@router.get("", response_class=HTMLResponse)
def list_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    department: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """List the datasets of the caller's departments, newest change first."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    mine = _my_departments(session, principal)
    if department:
        mine = [d for d in mine if d.slug == department]
        if not mine:
            raise NotFound(f"you are not a member of department {department!r}")
    sections = [_section(session, principal, d, page if department else 1) for d in mine]
    return render(
        request,
        "staff/datasets/list.html",
        sections=sections,
        page_size=LIST_SIZE,
        single=bool(department),
        local_time=local_time,
    )


@router.get("/new", response_class=HTMLResponse)
def new_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    department: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Show the new-dataset form."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    choices = _editor_departments(session, principal)
    slug = department if department in {d.slug for d in choices} else choices[0].slug
    values = {"department": slug, "license_id": DEFAULT_LICENSE_ID, "visibility": "public"}
    return _dataset_form(request, session, principal, values, {}, None)


@router.post("/new", response_class=HTMLResponse)
def create_page(
    request: Request, session: SessionDep, principal: PrincipalDep, _csrf: CsrfDep, form: FormDep
) -> Response:
    """Create a dataset; show the form again with the problems if the entries are invalid."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    _editor_departments(session, principal)
    values = entered(form)
    groups = {g.name for g in list_groups(session)}
    status = 400
    try:
        data = validate_new(values, groups)
        create_dataset(session, principal, data, ip=client_ip(request))
    except FormInvalid as exc:
        errors = exc.errors
    except Conflict as exc:
        errors, status = {"name": [exc.message]}, 409
    except NotFound as exc:
        errors = {"department": [exc.message]}
    except InvalidInput as exc:
        errors = {"form": [exc.message]}
    else:
        session.commit()
        return RedirectResponse(f"/staff/datasets/{data.name}/edit?created=1", status_code=303)
    session.rollback()
    return _dataset_form(request, session, principal, values, errors, None, status)


@router.get("/{name:dataset_name}/edit", response_class=HTMLResponse)
def edit_page(
    request: Request, name: str, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Show the edit form of a dataset, with its resources and the upload form."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    dataset = _editable(session, principal, name, "editing a dataset")
    return _dataset_form(request, session, principal, prefilled(dataset), {}, dataset)


@router.post("/{name:dataset_name}/edit", response_class=HTMLResponse)
def save_page(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    _csrf: CsrfDep,
    form: FormDep,
) -> Response:
    """Save the changed fields of a dataset."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    dataset = _editable(session, principal, name, "editing a dataset")
    values = entered(form) | {"name": dataset.name, "department": dataset.department.slug}
    if not principal.has_role(dataset.department.id, Role.admin):
        values.pop("visibility", None)
    try:
        data = validate_changes(values, dataset, {g.name for g in list_groups(session)})
        patch_dataset(session, principal, dataset.name, data, ip=client_ip(request))
    except FormInvalid as exc:
        errors = exc.errors
    except InvalidInput as exc:
        errors = {"form": [exc.message]}
    else:
        session.commit()
        return RedirectResponse(f"/staff/datasets/{dataset.name}/edit?saved=1", status_code=303)
    session.rollback()
    return _dataset_form(request, session, principal, values, errors, dataset, 400)


@router.post("/{name:dataset_name}/resources", response_class=HTMLResponse)
def add_resource_page(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    storage: StorageDep,
    form: UploadFormDep,
) -> Response:
    """Upload a file (streamed to storage) or add a link to a dataset."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    dataset = _editable(session, principal, name, "adding a resource")
    upload_values: dict[str, str] = {}
    try:
        data, upload, upload_values = resource_entries(form)
        add_resource(
            session,
            principal,
            dataset.name,
            data,
            upload=upload.file if upload else None,
            file_name=upload.filename if upload else None,
            storage=storage,
            max_bytes=settings.max_upload_bytes,
            municipality_code=settings.municipality_code,
            ip=client_ip(request),
        )
    except FormInvalid as exc:
        errors, status = exc.errors, 400
    except InvalidInput as exc:  # also PayloadTooLarge (413) and unreadable files
        errors, status = {"upload": [exc.message]}, status_for(exc)
    else:
        session.commit()
        return RedirectResponse(
            f"/staff/datasets/{dataset.name}/edit?added=1#resources", status_code=303
        )
    session.rollback()
    return _dataset_form(
        request,
        session,
        principal,
        prefilled(dataset),
        {},
        dataset,
        status,
        upload_values=upload_values,
        upload_errors=errors,
    )


@router.get("/{name:dataset_name}/access", response_class=HTMLResponse)
def access_page(
    request: Request, name: str, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Show a dataset's visibility and shares (admins of its department)."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    access = dataset_access(session, principal, name)
    dataset = get_dataset(session, principal, access.name)
    return render(
        request,
        "staff/datasets/access.html",
        dataset=dataset,
        access=access,
        departments=[d for d in list_departments(session) if d.id != access.department_id],
        visibilities=list(Visibility),
        saved=bool(request.query_params.get("saved")),
        **_permissions(principal, dataset),
    )


@router.post("/{name:dataset_name}/access", response_class=HTMLResponse)
def change_access(
    request: Request,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    _csrf: CsrfDep,
    visibility: Annotated[Visibility, Form()],
    shared_with: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Change a dataset's visibility and the departments it is shared with."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    access = dataset_access(session, principal, name)
    ip = client_ip(request)
    if visibility is not access.visibility:
        patch_dataset(session, principal, access.name, DatasetUpdate(visibility=visibility), ip=ip)
    shares = sorted(set(shared_with or []))
    if shares != sorted(access.shared_with):
        set_dataset_shares(session, principal, access.name, shares, ip=ip)
    session.commit()
    return RedirectResponse(f"/staff/datasets/{access.name}/access?saved=1", status_code=303)


@router.get("/{name:dataset_name}/history", response_class=HTMLResponse)
def history_page(
    request: Request, name: str, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Show a dataset's change history: who changed what, and when."""
    if redirect := _sign_in_first(request, principal):
        return redirect
    dataset = get_dataset(session, principal, name)
    return render(
        request,
        "staff/datasets/history.html",
        dataset=dataset,
        history=dataset_history(session, principal, dataset.name),
        local_time=local_time,
        shown=_shown,
        **_permissions(principal, dataset),
    )


def _my_departments(session: Session, principal: Principal) -> list[DepartmentPublic]:
    """The caller's departments (every department for site admins)."""
    return [
        d
        for d in list_departments(session)
        if d.id in principal.memberships or principal.is_site_admin
    ]


def _editor_departments(session: Session, principal: Principal) -> list[DepartmentPublic]:
    """The departments where the caller may create datasets; refuse if there are none."""
    found = [d for d in list_departments(session) if principal.has_role(d.id, Role.editor)]
    if not found:
        raise Forbidden("creating a dataset needs the editor role in a department")
    return found


def _editable(session: Session, principal: Principal, name: str, doing: str) -> DatasetView:
    """Return a dataset the caller can see, refusing (naming the role) unless an editor."""
    dataset = get_dataset(session, principal, name)
    require_role(principal, dataset.department.id, Role.editor, doing)
    return dataset


def _section(
    session: Session, principal: Principal, department: DepartmentPublic, page: int
) -> DepartmentSection:
    query = DatasetQuery(
        filters={"organization": [department.slug]},
        sort=(("metadata_modified", "desc"), ("name", "asc")),
        rows=LIST_SIZE,
        start=(page - 1) * LIST_SIZE,
    )
    result = search_datasets(session, principal, query)
    return DepartmentSection(
        department=department,
        role=principal.memberships.get(department.id),
        can_edit=principal.has_role(department.id, Role.editor),
        can_admin=principal.has_role(department.id, Role.admin),
        count=result.count,
        datasets=result.datasets,
        page=page,
    )


def _permissions(principal: Principal, dataset: DatasetView) -> dict[str, bool]:
    return {
        "can_edit": principal.has_role(dataset.department.id, Role.editor),
        "can_admin": principal.has_role(dataset.department.id, Role.admin),
    }


def _dataset_form(
    request: Request,
    session: Session,
    principal: Principal,
    values: dict[str, Any],
    errors: Errors,
    dataset: DatasetView | None,
    status_code: int = 200,
    *,
    upload_values: dict[str, str] | None = None,
    upload_errors: Errors | None = None,
) -> Response:
    """Render the dataset form: new when `dataset` is None, else its edit page."""
    if dataset is None:
        departments = _editor_departments(session, principal)
        can_set_visibility = any(principal.has_role(d.id, Role.admin) for d in departments)
    else:
        departments = [dataset.department]
        can_set_visibility = principal.has_role(dataset.department.id, Role.admin)
    return render(
        request,
        "staff/datasets/form.html",
        status_code=status_code,
        dataset=dataset,
        values=values,
        errors=errors,
        departments=departments,
        licenses=LICENSES,
        groups=list_groups(session),
        frequencies=FREQUENCIES,
        visibilities=list(Visibility),
        can_set_visibility=can_set_visibility,
        upload_values=upload_values or {},
        upload_errors=upload_errors or {},
        max_upload_bytes=request.app.state.settings.max_upload_bytes,
        human_size=human_size,
        local_time=local_time,
        notice=next((k for k in ("created", "saved", "added") if request.query_params.get(k)), ""),
        **(_permissions(principal, dataset) if dataset else {}),
    )


def _shown(value: Any) -> str:
    """Show one side of a recorded change."""
    if value is None or value == []:
        return "—"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)
