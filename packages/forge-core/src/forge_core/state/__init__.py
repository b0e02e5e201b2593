"""Routing state shared across processes (circuits, health, load, budgets): in memory or on Redis."""
