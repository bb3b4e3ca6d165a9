"""Only a fix for setuptools' editable installs; everything else is in pyproject.toml.

`pip install -e .` must install the data files (the `botlib` kernel spec, the notebooks) under
the environment's prefix as a wheel does, but setuptools' `editable_wheel` (84.2) asks the
distribution for `has_data()`, a method it does not have (`has_data_files()` is), and so skips
them silently. This runs `install_data` for it; a setuptools without the bug runs it anyway.
"""

from setuptools import setup
from setuptools.command.editable_wheel import editable_wheel


class EditableWithDataFiles(editable_wheel):
    def _run_install(self, category: str) -> None:
        if category == "data" and not hasattr(self.distribution, "has_data"):
            if self.distribution.has_data_files():
                self.run_command("install_data")
            return
        super()._run_install(category)


setup(cmdclass={"editable_wheel": EditableWithDataFiles})
