import pytest

from clmbot.importing import checking


@pytest.fixture(autouse=True, params=["checked here", "checked in a second process"])
def checking_mode(request, monkeypatch):
    """Every import test runs both ways rows can be checked: in-process (small files) and in
    a second process (large files), which must give the very same results."""
    if request.param == "checked in a second process":
        monkeypatch.setattr(checking, "PARALLEL_MIN_BYTES", 0)
    return request.param
