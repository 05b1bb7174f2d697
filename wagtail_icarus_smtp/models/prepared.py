"""Statements that a request runs on every hand-over, compiled once.

Django turns a queryset into SQL each time it runs it; for the settings row with its
live configuration that takes longer (~0.4 ms) than SQLite or PostgreSQL need to run
the statement. A ``Prepared`` query keeps the SQL, its parameters and how to build its
rows from the first run, per thread and database (a compiler belongs to one
connection), and only runs the statement again: the same rows, one statement, every
time read fresh from the database. Rows only (``values_list``): the caller builds
model instances with ``Model.from_db`` where it needs them. Only for querysets without
values that change between runs (no ``now()``, no arguments): the parameters are
those of the first run.

``PreparedInsert`` does the same for ``bulk_create`` of new rows whose primary key
the caller does not need: the ``INSERT`` is built once, each row's values are
prepared by its fields as Django prepares them.
"""

import threading

from django.db import connections, router


class Prepared:
    """``build()`` returns a ``values_list`` queryset; ``rows()`` runs it and returns
    its rows as tuples, with Django's conversions (dates, JSON, booleans) applied."""

    def __init__(self, build):
        self.build = build
        self._local = threading.local()

    def _compiled(self):
        compiled = getattr(self._local, "compiled", None)
        if compiled is None:
            queryset = self.build()
            compiler = queryset.query.get_compiler(using=queryset.db)
            sql, params = compiler.as_sql()
            columns = [column[0] for column in compiler.select[: compiler.col_count]]
            converters = compiler.get_converters(columns)
            compiled = (queryset.db, compiler, converters, sql, tuple(params))
            self._local.compiled = compiled
        return compiled

    def rows(self):
        alias, compiler, converters, sql, params = self._compiled()
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters:
            return [tuple(row) for row in compiler.apply_converters(rows, converters)]
        return [tuple(row) for row in rows]


class PreparedInsert:
    """``run(objs)`` inserts new ``model`` instances in one statement, as
    ``bulk_create`` would (``pre_save`` and ``get_db_prep_save`` of every field but
    the automatic primary key), without building the ``INSERT`` each time."""

    def __init__(self, model):
        self.model = model
        self.fields = [field for field in model._meta.concrete_fields if not field.primary_key]
        self._local = threading.local()

    def _sql(self, connection, count):
        """The ``INSERT`` of ``count`` rows (the one-row statement is kept)."""
        single = getattr(self._local, connection.alias, None)
        if count == 1 and single is not None:
            return single
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in self.fields)
        values = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        sql = (
            f"INSERT INTO {quote(self.model._meta.db_table)} ({columns}) "  # noqa: S608
            f"VALUES {', '.join([values] * count)}"  # quoted names; values are parameters
        )
        if count == 1:
            setattr(self._local, connection.alias, sql)
        return sql

    def run(self, objs):
        connection = connections[router.db_for_write(self.model)]
        size = max(connection.ops.bulk_batch_size(self.fields, objs), 1)
        with connection.cursor() as cursor:
            for start in range(0, len(objs), size):
                batch = objs[start : start + size]
                params = [
                    field.get_db_prep_save(field.pre_save(obj, True), connection)
                    for obj in batch
                    for field in self.fields
                ]
                cursor.execute(self._sql(connection, len(batch)), params)
