"""Alembic's environment: the connection comes from service/library/database.py's migrate()."""

from alembic import context

from service.library.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
