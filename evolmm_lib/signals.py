"""Is the reward carrying a signal? A check over the last steps that catches a run that cannot learn.

EvoLMM's Solver learns from the *spread* of its N answers (paper Eq. 3): when the N samples are the
same text in nearly every group — as when an Instruct checkpoint's ``generation_config.json``
(``top_k 1``) makes sampling greedy under ``recipe="official"`` — every answer gets the same reward and
the update only follows the baseline. β pinned at its floor ``kl_min`` and a KL of exactly 0 say the
adapters are not moving away from π_ref either. :class:`SignalCheck` looks at the last ``window``
steps every ``window`` steps and names each cause once (a warning line and the step's log record).
"""

from __future__ import annotations

from collections import deque

IDENTICAL_SHARE = 0.9
"""Share of groups whose N completions are one text, from which the sampling is taken to be degenerate."""


class SignalCheck:
    """Feed it each step's log records; it returns the causes found (each named once per run)."""

    def __init__(self, window: int, kl_min: float) -> None:
        self.window, self.kl_min = window, kl_min
        self.recent: deque = deque(maxlen=max(window, 1))
        self.reported: set[str] = set()

    def observe(self, step: int, records: list[dict]) -> list[str]:
        """Causes newly found at this step (checked when ``step`` is a multiple of ``window``)."""
        if self.window < 1:
            return []
        self.recent.extend(records)
        if step % self.window or len(self.recent) < self.window:
            return []
        found = []
        identical = [len(set(r["solver_completions"])) == 1 for r in self.recent if len(r["solver_completions"]) > 1]
        if identical and sum(identical) >= IDENTICAL_SHARE * len(identical):
            found.append(("identical_samples",
                          f"the Solver's samples were one identical text in {sum(identical)} of the last "
                          f"{len(identical)} groups: sampling is greedy in effect (a checkpoint's generation_config "
                          "top_k=1 under recipe=official?), so the N answers carry no reward signal; set "
                          "temperature/top_p/top_k or recipe=paper"))
        if all(r["beta_solver"] <= self.kl_min * (1 + 1e-6) for r in self.recent):
            found.append(("beta_at_floor", f"β has sat at its floor kl_min={self.kl_min:g} for the last "
                                           f"{len(self.recent)} records: the KL term no longer acts"))
        if all(r["kl_solver"] == 0 for r in self.recent):
            found.append(("kl_zero", f"KL(π‖π_ref) was exactly 0 in the last {len(self.recent)} records: the Solver "
                                     "adapter is not moving away from the reference"))
        new = [(key, text) for key, text in found if key not in self.reported]
        self.reported.update(key for key, _ in new)
        return [f"{key}: {text}" for key, text in new]
