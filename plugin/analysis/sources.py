"""Every figure a note may use, with its source and how sure it is: the facts behind the public /science page
and docs/science.md (a test holds the two together). The figures come from the constants that compute the
notes, so the page cannot drift from what the notes say.
"""

from __future__ import annotations

from dataclasses import dataclass

from plugin.analysis import energy, knee, notes, steps


@dataclass(frozen=True)
class Fact:
    claim: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Section:
    title: str
    facts: tuple[Fact, ...]


def _pct(x: float) -> str:
    return f"{round(x * 100)}%"


RUN_LOW, RUN_HIGH = energy.BACKWARD_RUN_FACTOR_RANGE
WALK_POINTS = energy.BACKWARD_WALK_FACTOR_POINTS
STEP_LOW, STEP_HIGH = steps.ASSUMED_STEP_RATIO

SECTIONS: tuple[Section, ...] = (
    Section(
        "Energy going forward",
        (
            Fact(
                "ACSM metabolic equations (VO2 in ml/kg/min, S in m/min, G fractional grade): running "
                "3.5 + 0.2 S + 0.9 S G, walking 3.5 + 0.1 S + 1.8 S G; 1 litre of oxygen is about 5 kcal.",
                "ACSM's Guidelines for Exercise Testing and Prescription, 11th edition (2021)",
                "standard; known to misestimate individuals",
            ),
            Fact(
                "Running costs about 1 kcal per kg per km above rest, nearly independent of speed; between "
                f"runners the cost per metre varies by about ±{_pct(energy.FORWARD_COST_SPREAD)}, and on "
                f"moderate descents it falls by up to about {_pct(1 - energy.DOWNHILL_FLOOR)} per metre.",
                "Margaria et al. 1963, J Appl Physiol 18:367; di Prampero 1986, Int J Sports Med 7:55; "
                "Lacour & Bourdin 2015, Eur J Appl Physiol 115:651",
                "well established",
            ),
        ),
    ),
    Section(
        "Energy going backward",
        (
            Fact(
                f"Backward running costs about {_pct(energy.BACKWARD_RUN_FACTOR - 1)} more per metre than "
                f"forward at the same speed, about x{RUN_LOW:.1f}-{RUN_HIGH:.1f} between runners (the ±6% "
                "often quoted is the standard error of 4 runners, not the spread).",
                "Wright & Weyand 2001, J Exp Biol 204:1805; Rasica, Porcelli, Minetti & Pavei 2020, "
                "Eur J Appl Physiol 120:2507",
                "measured, 4 and 8 runners",
            ),
            Fact(
                f"Backward walking costs about x{WALK_POINTS[0][1]:.1f} per metre at slow walking to "
                f"x{WALK_POINTS[-1][1]:.1f} at fast walking; at 3.5 mph the Compendium lists 6.0 MET "
                "backward (code 17320) against 4.3 MET forward (17200).",
                "Ainsworth et al., Compendium of Physical Activities (2011, Med Sci Sports Exerc 43:1575; "
                "2024 update); Flynn et al. 1994, Med Sci Sports Exerc 26:89; Hooper et al. 2004, "
                "JOSPT 34:65; Chaloupka et al. 1997, JOSPT 25:302",
                "uncertain: a note on a walk says so",
            ),
            Fact(
                "A note's range carries the spread between people of the backward factor and of the forward "
                "cost, combined: about ±20-25% for running, wider for walking. A figure without a distance "
                "is priced as a backward walk at 3.5 mph and says so.",
                "arithmetic on the rows above",
                "derived",
            ),
            Fact(
                "The host's own calorie figure: its method is unpublished and likely assumes forward motion.",
                "Strava API reference, DetailedActivity.calories",
                "method unknown",
            ),
        ),
    ),
    Section(
        "Gait",
        (
            Fact(
                "Backward locomotion above about 1.6 m/s, or above 140 steps a minute (70 per leg), is "
                "running, whatever the activity's words say.",
                "Hreljac et al. 2005, J Sports Sci Med 4:446",
                "measured",
            ),
        ),
    ),
    Section(
        "The kneecap",
        (
            Fact(
                f"At the same speed, peak kneecap (patellofemoral) compression was about "
                f"{_pct(-knee.PFJ_PER_STEP_CHANGE_RUNNING)} lower per step backward (3.4 vs 4.5 body "
                "weights), on average over 20 runners: not lower in every runner.",
                "Roos, Barton & van Deursen 2012, J Biomech 45:1656",
                "measured",
            ),
            Fact(
                "At self-selected speeds, 3.0 vs 5.6 body weights (5 joggers); much of it the slower speed.",
                "Flynn & Soutas-Little 1995, JOSPT 21:277",
                "measured, small sample",
            ),
            Fact(
                "At 1.0 m/s the directions were alike: forward 3.41 vs backward 3.51 body weights. Running "
                "only: it says nothing of walking, and a note on a walk makes no kneecap claim.",
                "Patellofemoral Joint Compressive Forces During Backward and Forward Running at the Same "
                "Speed, Old Dominion University physical therapy thesis, 1998",
                "thesis",
            ),
            Fact(
                "Per km the load is the load per step times the steps per km: a note says it only from the "
                "athlete's own backward and forward steps in the same activity.",
                "Willson et al. 2014, Clin Biomech 29:243 (per step vs per distance)",
                "derived",
            ),
        ),
    ),
    Section(
        "The myths",
        (
            Fact(
                f"“100 backward steps = 1,000 forward”: energy per step is cost per metre times step length. "
                f"With a backward step {_pct(STEP_LOW)}-{_pct(STEP_HIGH)} as long as a forward one (a "
                "working assumption; a note uses the athlete's own steps when it can measure them), a "
                "backward running step is worth about 0.7-1.2 forward steps.",
                "arithmetic on the rows above",
                "derived",
            ),
            Fact(
                "“One lap backward = six forward”: one backward lap costs about "
                f"{RUN_LOW:.1f}-{RUN_HIGH:.1f} forward laps running.",
                "arithmetic on the rows above",
                "derived",
            ),
            Fact(
                f"“{notes.MYTH_CALORIE_CLAIM_RUN}% more calories”: about +30-35% for running at the same "
                f"speed; “{notes.MYTH_CALORIE_CLAIM_WALK}% more” is in the range for walking, low for "
                "running.",
                "Wright & Weyand 2001; Rasica et al. 2020; Cavagna et al. 2011, Proc R Soc B 278:339 "
                "(“nearly 30% more”, a press summary)",
                "measured",
            ),
        ),
    ),
    Section(
        "Starting out",
        (
            Fact(
                "Build up gradually and walk backward before running it, on flat clear ground (coaching "
                "advice, not a study). Backward walking marks dizziness and balance problems, with or "
                "without vestibular disease: with those, severe arthritis, recent surgery or a neurological "
                "condition, see a clinician first.",
                "Davalos-Bichara et al. 2014, Gait Posture 40:499",
                "measured (the marker); advice",
            ),
        ),
    ),
)


def citations() -> list[str]:
    """Each source named on the page, once."""
    seen: dict[str, None] = {}
    for section in SECTIONS:
        for fact in section.facts:
            seen.setdefault(fact.source, None)
    return list(seen)
