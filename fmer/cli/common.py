"""What every subcommand's parser shares: help that ends with examples, argparse types."""

from __future__ import annotations

import argparse


def examples(*lines: str) -> dict:
    """``add_parser`` keywords for a subcommand's help that ends with usage examples."""
    return {"epilog": "examples:\n" + "\n".join(f"  {line}" for line in lines),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
