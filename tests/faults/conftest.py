"""The fault world (helpers_faults.World: shards, teacher, SAE, label cache, a finished run),
built once per session for every module here; tests damage copies of it, never the world.
The kill loops' warm `cocomix-lens` (warm_cli) is stopped after each module that started one."""

import pytest
import warm_cli
from helpers_faults import World, build_world


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    return build_world(tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def _stop_warm_cli():
    yield
    warm_cli.close_all()
