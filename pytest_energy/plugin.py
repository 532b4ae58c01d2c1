"""pytest wiring (placeholder while the core is written)."""
