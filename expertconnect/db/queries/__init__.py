"""SQL lives here and nowhere else: one module per table group. Every function takes `conn`
first (a Database or an asyncpg Connection), runs one statement and returns dict | None,
list[dict] or a scalar; the name says which (get_, list_, insert_, update_, delete_, count_)."""
