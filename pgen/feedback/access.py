r"""Who may use the review app: the token, the Host names it answers to, same-origin writes,
and the headers every response carries.

    app = Starlette(routes=..., middleware=access.middleware(token, ["127.0.0.1"]))

Whoever can write ratings steers the acceptance model, and through it fine-tuning, so:
  - every request needs the server's token: in the `pgen_review_token` cookie (set when the
    page is first opened as `/?token=T`, the URL printed at start, as Jupyter does) or as
    `Authorization: Bearer T` (scripts);
  - a Host header that is not the bound address or one of `allowed_hosts` is refused (a page
    of another site reaching 127.0.0.1 through DNS rebinding sends its own name);
  - a write (any method but GET and HEAD) is `application/json` with no Origin or the
    server's own: a form or `text/plain` POST of another site is refused before it is read;
  - every response denies framing, sniffing and referrers, and the page runs only its own
    inline script and style (their hashes in the content-security policy).
"""

import base64
import hashlib
import http.cookies
import re
import secrets
import socket
import urllib.parse
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pgen.errors import ArgumentError

TOKEN_COOKIE = "pgen_review_token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_SAFE_METHODS = ("GET", "HEAD")


def new_token() -> str:
  return secrets.token_urlsafe(24)


def check_token(token: str) -> str:
  """A token given by the user: long enough not to be guessed, and safe in a URL."""
  if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", token):
    raise ArgumentError("token must be 16 to 256 letters, digits, - or _ (e.g. python -c "
                        "'import secrets; print(secrets.token_urlsafe(24))').",
                        argument="token")
  return token


def hosts_for(bound_host: str, allowed_hosts: Sequence[str] = ()) -> list[str]:
  """The Host names a server bound to `bound_host` answers to: that address, the loopback
  names when it is a loopback or every interface (0.0.0.0, ::), this machine's names for
  every interface, and `allowed_hosts` ("*" for any, behind a proxy that checks Host)."""
  names = [bound_host, *allowed_hosts]
  if bound_host in ("0.0.0.0", "::") or bound_host in LOOPBACK_NAMES:
    names += LOOPBACK_NAMES
  if bound_host in ("0.0.0.0", "::"):
    names += [socket.gethostname(), socket.getfqdn()]
  return sorted({name.lower() for name in names if name})


def content_security_policy(page_html: str) -> str:
  """A policy that lets the page run its inline <script> and <style> (by their SHA-256) and
  nothing else: no other script, no frames, no forms, requests to this server only (and the
  page's empty data: icon, which spares a request for /favicon.ico)."""
  def hashes(tag: str) -> str:
    bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", page_html, flags=re.DOTALL)
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in bodies)
  return (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
          "frame-ancestors 'none'")


def _error(status: int, message: str) -> Response:
  return JSONResponse({"error": message}, status_code=status)


def _token_of(headers: Headers) -> str | None:
  scheme, _, credentials = headers.get("authorization", "").partition(" ")
  if scheme.lower() == "bearer" and credentials:
    return credentials.strip()
  cookie = http.cookies.SimpleCookie()
  try:
    cookie.load(headers.get("cookie", ""))
  except http.cookies.CookieError:
    return None
  morsel = cookie.get(TOKEN_COOKIE)
  return None if morsel is None else morsel.value


def _same(given: str | None, token: str) -> bool:
  return given is not None and secrets.compare_digest(
      given.encode("utf-8", "replace"), token.encode())


def _write_refusal(headers: Headers) -> Response | None:
  """Why a write may not be read (415: not JSON; 403: another site's), or None."""
  media_type = headers.get("content-type", "").split(";")[0].strip().lower()
  if media_type != "application/json":
    return _error(415, f"Content-Type {media_type or 'none'!r}: writes are application/json.")
  origin = headers.get("origin")
  if origin is not None and urllib.parse.urlsplit(origin).netloc != headers.get("host"):
    return _error(403, f"Origin {origin[:100]!r} is not this server: writes come from its "
                  "own page.")
  if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
    return _error(403, "a write from another site is refused.")
  return None


class TokenGate:
  """Requests with the token pass; `/?token=T` sets the cookie and redirects to `/` (the
  token leaves the address bar and history); writes must be same-origin JSON."""

  def __init__(self, app: ASGIApp, token: str):
    self.app, self.token = app, token

  async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
      await self.app(scope, receive, send)
      return
    headers = Headers(scope=scope)
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if scope["path"] == "/" and "token" in query:
      response = self._exchange(query["token"][0])
    elif not _same(_token_of(headers), self.token):
      response = _error(401, "this review server needs its token: open the URL it printed "
                        "at start (…/?token=…), or send Authorization: Bearer TOKEN.")
    elif scope["method"] not in _SAFE_METHODS:
      response = _write_refusal(headers)
    else:
      response = None
    if response is None:
      await self.app(scope, receive, send)
    else:
      await response(scope, receive, send)

  def _exchange(self, given: str) -> Response:
    if not _same(given, self.token):
      return _error(401, "the token in the address is not this server's; open the URL it "
                    "printed at start.")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
    return response


class SecurityHeaders:
  """Adds the same security headers to every response, refusals included."""

  def __init__(self, app: ASGIApp, policy: str):
    self.app = app
    self.headers = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", policy.encode())]

  async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
    async def send_with_headers(message: Message) -> None:
      if message["type"] == "http.response.start":
        message = {**message, "headers": [*message.get("headers", []), *self.headers]}
      await send(message)
    await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def middleware(token: str, allowed_hosts: Sequence[str], page_html: str) -> list[Middleware]:
  """The app's middleware, outermost first: headers on every answer, then Host, then token."""
  return [Middleware(SecurityHeaders, policy=content_security_policy(page_html)),
          Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts),
                     www_redirect=False),
          Middleware(TokenGate, token=token)]
