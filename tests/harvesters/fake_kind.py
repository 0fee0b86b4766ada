"""A harvester kind for tests: objects are small CSVs described by the source config."""

import hashlib
import json
import time
from collections.abc import Iterable
from typing import Any

from portal.core.errors import HarvestFailed
from portal.harvesters.base import (
    FetchedObject,
    HarvestContext,
    HarvestedDataset,
    HarvestedFile,
    Harvester,
    RemoteObject,
)


class FakeHarvester(Harvester):
    """Offers `config["objects"]`: {id: {"title", "rows", "fail", "sleep"}}."""

    kind = "fake"
    title = "test objects"

    def validate_config(self, url: str, config: dict[str, Any]) -> dict[str, Any]:
        """Accept any config."""
        return config

    def gather(self, ctx: HarvestContext) -> Iterable[RemoteObject]:
        """One remote object per configured entry."""
        for remote_id, spec in ctx.source.config.get("objects", {}).items():
            yield RemoteObject(remote_id, modified=spec.get("modified"), payload=spec)

    def fetch(self, ctx: HarvestContext, remote: RemoteObject) -> FetchedObject:
        """Write the object's CSV into the job folder (or fail, or stall, when told to)."""
        spec = remote.payload
        if spec.get("sleep"):
            time.sleep(spec["sleep"])
            ctx.check_time()
        if spec.get("fail"):
            raise HarvestFailed(spec["fail"])
        path = ctx.workdir / f"{remote.remote_id}.csv"
        lines = ["名称,緯度,経度"] + [f"地点{i},33.28{i},131.49{i}" for i in range(spec["rows"])]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        return FetchedObject(
            remote=remote,
            content_hash=digest,
            dataset=HarvestedDataset(name=f"fake-{remote.remote_id}", title=spec["title"]),
            files=[HarvestedFile(path=path, name=path.name, format="CSV")],
        )
