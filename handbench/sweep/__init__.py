"""Sweeps: a plan file (``plan``) expanded into runs, run with the project's own commands (``runner``),
recorded in a ledger in the repo (``ledger``), submitted to the leaderboard as entries complete
(``submitting``), and summarised as learning curves and compute spent (``report``)."""
