"""Reads and writes where Django's own ways cost the most on PostgreSQL: timestamps loaded by a
pure-Python loader (~5 µs each), bulk_update's CASE expressions (built and resolved in Python, ~0.2 ms
a row), and a write of two rows in a transaction (four round trips). On other databases (SQLite)
Django's ways are used."""

from contextlib import nullcontext

from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.sql import subqueries as sql


def values_rows(queryset, fields) -> list[tuple]:
    """The rows of `queryset.values_list(*fields)`. On PostgreSQL the driver's compiled loader reads
    the timestamps; Django sets the session's time zone to UTC, so the values are the same."""
    query = queryset.values_list(*fields)
    if connection.vendor != "postgresql":
        return list(query)
    from psycopg.types.datetime import TimestamptzLoader

    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(sql, params)
        return cursor.fetchall()


def update_by_id(model, objs: list, fields: list[str]) -> None:
    """Like `model.objects.bulk_update(objs, fields)`: rows gone meanwhile are not brought back. On
    PostgreSQL, one UPDATE joined to arrays of the new values."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, fields, batch_size=500)
        return
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    names = ", ".join(quote(field.column) for field in columns)
    arrays = ", ".join(f"%s::{field.db_type(connection).split('(')[0]}[]" for field in columns)
    sets = ", ".join(f"{quote(field.column)} = new.{quote(field.column)}" for field in columns)
    pk = model._meta.pk
    sql = (f"UPDATE {quote(model._meta.db_table)} AS old SET {sets} "
           f"FROM UNNEST(%s::{pk.db_type(connection)}[], {arrays}) AS new(id, {names}) "
           f"WHERE old.{quote(pk.column)} = new.id")
    params = [[obj.pk for obj in objs]] + [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in objs] for field in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# One write, one round trip ------------------------------------------------------------------
# psycopg sends BEGIN and COMMIT as round trips of their own, so a transaction of two statements costs
# four. On PostgreSQL each write below is one statement in autocommit (a data-modifying WITH): atomic,
# and a quarter of the waiting. Inside a transaction, a savepoint keeps a failed write from breaking it.


def insert_with_child(obj, child, link: str) -> None:
    """Insert `obj` (a new instance), and `child` (a new instance of another model) whose field `link`
    points to it, both or neither. Sets `obj.pk` as `obj.save()` would; raises IntegrityError as it would."""
    if connection.vendor != "postgresql":
        with transaction.atomic():
            obj.save()
            setattr(child, link, obj)
            child.save()
        return
    meta = obj._meta
    query = sql.InsertQuery(type(obj))
    query.insert_values([f for f in meta.local_concrete_fields if not f.primary_key], [obj])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = [meta.pk]
    [(insert, params)] = compiler.as_sql()
    columns, values, value_params = _row_values(child, skip=child._meta.get_field(link))
    quote = connection.ops.quote_name
    link_column = quote(child._meta.get_field(link).column)
    statement = (f"WITH created AS ({insert}), "
                 f"child AS (INSERT INTO {quote(child._meta.db_table)} ({link_column}, {columns}) "
                 f"SELECT created.{quote(meta.pk.column)}, {values} FROM created) "
                 f"SELECT {quote(meta.pk.column)} FROM created")
    with _savepoint_if_in_transaction(), connection.cursor() as cursor:
        cursor.execute(statement, [*params, *value_params])
        obj.pk = cursor.fetchone()[0]
    obj._state.adding, obj._state.db = False, connection.alias
    setattr(child, link, obj)


def update_then_insert(model, pk, conditions: Q, values: dict, row, *, read_back: bool = True):
    """Update the row `pk` of `model` with `values` (field names to values or expressions) only if it
    meets `conditions`; if it did, insert `row` (a new instance) too. Returns the row as updated (or,
    without `read_back`, True), or None when it did not meet the conditions (and nothing was written)."""
    if connection.vendor != "postgresql":
        with transaction.atomic():
            if not models.QuerySet(model).filter(conditions, pk=pk).update(**values):
                return None
            row.save()
            return model._base_manager.get(pk=pk) if read_back else True
    query = models.QuerySet(model).filter(conditions, pk=pk).query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    compiler = query.get_compiler(connection=connection)
    compiler.pre_sql_setup()
    update, params = compiler.as_sql()
    quote = connection.ops.quote_name
    fields = model._meta.concrete_fields if read_back else [model._meta.pk]
    returned = ", ".join(quote(field.column) for field in fields)
    columns, row_values, row_params = _row_values(row)
    statement = (f"WITH updated AS ({update} RETURNING {returned}), "
                 f"inserted AS (INSERT INTO {quote(row._meta.db_table)} ({columns}) SELECT {row_values} "
                 f"FROM updated) SELECT {returned} FROM updated")
    with _savepoint_if_in_transaction():
        if read_back:
            return next(iter(model._base_manager.raw(statement, [*params, *row_params])), None)
        with connection.cursor() as cursor:
            cursor.execute(statement, [*params, *row_params])
            return True if cursor.fetchone() else None


def _row_values(row, skip=None) -> tuple[str, str, list]:
    """A new instance's columns, its typed placeholders and its values, as `row.save()` would write them."""
    fields = [f for f in row._meta.local_concrete_fields if not f.primary_key and f is not skip]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(f"%s::{field.db_type(connection)}" for field in fields)
    values = [field.get_db_prep_save(field.pre_save(row, add=True), connection) for field in fields]
    return columns, placeholders, values


def _savepoint_if_in_transaction():
    return transaction.atomic() if connection.in_atomic_block else nullcontext()
