"""The run report says what the sweep's window check and the winner's warm-up found."""

from twin.report.run import _window_notes


def test_a_short_window_and_a_long_warmup_are_shown_escaped():
    doc = {"window": {"messages": ["sweep.window (regime-1): 60 s is shorter than the 1860 s that failures of "
                                   "service '<b>search</b>' need"]},
           "warmup": {"longer_than_configured": True, "settled": True,
                      "note": "MSER-5 finds a warm-up of 31 s, longer than sweep.warmup (10 s)"}}
    out = _window_notes(doc)
    assert "1860 s" in out and "MSER-5 finds a warm-up of 31 s" in out
    assert "<b>search</b>" not in out and "&lt;b&gt;search&lt;/b&gt;" in out
    assert out.count("<p") == 2


def test_nothing_is_said_when_the_window_holds_what_matters():
    assert _window_notes({"window": {"messages": []}, "warmup": {"longer_than_configured": False,
                                                                 "settled": True, "note": "ok"}}) == ""
    assert _window_notes({}) == ""  # a sweep document written before the window check
