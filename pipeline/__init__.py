"""Pipeline stages, I/O and the command-line interface."""
