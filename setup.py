"""Build hook: the repository's rules/ folder travels in the wheel as monitor/shipped_rules.

Everything else is declared in setup.cfg. The rule files stay at the top of the checkout
(where rule admins, the README and the tests find them); an installed permit-monitor,
which has no checkout, reads the copy made here (``monitor.config.load.SHIPPED_RULES``).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithRules(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's rules/ itself
            return
        target = Path(self.build_lib) / "monitor" / "shipped_rules"
        self.mkpath(str(target))
        for rule_file in sorted(Path("rules").glob("*.yaml")):
            self.copy_file(str(rule_file), str(target / rule_file.name))


setup(cmdclass={"build_py": BuildWithRules})
