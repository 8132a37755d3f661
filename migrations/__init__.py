"""Alembic migrations, shipped inside the package as `clmbot.migrations`."""
