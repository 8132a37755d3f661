import pytest

from clmbot.importing import checking


@pytest.fixture(params=["checked here", "checked in a second process"])
def checking_mode(request, monkeypatch):
    """Both ways rows can be checked: in-process (small files) and in a second process
    (large files), which must give the very same results. Tests opt in with
    `pytest.mark.usefixtures("checking_mode")`: a second process costs half a second."""
    if request.param == "checked in a second process":
        monkeypatch.setattr(checking, "PARALLEL_MIN_BYTES", 0)
    return request.param
