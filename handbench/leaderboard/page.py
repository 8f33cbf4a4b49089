"""The leaderboard page (``index.html``): placeholder until the page generator lands."""

from __future__ import annotations


def page_html(board) -> str:
    return ""
