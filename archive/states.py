"""The link-state vocabulary: a public contract (``links.state``, ``link_checks.state``).

Users filter Datasette URLs on these strings, so they never change meaning and are
never renamed. Add new states only at the end, with a migration note in the README.
"""

from __future__ import annotations

OK = "ok"
REDIRECTED = "redirected"
NOT_FOUND = "not_found"
SOFT_404 = "soft_404"
SERVER_ERROR = "server_error"
BLOCKED = "blocked"
RATE_LIMITED = "rate_limited"
TIMEOUT = "timeout"
DNS_ERROR = "dns_error"
CONNECTION_ERROR = "connection_error"
TLS_ERROR = "tls_error"
REDIRECT_LOOP = "redirect_loop"
TYPE_MISMATCH = "type_mismatch"
EMPTY = "empty"
EXCLUDED = "excluded"

STATES: tuple[str, ...] = (
    OK, REDIRECTED, NOT_FOUND, SOFT_404, SERVER_ERROR, BLOCKED, RATE_LIMITED, TIMEOUT,
    DNS_ERROR, CONNECTION_ERROR, TLS_ERROR, REDIRECT_LOOP, TYPE_MISMATCH, EMPTY, EXCLUDED,
)

#: The page answered and shows what the link promises.
GOOD_STATES = frozenset({OK, REDIRECTED})
#: Evidence that the linked content is gone or unusable (counts towards "dead" once confirmed).
BROKEN_STATES = frozenset(
    {NOT_FOUND, SOFT_404, SERVER_ERROR, TIMEOUT, DNS_ERROR, CONNECTION_ERROR, TLS_ERROR,
     REDIRECT_LOOP, TYPE_MISMATCH, EMPTY}
)
#: We could not tell: never evidence that a page is gone.
INCONCLUSIVE_STATES = frozenset({BLOCKED, RATE_LIMITED, EXCLUDED})
#: Failures worth retrying inside one crawl before recording them.
TRANSIENT_STATES = frozenset({SERVER_ERROR, TIMEOUT, CONNECTION_ERROR})

#: One-line meanings, shown in the README and in Datasette metadata.
DESCRIPTIONS: dict[str, str] = {
    OK: "answered 200 with real content",
    REDIRECTED: "ok after HTTP redirects, meta refresh or a script redirect",
    NOT_FOUND: "404 or 410",
    SOFT_404: "answers 200 but the page says it does not exist (页面不存在), or a deep link lands on the home page",
    SERVER_ERROR: "5xx from the origin server",
    BLOCKED: "anti-bot or WAF challenge (403/412/521 cookie scripts, captcha): not evidence the page is gone",
    RATE_LIMITED: "429 Too Many Requests, or 503 with Retry-After: the server asked us to slow down",
    TIMEOUT: "no complete answer within the download timeout",
    DNS_ERROR: "the host name does not resolve (also as reported by a proxy)",
    CONNECTION_ERROR: "connection refused or reset (also as reported by a proxy)",
    TLS_ERROR: "TLS handshake or certificate failure",
    REDIRECT_LOOP: "redirects loop or exceed the redirect limit",
    TYPE_MISMATCH: "an attachment link answers HTML, wrong magic bytes, zero bytes or a truncated body",
    EMPTY: "a list/column page whose list has no entries",
    EXCLUDED: "not requested: disallowed by robots.txt, outside scope or over a crawl budget",
}
