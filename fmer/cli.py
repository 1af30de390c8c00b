"""The ``fmer`` command: one subcommand per module, each defining ``add_parser(subparsers)``.

The parser set by ``add_parser`` carries ``func=callable(args) -> int`` via ``set_defaults``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fmer.config import ConfigError

# Order is the order of ``fmer --help``.
SUBCOMMAND_MODULES = ("fmer.train", "fmer.runlog", "fmer.analysis.cli", "fmer.bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmer", description="FMER reproducibility package: train, verify, analyse."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"fmer {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
