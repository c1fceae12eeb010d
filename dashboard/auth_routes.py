"""The two HTTP addresses of signing in (Starlette handlers mounted by dashboard/server.py):

- ``GET /auth/session?ticket=…&next=/page`` exchanges a one-time login ticket (made by the login
  form, good for one use within a minute) for the signed session cookie (HttpOnly, SameSite=Strict,
  Secure over HTTPS, expiring) and sends the browser on to `next` (a path on this site only).
- ``GET /auth/logout`` ends the session in the database and clears the cookie.

The rules (tickets, tokens, rate limit) live in core.accounts.sessions; nothing here decides.
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.accounts import SESSION_COOKIE, logout, redeem

BROWSER_COOKIE = "tunescope_browser"  # dashboard.ui's browser id (not imported: that module needs Streamlit)

_NEXT = re.compile(r"/[A-Za-z0-9_/-]{0,64}")  # a page path of this site, never //host or a scheme


def _next(request: Request) -> str:
    target = request.query_params.get("next", "/")
    return target if _NEXT.fullmatch(target) and not target.startswith("//") else "/"


def _https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


async def session(request: Request) -> RedirectResponse:
    # The ticket only works in the browser that logged in (its browser-id cookie), so a ticket link sent
    # to someone else cannot sign them in to the sender's account.
    got = await run_in_threadpool(lambda: redeem(request.query_params.get("ticket"), _client(request),
                                                 browser=request.cookies.get(BROWSER_COOKIE, "")))
    if got is None:  # used, expired or made up: back to the login form, which says nothing more
        return RedirectResponse("/?login=expired", status_code=303)
    token, max_age = got
    response = RedirectResponse(_next(request), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="strict",
                        secure=_https(request), path="/")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def logout_route(request: Request) -> RedirectResponse:
    await run_in_threadpool(logout, request.cookies.get(SESSION_COOKIE), _client(request))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    return response


ROUTES = [Route("/auth/session", session, methods=["GET"]), Route("/auth/logout", logout_route, methods=["GET"])]
