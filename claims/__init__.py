"""Claims shipped with berthwatch (YAML)."""
