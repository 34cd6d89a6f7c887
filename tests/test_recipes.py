"""`python -m tinyprune.run --recipe NAME`: the recipe's options, the command line's over them."""

import pytest

from tinyprune.cli.recipes import RECIPES
from tinyprune.cli.run import parse_args


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_is_options_the_run_takes(name):
    args = parse_args(["--recipe", name])
    with_options = parse_args(RECIPES[name].argv())
    assert vars(args) == {**vars(with_options), "recipe": name}


def test_the_command_line_overrides_the_recipe():
    args = parse_args(["--recipe", "han-12x", "--sparsity", "0.5", "--seed", "3"])
    assert (args.model, args.rounds, args.sparsity, args.seed) == ("lenet5-caffe", 4, 0.5, 3)
    before = parse_args(["--sparsity", "0.5", "--recipe", "han-12x"])
    assert before.sparsity == 0.5  # wherever it stands, the command line's option wins


def test_list_prints_every_recipe(capsys):
    with pytest.raises(SystemExit) as done:
        parse_args(["--recipe", "list"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert all(name in printed and RECIPES[name].summary in printed for name in RECIPES)
