"""The leaderboard: submissions (the source of truth) -> validation -> statistics -> generated tables and plot.

``validate`` checks evaluator results directories against the protocol, ``submissions`` stores and loads
entries under ``leaderboard/submissions/<entry-id>/``, ``tables`` computes and renders the rankings and
``plots`` draws the figure. ``handbench submit`` and ``handbench leaderboard`` are the commands on top.
"""
