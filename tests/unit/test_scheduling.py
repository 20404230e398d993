"""Choosing an engine instance (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wfrun.domain.scheduling import choose_instance, labels_match


@dataclass(frozen=True)
class Inst:
    id: str
    busy: int
    capacity: int = 2
    labels: dict[str, str] = field(default_factory=dict)


def inst(id_: str, busy: int, capacity: int = 2, **labels: str) -> Inst:
    return Inst(id_, busy, capacity, labels)


def chosen(pool: list[Inst], required: dict[str, str], previous: str | None = None) -> str | None:
    found = choose_instance(pool, required, previous=previous)
    return None if found is None else found.id


def test_least_loaded_instance_with_the_labels_wins():
    pool = [inst("a", 1, gpu="a100"), inst("b", 0, gpu="a100"), inst("c", 0, gpu="t4")]
    assert chosen(pool, {"gpu": "a100"}) == "b"
    assert chosen(pool, {}) == "b"


def test_full_or_mismatched_instances_are_skipped():
    pool = [inst("a", 2, gpu="a100"), inst("b", 0, gpu="t4")]
    assert chosen(pool, {"gpu": "a100"}) is None
    assert chosen([], {}) is None


def test_load_is_relative_to_capacity():
    pool = [inst("small", 1, capacity=2), inst("big", 2, capacity=8)]
    assert chosen(pool, {}) == "big"


def test_a_redispatched_run_keeps_its_instance_even_when_full():
    pool = [inst("a", 2), inst("b", 0)]
    assert chosen(pool, {}, previous="a") == "a"
    assert chosen(pool, {}, previous="gone") == "b"


def test_labels_compare_as_strings():
    assert labels_match({"vram": "24"}, {"vram": 24, "gpu": "x"})
    assert not labels_match({"vram": "24"}, {})
