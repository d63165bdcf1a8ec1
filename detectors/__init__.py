"""Pure image-processing detectors (scikit-image style).

Arrays in, arrays or plain records out: no file, network or global state.
Parameters are in physical units (metres, reflectance, dB, probability of
false alarm) with documented defaults.
"""

#: Version of the detection methods; part of every output's parameters, so a change
#: here makes the detect stage recompute its outputs.
__version__ = "0.5.0"
