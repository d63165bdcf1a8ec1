"""The foundations every stage shares: AOIs and claims, the file contracts
between stages, incremental runs (manifest, lock, atomic writes), run options,
process pools, GeoJSON I/O and the one-line errors.

Nothing here imports a stage, the simulation or ``detectors``.
"""
