"""Every number the detector decides with, and where it comes from (SCIENCE.md unless said otherwise).

docs/detection.md explains how they are used and what they cost in recall and precision.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- gait (SCIENCE.md, "Speeds and stride") -----------------------------------------------------------------

# Backward walk-to-run transition at 1.63 +/- 0.11 m/s (Hreljac et al. 2005), and a cadence above ~140
# steps/min (70 per leg, Strava's unit) says running at any speed.
RUN_SPEED_M_S = 1.6
RUN_CADENCE_PER_LEG = 70.0
# The samples are modelled by gait: running cadences (at or above this) and walking ones. A little below
# the running rule, so that a slow jog's cadence stays with the running.
GAIT_SPLIT_CADENCE = 66.0

# --- which samples say anything -----------------------------------------------------------------------------

STOP_SPEED_M_S = 0.5  # slower is a pause (or standing at a crossing), never an effort
MIN_CADENCE_PER_LEG = 30.0  # lower is no step data (0 = not recorded, or stopped)
SPEED_SPIKE_FACTOR = 1.8  # GPS spikes: speeds above 1.8 x the median moving speed are clipped
CADENCE_SPIKE_FACTOR = 1.5  # footpod or wrist glitches, likewise
SMOOTH_HALF_S = 3.0  # centred moving average over +/- 3 s: enough against sample noise, edges stay sharp
MIN_SPAN_S = 180.0  # a shorter recording has no forward running to compare with
MIN_USABLE_SAMPLES = 60
EDGE_S = 30.0  # the first and last 30 s of a recording (GPS settling, pressing stop) hold no effort
MAX_GRADE_PCT = 10.0  # steeper samples say nothing of the stride (short steps are normal on a steep climb)

# --- the stride model (stride.py) ---------------------------------------------------------------------------

# Backward against the athlete's forward running around it: speed x0.5-0.8 of the forward level (self-chosen
# backward speeds are 60-70% of forward: Sterzing 2016, KU-HAR), cadence held or higher (shorter steps at a
# higher step frequency: Cavagna 2012, Laufer 2005). The box is a little wider than those ranges: it is
# smoothed by the sample noise anyway.
BACKWARD_SPEED_RATIO = (0.45, 0.85)
BACKWARD_CADENCE_RATIO = (0.93, 1.14)
# A forward slowdown keeps to the athlete's own stride (cadence against speed): a small share of the forward
# density, spread over slower speeds, so that one the recording does not show is not taken for backward.
SLOWDOWN_SHARE = 0.05
SLOWDOWN_SPAN = 1.0  # in log speed: down to about a third of the forward speeds
# Elasticity of cadence with speed in forward running (d log cadence / d log speed): 0 is a runner who holds
# cadence whatever the pace, about 0.25 is typical; the fit is kept inside these bounds.
CADENCE_ELASTICITY = (0.0, 0.45)
# When the activity's own speeds vary too little to say: low, so that a slowdown at a held cadence is not
# explained away as forward (the forward slowdown's share assumes a falling cadence).
DEFAULT_CADENCE_ELASTICITY = 0.1125
MIN_MODEL_SAMPLES = 120  # forward samples of a gait needed before its model is trusted
# Log speed per grade percent, fitted on the forward running and kept inside these bounds: uphill slows, a
# descent never makes a runner more than about 3% faster per percent.
GRADE_SPEED_SLOPE_UP = (-0.06, 0.0)
GRADE_SPEED_SLOPE_DOWN = (-0.03, 0.03)

# --- segmentation (segment.py) ------------------------------------------------------------------------------

# Neighbouring samples are not independent (the device smooths, the runner holds a pace): evidence is counted
# once per this many seconds.
EVIDENCE_S = 6.0
# A change of state (forward to backward or back) must pay this much evidence, in nats: a 20-s stride with a
# clear signal pays it easily, noise does not.
SWITCH_NATS = 3.0
MERGE_GAP_S = 20.0  # efforts closer than this are one (a glance over the shoulder, a GPS wobble)
# Turning round is abrupt: the change of speed between forward running and the block happens within this
# many seconds of its edge (a device smooths speed over a few), where a runner easing into a cool-down jog or
# a climb takes a minute or more.
EDGE_WINDOW_S = 12.0
# A block starting within 30 s of a stop, a walk or a recording gap (5 s of it at least) is a restart when its
# speed ramps up: the device's speed lags the feet (the cadence is back at once).
STOP_BEFORE_S = 30.0
STOP_MIN_S = 5.0
SIDE_S = 180.0  # "the forward running around it": up to 3 minutes before and after an effort
MIN_SIDE_S = 20.0

# --- plausibility (SCIENCE.md: backward records are about 4.9 m/s over a mile, 3.15 m/s over a marathon) ----

MAX_BACKWARD_SPEED_M_S = 4.5
LONG_FAST_S = 45 * 60.0
LONG_FAST_SPEED_M_S = 3.0

# --- the whole activity -------------------------------------------------------------------------------------

# Tagged streams with no backward block are "uniform" (one kind of locomotion from start to finish, nothing
# forward to compare with) when their minute-by-minute speeds stay within this ratio (90th over 10th
# percentile) and their cadences within the next; then the whole activity is the effort.
UNIFORM_BLOCK_S = 60.0
UNIFORM_SPEED_SPREAD = 1.3
UNIFORM_CADENCE_SPREAD = 1.12
# ... and only when their steps are short for their speed, as backward steps are (SCIENCE.md's working
# assumption: 60-80% of a forward step): at most this share of a typical forward step at the same speed.
# Uniform streams with forward-length steps show forward running from start to finish, not a backward
# session. Typical forward steps (working assumption, not in SCIENCE.md: common running and walking
# cadences, about 155-175 and 95-120 steps a minute), in metres, a + b x speed:
SHORT_STEP_SHARE = 0.85
FORWARD_RUN_STEP = (0.17, 0.30)
FORWARD_WALK_STEP = (0.29, 0.34)

# --- confidence ---------------------------------------------------------------------------------------------

# First-version confidences, set by hand; to be replaced by values measured on labelled activities.
LAP_CONFIDENCE_TAGGED = 0.9  # a lap named backward inside an activity that is also tagged
LAP_CONFIDENCE = 0.8  # a lap named backward, no tag on the activity
WHOLE_CONFIDENCE_MEASURED = 0.85  # a tagged activity with streams or distance may hold forward parts
WHOLE_CONFIDENCE_MANUAL = 0.9  # a tagged manual or trainer session is usually one kind of effort throughout
WORDS_CONFIDENCE = 0.7  # no streams: the athlete's own distance or duration, placed nowhere
STREAM_CONFIDENCE_MAX = 0.97


@dataclass(frozen=True)
class Profile:
    """What a stream segment needs to be published, for one level of evidence."""

    min_duration_s: float
    min_distance_m: float
    min_evidence: float  # mean log-likelihood ratio (backward over forward) per EVIDENCE_S of the segment
    max_speed_ratio: float  # against the forward running around it
    min_cadence_ratio: float
    max_abs_grade: float  # mean grade of the segment, percent
    min_sharpness: float  # both edges abrupt (segment.Block.sharpness): turning round, not easing off
    both_sides: bool  # forward running before AND after it (a dip, not a change of pace)
    needs_grade: bool  # without a grade stream a climb cannot be ruled out


# A block that starts just after a stop and whose speed ramps up by more than this is a restart (the
# device's speed lagging), not an effort.
MAX_RESTART_RAMP = 0.15

# Untagged: only a clear effort; report nothing when in doubt.
AUTO = Profile(
    min_duration_s=25.0, min_distance_m=25.0, min_evidence=1.0, max_speed_ratio=0.84, min_cadence_ratio=0.93,
    max_abs_grade=8.0, min_sharpness=0.6, both_sides=True, needs_grade=True,
)  # fmt: skip
# Tagged: the athlete says there is backward locomotion; the streams say where.
TAGGED = Profile(
    min_duration_s=15.0, min_distance_m=15.0, min_evidence=0.5, max_speed_ratio=0.87, min_cadence_ratio=0.9,
    max_abs_grade=MAX_GRADE_PCT, min_sharpness=0.6, both_sides=False, needs_grade=False,
)  # fmt: skip
