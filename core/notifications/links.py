"""Where a notice about a request leads: the portal page that opens it, in the app and in e-mail.

A notice is about a request when its parameters carry ``request_id``. An approver's "awaiting your
approval" notice opens the request in Approvals; every other one opens it in My requests. The
page is named by its key and URL path in ``ui/navigation.py`` (``PAGES``), and the request by the
query parameter :data:`REQUEST_PARAM`, which those pages read to show that request.

E-mails carry an absolute link only when ``COMPUTELOOP_PUBLIC_URL`` says where the portal is
published; without it they name the request by its number and nothing else (no broken link).
"""

from __future__ import annotations

import os
from typing import Any, Mapping
from urllib.parse import urlencode, urlsplit

from core.errors import InputError

PUBLIC_URL_SETTING = "COMPUTELOOP_PUBLIC_URL"
REQUEST_PARAM = "request"
# page key -> URL path, as in ui/navigation.py PAGES (tests/unit/test_notice_links.py keeps them in step)
REQUEST_PAGES: dict[str, str] = {"approvals": "approvals", "my_requests": "my-requests"}
APPROVAL_TEMPLATES = frozenset({"request_needs_review"})


def request_id_of(params: Mapping[str, Any]) -> int | None:
    """The id of the request a notice is about, or None when it is about no request."""
    value = params.get("request_id")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def request_page(template: str, *, action_needed: bool = True) -> str:
    """The key of the page a notice about a request opens: Approvals while an approval waits, else My requests."""
    return "approvals" if template in APPROVAL_TEMPLATES and action_needed else "my_requests"


def public_url(env: Mapping[str, str] | None = None) -> str:
    """The portal's public address from ``COMPUTELOOP_PUBLIC_URL`` (no trailing slash), or "" when unset.

    Raises:
        InputError: the value is not an http(s) URL with a host (field ``COMPUTELOOP_PUBLIC_URL``).
    """
    env = os.environ if env is None else env
    value = (env.get(PUBLIC_URL_SETTING) or "").strip().rstrip("/")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InputError("notify.setting_invalid", field=PUBLIC_URL_SETTING, value=value)
    return value


def request_url(base: str, template: str, params: Mapping[str, Any], lang: str) -> str | None:
    """The absolute link to the request of a notice, or None (no base URL, or a notice about no request)."""
    request_id = request_id_of(params)
    if not base or request_id is None:
        return None
    path = REQUEST_PAGES[request_page(template)]
    return f"{base}/{path}?{urlencode({REQUEST_PARAM: request_id, 'lang': lang})}"
