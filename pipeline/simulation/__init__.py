"""The simulated world of the embedded sample: only the demo and the tests use it.

:mod:`.scenario` (what happens: port calls, yard events, acquisitions),
:mod:`.layout` (where: berths, yards, land cover of each port),
:mod:`.world` (the state of a port on a day), :mod:`.render` (shared
rasterisation), :mod:`.simulate_s2` and :mod:`.simulate_s1` (the images) and
:mod:`.sample` (a static STAC catalog of them with the truth).
"""
