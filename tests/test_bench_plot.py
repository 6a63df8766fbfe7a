"""benchmarks/run.py plot(): every value label is readable (issue 18).

Labels used to sit at the bar's end, where the error bar struck through them. Checked in
display coordinates on the drawn figure: each label starts right of its error bar's
upper end and ends inside the panel (not clipped).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_plot_labels_clear_the_error_bars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.pyplot as plt  # in the test extra: a missing one fails, not skips

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import run

    hello = {"spdyasgi": (26.0, 24.0, 31.0), "uvicorn": (39.0, 36.0, 48.0),
             "hypercorn-h2c": (160.0, 140.0, 210.0), "node-spdy": (270.0, 250.0, 390.0)}
    # in run.SERVERS order, the order the bars are drawn in
    download = {"spdyasgi": (2900.0, 2500.0, 3100.0), "node-spdy": (800.0, 600.0, 1200.0),
                "raw-socket": (3600.0, 3400.0, 3700.0)}
    summary: dict[tuple[str, str], dict[str, Any]] = {}
    for name, st in hello.items():
        summary[(name, "hello-10x10")] = {"server_cpu_us_per_req": st}
    for name, st in download.items():
        summary[(name, "download-1")] = {"mb_per_s": st}

    figures: list[Any] = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    out = tmp_path / "plot.png"
    assert run.plot(summary, out) is True
    assert out.stat().st_size > 0 and len(figures) == 1
    fig = figures[0]
    try:
        renderer = fig.canvas.get_renderer()
        for ax, stats in zip(fig.axes, (hello, download), strict=True):
            labels = ax.texts
            texts = [t.get_text().strip() for t in labels]
            assert texts == [f"{st[0]:,.0f}" for st in stats.values()]
            panel = ax.get_window_extent(renderer)
            for label, st in zip(labels, stats.values(), strict=True):
                box = label.get_window_extent(renderer)
                bar_end = ax.transData.transform((st[2], 0))[0]  # the error bar's upper end
                assert box.x0 > bar_end, (label.get_text(), box.x0, bar_end)
                assert box.x1 < panel.x1, (label.get_text(), box.x1, panel.x1)
    finally:
        real_close(fig)
    sys.modules.pop("run", None)  # a generic name: leave no trace for other tests
