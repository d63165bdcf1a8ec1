"""berthwatch: port activity evidence from free Sentinel-1 and Sentinel-2 imagery.

The source folders ``pipeline/`` and ``detectors/`` (plus the data folders
``aois/``, ``claims/`` and ``scenarios/``) are installed as subpackages of this one.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("berthwatch")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
