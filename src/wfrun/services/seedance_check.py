"""``wfrun seedance check``: can this server reach Ark with the configured credentials?"""

from __future__ import annotations

from dataclasses import dataclass

from wfrun.engines.seedance.ark import ArkCallError
from wfrun.engines.seedance.materials import MaterialError
from wfrun.services.seedance_deps import SeedanceDeps


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


async def check_seedance(deps: SeedanceDeps | None) -> list[Check]:
    """One line per capability: the data plane (API key), the asset control plane (AK/SK)
    and the default real-person group."""
    if deps is None:
        return [Check("ark api key", False, "seedance.ark_api_key is not set")]
    checks = [await _data_plane(deps)]
    if deps.materials is None:
        checks.append(Check("asset control plane", False, "no AK/SK: real-person runs refused"))
        return checks
    try:
        await deps.materials.call("ListAssetGroups", {"PageNumber": 1, "PageSize": 1})
        checks.append(Check("asset control plane", True, "AK/SK accepted"))
    except MaterialError as exc:
        checks.append(Check("asset control plane", False, exc.message))
        return checks
    group = deps.settings.real_person_group_id
    if group:
        checks.append(await _group(deps, group))
    return checks


async def _data_plane(deps: SeedanceDeps) -> Check:
    try:
        await deps.ark.ping()
    except ArkCallError as exc:
        return Check("ark api key", False, exc.message)
    return Check("ark api key", True, f"task list readable at {deps.settings.ark_base_url}")


async def _group(deps: SeedanceDeps, group: str) -> Check:
    assert deps.materials is not None
    try:
        found = await deps.materials.call("GetAssetGroup", {"Id": group})
    except MaterialError as exc:
        return Check("default real-person group", False, exc.message)
    kind = found.get("GroupType")
    ok = kind == "LivenessFace"
    detail = f"{group} is a {kind} group" + ("" if ok else " (needs LivenessFace)")
    return Check("default real-person group", ok, detail)
