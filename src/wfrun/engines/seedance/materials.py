"""Real-person material registration on Ark's asset control plane (seedance-ark.md §4).

The control plane takes AK/SK V4 signatures only (§4.4), so it is called through the official
``volcenginesdkcore`` generic client, whose calls are synchronous; each runs in a thread.
The SDK (the ``seedance`` extra) is imported when a :class:`MaterialRegistry` is built.
Registration is reconcilable: every asset is named after its run and position, and an asset
of that name already in the group is reused instead of registered twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from wfrun.engines.seedance.ark import require_sdk

ASSET_TYPES = {"image": "Image", "video": "Video", "audio": "Audio"}


class MaterialError(Exception):
    """A control-plane call failed; ``code`` is Ark's ``ResponseMetadata.Error.Code``."""

    def __init__(self, message: str, *, code: str = "", transient: bool = False) -> None:
        super().__init__(message)
        self.message, self.code, self.transient = message, code, transient


class MaterialRejected(MaterialError):
    """The material itself was refused (its asset ended ``Failed``)."""


@dataclass(frozen=True)
class ControlPlane:
    host: str
    scheme: str
    region: str
    access_key_id: str
    secret_access_key: str
    project_name: str


class MaterialRegistry:
    def __init__(self, config: ControlPlane, *, poll_interval: float, ready_timeout: float):
        require_sdk()
        self.config = config
        self.poll_interval = poll_interval
        self.ready_timeout = ready_timeout

    def _call(self, action: str, body: dict[str, Any]) -> Any:
        import volcenginesdkcore  # type: ignore[import-untyped]
        from volcenginesdkcore.rest import ApiException  # type: ignore[import-untyped]
        from volcenginesdkcore.universal import (  # type: ignore[import-untyped]
            UniversalApi,
            UniversalInfo,
        )

        cfg = volcenginesdkcore.Configuration()
        cfg.ak, cfg.sk, cfg.region = (
            self.config.access_key_id,
            self.config.secret_access_key,
            self.config.region,
        )
        cfg.host, cfg.scheme = self.config.host, self.config.scheme
        api = UniversalApi(volcenginesdkcore.ApiClient(cfg))
        info = UniversalInfo(
            method="POST",
            service="ark",
            version="2024-01-01",
            action=action,
            content_type="application/json",
        )
        try:
            return api.do_call(info, {**body, "ProjectName": self.config.project_name})
        except ApiException as exc:
            raise _material_error(action, exc) from exc
        except Exception as exc:  # urllib3 connection errors and the like
            raise MaterialError(f"{action}: {exc}", transient=True) from exc

    async def call(self, action: str, body: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self._call, action, body)

    async def register(self, *, group_id: str, url: str, kind: str, name: str) -> str:
        """Register one image/video into ``group_id`` and wait until it is ``Active``;
        returns the asset id (used as ``asset://<id>``).

        Raises:
            MaterialRejected: the asset ended ``Failed`` (e.g. a face-consistency or
                moderation failure), with Ark's code.
            MaterialError: the control plane refused or could not be reached.
        """
        asset_id = await self._existing(group_id, name)
        if asset_id is None:
            created = await self.call(
                "CreateAsset",
                {"GroupId": group_id, "URL": url, "AssetType": ASSET_TYPES[kind], "Name": name},
            )
            asset_id = str(created["Id"])
        await self._wait_active(asset_id)
        return asset_id

    async def _existing(self, group_id: str, name: str) -> str | None:
        listed = await self.call(
            "ListAssets",
            {"Filter": {"GroupIds": [group_id], "Name": name}, "PageNumber": 1, "PageSize": 100},
        )
        for item in listed.get("Items") or []:
            if item.get("Name") == name and item.get("Status") != "Failed":
                return str(item["Id"])
        return None

    async def _wait_active(self, asset_id: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        delay = self.poll_interval
        while True:
            asset = await self.call("GetAsset", {"Id": asset_id})
            status = asset.get("Status")
            if status == "Active":
                return
            if status == "Failed":
                error = asset.get("Error") or {}
                raise MaterialRejected(
                    f"asset {asset_id} failed registration: {error.get('Code', '?')} "
                    f"{error.get('Message', '')}".strip(),
                    code=str(error.get("Code", "")),
                )
            if time.monotonic() > deadline:
                raise MaterialError(
                    f"asset {asset_id} was still {status} after {self.ready_timeout:g} s",
                    transient=True,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _material_error(action: str, exc: Any) -> MaterialError:
    """From the SDK's ``ApiException``."""
    code = ""
    message = str(exc.reason or "")
    try:
        error = json.loads(exc.body)["ResponseMetadata"]["Error"]
        code, message = str(error.get("Code", "")), str(error.get("Message", message))
    except (TypeError, ValueError, KeyError):
        pass
    status = int(exc.status or 0)  # 0: no HTTP answer (the SDK wraps TLS/connection errors)
    transient = status == 0 or status >= 500 or status == 429 or code == "Throttling"
    return MaterialError(
        f"{action}: {code or status} {message}".strip(), code=code, transient=transient
    )
