"""``make soak`` in 30 seconds against the real server: the same code, the bar that does not depend on
the machine (no 5xx, no transport error, bad bodies refused, every 200 valid) and a complete report.
RSS growth is not asserted: 30 s on a shared machine is too short to tell a leak from noise."""

from __future__ import annotations

import json

import pytest

from attrition_tools import soak

pytestmark = [pytest.mark.server, pytest.mark.train]

SECONDS = 30.0


@pytest.mark.timeout(180)
def test_thirty_second_soak(server, tmp_path):
    settings = soak.SoakSettings(seconds=SECONDS)
    report = soak.soak(server.http_url, server.grpc_address, server.process.pid, settings, progress=print)
    out = tmp_path / "soak.json"
    soak.write(report, out)

    written = json.loads(out.read_text())
    assert all(
        written.get(section) not in (None, {}, []) for section in soak.SECTIONS if section != "examples"
    )
    assert set(soak.SECTIONS) <= set(written)
    assert len(written["slices"]) == settings.slices and len(written["rss"]["samples_mib"]) >= SECONDS / 2
    assert {(k["kind"], k["protocol"]) for k in written["kinds"]} >= {
        (kind, "rest") for kind in soak.KINDS
    } | {("score-1", "grpc"), ("score-100", "grpc")}

    classes = written["totals"]["classes"]
    assert classes["5xx"] == 0 and classes["transport"] == 0, written["examples"]
    checks = {c["check"]: c for c in written["checks"]}
    assert checks["bad bodies not answered 4xx"]["met"], written["examples"]
    assert checks["well-formed requests not answered 200 with probabilities in [0, 1]"]["met"], written[
        "examples"
    ]
    assert out.with_suffix(".md").read_text() == soak.markdown(report)


def test_answers_are_classified_as_the_issue_defines():
    good = soak.Request("score-1", 1, b"", None)
    bad = soak.Request("bad-category", 1, b"", None)
    answer = b'{"outputs": [{"name": "probability", "data": [0.25]}]}'
    assert soak.rest_outcome(good, 200, {}, answer).cls == "2xx"
    assert soak.rest_outcome(good, 200, {}, answer.replace(b"0.25", b"1.5")).cls == "2xx_wrong"
    assert soak.rest_outcome(bad, 200, {}, answer).cls == "2xx_wrong"
    assert soak.rest_outcome(bad, 400, {}, b"Department").cls == "4xx_expected"
    assert soak.rest_outcome(good, 400, {}, b"").cls == "4xx_unexpected"
    assert soak.rest_outcome(good, 503, {"Retry-After": "2"}, b"").retry_after == 2.0
    assert soak.rest_outcome(good, 429, {"Retry-After": "1"}, b"").cls == "shed"
    assert soak.rest_outcome(good, 429, {}, b"").cls == "4xx_unexpected"
    assert soak.rest_outcome(good, 503, {}, b"").cls == "5xx"
    assert soak.rss_growth([100 * soak.MIB] * 12 + [104 * soak.MIB] * 8)["growth_pct"] == 4.0
