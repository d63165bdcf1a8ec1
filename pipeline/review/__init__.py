"""Helpers of the review notebooks, one module per notebook.

:mod:`.detections` (``01_review_detections``), :mod:`.activity`
(``02_activity_vs_claim``) and :mod:`.validation` (``03_detector_validation``);
:mod:`.common` holds what they share (reading outputs, image chips, figures).
"""
