"""Choosing an engine instance (pure)."""

from __future__ import annotations

from typing import Any

from wfrun.domain.scheduling import choose_instance, labels_match


def inst(id_: str, busy: int, capacity: int = 2, **labels: str) -> dict[str, Any]:
    return {"id": id_, "busy": busy, "capacity": capacity, "labels": labels}


def test_least_loaded_instance_with_the_labels_wins():
    pool = [inst("a", 1, gpu="a100"), inst("b", 0, gpu="a100"), inst("c", 0, gpu="t4")]
    assert choose_instance(pool, {"gpu": "a100"})["id"] == "b"  # type: ignore[index]
    assert choose_instance(pool, {})["id"] == "b"  # type: ignore[index]


def test_full_or_mismatched_instances_are_skipped():
    pool = [inst("a", 2, gpu="a100"), inst("b", 0, gpu="t4")]
    assert choose_instance(pool, {"gpu": "a100"}) is None
    assert choose_instance([], {}) is None


def test_load_is_relative_to_capacity():
    pool = [inst("small", 1, capacity=2), inst("big", 2, capacity=8)]
    assert choose_instance(pool, {})["id"] == "big"  # type: ignore[index]


def test_a_redispatched_run_keeps_its_instance_even_when_full():
    pool = [inst("a", 2), inst("b", 0)]
    assert choose_instance(pool, {}, previous="a")["id"] == "a"  # type: ignore[index]
    assert choose_instance(pool, {}, previous="gone")["id"] == "b"  # type: ignore[index]


def test_labels_compare_as_strings():
    assert labels_match({"vram": "24"}, {"vram": 24, "gpu": "x"})
    assert not labels_match({"vram": "24"}, {})
