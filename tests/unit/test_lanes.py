"""Lanes, the fair round policy, the ETA and the wait reasons (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from wfrun.domain.lanes import describe_lane, fair_round, lane_key, parse_lane
from wfrun.domain.waits import LaneCapacity, estimate_wait_seconds, wait_reason


def test_a_lane_key_is_canonical_and_parses_back():
    key = lane_key("comfyui", {"vram": "24", "gpu": "a100"})
    assert key == lane_key("comfyui", {"gpu": "a100", "vram": "24"})
    assert key == 'comfyui {"gpu":"a100","vram":"24"}'
    assert parse_lane(key) == ("comfyui", {"gpu": "a100", "vram": "24"})
    assert lane_key("local", {}) == "local"
    assert parse_lane("local") == ("local", {})
    assert describe_lane(key) == "comfyui with labels gpu=a100,vram=24"


@dataclass
class Lane:
    """A lane simulated with the policy: jobs ``(round, seq, name)`` (a name starts with its
    one-letter account), served by ``slots``."""

    slots: int
    waiting: list[tuple[int, int, str]] = field(default_factory=list)
    serving: list[tuple[int, int, str]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    seq: int = 0

    def submit(self, account: str) -> str:
        mine = [r for r, _, name in self.waiting + self.serving if name[0] == account]
        round_ = fair_round(
            in_service=max((r for r, _, _ in self.serving), default=None),
            lane_head=min((r for r, _, _ in self.waiting), default=None),
            account_last=max(mine, default=None),
        )
        self.seq += 1
        name = f"{account}{self.seq}"
        self.waiting.append((round_, self.seq, name))
        self.fill()
        return name

    def fill(self) -> None:
        while self.waiting and len(self.serving) < self.slots:
            job = min(self.waiting)
            self.waiting.remove(job)
            self.serving.append(job)
            self.started.append(job[2])

    def finish_oldest(self) -> None:
        self.serving.pop(0)
        self.fill()


def test_a_single_run_waits_for_one_run_of_a_burst_at_most():
    lane = Lane(slots=1)
    burst = [lane.submit("a") for _ in range(20)]
    single = lane.submit("b")
    while lane.waiting:
        lane.finish_oldest()
    assert lane.started[:3] == [burst[0], single, burst[1]]


def test_accounts_alternate_in_rounds_and_first_come_first_served_within_one():
    lane = Lane(slots=2)
    a = [lane.submit("a") for _ in range(3)]
    b = [lane.submit("b") for _ in range(3)]
    c = lane.submit("c")
    while lane.waiting:
        lane.finish_oldest()
    assert lane.started == [a[0], a[1], b[0], c, a[2], b[1], b[2]]


def test_a_lone_account_is_plain_first_come_first_served():
    lane = Lane(slots=1)
    runs = [lane.submit("a") for _ in range(5)]
    while lane.waiting:
        lane.finish_oldest()
    assert lane.started == runs


def test_the_eta_counts_the_runs_ahead_and_what_the_busy_slots_have_left():
    assert estimate_wait_seconds(1, 1, [], 10_000) == 0  # a free slot
    assert estimate_wait_seconds(1, 1, [4_000], 10_000) == 6  # the running one has 6 s left
    assert estimate_wait_seconds(3, 1, [4_000], 10_000) == 26
    assert estimate_wait_seconds(3, 2, [4_000, 9_000], 10_000) == 11
    assert estimate_wait_seconds(3, 0, [], 10_000) == 20  # no capacity known: one slot assumed
    assert estimate_wait_seconds(2, 1, [30_000], 10_000) == 10  # overran its estimate


def test_reasons_say_why_in_words():
    none = LaneCapacity(True, registered=0, usable=0, slots=0, busy=0)
    down = LaneCapacity(True, registered=2, usable=0, slots=0, busy=0)
    full = LaneCapacity(True, registered=1, usable=1, slots=1, busy=1)
    free = LaneCapacity(True, registered=1, usable=1, slots=2, busy=1)
    a100 = lane_key("comfyui", {"gpu": "a100"})
    assert wait_reason(a100, 1, none) == "no comfyui instance with labels gpu=a100 is registered"
    assert wait_reason(a100, 3, down) == (
        "no healthy comfyui instance with labels gpu=a100: 0 of 2 healthy and active"
    )
    assert wait_reason("comfyui", 4, full) == "3 runs ahead in lane comfyui"
    assert wait_reason("comfyui", 2, full) == "1 run ahead in lane comfyui"
    assert wait_reason(a100, 1, full) == (
        "next in lane comfyui (gpu=a100); all 1 instance slots are busy"
    )
    assert wait_reason("comfyui", 1, free) == "next in lane comfyui; starting"
    workers = LaneCapacity(False, registered=0, usable=0, slots=0, busy=0)
    assert wait_reason("local", 2, workers) == "no worker is running"
