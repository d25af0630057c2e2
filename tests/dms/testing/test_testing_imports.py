"""`dms.testing` for users without the test tools: the import works, and the pieces
that need pytest or hypothesis say so when used."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

WITHOUT_TEST_TOOLS = """
import sys
for name in ("pytest", "_pytest", "pytest_trio", "hypothesis"):
    sys.modules[name] = None  # import of these now raises ImportError
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_TEST_TOOLS + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60)


def test_dms_testing_imports_and_runs_a_testbed_without_pytest_or_hypothesis() -> None:
    result = run_python("""
        import trio
        import dms.testing
        from dms.testing import GrantGraph, grant, open_testbed

        async def main():
            async with open_testbed(2) as testbed:
                grant(testbed[0], testbed[1], "/shop/order")
        trio.run(main)
        assert "hypothesis" not in {m for m in sys.modules if sys.modules[m] is not None}
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_pieces_that_need_the_test_tools_say_so_when_used() -> None:
    result = run_python("""
        import dms.testing
        for name in ("network", "AuthorizationMachine"):
            try:
                getattr(dms.testing, name)
            except ImportError as exc:
                print(name, "needs", exc.name)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["network needs pytest",
                                          "AuthorizationMachine needs hypothesis"]


def test_the_fixtures_load_as_a_pytest_plugin(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["dms.testing"]\n')
    (tmp_path / "test_plugin.py").write_text(textwrap.dedent("""
        async def test_network_is_three_nodes(network, autojump_clock):
            assert len(network.nodes) == 3
    """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "trio_mode=true",
         str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
