"""Detector validation on real labelled datasets."""
