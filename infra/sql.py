"""Prepared SQL for the hot paths (the annotation queue's next and submit, token auth).

Why: a profile of next + submit (bench/annotation_load.py --profile, issue 14) showed about
half of the server's Python time in Django's ORM building and compiling queries and
instantiating models, and PostgreSQL spending most of its time per statement parsing and
planning the same few statements again. Here the statements are written once and, on
PostgreSQL, prepared on each connection (psycopg's server-side binding with prepare=True):
the server parses and plans each of them once per connection, and Python sends parameters.

What stays as with Django's cursor: the statements go through Django's CursorWrapper, so
errors are Django's (IntegrityError ...), `connection.execute_wrapper` hooks see them, and
they run in the current transaction. While queries are logged (DEBUG, CaptureQueriesContext,
assertNumQueries) the same SQL runs unprepared through Django's own cursor, so that the log
shows each statement with its values (Django cannot render a prepared one). On SQLite (the
embedded default) the same SQL always runs through Django's normal cursor.

Rules for SQL given here: `%s` placeholders, `%%` for a literal percent, named columns only
(never `*`: a prepared statement's result shape must not change under a migration).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models


def _prepared_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparedCursor(ServerBindingCursor):
        """Server-side binding, and every statement prepared (Django leaves prepare_threshold
        at None, which would never prepare on its own)."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparedCursor


_PREPARED_CURSOR = None


def cursor():
    """A cursor for hot-path statements: prepared on PostgreSQL, Django's own elsewhere.

    Use as a context manager, like connection.cursor(). The connection is looked up once here:
    every attribute read through django.db.connection goes through a thread-local proxy, and
    those lookups were a tenth of next + submit's Python time in a profile.
    """
    global _PREPARED_CURSOR
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql" or conn.queries_logged:
        return conn.cursor()
    if _PREPARED_CURSOR is None:
        _PREPARED_CURSOR = _prepared_cursor_class()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    # Django's wrapper: execute wrappers, error mapping, the broken-transaction check.
    return conn.make_cursor(_PREPARED_CURSOR(conn.connection))


def one(sql: str, params: Sequence[Any]) -> tuple | None:
    """The first row of a statement, or None."""
    with cursor() as c:
        c.execute(sql, params)
        return c.fetchone()


def all_rows(sql: str, params: Sequence[Any]) -> list[tuple]:
    with cursor() as c:
        c.execute(sql, params)
        return c.fetchall()


def execute(sql: str, params: Sequence[Any]) -> int:
    """Run a statement; the number of rows it changed."""
    with cursor() as c:
        c.execute(sql, params)
        return c.rowcount


def loaded(model: type[models.Model], **values: Any) -> models.Model:
    """A model instance as if the ORM had loaded these columns (by attname) from a raw row; the
    others are deferred (read on first access).

    The values go through the converters the ORM applies to the same columns (SQLite's text
    datetimes and 0/1 booleans, JSON columns that Django's PostgreSQL adapters return as text),
    and Model.from_db gets them in field order.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    names, row = [], []
    for attname, col, convs in _load_plan(model, conn.vendor):
        if attname in values:
            value = values[attname]
            if value is not None:
                for conv in convs:
                    value = conv(value, col, conn)
            names.append(attname)
            row.append(value)
    if len(names) != len(values):
        raise ValueError(f"not columns of {model.__name__}: {sorted(set(values) - set(names))}")
    return model.from_db(conn.alias, names, row)


def loaded_row(model: type[models.Model], row: Sequence[Any]) -> models.Model:
    """loaded() for a row that holds every concrete column of `model`, in field order."""
    return loaded(model, **dict(zip(column_attnames(model), row, strict=False)))


@lru_cache(maxsize=256)
def column_attnames(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields)


@lru_cache(maxsize=256)
def _load_plan(model: type[models.Model], vendor: str) -> tuple[tuple[str, Any, tuple], ...]:
    """(attname, column expression, the ORM's converters) of each concrete field, in field order."""
    plan = []
    for field in model._meta.concrete_fields:
        col = field.get_col(model._meta.db_table)
        convs = tuple(connection.ops.get_db_converters(col)) + tuple(field.get_db_converters(connection))
        plan.append((field.attname, col, convs))
    return tuple(plan)


def _insert_fields(model: type[models.Model], given: tuple[str, ...] = ()) -> tuple[models.Field, ...]:
    """The columns an INSERT of `model` writes from the instance: all but an auto primary key
    and those `given` (attnames) as SQL."""
    return tuple(
        f
        for f in model._meta.concrete_fields
        if f.attname not in given and (not f.primary_key or not isinstance(f, models.AutoField))
    )


@lru_cache(maxsize=64)
def _insert_sql(model: type[models.Model], vendor: str) -> tuple[str, tuple[models.Field, ...]]:
    meta = model._meta
    fields = _insert_fields(model)
    q = connection.ops.quote_name
    sql = (
        f"INSERT INTO {q(meta.db_table)} ({', '.join(q(f.column) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {q(meta.pk.column)}"
    )
    return sql, fields


@lru_cache(maxsize=64)
def _insert_from_sql(model: type[models.Model], vendor: str, source: str, columns: tuple) -> tuple[str, tuple]:
    meta = model._meta
    q = connection.ops.quote_name
    given = dict(columns)
    fields = _insert_fields(model, tuple(given))
    names = [q(f.column) for f in fields] + [q(meta.get_field(a).column) for a in given]
    # Typed placeholders: in INSERT ... SELECT PostgreSQL takes an untyped parameter for text,
    # and a NULL of an integer column would then be refused.
    # (varchar without its length: an explicit cast would cut a long text, the column refuses it)
    exprs = [f"CAST(%s AS {re.sub(r'^varchar[(][0-9]+[)]$', 'varchar', f.db_type(connection))})" for f in fields]
    exprs += list(given.values())
    sql = (
        f"INSERT INTO {q(meta.db_table)} ({', '.join(names)}) SELECT {', '.join(exprs)}"
        f" FROM {source} RETURNING {q(meta.pk.column)}"
    )
    return sql, fields


def _insert_values(obj: models.Model, fields: tuple[models.Field, ...], *, send_signals: bool, what: str) -> list:
    """The values of a new row as Model.save prepares them (pre_save sent first, as save() does)."""
    from django.db.models.signals import pre_save

    cls = obj.__class__
    if not obj._state.adding:
        raise ValueError(f"{cls.__name__} {obj.pk} exists already: {what}() writes new rows only")
    conn = connections[DEFAULT_DB_ALIAS]
    if send_signals:
        pre_save.send(sender=cls, instance=obj, raw=False, using=conn.alias, update_fields=None)
    return [f.get_db_prep_save(f.pre_save(obj, True), connection=conn) for f in fields]


def inserted(obj: models.Model, pk: int, *, send_signals: bool = True) -> models.Model:
    """The end of an INSERT (insert(), or insert_from()'s statement run by the caller): the new
    key set, the row marked saved, post_save sent."""
    from django.db.models.signals import post_save

    conn = connections[DEFAULT_DB_ALIAS]
    obj.pk = pk
    obj._state.adding, obj._state.db = False, conn.alias
    if send_signals:
        post_save.send(
            sender=obj.__class__, instance=obj, created=True, update_fields=None, raw=False, using=conn.alias
        )
    return obj


def insert_from(obj: models.Model, *, source: str, columns: dict[str, str]) -> tuple[str, list]:
    """insert()'s INSERT as a member of a data-modifying WITH (PostgreSQL): one row per row of
    `source`, none when it is empty, with `columns` (attname -> SQL over `source`) taken
    from it and the other columns from `obj`. pre_save is sent now; the caller runs the
    statement, then calls inserted() with the new key.

    Why: a request that writes several rows guarded by one condition (submit: the item's
    counter, the annotation, its version, the lease, the campaign's and the annotator's
    counters) pays for each round trip in driver and server CPU; one statement writes them all.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    sql, fields = _insert_from_sql(obj.__class__, conn.vendor, source, tuple(columns.items()))
    return sql, _insert_values(obj, fields, send_signals=True, what="insert_from")


def insert(obj: models.Model, *, send_signals: bool = True) -> models.Model:
    """INSERT one new model instance and set its primary key, like obj.save() for a new row.

    Values are prepared by the fields as Model.save prepares them (auto_now and defaults
    applied by pre_save, get_db_prep_save), and pre_save/post_save are sent as save() sends
    them, so receivers (review's audit trail) see no difference. What it skips is compiling
    an InsertQuery per call. Model.save() overrides and full_clean are not run: callers are
    services that validated already.
    """
    conn = connections[DEFAULT_DB_ALIAS]
    sql, fields = _insert_sql(obj.__class__, conn.vendor)
    (pk,) = one(sql, _insert_values(obj, fields, send_signals=send_signals, what="insert"))
    return inserted(obj, pk, send_signals=send_signals)
