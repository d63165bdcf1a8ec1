"""The method and limits of the inference in words, generated from the parameters actually used."""

from __future__ import annotations

from .inference import ShuttleModel
from .params import AnalysisParams


def method_text(inf: dict, p: AnalysisParams, m: ShuttleModel | None = None) -> str:
    m = m or ShuttleModel(call_days=p.call_days + 1.0)
    per = lambda rates: " or ".join(f"1 in {1 / r:.0f} days" for r in rates)
    others = " or ".join(f"{r:g} a day staying {stay:g} days" for r, stay in m.other_regimes)
    return (
        f"Each usable image gives the number of large vessels (>= {p.large_vessel_m:g} m) at berth at each port. "
        f"A hidden Markov model follows up to {m.max_ships} shuttle ship(s) day by day (out of service, at the "
        f"origin berth, at sea, at the destination berth, at sea back; calls last {m.call_days:g} days on average "
        f"and at least 2, a transit ends the next day with probability {m.transit_next_day:g} and then "
        f"{m.transit_hazard:g} a day) and up to {m.max_other} other large ships per port (arriving {others}). A berthed ship is found (as a vessel of >= 80 m) with probability {p.p_detect_s2:g} (Sentinel-2) or {p.p_detect_s1:g} "
        f"(Sentinel-1) times the image's clear fraction; false vessels appear {' or '.join(f'{x:g}' for x in p.false_alarms_per_date)} "
        f"times per image on average (both averaged over). The forward algorithm (Rabiner 1989) sums exactly over every hidden history and "
        f"counts the shuttle's departures from the origin in the period. How often a ship joins the shuttle "
        f"(in the window {per(m.start_in_window)}, outside it {per(m.start_outside)}, independently), how often "
        f"it leaves after a call (in the window {' or '.join(f'{x:g}' for x in m.leave_in_window)}, outside "
        f"{' or '.join(f'{x:g}' for x in m.leave_outside)}) and the other traffic "
        f"are averaged by their marginal likelihood (Kass & Raftery 1995). Between consecutive well-observed "
        f"Sentinel-2 dates, the destination yard rising (cargo unloaded) has probability "
        f"{p.yard_rise_given_arrival:g} if a ship arrived and {p.yard_rise_without_arrival:g} if none did, and the "
        f"origin yard falling (cargo loaded) {p.yard_fall_given_departure:g} if a ship left and "
        f"{p.yard_fall_without_departure:g} if none did; the chain carries, for each yard, whether such an event "
        f"happened since it was last observed. TEU = voyages x cargo per voyage: the measured yard change of a tracked voyage, or "
        f"uniform from 0 to the capacity of {inf.get('capacity_teu')} TEU ({inf.get('capacity_source')}). "
        f"The same model without any image gives the prior; a verdict is decided when the images favour one "
        f"side by a Bayes factor of at least {p.decide_bayes_factor:g} (posterior odds over prior odds; 'strong' "
        f"on Jeffreys' scale) and that side's posterior probability exceeds 0.5; to rule voyages out, the images "
        f"must favour none over even a single voyage by that factor.")


def limits_text(inf: dict, p: AnalysisParams) -> str:
    return (
        "The model counts ships at berths, not cargo: a ship that calls without loading counts as a voyage, and "
        "TEU rest on yard changes only where a tracked voyage has them. Vessel lengths are not used to tell the "
        "shuttle from other traffic. Calls shorter than the gap between usable images can be missed; the "
        "intervals include that. A yard change is taken as cargo of a call with the probabilities above: rail "
        "or road traffic that moves a yard by more than the detector's step limit, or cargo that arrives and "
        "leaves within one gap between clear images, is evidence the model reads wrongly. Detection and false-alarm rates are measured on simulated scenes (the demo "
        "and calibration scenarios), not on these ports' real imagery. Imagery cannot show what the containers hold.")
