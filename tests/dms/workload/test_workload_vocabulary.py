import pytest

from dms.workload import AllocationRecovery, Recovery, SupervisorStrategy


@pytest.mark.parametrize(
    ("allocation", "recovery", "strategy"),
    [
        (AllocationRecovery.STAY_DOWN, Recovery.STAY_DOWN, None),
        (AllocationRecovery.ONE_FOR_ONE, Recovery.RESTART, SupervisorStrategy.ONE_FOR_ONE),
        (AllocationRecovery.ONE_FOR_ALL, Recovery.RESTART, SupervisorStrategy.ALL_FOR_ONE),
        (AllocationRecovery.REST_FOR_ONE, Recovery.RESTART, SupervisorStrategy.REST_FOR_ONE),
    ],
)
def test_nunet_allocation_recovery_is_a_recovery_and_a_strategy(
    allocation: AllocationRecovery, recovery: Recovery, strategy: SupervisorStrategy | None
) -> None:
    assert allocation.recovery is recovery
    assert allocation.strategy is strategy


def test_the_vocabulary_imports_no_package_that_uses_it() -> None:
    import ast
    import pathlib

    import dms.workload as package

    source = pathlib.Path(package.__file__).with_name("_vocabulary.py").read_text()
    imported = {
        node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)
    }
    assert not {m for m in imported if m and m.startswith("dms.")}
