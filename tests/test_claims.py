import datetime as dt

import pytest

from berthwatch.pipeline.core.claims import load_claim, resolve_claim
from berthwatch.pipeline.core.errors import UserError


def test_shipped_claim_holds_the_us_statement_with_both_wordings():
    c = resolve_claim("us-nsc-2023-10-13")
    assert c.speaker["name"] == "John Kirby"
    assert c.window == (dt.date(2023, 9, 7), dt.date(2023, 10, 1))
    assert c.window_days() == 25
    assert (c.origin, c.destination) == ("rajin", "dunai")
    assert c.quantity.unit == "containers" and c.quantity.value == 1000 and c.quantity.relation == "at_least"
    texts = [s.text for s in c.statements]
    assert any("more than 1,000 containers of military equipment" in t for t in texts)
    assert "bis zu 1000 Container" in texts
    assert all(s.source for s in c.statements)
    assert c.vessels[0]["name"] == "Angara"


GOOD = """
id: test-claim
speaker: {name: Someone}
date: 2023-10-13
statements: [{text: "x", source: "y"}]
window: {start: 2023-09-07, end: 2023-10-01}
origin: rajin
destination: dunai
quantity: {unit: containers, value: 10, relation: at_least}
"""


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("end: 2023-10-01", "end: 2023-09-01", "before window.start"),
        ("relation: at_least", "relation: lots", "quantity.relation"),
        ("unit: containers", "unit: crates", "quantity.unit"),
        ("value: 10", "value: many", "quantity.value"),
        ("origin: rajin", "origin: dunai", "same AOI"),
        ("date: 2023-10-13", "date: 13/10/2023", "not an ISO date"),
        ("statements: [{text: \"x\", source: \"y\"}]", "statements: []", "statements"),
        ("window: {start: 2023-09-07, end: 2023-10-01}", "window: {start: 2023-09-07", "not valid YAML"),
        ("speaker: {name: Someone}\n", "", "missing keys: speaker"),
    ],
)
def test_invalid_claims_fail_with_one_line(tmp_path, old, new, message):
    assert old in GOOD
    p = tmp_path / "c.yaml"
    p.write_text(GOOD.replace(old, new))
    with pytest.raises(UserError) as exc:
        load_claim(p)
    assert message in str(exc.value) and str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_good_claim_loads_and_unknown_claim_is_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(GOOD)
    assert load_claim(p).id == "test-claim"
    with pytest.raises(UserError, match="no claim file or shipped claim 'nope'"):
        resolve_claim("nope")
