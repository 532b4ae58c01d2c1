"""`python -m pytest_energy history`: each stored test's run history and the band of its next run.

Reads the baseline folder (never writes it). A terminal summary by default; `--html PATH` writes one
self-contained page (docs/history.md). Exit codes: 0 shown; 2 bad usage (a malformed -k, an unreadable
baseline file, nothing stored); the page is written atomically, so a failed write leaves no half page.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import EnergyError

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline-dir", default="baselines", metavar="PATH",
                        help="the baseline folder to read (default: baselines)")
    parser.add_argument("--html", metavar="PATH", help="also write the trend page (one self-contained HTML file)")
    parser.add_argument("-k", dest="match", metavar="EXPR",
                        help="only tests whose node id matches: case-insensitive substrings combined with and, "
                             "or, not and parentheses, e.g. -k 'inference and not [1]'")
    parser.add_argument("--metric", action="append", metavar="NAME",
                        help="a metric to show, matching NAME or any protocol's PREFIX.NAME (repeatable; "
                             "default: energy_j and duration_s)")
    parser.add_argument("--tolerance", metavar="PCT",
                        help="the tolerance the band is drawn with, e.g. 10%% (default: the gate's, 8%%); a "
                             "test's own marker tolerance is not stored in the baseline")
    parser.add_argument("--no-figures", action="store_true", help="with --html: tables only, no charts")


def main(args: Any) -> int:
    from ..analysis.trends import DEFAULT_METRICS, trends
    from ..config import parse_tolerance
    from ..files import write_atomic
    from ..gate.baselines import BaselineStore, baseline_filename
    from ..report.trends import render_trends_html, terminal_lines

    metrics = tuple(args.metric) if args.metric else DEFAULT_METRICS
    try:
        tolerance = parse_tolerance(args.tolerance) if args.tolerance is not None else None
        if not os.path.isdir(args.baseline_dir):
            raise EnergyError(f"no baseline folder {args.baseline_dir!r}: save baselines with "
                              "pytest --energy --energy-save-baseline, or pass --baseline-dir")
        entries = BaselineStore(args.baseline_dir).load_all()
        found = trends(entries, metrics, match=args.match, tolerance=tolerance,
                       baseline_file=lambda nodeid: os.path.join(args.baseline_dir, baseline_filename(nodeid)))
        selection = f"metrics {', '.join(metrics)}" + (f"; -k {args.match!r}" if args.match else "")
        header = f"{args.baseline_dir}: {len(entries)} stored test(s); {selection}"
        print("\n".join(terminal_lines(found, header=header)))
        if args.html:
            page = render_trends_html(found, source=f"baselines: {args.baseline_dir}",
                                      selection=selection, figures=not args.no_figures)
            parent = os.path.dirname(os.path.abspath(args.html))
            os.makedirs(parent, exist_ok=True)
            print(f"wrote {write_atomic(args.html, page, what='trend page')}")
    except EnergyError as exc:
        print(f"pytest-energy history: {exc}")
        return 2
    return 0
