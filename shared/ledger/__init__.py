"""The ledger: the trading history in SQL (SQLite by default, PostgreSQL by URL).

schema.py has the tables, db.py opens a database and migrates it (`open_ledger`, `upgrade`).
"""
