"""What to do about a refused Microsoft sign-in or consent (spec §2: "Microsoft's error, with what to
do about it").

Microsoft answers with an OAuth ``error`` and an ``error_description`` that starts with an AADSTS code.
Its text is written for developers; an admin needs the next step. The common codes map to plain advice
(from Microsoft's error-code reference and its consent troubleshooting articles); any other code keeps
Microsoft's text and gets generic advice with the code to look up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CODE = re.compile(r"AADSTS(\d{5,7})")
LOOKUP_URL = "https://login.microsoftonline.com/error?code="

_ADMIN = (
    "Only an administrator can grant these permissions for the whole organisation. Press Connect again and "
    "sign in at Microsoft as a Global Administrator (or a Privileged Role Administrator), or ask one to connect."
)
_DECLINED = (
    "Nothing was granted and entrasync stays disconnected. When you are ready, press Connect again and choose "
    "Accept on Microsoft's permissions page."
)
_REDIRECT = (
    "The app registration does not list this deployment's address. Add {base}/auth/microsoft/callback and "
    "{base}/integrations/entra/consented as Web redirect URIs of the app registration (or set "
    "ENTRASYNC_PUBLIC_BASE_URL to the address people use), then press Connect again."
)

ADVICE: dict[str, str] = {
    "65004": _DECLINED,
    "90093": _ADMIN,
    "90094": _ADMIN,
    "65001": (
        "Your organisation has not granted entrasync's permissions yet. A Global Administrator must press "
        "Connect and Accept the permissions for the organisation."
    ),
    "700016": (
        "Microsoft does not know this deployment's app registration in the organisation you signed in to. "
        "Check ENTRASYNC_CLIENT_ID (the Application (client) ID), and that the app registration accepts "
        "accounts in any organisational directory (multitenant)."
    ),
    "50020": (
        "The account you signed in with does not belong to that organisation (a personal Microsoft account, "
        "or a guest). Press Connect again and sign in with a work account of the organisation to connect; "
        "a private browser window avoids an account the browser remembers."
    ),
    "900971": _REDIRECT,
    "50011": _REDIRECT,
    "500113": _REDIRECT,
    "50059": (
        "Microsoft could not tell which organisation to use. Press Connect again and sign in with a work "
        "account of your organisation."
    ),
    "90002": "That organisation does not exist at Microsoft. Check the tenant id or domain, then try again.",
    "50105": (
        "Your administrator requires users to be assigned to the entrasync app. Ask them to assign you in "
        "Enterprise applications, or to connect themselves."
    ),
    "53003": (
        "A Conditional Access policy of your organisation blocked the sign-in. Sign in from a device and place "
        "the policy allows, or ask your Microsoft Entra administrator."
    ),
    "7000215": (
        "The app registration's client secret is wrong. Create a new secret in the app registration and set "
        "ENTRASYNC_CLIENT_SECRET."
    ),
    "7000222": (
        "The app registration's client secret has expired. Create a new secret in the app registration and "
        "set ENTRASYNC_CLIENT_SECRET."
    ),
}
GENERIC = (
    "Press Connect to try again. If it happens again, give this message to whoever manages the app "
    "registration in Microsoft Entra ID."
)
# OAuth error values that come without an AADSTS code (RFC 6749 §4.1.2.1).
BY_ERROR = {"access_denied": _DECLINED, "consent_required": ADVICE["65001"], "permission_denied": _ADMIN}


@dataclass(frozen=True)
class ConsentProblem:
    """Microsoft's answer, as the page shows it."""

    microsoft: str  # Microsoft's own first line
    advice: str  # what to do
    code: str | None  # "AADSTS65004"
    details: str  # the full text (trace and correlation ids help Microsoft's support)

    @property
    def lookup_url(self) -> str | None:
        return LOOKUP_URL + self.code.removeprefix("AADSTS") if self.code else None


def explain(error: str | None, description: str | None, base_url: str = "") -> ConsentProblem:
    """Plain advice for Microsoft's ``error`` and ``error_description``."""
    text = (description or "").replace("\r", "").strip()[:2000]
    first = text.split("\n", 1)[0].strip() or (error or "Microsoft did not grant consent.")
    found = _CODE.search(text)
    number = found.group(1) if found else None
    advice = ADVICE.get(number or "") or BY_ERROR.get((error or "").lower()) or GENERIC
    return ConsentProblem(
        microsoft=first,
        advice=advice.format(base=base_url.rstrip("/") or "https://your-entrasync-address"),
        code=f"AADSTS{number}" if number else None,
        details=text,
    )
