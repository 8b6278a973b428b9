"""Session fixture ``azurite``: one Azurite Table service on a free port for the whole test run.

Import it from ``tests/conftest.py`` (``from tests.azurite_fixture import azurite``) or from a
package's own conftest. Tests isolate themselves by table name, not by restarting Azurite.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.azurite import AzuriteHandle, start_azurite


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteHandle]:
    with start_azurite(tmp_path_factory.mktemp("azurite")) as handle:
        yield handle
