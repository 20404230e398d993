"""Exceptions raised by the local engine.

``GraphInvalid`` is raised before any node runs, ``NodeFailed`` when a node's work
fails and ``Interrupted`` when the caller's interrupt flag stops the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wfrun.engines.local.outputs import NodeOutput


@dataclass(frozen=True)
class GraphProblem:
    """One reason a graph was rejected.

    ``type`` and ``message`` use ComfyUI's own wording (``required_input_missing``,
    ``"Required input is missing"`` and so on); ``details`` carries what ComfyUI puts
    in its ``details`` field (usually the input name and the offending value).
    """

    node_id: str | None
    class_type: str | None
    input_name: str | None
    type: str
    message: str
    details: str = ""

    def describe(self) -> str:
        """Returns a one-line, human-readable description naming node and input.

        Returns:
            Text such as ``"node 3 (EmptyImage) input 'width': Value 0 smaller than min of 1"``.
        """
        where = []
        if self.node_id is not None:
            where.append(f"node {self.node_id} ({self.class_type or '?'})")
        if self.input_name is not None:
            where.append(f"input {self.input_name!r}")
        text = self.message if not self.details else f"{self.message}: {self.details}"
        return f"{' '.join(where)}: {text}" if where else text


class GraphInvalid(Exception):
    """The graph cannot run; raised before any node runs. Permanent."""

    def __init__(self, problems: Sequence[GraphProblem]) -> None:
        """Builds the exception.

        Args:
            problems: Every problem found (at least one).
        """
        self.problems: list[GraphProblem] = list(problems)
        summary = "; ".join(problem.describe() for problem in self.problems)
        super().__init__(f"Prompt outputs failed validation: {summary}")


class NodeFailed(Exception):
    """A node raised while running. Permanent."""

    def __init__(self, node_id: str, class_type: str, message: str) -> None:
        """Builds the exception.

        Args:
            node_id: Id of the failing node in the graph.
            class_type: Its class.
            message: ``"{ExceptionType}: {text}"`` of the underlying error.
        """
        self.node_id = node_id
        self.class_type = class_type
        self.message = message
        super().__init__(f"Node {node_id} ({class_type}) failed: {message}")


class Interrupted(Exception):
    """The run was interrupted through the caller's interrupt flag."""

    def __init__(self, message: str = "Processing interrupted") -> None:
        """Builds the exception.

        Args:
            message: Human-readable text.
        """
        super().__init__(message)
        self.finished: dict[str, NodeOutput] = {}
        """What the output nodes that ran before the interrupt produced, by node id (set by
        the executor: a run stopped at its cost limit keeps them)."""
