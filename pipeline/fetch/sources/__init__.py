"""Fetch sources: Sentinel Hub, STAC APIs and local static catalogs."""
