"""What the audience page and the audience server say to each other over the page's WebSocket (issue 19).

Every message is one JSON object (UTF-8 text, at most :data:`MAX_MESSAGE` bytes) with a ``t`` (type) field.
Anything else (binary, oversized, not JSON, unknown ``t``, unknown offer, wrong field types) is counted as
dropped and answered with nothing; a connection that keeps sending such messages is closed (code 1008).

Phone to server:

* ``{"t": "tap", "id": "lantern"}``: one tap on tap pad ``lantern`` (or one press of button ``lantern``).
* ``{"t": "vote", "id": "season", "choice": "spring"}``: a vote; one per phone (session) per round of the vote,
  refused while the vote is closed. The reply says whether it was taken.
* ``{"t": "slide", "id": "wind", "value": 0.4}``: where the phone's slider ``wind`` is now (within its range).
* ``{"t": "motion", "id": "shake", "energy": 0.7}``: the phone's motion energy 0..1 over the last ~200 ms
  (the page computes it from ``devicemotion``: acceleration without gravity, its magnitude / 20 m/s², clamped);
  sent at most 5 times a second.
* ``{"t": "lang", "value": "en"}``: the language the phone shows (``zh`` or ``en``): the crowd's share of each
  is a signal (to choose a narration's language).

Server to phone:

* ``{"t": "hello", "session": "<id>", "offers": [...], "title": {"zh": ..., "en": ...}}``: first, on connect.
  ``offers`` lists what the page shows, in order: ``{"id", "type" ("tap" | "button" | "vote" | "slider" |
  "motion" | "language"), "label": {"zh", "en"}}``, plus for a vote ``"choices": [{"id", "label": {...}}]``,
  ``"open": bool``, ``"voted": choice id or null`` (this session's vote this round); for a slider ``"range":
  [low, high]``, ``"step"``.
* ``{"t": "state", "open": {"season": true}, "results": {"season": {"spring": 0.62, ...}} | {}, "paused": bool,
  "count": n}``: whenever a vote opens or closes, results are shown or hidden, input is paused or resumed, and
  every 2 s (the count of phones connected).
* ``{"t": "voted", "id": "season", "choice": "spring", "ok": true | false, "why": "closed" | "again" | null}``:
  the answer to a vote.
* ``{"t": "full"}`` then close (code 1013): the room is full (the page says so and tries again later).

Sessions: the page keeps a random id (``session``, 128 bits, URL-safe) in a cookie the server sets on the page
(``aud``, HttpOnly, SameSite=Strict, no expiry: it ends with the browser session); a phone that reconnects keeps
its vote. No other data is kept, and nothing about a phone leaves the audience process but counts.
"""

from __future__ import annotations

from typing import Final, Literal

MAX_MESSAGE: Final = 256
"""Bytes: a larger message is dropped (and counts against the connection)."""
OfferType = Literal["tap", "button", "vote", "slider", "motion", "language"]
LANGUAGES: Final = ("zh", "en")
COOKIE: Final = "aud"
WS_PATH: Final = "ws"
"""The WebSocket's path under the page's path (``/ws`` for a page at ``/``)."""
