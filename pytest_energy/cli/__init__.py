"""`python -m pytest_energy doctor|merge|merge-driver|history ...`: the commands that run outside a pytest session.

- doctor: do the meters work on this machine, and how well (pytest_energy.cli.doctor)
- merge:  one report, one verdict and one baseline update from CI shards' JSON reports (pytest_energy.cli.merge)
- history: each stored test's run history and the band of its next run (pytest_energy.cli.history)
- merge-driver: git's merge driver for baseline files: two branches' run histories merged, never conflict
  markers (pytest_energy.cli.merge_driver)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from . import doctor, merge, merge_driver

    parser = argparse.ArgumentParser(prog="python -m pytest_energy", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor.add_arguments(commands.add_parser(
        "doctor", help="check which meters work here, and how well (GPU sensor, counter vs power, CUDA sync)",
        description="Which meters answer on this machine and why the others do not; per GPU the sensor update "
                    "period, idle power, counter vs power integral under a matmul load, and whether CUDA "
                    "synchronisation at window edges works. Exit 1 when --meter names an unusable meter or a "
                    "check fails."))
    merge.add_arguments(commands.add_parser(
        "merge", help="merge CI shards' --energy-json reports into one report and one exit code",
        description="One report, one verdict (exit 1 when a shard gated a regression or failed, 2 for unusable "
                    "input) and, with --save-baseline, one baseline update from CI shards' --energy-json "
                    "reports, each machine class kept apart."))
    merge_driver.add_arguments(commands.add_parser(
        "merge-driver", help="git merge driver for baseline files (--install prints how to install it)",
        description="Merge two branches' versions of one baseline file as git's merge driver: the runs of both "
                    "histories in time order, never conflict markers. Exit 0 merged, 1 left to git's text "
                    "merge (a conflict), 2 bad usage. --install prints the .gitattributes line and the git "
                    "config command; --install --apply adds them to the current repository."))
    _add_history(commands)
    return parser


def _add_history(commands: argparse._SubParsersAction) -> None:
    from . import history

    history.add_arguments(commands.add_parser(
        "history", help="each stored test's run history and the band of its next run (terminal, --html page)",
        description="For every stored test and chosen metric: the saved runs in order (date, commit, mean ± sd), "
                    "where a history restarted, the machine class, and the band the gate would accept for the "
                    "next run. Reads the baseline folder, never writes it. Exit 2 for bad usage or an "
                    "unreadable baseline file."))


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 fine; 1 a problem found (a meter asked for is unusable, a shard regressed); 2 bad usage."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "history":
        from .history import main as history_main

        return history_main(args)
    if args.command == "doctor":
        from .doctor import main as doctor_main

        return doctor_main(args, "python -m pytest_energy " + shlex.join(argv))
    if args.command == "merge-driver":
        from .merge_driver import main as merge_driver_main

        return merge_driver_main(args)
    from .merge import main as merge_main

    return merge_main(args)


if __name__ == "__main__":
    sys.exit(main())
