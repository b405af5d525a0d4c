"""The ``kind: audience`` sensor's configuration: what the audience page offers, and the signals each becomes.

```yaml
sensors:
  crowd:
    kind: audience
    port: 8090                      # its own port: never the console's
    offers:
      lantern: {type: tap, label: {zh: 放一盏灯, en: Release a lantern}}
      season:
        type: vote
        label: {zh: 下一个季节, en: The next season}
        choices: {spring: {zh: 春, en: Spring}, autumn: {zh: 秋, en: Autumn}}
      wind: {type: slider, label: {zh: 风, en: Wind}, range: [0, 1]}
      shake: {type: motion, label: {zh: 摇动手机, en: Shake your phone}}
```

Signals (``crowd.<...>``): ``count`` (phones connected); a tap pad or button ``lantern.taps_per_s`` (over the last
second) and ``lantern.taps`` (since the start); a vote ``season.<choice>`` (its share 0..1 of this round's votes),
``season.votes``, ``season.leader`` (the choice ahead, empty before any vote) and ``season.voting``; a slider
``wind.mean`` and ``wind.spread`` (standard deviation) over the phones that set it, and ``wind.count``; motion
``shake.energy`` (mean 0..1 over the phones moving) and ``shake.count``; and always ``language.zh``,
``language.en`` (shares of the phones showing each) and ``language.leader``. All are computed ``rate`` times a
second: a thousand phones are one steady signal.

Properties (rules, cues and the console set them): ``season.open`` (opening a closed vote starts a new round),
``season.results`` (phones show the shares), and ``paused`` (nothing the audience sends counts). PANIC pauses the
audience and closes its votes; a PANIC reset lets it in again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from engine.control.settings import TlsSettings
from engine.model import ComponentProblem, Name, SensorConfig, StoreType, Strict
from sensors.audience.protocol import LANGUAGES
from sensors.audience.tls import TlsFilesError, server_context


class Label(Strict):
    """Words on the phone, in both languages."""

    zh: str = Field(description="简体中文.")
    en: str = Field(description="English.")


class _Offer(Strict):
    label: Label | None = Field(None, description="What the phone shows above it (default: its name).")


class TapOffer(_Offer):
    """A big round pad: every tap counts (taps per second, and in all)."""

    type: Literal["tap"]


class ButtonOffer(_Offer):
    """A button: presses count like taps."""

    type: Literal["button"]


class VoteOffer(_Offer):
    """A vote between choices: one vote per phone per round; rules open and close it."""

    type: Literal["vote"]
    choices: dict[Name, Label] = Field(min_length=2, description="The choices, by name, with their words.")
    open: bool = Field(False, description="Open from the start (otherwise a rule or cue opens it).")
    results: bool = Field(False, description="Phones show the shares of the votes.")


class SliderOffer(_Offer):
    """A slider every phone sets: the crowd's mean and spread."""

    type: Literal["slider"]
    range: tuple[float, float] = Field((0.0, 1.0), description="Its ends [low, high].")
    step: float | None = Field(None, gt=0, description="Its step (default: 1/100 of the range).")

    @model_validator(mode="after")
    def _ends(self) -> SliderOffer:
        if not self.range[0] < self.range[1]:
            raise ValueError("a slider's range goes from low to high")
        return self


class MotionOffer(_Offer):
    """Phones that move (shaken, waved), with the browser's permission: the crowd's motion energy."""

    type: Literal["motion"]


class LanguageOffer(_Offer):
    """Buttons to choose the page's language (phones follow their own language otherwise)."""

    type: Literal["language"]


Offer = Annotated[
    TapOffer | ButtonOffer | VoteOffer | SliderOffer | MotionOffer | LanguageOffer, Field(discriminator="type")
]


class AudienceSensorConfig(SensorConfig):
    """The audience's phones, through a page the exhibit serves (a QR code on the wall): no app, no login."""

    kind: Literal["audience"]
    host: str = Field("0.0.0.0", description="Address the audience page listens on (the venue's Wi-Fi).")
    port: int = Field(8090, ge=1, le=65535, description="Its TCP port: the audience's own, never the console's.")
    path: str = Field("/", pattern=r"^/([A-Za-z0-9_-]+/)*$", description="The page's path (`/`, `/join/`).")
    public_url: str | None = Field(
        None, description="The address phones use (for the QR code), e.g. `http://10.0.0.5:8090/`; default: guessed."
    )
    tls: TlsSettings | None = Field(
        None,
        description="Serve the page over HTTPS with this certificate and key: phones share their motion only with "
        "a secure page (taps, votes and sliders work over plain HTTP).",
    )
    title: Label | None = Field(None, description="The page's title (default: the exhibit's).")
    offers: dict[Name, Offer] = Field(min_length=1, description="What the page offers, in order, by name.")
    rate: float = Field(10.0, ge=1, le=60, description="Times a second the crowd's signals are computed.")
    max_phones: int = Field(2000, ge=1, le=20000, description="Phones at once; more see “the room is full”.")
    messages_per_s: float = Field(10.0, gt=0, le=100, description="Most messages a phone may send a second.")
    simulated_phones: int = Field(40, ge=0, le=5000, description="Phones the simulated crowd has (`--simulate`).")

    @model_validator(mode="after")
    def _reserved(self) -> AudienceSensorConfig:
        if "language" in self.offers and self.offers["language"].type != "language":
            raise ValueError("`language` is the crowd's language signals: name this offer otherwise")
        if "paused" in self.offers or "count" in self.offers:
            raise ValueError("`paused` and `count` are the audience's own: name the offer otherwise")
        return self

    def of_type(self, *types: str) -> dict[str, Any]:
        return {name: offer for name, offer in self.offers.items() if offer.type in types}

    def signal_types(self) -> dict[str, StoreType]:
        signals: dict[str, StoreType] = {"count": "int"}
        for name in self.of_type("tap", "button"):
            signals |= {f"{name}.taps_per_s": "float", f"{name}.taps": "int"}
        for name, vote in self.of_type("vote").items():
            signals |= {f"{name}.{choice}": "float" for choice in vote.choices}
            signals |= {f"{name}.votes": "int", f"{name}.leader": "str", f"{name}.voting": "bool"}
        for name in self.of_type("slider"):
            signals |= {f"{name}.mean": "float", f"{name}.spread": "float", f"{name}.count": "int"}
        for name in self.of_type("motion"):
            signals |= {f"{name}.energy": "float", f"{name}.count": "int"}
        signals |= {f"language.{code}": "float" for code in LANGUAGES}
        signals["language.leader"] = "str"
        return signals

    def signal_meanings(self) -> dict[str, str]:
        meanings = {"count": "phones connected to the audience page"}
        for name in self.of_type("tap", "button"):
            meanings[f"{name}.taps_per_s"] = f"taps on `{name}` over the last second, all phones"
            meanings[f"{name}.taps"] = f"taps on `{name}` since the start"
        for name, vote in self.of_type("vote").items():
            for choice in vote.choices:
                meanings[f"{name}.{choice}"] = f"share 0..1 of this round's votes for `{choice}`"
            meanings[f"{name}.votes"] = f"votes in this round of `{name}`"
            meanings[f"{name}.leader"] = f"the choice ahead in `{name}` (empty before any vote)"
            meanings[f"{name}.voting"] = f"whether `{name}` takes votes now"
        for name in self.of_type("slider"):
            meanings[f"{name}.mean"] = f"mean of the phones' `{name}` sliders"
            meanings[f"{name}.spread"] = f"standard deviation of the phones' `{name}` sliders"
            meanings[f"{name}.count"] = f"phones that set `{name}`"
        for name in self.of_type("motion"):
            meanings[f"{name}.energy"] = "mean motion energy 0..1 of the phones moving"
            meanings[f"{name}.count"] = "phones sending motion"
        for code in LANGUAGES:
            meanings[f"language.{code}"] = f"share of the phones showing the page in `{code}`"
        meanings["language.leader"] = "the language most phones show (`zh` or `en`)"
        return meanings

    def settable_properties(self) -> list[str]:
        votes = self.of_type("vote")
        return ["paused", *(f"{name}.open" for name in votes), *(f"{name}.results" for name in votes)]

    def safe_state(self) -> dict[str, Any]:
        return {"paused": True} | {f"{name}.open": False for name in self.of_type("vote")}

    def initial_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"paused": False}
        for name, vote in self.of_type("vote").items():
            state |= {f"{name}.open": vote.open, f"{name}.results": vote.results}
        return state

    def reset_state(self) -> dict[str, Any]:
        return {"paused": False}

    def health_figures(self) -> dict[str, StoreType]:
        return {"connections": "int", "messages_per_s": "float", "dropped": "int", "refused": "int"}

    def health_meanings(self) -> dict[str, str]:
        return {
            "connections": "phones connected now",
            "messages_per_s": "messages from phones a second",
            "dropped": "messages dropped (malformed, oversized, too fast, while paused)",
            "refused": "connections refused (the room full, a bad request)",
        }

    def resources(self) -> list[str]:
        return [f"TCP port {self.port}"]

    def check_files(self, base: Path) -> list[ComponentProblem]:
        if self.tls is None:
            return []
        missing: list[ComponentProblem] = [
            (("tls", key), f"file `{name}` not found in {base}")
            for key, name in (("cert", self.tls.cert), ("key", self.tls.key))
            if not (base / name).is_file()
        ]
        if missing:
            return missing
        try:
            server_context(base / self.tls.cert, base / self.tls.key)
        except TlsFilesError as exc:
            return [(("tls",), f"the certificate `{self.tls.cert}` and key `{self.tls.key}` cannot be used: {exc}")]
        return []
