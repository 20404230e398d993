"""Seedance runs on Volcengine Ark: dispatch (media hand-off, one upstream task) and tracking.

Dispatch runs in a worker slot for a few seconds: it turns the run's media into URLs Ark can
read (or registers real-person material and uses ``asset://`` ids), creates the task with the
SDK's retries off and reconciles a lost answer against Ark's task list, so a retried step never
makes a second billable task; then it parks the job. The :class:`Tracker` checks parked runs in
batches (one list call per 500 tasks), with a check interval that grows with the task's age,
and finishes those whose task ended: downloads the video into wfrun storage and settles by the
usage Ark reports, or releases the freeze.
"""

from wfrun.services.seedance_deps import SeedanceDeps
from wfrun.workers.seedance.common import expires_after, request_of, safety_identifier
from wfrun.workers.seedance.dispatch import dispatch, hand_off
from wfrun.workers.seedance.tracker import Tracker

__all__ = [
    "SeedanceDeps",
    "Tracker",
    "dispatch",
    "expires_after",
    "hand_off",
    "request_of",
    "safety_identifier",
]
