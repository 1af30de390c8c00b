"""The ``fmer`` command: one subcommand per module, each defining ``add_parser(subparsers)``.

The parser set by ``add_parser`` carries ``func=callable(args) -> int`` via ``set_defaults``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap

from fmer import __version__
from fmer.config import VARIANTS, ConfigError
from fmer.envs import ENV_NAMES_HELP
from fmer.runlog import RunLogError

# Order is the order of ``fmer --help``.
SUBCOMMAND_MODULES = ("fmer.train", "fmer.runlog", "fmer.analysis.cli", "fmer.bench")


def examples(*lines: str) -> dict:
    """``add_parser`` keywords for a subcommand's help that ends with usage examples."""
    return {"epilog": "examples:\n" + "\n".join(f"  {line}" for line in lines),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmer", description="FMER reproducibility package: train, verify, analyse.",
        epilog="\n".join(textwrap.fill(text, 92, subsequent_indent="  ") for text in (
            f"environments: {ENV_NAMES_HELP}.",
            f"variants (--algo): {', '.join(VARIANTS)}.",
            "`fmer COMMAND --help` shows each command's options and examples.")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fmer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, RunLogError) as exc:
        print(f"fmer {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
