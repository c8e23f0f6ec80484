"""Former home of the Athena SQL, split into trail/layout.py (`TrailLayout`, the name checks),
athena/schema.py (the table) and athena/queries.py (the queries). Kept only for the imports in
app/cli/backfill.py and app/reconcile_function.py: import from the new modules, and delete this
file once nothing imports it."""

from __future__ import annotations

from ..trail.layout import SqlInputError as SqlInputError
from ..trail.layout import TrailLayout as TrailLayout
from .schema import Partitioning as Partitioning
from .schema import Projection as Projection
from .schema import TableSpec as TableSpec
