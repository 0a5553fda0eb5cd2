from tests.try_it.conftest import make_harness

__all__ = ["make_harness"]
