"""The lenient scorer, the statistics and the problem generator."""

from __future__ import annotations

import re

import pytest

from owstack.efficiency import stats
from owstack.efficiency.problems import BUCKETS, evaluate, generate, templates
from owstack.efficiency.scoring import extract, score


@pytest.mark.parametrize(
    ("text", "value", "method"),
    [
        ("First 3 + 4 = 7, then 7 * 2 = 14.\nAnswer: 14", 14.0, "answer_line"),
        ("**Answer:** $1,250", 1250.0, "answer_line"),
        ("Final answer: -3", -3.0, "answer_line"),
        ("So 12 apples.\nThe answer is: 12", 12.0, "answer_line"),
        ("#### 54\nThe answer is 54 and not 55", 54.0, "answer_line"),
        ("Answer: \\boxed{42}", 42.0, "answer_line"),
        ("We get 5 + 5 = \\boxed{10} so done, 3 more steps", 10.0, "boxed"),
        ("nested \\boxed{\\frac{4}{2}}", 4.0, "boxed"),
        ("It is 3 + 4 = 7. Then 7 times 2 is 14.", 14.0, "last_number"),
        ("about 2.5 hours", 2.5, "last_number"),
        ("I cannot tell.", None, "none"),
        ("Answer: unknown", None, "none"),
    ],
)
def test_extract_finds_the_answer(text: str, value: float | None, method: str) -> None:
    assert extract(text) == (value, method)


def test_score_separates_wrong_answers_from_parse_failures() -> None:
    right = score("so Answer: 14", 14)
    assert right.correct and not right.parse_failure
    wrong = score("Answer: 15", 14)
    assert not wrong.correct and not wrong.parse_failure
    missing = score("no idea", 14)
    assert not missing.correct and missing.parse_failure
    # the Answer: line wins over a later number
    assert score("Answer: 14\n(checked in 3 steps)", 14).correct
    assert score("14.0", 14).correct


def test_wilson_interval_against_known_values() -> None:
    assert stats.wilson(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-5)
    assert stats.wilson(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-5)
    assert stats.wilson(10, 10) == pytest.approx((0.722467, 1.0), abs=1e-5)
    assert stats.wilson(0, 0) == (0.0, 1.0)
    low, high = stats.wilson(30, 60)
    assert low < 0.5 < high and high - low < stats.wilson(5, 10)[1] - stats.wilson(5, 10)[0]
    with pytest.raises(ValueError):
        stats.wilson(11, 10)


def test_mean_median_and_compression() -> None:
    assert stats.median([3, 1, 2]) == 2 and stats.median([4, 1, 2, 3]) == 2.5
    assert stats.mean([1, 2, 3, 6]) == 3
    assert stats.compression([50, 50], [100, 100]) == pytest.approx(0.5)
    low, high = stats.paired_bootstrap([40, 50, 60, 50], [100, 100, 100, 100], seed=1)
    assert low <= 0.5 <= high and low > 0.35 and high < 0.65
    assert stats.paired_bootstrap([1, 2], [1, 2], seed=3) == (0.0, 0.0)


def test_problems_are_deterministic_and_spread_over_buckets() -> None:
    a, b = generate(30, seed=7), generate(30, seed=7)
    assert a == b
    assert generate(30, seed=8) != a
    assert [p.bucket for p in a[:6]] == ["easy", "medium", "hard", "easy", "medium", "hard"]
    assert {p.bucket for p in a} == set(BUCKETS)
    assert len({p.id for p in a}) == 30
    assert generate(10, seed=7)[:5] == a[:5]  # a larger n extends, never reshuffles


def test_generated_answers_are_right() -> None:
    pattern = re.compile(r"^What is (\d+) ([+*-]) (\d+)\?$")
    checked = 0
    for problem in generate(300, seed=1):
        assert isinstance(problem.answer, int)
        match = pattern.match(problem.question)
        if match:
            a, op, b = int(match[1]), match[2], int(match[3])
            assert problem.answer == {"+": a + b, "-": a - b, "*": a * b}[op]
            checked += 1
        if (
            problem.question.startswith("What is")
            and "divided by" in problem.question
            and "plus" not in problem.question
        ):
            total, divisor = map(int, re.findall(r"\d+", problem.question))
            assert total == divisor * problem.answer
            checked += 1
    assert checked > 20
    for bucket in BUCKETS:
        assert templates()[bucket], bucket


def test_the_expression_evaluator_allows_arithmetic_only() -> None:
    assert evaluate("(a + b) * c - 4 // 2", {"a": 1, "b": 2, "c": 3}) == 7
    for bad in ("__import__('os')", "a.real", "a ** 2", "[a]", "c"):
        with pytest.raises(ValueError):
            evaluate(bad, {"a": 1})
    with pytest.raises(ValueError):
        generate(0)
