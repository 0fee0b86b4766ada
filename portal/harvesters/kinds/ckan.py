"""The `ckan` kind: another CKAN site (BODIK style), paged through package_search."""

import hashlib
import itertools
import re
import shutil
from typing import Any, Literal

from pydantic import Field, field_validator

from portal.core.errors import HarvestFailed
from portal.harvesters import http
from portal.harvesters.base import (
    FetchedObject,
    HarvestContext,
    Harvester,
    RemoteObject,
)
from portal.harvesters.kinds.ckan_mapping import (
    canonical_hash,
    copy_resources,
    package_dataset,
    package_resources,
    portal_groups,
)

HINT = "is this the address of a CKAN site (for example https://data.example.jp)?"
MAX_DATASETS = 200_000  # a runaway paging guard far above any municipal catalog
ORGANIZATION = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class CkanConfig(http.NetworkConfig):
    """Settings of a CKAN source."""

    organizations: list[str] = Field(default_factory=list, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=100)
    fq: str = Field(default="", max_length=2000)
    resources: Literal["download", "link"] = "download"
    max_resource_bytes: int | None = Field(default=None, ge=1024)
    rows: int = Field(default=100, ge=1, le=1000)
    name_prefix: str = Field(default="", pattern=r"^[a-z0-9_-]{0,40}$")

    @field_validator("organizations")
    @classmethod
    def _organization_names(cls, values: list[str]) -> list[str]:
        names = [v.strip() for v in values if v.strip()]
        for name in names:
            if not ORGANIZATION.match(name):
                raise ValueError(f"{name!r} is not an organization name (such as bosai-ka)")
        return list(dict.fromkeys(names))

    @field_validator("tags")
    @classmethod
    def _plain_tags(cls, values: list[str]) -> list[str]:
        tags = [v.strip() for v in values if v.strip()]
        for tag in tags:
            if '"' in tag or "\\" in tag:
                raise ValueError(f"tag {tag!r} must not contain quotation marks or backslashes")
        return list(dict.fromkeys(tags))


class CkanError(HarvestFailed):
    """The CKAN API answered with an error envelope."""

    def __init__(self, message: str, *, validation: bool) -> None:
        super().__init__(message)
        self.validation = validation


class CkanHarvester(Harvester):
    """Copy the datasets of another CKAN site, filtered by organization and tags."""

    kind = "ckan"
    title = "CKAN（BODIK などのオープンデータサイト）"

    def validate_config(self, url: str, config: dict[str, Any]) -> dict[str, Any]:
        """Check the site URL and the settings."""
        http.validate_source_url(url)
        parsed = http.parse_config(CkanConfig, config)
        return parsed.model_dump(mode="json", exclude_unset=True)

    def gather(self, ctx: HarvestContext) -> list[RemoteObject]:
        """Page through package_search (sorted by id) and list every matching package."""
        config = CkanConfig.model_validate(ctx.source.config)
        site = site_root(ctx.source.url)
        return [
            RemoteObject(
                remote_id=str(package["id"]),
                modified=str(package.get("metadata_modified") or "") or None,
                payload=package,
            )
            for package in search_all(ctx, site, config)
        ]

    def fetch(self, ctx: HarvestContext, remote: RemoteObject) -> FetchedObject:
        """Map a package and copy (or link) its resources."""
        config = CkanConfig.model_validate(ctx.source.config)
        site = site_root(ctx.source.url)
        package: dict[str, Any] = remote.payload
        groups = portal_groups(ctx) if package.get("groups") else {}
        dataset, notes = package_dataset(
            package, prefix=config.name_prefix, site=site, groups=groups
        )
        copied = copy_resources(
            ctx,
            package_resources(package, site),
            mode=config.resources,
            max_bytes=config.max_resource_bytes or ctx.settings.max_upload_bytes,
            folder=object_folder(ctx, remote.remote_id),
        )
        return FetchedObject(
            remote=remote,
            content_hash=canonical_hash(package, copied.fingerprints),
            dataset=dataset,
            files=copied.files,
            links=copied.links,
            warnings=notes + copied.warnings,
        )


def object_folder(ctx: HarvestContext, remote_id: str) -> Any:
    """A fresh folder for one object's files, removing the previous object's.

    The runner fetches and imports one object at a time, so by the next fetch the earlier
    files are published or abandoned; removing them keeps a large job's disk use to one
    dataset's files.
    """
    root = ctx.workdir / "remote-objects"
    shutil.rmtree(root, ignore_errors=True)
    folder = root / hashlib.sha256(remote_id.encode()).hexdigest()[:16]
    folder.mkdir(parents=True)
    return folder


def site_root(url: str) -> str:
    """The site's base URL, accepting a pasted API URL such as …/api/3/action/package_search."""
    base = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if "/api/" in base + "/":
        base = (base + "/").split("/api/", 1)[0]
    return base


def search_all(ctx: HarvestContext, site: str, config: CkanConfig) -> list[dict[str, Any]]:
    """Every package matching the filters; one query per value when OR is not understood."""
    combined = filter_query(config.fq, config.organizations, config.tags)
    try:
        return page_through(ctx, site, config, combined)
    except CkanError as exc:
        if not exc.validation or (len(config.organizations) < 2 and len(config.tags) < 2):
            raise
        ctx.log(f"{site} does not understand OR in fq; asking once per organization and tag")
    merged: dict[str, dict[str, Any]] = {}
    organizations: list[str | None] = [*config.organizations] or [None]
    tags: list[str | None] = [*config.tags] or [None]
    for organization, tag in itertools.product(organizations, tags):
        fq = filter_query(config.fq, [organization] if organization else [], [tag] if tag else [])
        for package in page_through(ctx, site, config, fq):
            merged.setdefault(str(package["id"]), package)
    return sorted(merged.values(), key=lambda p: str(p["id"]))


def filter_query(extra: str, organizations: list[str], tags: list[str]) -> str:
    """An fq: the extra text, then required organization and tag terms (OR within a field)."""
    parts = [extra.strip()] if extra.strip() else []
    if organizations:
        names = " OR ".join(organizations)
        parts.append(
            f"+organization:({names})" if len(organizations) > 1 else f"+organization:{names}"
        )
    if tags:
        quoted = " OR ".join(f'"{tag}"' for tag in tags)
        parts.append(f"+tags:({quoted})" if len(tags) > 1 else f"+tags:{quoted}")
    return " ".join(parts)


def page_through(
    ctx: HarvestContext, site: str, config: CkanConfig, fq: str
) -> list[dict[str, Any]]:
    """Read package_search page by page (start/rows, sorted by id) until the count is reached."""
    packages: list[dict[str, Any]] = []
    seen: set[str] = set()
    start = 0
    while True:
        params = {"fq": fq or None, "sort": "id asc", "rows": config.rows, "start": start}
        result = action(ctx, site, "package_search", params)
        results = result.get("results") if isinstance(result, dict) else None
        count = result.get("count") if isinstance(result, dict) else None
        if not isinstance(results, list) or not isinstance(count, int):
            raise HarvestFailed(
                f"{site}/api/3/action/package_search answered without a result list and count: "
                + HINT
            )
        valid = [p for p in results if isinstance(p, dict) and p.get("id")]
        fresh = [p for p in valid if str(p["id"]) not in seen]
        if valid and not fresh:
            raise HarvestFailed(
                f"{site} returned the same datasets again at start={start}; "
                "it does not seem to support paging with start and rows"
            )
        for package in fresh:
            seen.add(str(package["id"]))
            packages.append(package)
        start += len(results)
        if not results or start >= count:
            return packages
        if start > MAX_DATASETS:
            raise HarvestFailed(f"{site} offers more than {MAX_DATASETS} datasets; add filters")


def action(ctx: HarvestContext, site: str, name: str, params: dict[str, Any]) -> Any:
    """Call a CKAN action with GET and return its result; errors name the site and action."""
    url = f"{site}/api/3/action/{name}"
    try:
        envelope = http.get_json(ctx, url, params, hint=HINT)
    except http.HttpStatusError as exc:
        body = exc.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            raise _ckan_error(site, name, body["error"], exc.status) from None
        if exc.status == 404:
            raise HarvestFailed(f"{http.shown(url)} was not found (404): {HINT}") from None
        raise
    if not isinstance(envelope, dict) or "result" not in envelope:
        raise HarvestFailed(f"{http.shown(url)} did not answer like the CKAN API: {HINT}")
    if envelope.get("success") is False:
        error = envelope.get("error")
        raise _ckan_error(site, name, error if isinstance(error, dict) else {}, 200)
    return envelope["result"]


def _ckan_error(site: str, name: str, error: dict[str, Any], status: int) -> CkanError:
    kind = str(error.get("__type") or "")
    message = error.get("message") or "; ".join(
        f"{key}: {value}" for key, value in error.items() if key != "__type"
    )
    validation = kind == "Validation Error" or status in (400, 409)
    return CkanError(f"{site} refused {name}: {message or kind or status}", validation=validation)
