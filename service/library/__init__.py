"""The library: every finished recognition kept in a database (SQLite by default, PostgreSQL by DATABASE_URL),
listed, searched across videos, and the same video with the same settings answered from it at once."""
