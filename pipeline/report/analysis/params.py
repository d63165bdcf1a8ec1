"""Parameters of the analysis and the names of its verdicts."""

from __future__ import annotations

from dataclasses import dataclass

from ...core.contracts import LARGE_VESSEL_M

CONSISTENT, INCONSISTENT, INSUFFICIENT = "consistent", "inconsistent", "insufficient_data"
#: Metres per degree of latitude; positions are compared on a local equirectangular
#: plane, whose error over a port (a few km) is far below the 10 m pixel.
M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class AnalysisParams:
    """Parameters of the analysis, in physical units; all are shown in the report.

    Attributes
    ----------
    large_vessel_m : float
        Minimum length of a vessel that makes a port call (default 80 m: coastal
        Ro-Ro and general-cargo ships such as Angara are 100-140 m; tugs, barges
        and fishing boats are shorter).
    min_clear : float
        Clear (observed) fraction an AOI needs on a date for the date to be
        *usable*: a vessel missing from a mostly cloudy scene is not a departure.
    match_distance_m : float
        Largest centroid shift of the same berthed ship between two dates
        (mooring shifts plus the geolocation differences of S1 and S2).
    match_length_rel : float
        Largest relative length difference of the same ship between two dates.
    berth_shift_distance_m : float
        A large vessel gone from its berth and a vessel of compatible length
        (the ``voyage_length_*`` gate: two berths, two independent
        measurements) newly at another berth of the same AOI, on the same pair
        of consecutive usable observations, are one call that shifted berth
        when the berths are at most this far apart (default 3 km, a port's
        extent). Ships at Rajin unload at one pier, then move to another to
        load (RUSI, October 2023); split, such a call would invent a departure
        and an arrival. A departure and an unrelated arrival of a similar ship
        within one revisit are merged too: that is the price, kept small by
        ``berth_shift_max_gap_days``. 0 disables.
    berth_shift_max_gap_days : float
        Longest interval between the two observations of a berth shift
        (default 3 days). Shifting berth takes hours; over a longer interval
        one ship leaving and another arriving (a call of 2-5 days each) becomes
        as likely, and the pair is left as a departure and an arrival.
    transit_days : (float, float)
        Shortest and longest origin-destination transit, days, as the difference
        of observation dates (Rajin-Dunai is about 200 km by sea, under a day at
        10 knots; up to 5 days allows for waiting at anchor).
    voyage_length_rel, voyage_length_abs_m : float
        A departing and an arriving ship may be the same only if their lengths
        differ by at most ``max(rel * length, abs)``. The two lengths are
        independent measurements, often by different sensors. The detectors'
        relative length error of a 100-150 m ship is about 15 % (1 sigma; 16 %
        for Sentinel-2 and 11 % for Sentinel-1 on the demo scenario, i.e. a few
        10 m pixels at the ends of the outline), so the difference of two has a
        sigma of about 21 % and 0.4 keeps ~95 % of true pairs. A tighter gate
        rejects the right ship and leaves a wrong one unopposed and counted.
    call_days : float
        Typical duration of a port call to load or unload hundreds of containers,
        used to ask how likely the observation schedule was to see a call.
    min_voyage_confidence : float
        Voyages below this confidence are listed but not counted in the verdict.
    min_detect_probability : float
        Probability that the schedule would have revealed a voyage above which the
        absence of voyages counts as evidence against the claim.
    teu_per_container : (float, float)
        TEU of one container: 1 (20-ft box) to 2 (40-ft box).
    decide_bayes_factor : float
        A verdict is decided when the data favour one side by at least this
        Bayes factor (posterior odds over prior odds; default 10, "strong"
        evidence on Jeffreys' scale, Jeffreys 1961, appendix B; Kass &
        Raftery 1995 call 3-20 "positive") and the posterior probability of
        that side exceeds 0.5. ``make calibrate`` measures what this gives on
        random scenarios (contradictions, decisiveness). The Bayes
        factor, not the posterior alone, decides so that a prior (how often
        shuttles run) never decides a verdict that the images do not support:
        a window hidden by clouds stays insufficient_data.
    p_detect_s2, p_detect_s1 : float
        Probability that a large vessel at berth is detected on a clear
        Sentinel-2 / Sentinel-1 image (observation model of
        :mod:`.inference`; sources in ``inference.PROVENANCE``).
    false_alarms_per_date : (float, float)
        Mean false large vessels at berth per usable AOI-date: a quiet and a
        noisy port, averaged over by their marginal likelihood.
    yard_rise_given_arrival, yard_rise_without_arrival : float
        Probability that the destination yard's stack area is found to rise
        between two well-observed Sentinel-2 dates when a ship arrived between
        them, and when none did (observation model of :mod:`.inference`).
        0.4 and 0.05: measured 10 of 18 and 1 of 146 on the simulated truth of
        calibration seeds 1000-1019, rounded towards less informative (a rise
        then weighs 8 to 1 for an arrival, a quiet interval 0.63 to 1 against):
        rail clearance can cancel the unloading within one revisit, and on the
        demo, where Dunai also stages exports, the yard rose in 1 of 3
        intervals without an arrival. Equal values leave the yard out.
    yard_fall_given_departure, yard_fall_without_departure : float
        The same for a fall of the origin yard's stack area (cargo loaded)
        and a ship leaving the origin: measured 7 of 16 and 5 of 145 on the
        same seeds; 0.4 and 0.05 likewise.
    tonnes_per_teu : float
        Deadweight per TEU of cargo capacity (14 t: homogeneous loading at
        which container-ship capacities are quoted).
    default_capacity_teu : float
        Capacity of a voyage when the claim names no deadweight.
    """

    large_vessel_m: float = LARGE_VESSEL_M
    min_clear: float = 0.6
    match_distance_m: float = 150.0
    match_length_rel: float = 0.25
    berth_shift_distance_m: float = 3000.0
    berth_shift_max_gap_days: float = 3.0
    transit_days: tuple[float, float] = (1.0, 5.0)
    voyage_length_rel: float = 0.4
    voyage_length_abs_m: float = 15.0
    call_days: float = 2.0
    min_voyage_confidence: float = 0.5
    min_detect_probability: float = 0.8
    teu_per_container: tuple[float, float] = (1.0, 2.0)
    decide_bayes_factor: float = 10.0
    p_detect_s2: float = 0.75
    p_detect_s1: float = 0.8
    false_alarms_per_date: tuple[float, float] = (0.05, 0.4)
    tonnes_per_teu: float = 14.0
    yard_rise_given_arrival: float = 0.4
    yard_rise_without_arrival: float = 0.05
    yard_fall_given_departure: float = 0.4
    yard_fall_without_departure: float = 0.05
    default_capacity_teu: float = 500.0

    @property
    def p_detect(self) -> dict[str, float]:
        from ...core.contracts import S1, S2

        return {S2: self.p_detect_s2, S1: self.p_detect_s1}

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
