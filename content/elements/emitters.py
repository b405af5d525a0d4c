"""Particles: :class:`Emitter`, glowing lanterns spawned from visitors' landmarks or a fixed point."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from panda3d.core import ColorBlendAttrib, NodePath, PNMImage, Texture, TransparencyAttrib

from content.element_specs import EmitterSpec, landmark_index, rgba
from content.elements.mesh import F32, VERTEX_FLOATS, DynamicMesh, Projection, _invalid_property, _placed
from content.snapshot import SceneSnapshot

_GLOW_TEXTURE: Texture | None = None


def glow_texture() -> Texture:
    """A soft round spot (white, alpha falling off from the centre): what makes a quad a glowing lantern."""
    global _GLOW_TEXTURE
    if _GLOW_TEXTURE is None:
        size = 64
        image = PNMImage(size, size, 4)
        c = (size - 1) / 2
        for y in range(size):
            for x in range(size):
                r = math.hypot(x - c, y - c) / c
                a = max(0.0, 1.0 - r) ** 1.5
                core = 1.0 if r < 0.35 else max(0.0, 1.0 - (r - 0.35) / 0.65)
                image.setXelA(x, y, 1.0, 0.85 + 0.15 * core, 0.7 + 0.3 * core, a)
        tex = Texture("lantern-glow")
        tex.load(image)
        tex.setWrapU(Texture.WM_clamp)
        tex.setWrapV(Texture.WM_clamp)
        _GLOW_TEXTURE = tex
    return _GLOW_TEXTURE


_QUAD_CORNERS = np.array([[-0.5, 0.0, -0.5], [0.5, 0.0, -0.5], [0.5, 0.0, 0.5], [-0.5, 0.0, 0.5]], dtype=np.float32)
_QUAD_UV = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=np.float32)
_QUAD_INDICES = np.array([0, 1, 2, 0, 2, 3], dtype=np.uint32)

SourceKey = int | str
MAX_SPAWN_DT = 0.5
"""Most seconds of emission one update makes up for."""


class Emitter:
    """A deterministic particle system: numpy state arrays, one dynamic Geom, quads facing the camera axis.

    Sources are every visitor's ``spec.landmark`` (those passing ``spec.when``) or the fixed
    ``spec.pos``. Each source spawns ``rate`` particles per second (fractions carry over between
    frames, per source), so the count does not depend on the frame rate."""

    def __init__(self, spec: EmitterSpec, parent: NodePath, base_dir: Path) -> None:
        self.spec = spec
        cap = spec.max_particles
        self._rng = np.random.default_rng(spec.seed)
        self._pos = np.zeros((cap, 3), dtype=np.float32)
        self._vel = np.zeros((cap, 3), dtype=np.float32)
        self._age = np.zeros(cap, dtype=np.float32)
        self._life = np.ones(cap, dtype=np.float32)
        self._phase = np.zeros(cap, dtype=np.float32)
        self._n = 0  # alive particles are packed into the first _n rows
        self._carry: dict[SourceKey, float] = {}
        self._burst_sources: list[F32] = []
        self._rate = spec.rate
        self._size_scale = 1.0
        self._index = landmark_index(spec.landmark) if spec.landmark else -1
        self.project: Projection | None = None
        """Set by the renderer in AR mirror mode, so lanterns leave the hands seen in the picture."""
        self._c0 = np.array(rgba(spec.color), dtype=np.float32)
        self._c1 = np.array(rgba(spec.color_end), dtype=np.float32)
        self._indices = ((np.arange(cap, dtype=np.uint32) * 4)[:, None] + _QUAD_INDICES[None, :]).reshape(
            -1
        )  # topology for every possible particle, sliced per frame

        self.node: NodePath = parent.attachNewNode(f"emitter-{spec.landmark or 'pos'}")
        self.mesh = DynamicMesh("particles", self.node)
        self.node.setTexture(glow_texture())
        self.node.setLightOff(1)
        self.node.setTwoSided(True)
        self.node.setDepthWrite(False)  # glows overlap without cutting each other out
        self.node.setBin("transparent", 10)
        if spec.blend == "add":
            self.node.setAttrib(
                ColorBlendAttrib.make(ColorBlendAttrib.M_add, ColorBlendAttrib.O_incoming_alpha, ColorBlendAttrib.O_one)
            )
        else:
            self.node.setTransparency(TransparencyAttrib.M_alpha)
        self.node.show() if spec.visible else self.node.hide()

    @staticmethod
    def properties() -> tuple[str, ...]:
        """Bindable property names."""
        return ("rate", "alpha", "visible", "size")

    @property
    def alive(self) -> int:
        """Particles alive now."""
        return self._n

    def positions(self) -> F32:
        """A copy of the alive particles' scene positions (n, 3), without sway."""
        return self._pos[: self._n].copy()

    def set_property(self, name: str, value: float | bool) -> None:
        if name == "rate":
            self._rate = max(float(value), 0.0)
        elif name == "alpha":
            self.node.setAlphaScale(min(max(float(value), 0.0), 1.0))
        elif name == "visible":
            self.node.show() if value else self.node.hide()
        elif name == "size":
            self._size_scale = max(float(value), 0.0)
        else:
            raise _invalid_property("emitter", name, self.properties())

    # -- sources

    def _sources(self, snapshot: SceneSnapshot) -> tuple[list[tuple[SourceKey, F32]], list[F32]]:
        """(key, position) of the sources emitting now, and every visible source (where bursts come from)."""
        spec = self.spec
        if spec.pos is not None:
            p = np.array(spec.pos, dtype=np.float32)
            return [("pos", p)], [p]
        active: list[tuple[SourceKey, F32]] = []
        seen_all: list[F32] = []
        assert spec.sensor is not None
        for visitor in sorted(snapshot.visitors.get(spec.sensor, ()), key=lambda v: v.id):
            lm = np.asarray(visitor.landmarks, dtype=np.float32)
            if not (lm[self._index, 3] >= spec.min_visibility and np.isfinite(lm[self._index, :2]).all()):
                continue
            p = _placed(spec, self.node, self.project, lm[self._index, :2])[0]
            if not np.isfinite(p).all():
                continue
            seen_all.append(p)
            if spec.when == "hand_raised" and not self._hand_raised(lm):
                continue
            active.append((visitor.id, p))
        return active, seen_all

    def _hand_raised(self, lm: F32) -> bool:
        """A wrist above its shoulder in the image (smaller y), both seen; the landmark's side, else either."""
        name = self.spec.landmark or ""
        sides = [(15, 11)] if name.startswith("left_") else [(16, 12)] if name.startswith("right_") else []
        if not sides:
            sides = [(15, 11), (16, 12)]
        mv = self.spec.min_visibility
        return any(lm[w, 3] >= mv and lm[s, 3] >= mv and lm[w, 1] < lm[s, 1] for w, s in sides)

    # -- simulation

    def _spawn(self, origin: F32, count: int, spread: float) -> None:
        count = min(count, self.spec.max_particles - self._n)
        if count <= 0:
            return
        spec = self.spec
        rng = self._rng
        sl = slice(self._n, self._n + count)
        self._pos[sl] = origin + rng.normal(0.0, spec.size * 0.2, (count, 3)).astype(np.float32)
        self._vel[sl] = np.asarray(spec.velocity, dtype=np.float32) + rng.uniform(-spread, spread, (count, 3))
        self._age[sl] = 0.0
        self._life[sl] = spec.lifetime * rng.uniform(0.8, 1.2, count)
        self._phase[sl] = rng.uniform(0.0, 2.0 * math.pi, count)
        self._n += count

    def burst(self, count: int) -> None:
        """Spawn ``count`` particles at once (up to ``max_particles``), shared among the current sources
        (every visitor whose landmark is seen, whatever ``when`` says), else from the area's centre."""
        spec = self.spec
        sources = self._burst_sources or [np.array([spec.center[0], spec.depth, spec.center[1]], dtype=np.float32)]
        share, extra = divmod(max(int(count), 0), len(sources))
        for i, origin in enumerate(sources):
            self._spawn(origin, share + (1 if i < extra else 0), max(spec.spread * 2.0, 0.2))

    def update(self, snapshot: SceneSnapshot, dt: float) -> None:
        spec = self.spec
        dt = max(float(dt), 0.0)
        n = self._n
        if n:
            # Age, kill, then integrate the survivors (semi-implicit Euler, exponential drag).
            self._age[:n] += dt
            keep = self._age[:n] < self._life[:n]
            if not keep.all():
                m = int(keep.sum())
                for arr in (self._pos, self._vel, self._age, self._life, self._phase):
                    arr[:m] = arr[:n][keep]
                n = self._n = m
            self._vel[:n, 2] += spec.gravity * dt
            self._vel[:n] *= math.exp(-spec.drag * dt)
            self._pos[:n] += self._vel[:n] * dt

        active, self._burst_sources = self._sources(snapshot)
        keys = set()
        # After a stall (a long dt) emit at most half a second's worth, not a sudden flood.
        spawn_dt = min(dt, MAX_SPAWN_DT)
        for key, origin in active:
            keys.add(key)
            carry = self._carry.get(key, 0.0) + self._rate * spawn_dt
            whole = int(carry)
            self._carry[key] = carry - whole
            self._spawn(origin, whole, spec.spread)
        for key in [k for k in self._carry if k not in keys]:
            del self._carry[key]  # a source that stops starts afresh next time
        self._draw()

    def _draw(self) -> None:
        spec = self.spec
        n = self._n
        if n == 0:
            self.mesh.set(np.zeros((0, VERTEX_FLOATS), dtype=np.float32), np.zeros(0, dtype=np.uint32))
            return
        age, life = self._age[:n], self._life[:n]
        t = np.clip(age / life, 0.0, 1.0)[:, None]
        center = self._pos[:n].copy()
        # Sway is a function of age, not integrated: deterministic, and it starts at zero so a lantern
        # leaves the hand from the hand.
        sway = spec.sway * np.sin(2.0 * math.pi * spec.sway_speed * age + self._phase[:n]) * np.minimum(age, 1.0)
        center[:, 0] += sway
        size_end = spec.size_end if spec.size_end is not None else spec.size
        size = (spec.size + (size_end - spec.size) * t[:, 0]) * self._size_scale
        color = self._c0 + (self._c1 - self._c0) * t
        fade_in = np.minimum(age / spec.fade_in, 1.0) if spec.fade_in > 0 else np.ones_like(age)
        color[:, 3] *= fade_in * (1.0 - t[:, 0])
        rows = np.empty((n, 4, VERTEX_FLOATS), dtype=np.float32)
        rows[:, :, 0:3] = center[:, None, :] + _QUAD_CORNERS[None, :, :] * size[:, None, None]
        rows[:, :, 3:7] = color[:, None, :]
        rows[:, :, 7:9] = _QUAD_UV[None, :, :]
        self.mesh.set(rows.reshape(-1, VERTEX_FLOATS), self._indices[: n * 6])

    def destroy(self) -> None:
        self.node.removeNode()
