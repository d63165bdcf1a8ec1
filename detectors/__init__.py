"""Pure image-processing detectors (scikit-image style).

Arrays in, arrays or plain records out: no file, network or global state.
Parameters are in physical units (metres, reflectance, dB, probability of
false alarm) with documented defaults.
"""
