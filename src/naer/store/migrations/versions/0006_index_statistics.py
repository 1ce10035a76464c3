"""Statistics on the search index's columns together (PostgreSQL only).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

The index tables hold every parameter of every type in the same columns, so a condition such as
``resource_type = 'Task' AND param = 'intent' AND code = 'order'`` is far more common than the columns'
separate statistics suggest: PostgreSQL estimated 13 rows where there were 20,000 and chose nested loops
that probed the index once per row. Multivariate MCV lists and dependencies on the columns that are
always asked for together give it the right counts (the access policy's listing of a department's
citizens: 460 ms before, 150 ms after; docs/performance.md). ANALYZE fills them; the bulk load runs it.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATISTICS = {
    "st_search_token_columns": ("search_token", "resource_type, param, system, code"),
    "st_search_reference_columns": ("search_reference", "resource_type, param, target_type, target_id"),
    "st_resource_patient_columns": ("resource_patient", "resource_type, patient_id"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, (table, columns) in STATISTICS.items():
        op.execute(f"CREATE STATISTICS IF NOT EXISTS {name} (mcv, dependencies) ON {columns} FROM {table}")
        op.execute(f"ANALYZE {table}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in STATISTICS:
        op.execute(f"DROP STATISTICS IF EXISTS {name}")
