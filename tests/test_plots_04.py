"""Notebook 04's score table: one row per score, the held-out log-likelihood only where one was measured."""

from lecturelib import plots


def test_score_table_rows_and_loglik_column():
    scores = {"real digits": {"confidence": 0.98, "fd": 2.25}, "mixture samples": {"confidence": 0.9, "fd": 20.04}}
    table = plots.score_table(scores, {"mixture": -21.37}).splitlines()
    assert len(table) == 3 and "test log q(z)" in table[0]
    assert table[1].split()[-2:] == ["0.980", "2.2"]  # no log q for real digits
    assert table[2].split()[-3:] == ["0.900", "20.0", "-21.4"]
    assert "test log q(z)" not in plots.score_table(scores)
