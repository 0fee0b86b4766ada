"""Dataset and resource schemas: what callers send, validated the same for web and API."""

import re
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from portal.catalog.licenses import DEFAULT_LICENSE_ID, get_license
from portal.core.errors import InvalidInput
from portal.core.principal import Visibility

NAME = re.compile(r"^[a-z0-9_-]{2,100}$")
TAG = re.compile(r"^[^,<>\"'&]{1,100}$")
FREQUENCIES = ("continual", "daily", "weekly", "monthly", "quarterly", "annual", "irregular")


def check_name(value: str) -> str:
    """Refuse a dataset name that CKAN clients cannot use in URLs."""
    if not NAME.match(value):
        raise ValueError(
            f"name {value!r} must be 2-100 characters of lower-case a-z, 0-9, - and _ "
            "(use an ASCII slug such as evacuation-sites; put the Japanese in title)"
        )
    return value


def license_id(value: str) -> str:
    """Return the canonical licence id, as a validation error (naming the field) if unknown."""
    try:
        return get_license(value).id
    except InvalidInput as exc:
        raise ValueError(exc.message) from exc


def clean_tags(values: list[str]) -> list[str]:
    """Trim and deduplicate tags; Japanese tags are welcome, markup characters are not."""
    cleaned: list[str] = []
    for value in values:
        tag = value.strip()
        if not TAG.match(tag):
            raise ValueError(f"tag {value!r} must be 1-100 characters without , < > \" ' &")
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


class DatasetBase(BaseModel):
    """Fields shared by dataset creation and update."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    title_en: str | None = Field(default=None, max_length=500)
    notes: str = Field(default="", max_length=20_000)
    visibility: Visibility = Visibility.public
    license_id: str = DEFAULT_LICENSE_ID
    tags: list[str] = Field(default_factory=list, max_length=100)
    groups: list[str] = Field(default_factory=list, max_length=17)
    source_url: str | None = Field(default=None, max_length=2000)
    version: str | None = Field(default=None, max_length=100)
    update_frequency: str | None = None
    temporal_start: date | None = None
    temporal_end: date | None = None
    bbox: tuple[float, float, float, float] | None = None
    contact_name: str | None = Field(default=None, max_length=200)
    contact_email: str | None = Field(default=None, max_length=320)
    standard_dataset: str | None = Field(default=None, max_length=16)
    extras: dict[str, Any] = Field(default_factory=dict)

    @field_validator("license_id")
    @classmethod
    def _known_license(cls, value: str) -> str:
        return license_id(value)

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, values: list[str]) -> list[str]:
        return clean_tags(values)

    @field_validator("update_frequency")
    @classmethod
    def _known_frequency(cls, value: str | None) -> str | None:
        if value and value not in FREQUENCIES:
            raise ValueError(f"update_frequency must be one of {', '.join(FREQUENCIES)}")
        return value or None

    @field_validator("bbox")
    @classmethod
    def _plausible_bbox(
        cls, value: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if value is None:
            return None
        minx, miny, maxx, maxy = value
        if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise ValueError("bbox must be minx,miny,maxx,maxy in degrees, with min <= max")
        return value

    @model_validator(mode="after")
    def _ordered_period(self) -> "DatasetBase":
        if self.temporal_start and self.temporal_end and self.temporal_start > self.temporal_end:
            raise ValueError("temporal_start must not be after temporal_end")
        return self


class DatasetCreate(DatasetBase):
    """A new dataset."""

    name: str
    title: str = Field(min_length=1, max_length=500)
    department: str = Field(min_length=1, max_length=64)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        return check_name(value)


class DatasetUpdate(BaseModel):
    """A partial update: only the fields given change."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=500)
    title_en: str | None = None
    notes: str | None = Field(default=None, max_length=20_000)
    visibility: Visibility | None = None
    license_id: str | None = None
    tags: list[str] | None = None
    groups: list[str] | None = None
    source_url: str | None = None
    version: str | None = None
    update_frequency: str | None = None
    temporal_start: date | None = None
    temporal_end: date | None = None
    bbox: tuple[float, float, float, float] | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    standard_dataset: str | None = None
    extras: dict[str, Any] | None = None

    @field_validator("license_id")
    @classmethod
    def _known_license(cls, value: str | None) -> str | None:
        return None if value is None else license_id(value)

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else clean_tags(values)


class ResourceCreate(BaseModel):
    """A new resource: a link, a layer, or (with an uploaded file) a file."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=10_000)
    format: str = Field(default="", max_length=32)
    url: str | None = Field(default=None, max_length=2000)
    layer_id: str | None = Field(default=None, max_length=40)
    visibility: Visibility = Visibility.public
