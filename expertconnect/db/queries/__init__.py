"""SQL lives here and nowhere else: one module per table group. Every function takes `conn`
first (a db.Executor: the Database or an asyncpg Connection), runs one statement and returns
Row | None, list[Row] or a scalar; the name says which (get_, list_, insert_, update_, delete_,
count_)."""

from expertconnect.ids import INT64_MAX

# The list cursor when the client gives none: every id is below it. A bound rather than NULL
# keeps `id < $n` an index condition in every plan.
NO_CURSOR = INT64_MAX
