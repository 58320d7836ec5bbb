"""Build hook: the shipped workflow files go into the wheel as package data.

Everything else about the package is in ``pyproject.toml``. The repository's ``workflows/``
folder stays the one source of the shipped workflow files; building copies its YAML files
to ``ctpipe/workflow/shipped/`` in the wheel, where :mod:`ctpipe.workflow.shipped` finds
them (``ctpipe run denoise_segment`` from an installed wheel).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

WORKFLOWS = Path(__file__).resolve().parent / "workflows"


class BuildWithWorkflows(build_py):
    """``build_py`` that also copies ``workflows/**/*.yaml`` into the built package."""

    def run(self) -> None:
        """Build the package, then add the workflow files."""
        super().run()
        for source in sorted(WORKFLOWS.rglob("*.yaml")):
            target = Path(self.build_lib, "ctpipe", "workflow", "shipped")
            target = target / source.relative_to(WORKFLOWS)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithWorkflows})
