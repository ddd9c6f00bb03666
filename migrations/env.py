"""Alembic environment: async, on cardcore's own database settings."""

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from cardcore.config import get_settings
from cardcore.db import database_url
from cardcore.models import Base
from cardcore.models.ids import PrefixedId

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    # `cardcore migrate` and the tests hand over the URL they use; plain `alembic` resolves it
    # from the settings like every other cardcore process.
    url = config.attributes.get("url")
    if url is None:
        url = database_url(get_settings())
    return url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else url


def render_item(type_: str, obj: object, autogen_context: Any) -> str | bool:
    # Migrations must not import application code that may change later: prefixed ids are
    # plain uuid columns as far as the schema is concerned.
    if type_ == "type" and isinstance(obj, PrefixedId):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "postgresql.UUID(as_uuid=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    # A failing data migration must not print the rows it was moving (see db.create_engine).
    engine = create_async_engine(_url(), hide_parameters=True)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
