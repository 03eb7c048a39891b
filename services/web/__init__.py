"""The web dashboard: a REST API under /api, server-sent events, the pages (docs/ARCHITECTURE.md)."""
