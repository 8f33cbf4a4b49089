"""The leaderboard: submissions (the source of truth) -> validation -> statistics -> generated tables, plots, page.

``validate`` checks evaluator results directories against the protocol, ``provenance`` (with ``versions``) checks
what they claim against what can be recomputed here, ``submissions`` stores and loads entries under
``leaderboard/submissions/<entry-id>/``, ``scores`` computes the statistics and the rankings (within a task set),
``tables``, ``plots`` and ``page`` render them per protocol, ``generate`` writes and checks the generated files
and ``verify`` re-derives a run from its recorded commands. ``handbench submit`` and ``handbench leaderboard`` are
the commands on top.
"""
