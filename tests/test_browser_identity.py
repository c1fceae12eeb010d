"""A browser keeps its identity across reloads (a cookie), so a reload keeps the user's jobs "mine"
and their report draft; the id is checked before it can reach a path."""

from __future__ import annotations

import pytest
from apptest_support import open_app_page

from dashboard.ui import BROWSER_COOKIE, browser_id_from, cookie_script


@pytest.mark.parametrize("cookie", ["0123456789abcdef", "ffffffffffffffff"])
def test_a_cookie_we_made_is_the_browser_id(cookie: str) -> None:
    assert browser_id_from(cookie) == cookie


@pytest.mark.parametrize("cookie", [None, "", "../../etc/passwd", "0123456789ABCDEF", "0123456789abcde",
                                    "0123456789abcdef0", "0123456789abcdeg", "0123456789abcdef\n", 12])
def test_anything_else_is_ignored(cookie: object) -> None:
    assert browser_id_from(cookie) is None  # type: ignore[arg-type]


def test_cookie_script_sets_only_a_checked_id() -> None:
    script = cookie_script("0123456789abcdef", days=2)
    assert f"{BROWSER_COOKIE}=0123456789abcdef;" in script
    assert "max-age=172800" in script and "SameSite=Strict" in script and "path=/" in script
    with pytest.raises(ValueError):
        cookie_script("x'; alert(1); '")


def test_a_session_without_the_cookie_gets_an_id_and_stores_it() -> None:
    at = open_app_page("data")
    sid = at.session_state["_tunescope_sid"]
    assert browser_id_from(sid) == sid  # the same shape a returning browser's cookie is checked against
    html = [h.proto.body for h in at.sidebar.get("html")]
    assert any(f"{BROWSER_COOKIE}={sid};" in body for body in html), html
