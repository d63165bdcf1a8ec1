"""Simulation scenarios shipped with berthwatch (YAML)."""
