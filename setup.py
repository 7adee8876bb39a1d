"""Build hook: the recipes in ``apdu_scripts/`` become package data ``sbcard/recipes/``.

They stay at the top of the source tree (docs and scripts name them there); a wheel needs
them inside the package, so ``build_py`` copies them in. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithRecipes(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "apdu_scripts"
        target = Path(self.build_lib) / "sbcard" / "recipes"
        target.mkdir(parents=True, exist_ok=True)
        for recipe in sorted(source.iterdir()):
            if recipe.is_file():
                self.copy_file(str(recipe), str(target / recipe.name))


setup(cmdclass={"build_py": BuildWithRecipes})
