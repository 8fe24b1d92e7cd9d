"""The two recipes are data (``evolmm_lib/recipes.py``), and the prose cannot drift from them: the switch table in
``papers/evolmm.md`` is the one :func:`recipes.markdown_table` generates, and no module outside ``recipes.py``
compares a recipe's name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evolmm_lib import recipes
from evolmm_lib.config import EvoLMMConfig

REPO = Path(__file__).resolve().parents[1]


def test_the_papers_switch_table_is_the_generated_one():
    text = (REPO / "papers" / "evolmm.md").read_text()
    start = text.index("<!-- generated from evolmm_lib/recipes.py")
    start = text.index("\n", start) + 1
    end = text.index("<!-- end of the generated table -->")
    assert text[start:end] == recipes.markdown_table(), (
        "papers/evolmm.md's recipe table differs from evolmm_lib/recipes.py: regenerate it with "
        "python -c 'from evolmm_lib.recipes import markdown_table; print(markdown_table(), end=\"\")'")


def test_no_module_outside_recipes_compares_a_recipe_name():
    pattern = re.compile(r"""recipe\s*[!=]=\s*["']|["'](paper|official)["']\s*[!=]=\s*[\w.]*recipe""")
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / "evolmm_lib").rglob("*.py") if p.name != "recipes.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders


def test_each_recipe_field_is_what_the_config_and_its_checks_follow():
    assert recipes.recipe_of(EvoLMMConfig()) is recipes.PAPER
    assert recipes.recipe_of(EvoLMMConfig(recipe="official")) is recipes.OFFICIAL
    assert EvoLMMConfig(recipe="official").update_loop == recipes.OFFICIAL.update_loops[0] == "sequential"
    assert EvoLMMConfig().update_loop == recipes.PAPER.update_loops[0] == "batched"
    differing = [f for f in recipes.Recipe.__dataclass_fields__ if getattr(recipes.PAPER, f) != getattr(recipes.OFFICIAL, f)]
    assert differing == list(recipes.Recipe.__dataclass_fields__)  # every field is a difference, none is filler


def test_a_recipe_pairing_the_kit_does_not_implement_is_refused():
    import dataclasses

    with pytest.raises(ValueError, match="needs the matching reference"):
        dataclasses.replace(recipes.PAPER, update_batch="retokenized_text")
