"""Every option of every command says what it does in --help (and the default it shows is
true)."""

import argparse
import importlib
import pkgutil

import pytest

import tinyprune.cli
from tinyprune.cli.run import DEEP_COMPRESS

COMMANDS = {"run", "sweep", "sensitivity", "lottery", "export", "report"}


def parsers() -> dict[str, argparse.ArgumentParser]:
    """Command name -> its parser, for each module of tinyprune/cli with a build_parser."""
    found = {}
    for info in pkgutil.iter_modules(tinyprune.cli.__path__):
        module = importlib.import_module(f"tinyprune.cli.{info.name}")
        if hasattr(module, "build_parser"):
            found[info.name] = module.build_parser()
    found["deep_compress"] = tinyprune.cli.run.build_parser(**DEEP_COMPRESS)
    return found


def test_every_command_has_a_parser_to_check():
    assert set(parsers()) == COMMANDS | {"deep_compress"}


@pytest.mark.parametrize("name", sorted(COMMANDS | {"deep_compress"}))
def test_every_option_has_a_help_text(name):
    parser = parsers()[name]
    missing = [
        "/".join(a.option_strings) or a.dest
        for a in parser._actions
        if not a.help or a.help == argparse.SUPPRESS
    ]
    assert not missing, f"{name}: options without help: {', '.join(missing)}"


@pytest.mark.parametrize("name", sorted(COMMANDS | {"deep_compress"}))
def test_no_flag_shows_the_default_of_its_opposite(name):
    """--no-x stored as x=False shows "(default: True)" beside --no-x, which reads as if
    --no-x were on by default; argparse.BooleanOptionalAction shows --x/--no-x instead."""
    flipped = [
        "/".join(a.option_strings)
        for a in parsers()[name]._actions
        if isinstance(a, argparse._StoreFalseAction)
    ]
    assert not flipped, f"{name}: {', '.join(flipped)}"
