"""The operators' chart: tasks and credits per UTC day, as a PNG (matplotlib, no pyplot
state, so it is safe to draw in a worker thread)."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta

from storage.stats import DayStats


def daily_chart(days: list[DayStats], *, last_day: date, span: int = 30) -> bytes:
    """Tasks (bars) and credits spent (line) for the `span` days up to `last_day`; days
    without tasks show as zero. The PNG's Description names the days it shows."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    by_day = {d.day: d for d in days}
    dates = [last_day - timedelta(days=span - 1 - offset) for offset in range(span)]
    labels = [d.isoformat() for d in dates]
    tasks = [by_day[label].tasks if label in by_day else 0 for label in labels]
    failed = [by_day[label].failed if label in by_day else 0 for label in labels]
    credits = [by_day[label].credits if label in by_day else 0 for label in labels]

    figure = Figure(figsize=(9, 4), dpi=100)
    axes = figure.add_subplot()
    positions = list(range(span))
    axes.bar(positions, tasks, color="#4C78A8", label="tasks")
    axes.bar(positions, failed, color="#E45756", label="failed")
    axes.set_ylabel("tasks")
    ticks = sorted({*positions[::5], span - 1})  # every fifth day, and today
    axes.set_xticks(ticks, [dates[i].strftime("%d %b") for i in ticks])
    credit_axes = axes.twinx()
    credit_axes.plot(positions, credits, color="#F58518", marker="o", markersize=3, label="credits")
    credit_axes.set_ylabel("credits spent")
    credit_axes.set_ylim(bottom=0)
    axes.set_ylim(bottom=0)
    axes.set_title(f"The last {span} days (UTC)")
    handles = axes.get_legend_handles_labels()
    credit_handles = credit_axes.get_legend_handles_labels()
    axes.legend(handles[0] + credit_handles[0], handles[1] + credit_handles[1], loc="upper left")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(
        buffer,
        format="png",
        metadata={"Title": "imagine-bot daily stats", "Description": json.dumps({"days": labels})},
    )
    return buffer.getvalue()
