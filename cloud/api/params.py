"""Path parameters shared by the routes: database ids bounded to what SQL can store."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from cloud.api_types import SQL_INT_MAX
from ruang.contract import ID_PATTERN

# A larger number cannot name a row; refusing it in validation keeps it away from
# the driver, which would fail with an overflow (a 500) instead of a 404/422.
RowId = Annotated[int, Path(ge=1, le=SQL_INT_MAX, description="row id")]
NodeIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="edge node id")]
