"""The ``fmer`` command: the command layer over the library.

One module per subcommand (or family of them), each defining ``add_parser(subparsers)``: the
parser, and a handler that turns the parsed arguments into library calls and prints. The parser
set by ``add_parser`` carries ``func=callable(args) -> int`` via ``set_defaults``. Library
modules never import this package (tests/test_layers.py). A library module that imports torch
is imported by the handler that needs it, so that parsing, ``--help`` and the commands without
networks (e.g. ``fmer verify RUN``) do not pay seconds of CPU for it (tests/test_cli.py).
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from fmer import __version__
from fmer.cli import analysis, bench, evaluate, train, verify
from fmer.config import VARIANTS, ConfigError
from fmer.envs import ENV_NAMES_HELP
from fmer.runlog import RunLogError

# Order is the order of ``fmer --help``.
SUBCOMMANDS = (train, verify, analysis, bench, evaluate)


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
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, RunLogError) as exc:
        print(f"fmer {args.command}: error: {exc}", file=sys.stderr)
        return 2
