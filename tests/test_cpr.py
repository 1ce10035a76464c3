from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from naer.fhir import cpr


def test_real_cpr_from_medcom_examples_parses() -> None:
    parsed = cpr.parse("2509479989")  # MedCom's test CPR
    assert parsed.birth_date == date(1947, 9, 25)
    assert parsed.sex == "male"
    assert not parsed.synthetic


@pytest.mark.parametrize(
    ("yy", "seventh", "century"),
    [
        (37, 0, 1900),
        (36, 4, 2000),
        (37, 4, 1900),
        (57, 5, 2000),
        (58, 5, 1800),
        (10, 9, 2000),
        (99, 9, 1900),
    ],
)
def test_century_rule(yy: int, seventh: int, century: int) -> None:
    assert cpr.century(yy, seventh) == century


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("123", "ddmmyy-ssss"),
        ("3213901234", "month must be in 1..12"),
        ("3002901234", "day is out of range"),
        ("abcdefghij", "ddmmyy-ssss"),
    ],
)
def test_wrong_cpr_is_rejected_with_reason(text: str, reason: str) -> None:
    with pytest.raises(cpr.CprError, match=reason):
        cpr.parse(text)


@given(
    born=st.dates(min_value=date(1858, 1, 1), max_value=date(2057, 12, 31)),
    sex=st.sampled_from(["male", "female"]),
    serial=st.integers(0, 499),
    pick=st.integers(0, 9),
)
def test_synthetic_cpr_round_trips_and_is_never_a_real_date(
    born: date, sex: str, serial: int, pick: int
) -> None:
    digits = cpr.century_digits(born.year)
    number = cpr.synthetic(born, sex, serial, digits[pick % len(digits)])
    assert 61 <= int(number[:2]) <= 91  # a real CPR day is 01-31
    parsed = cpr.parse(number)
    assert (parsed.birth_date, parsed.sex, parsed.synthetic) == (born, sex, True)


def test_synthetic_cpr_refuses_a_century_digit_that_gives_the_wrong_year() -> None:
    with pytest.raises(cpr.CprError):
        cpr.synthetic(date(1950, 1, 1), "male", 0, 5)
