"""Action parameters: GET query strings, JSON bodies and forms, read into one typed view."""

import json
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from portal.api.ckan.envelope import bad_request, validation_error
from portal.core.errors import PayloadTooLarge

TRUE = {"true", "1", "yes", "on", "t"}
FALSE = {"false", "0", "no", "off", "f", ""}
FORM_OVERHEAD = 1024 * 1024


class Params:
    """An action's parameters, with CKAN's lenient typing (strings from GET, JSON from POST)."""

    def __init__(
        self,
        data: dict[str, Any],
        files: dict[str, UploadFile] | None = None,
        form: FormData | None = None,
    ) -> None:
        self.data = data
        self.files = files or {}
        self._form = form

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        """Return a parameter as sent (the last one when a GET key repeats and one is wanted)."""
        return self.data.get(key, default)

    def text(self, key: str, default: str = "") -> str:
        """Return a parameter as text."""
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, list):
            value = value[-1] if value else default
        if isinstance(value, dict):
            raise validation_error({key: ["must be text, not an object"]})
        return str(value)

    def required(self, key: str) -> str:
        """Return a text parameter that must be given."""
        value = self.text(key).strip()
        if not value:
            raise validation_error({key: ["Missing value"]})
        return value

    def integer(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        """Return an integer parameter within bounds, or a Validation Error naming them."""
        raw = self.data.get(key)
        if raw is None or raw == "":
            return default
        if isinstance(raw, list) and raw:
            raw = raw[-1]
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise validation_error({key: [f"must be an integer, got {raw!r}"]})
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise validation_error({key: [f"must be an integer, got {raw!r}"]}) from None
        if value < minimum:
            raise validation_error({key: [f"must be at least {minimum}, got {value}"]})
        if maximum is not None and value > maximum:
            raise validation_error({key: [f"must be at most {maximum} (the maximum), got {value}"]})
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """Return a true/false parameter."""
        raw = self.data.get(key)
        if raw is None:
            return default
        if isinstance(raw, list) and raw:
            raw = raw[-1]
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise validation_error({key: [f"must be true or false, got {raw!r}"]})

    def strings(self, key: str) -> list[str]:
        """Return a list parameter: a JSON list or its text, repeated keys, or one value."""
        raw = self.data.get(key)
        if raw is None or raw == "":
            return []
        if isinstance(raw, str) and raw.lstrip().startswith("["):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise validation_error({key: [f"is not a valid JSON list: {raw!r}"]}) from None
        values = raw if isinstance(raw, list) else [raw]
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
            raise validation_error({key: ["must be a list of strings"]})
        return [str(v) for v in values]

    def mapping(self, key: str) -> dict[str, Any]:
        """Return an object parameter: a JSON object, or JSON text of one."""
        raw = self.data.get(key)
        if raw is None or raw == "":
            return {}
        if isinstance(raw, list) and raw:
            raw = raw[-1]
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise validation_error({key: [f"is not a valid JSON object: {raw!r}"]}) from None
        if not isinstance(raw, dict):
            raise validation_error({key: ["must be a JSON object"]})
        return {str(k): v for k, v in raw.items()}

    async def close(self) -> None:
        """Release uploaded files."""
        if self._form is not None:
            await self._form.close()


async def read_params(request: Request, *, max_upload_bytes: int) -> Params:
    """Read an action's parameters from the query string and, for POST, the body."""
    data: dict[str, Any] = _multi(request.query_params.multi_items())
    if request.method != "POST":
        return Params(data)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_upload_bytes + FORM_OVERHEAD:
            raise PayloadTooLarge(
                f"the upload is larger than the limit of {max_upload_bytes:,} bytes"
            )
        form = await request.form(max_files=10, max_fields=1000)
        fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        files = {k: v for k, v in form.multi_items() if not isinstance(v, str)}
        return Params(data | _multi(fields), files, form)
    body = await request.body()
    if not body.strip():
        return Params(data)
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"JSON Error: {exc}") from None
    if not isinstance(decoded, dict):
        raise bad_request(
            f"JSON Error: the request body decoded to a {type(decoded).__name__}, "
            "but an object was required"
        )
    return Params(data | decoded)


def _multi(items: list[tuple[str, str]]) -> dict[str, Any]:
    """Group repeated keys into lists; a key given once stays a string."""
    data: dict[str, Any] = {}
    for key, value in items:
        if key in data:
            current = data[key]
            data[key] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            data[key] = value
    return data
