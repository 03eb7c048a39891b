"""The ledger: the trading history in SQL (SQLite by default, PostgreSQL by URL).

schema.py has the tables, db.py opens a database and migrates it (`open_ledger`, `upgrade`).
The readers: queries.py (fills, equity), profit.py (profit per bot and per period),
aggregate.py (exact money sums in SQL on both databases).
"""
