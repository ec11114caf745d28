"""How long the inference log must keep a prediction for the outcomes report to still use it.

An outcome joins the latest prediction for its employee before its date, within the report's horizon
(``attrition.outcomes.join``), and the report runs monthly: a prediction deleted sooner than the
horizon plus one month after it was made can be the one a later outcome needed, and the report then
counts that outcome as unjoined, with no other sign. A shorter retention stays allowed (a
data-protection policy may demand it), with a warning that names both settings."""

from __future__ import annotations

from attrition.outcomes.join import DEFAULT_HORIZON_DAYS

#: The longest gap between two monthly outcomes reports (days).
REPORT_INTERVAL_DAYS = 31


def min_retention_days(horizon_days: int = DEFAULT_HORIZON_DAYS) -> int:
    """The shortest retention that loses nothing to a monthly report with this horizon."""
    return horizon_days + REPORT_INTERVAL_DAYS


def retention_warning(
    retention_days: int | None, setting: str, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> str | None:
    """One line when ``retention_days`` (read from ``setting``) deletes predictions the outcomes
    report may still join; None when it keeps enough, or everything (None)."""
    needed = min_retention_days(horizon_days)
    if retention_days is None or retention_days >= needed:
        return None
    return (
        f"warning: {setting}={retention_days} is shorter than the outcomes report's horizon "
        f"(attrition outcomes report --horizon-days, {horizon_days}) + {REPORT_INTERVAL_DAYS} days: "
        f"outcomes whose prediction is deleted count as unjoined; keep at least {needed} days"
    )
