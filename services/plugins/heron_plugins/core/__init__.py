"""The plugins shipped with Heron (each declared in this package's entry points)."""
