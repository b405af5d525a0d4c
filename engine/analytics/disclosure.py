"""What an exhibit processes about its visitors, where it goes and for how long (`exhibit privacy EXHIBIT`).

Every statement is derived from the exhibit file (its pose sensors, its scene's AR mirror, its ``analytics:``
section, its MQTT link), in English and Simplified Chinese. :func:`disclose` gathers the facts,
:meth:`Disclosure.sections` words them, :func:`disclosure_text` prints them; the visitor signage
(:mod:`content.signage`) is worded from the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.analytics.records import MEASURES
from engine.analytics.store import database_path

SourceKind = Literal["camera", "video", "replay"]


@dataclass(frozen=True, slots=True)
class Said:
    """One statement in both languages."""

    en: str
    zh: str


@dataclass(frozen=True, slots=True)
class Section:
    heading: Said
    items: list[Said]


@dataclass(frozen=True, slots=True)
class PoseSource:
    """A pose sensor: what it watches, and how many visitors it follows at once."""

    sensor: str
    kind: SourceKind
    where: str
    """The camera (index or device path), the video file or the landmark recording."""
    detail: str = ""
    most: int = 1
    zones: tuple[str, ...] = ()
    measured: bool = False
    """Whether visitor analytics count this sensor's visitors."""
    floor: bool = False
    """Whether the sensor knows where on the floor visitors stand (a floor calibration)."""


@dataclass(frozen=True, slots=True)
class Disclosure:
    exhibit: str
    title_en: str
    title_zh: str | None
    sources: list[PoseSource] = field(default_factory=list)
    mirror: bool = False
    """The exhibit shows the live camera picture on its own screen (AR mirror)."""
    preview_camera: bool = False
    analytics: bool = False
    database: Path | None = None
    retention_days: int = 0
    k: int = 0
    stop_after: float = 0.0
    broker: str = "embedded"
    prefix: str = "exhibit"
    console: bool = True
    """The operators' web console is served."""
    heatmap_cell: float = 0.5

    @property
    def cameras(self) -> list[PoseSource]:
        return [source for source in self.sources if source.kind == "camera"]

    def sections(self) -> list[Section]:
        return [self._seen(), self._memory(), self._stored(), self._leaves(), self._never()]

    def _seen(self) -> Section:
        heading = Said("Sensors that see visitors", "看到参观者的传感器")
        if not self.sources:
            return Section(heading, [Said("None: this exhibit has no camera.", "无：本展项不使用摄像头。")])
        items = []
        for source in self.sources:
            detail = f" ({source.detail})" if source.detail else ""
            if source.kind == "camera":
                en = f"`{source.sensor}`: camera {source.where}{detail}; its frames are processed in memory only"
                zh = f"`{source.sensor}`：摄像头 {source.where}{detail}；画面只在内存中处理"
            elif source.kind == "video":
                en = f"`{source.sensor}`: the video file `{source.where}` (rehearsal, no live camera)"
                zh = f"`{source.sensor}`：视频文件 `{source.where}`（排练用，不使用实时摄像头）"
            else:
                en = f"`{source.sensor}`: the landmark recording `{source.where}` (body points only, no image)"
                zh = f"`{source.sensor}`：骨骼关键点录像 `{source.where}`（只有身体关键点，没有图像）"
            items.append(Said(en, zh))
        return Section(heading, items)

    def _memory(self) -> Section:
        heading = Said("Computed in memory, never stored", "只在内存中计算，从不保存")
        if not self.sources:
            return Section(heading, [Said("Nothing about visitors.", "不处理参观者信息。")])
        most = max(source.most for source in self.sources)
        zones = sorted({zone for source in self.sources for zone in source.zones})
        items = [
            Said(
                f"33 body landmarks per visitor, for up to {most} visitors at once",
                f"每位参观者 33 个身体关键点，最多同时 {most} 人",
            ),
            Said(
                "anonymous visitor numbers, valid for one visit only, linked to no one",
                "匿名编号，只在一次参观中有效，不与任何人关联",
            ),
            Said(
                "gestures (wave, both hands raised...) and features (hand height, distance)",
                "手势（挥手、举起双手等）与特征（手的高度、距离）",
            ),
        ]
        if zones:
            names = ", ".join(f"`{zone}`" for zone in zones)
            items.append(Said(f"who stands in the floor zones {names}", f"参观者所在的地面区域：{names}"))
        if any(source.floor for source in self.sources):
            cell = f"{self.heatmap_cell:g}"
            items.append(
                Said(
                    f"where on the floor visitors stand, for the heatmap ({cell} m squares)",
                    f"参观者在地面上的位置，用于热力图（{cell} 米方格）",
                )
            )
        if self.mirror:
            items.append(
                Said(
                    "the live camera picture is shown on this exhibit's own screen (AR mirror), from memory",
                    "实时画面只显示在本展项自己的屏幕上（AR 镜像），不保存",
                )
            )
        if self.preview_camera:
            items.append(
                Said(
                    "the studio's preview may show the camera picture to a browser on this computer only",
                    "工作室预览可在本机浏览器中显示摄像头画面，仅限本机",
                )
            )
        return Section(heading, items)

    def _stored(self) -> Section:
        heading = Said("Stored on this computer", "在本机保存")
        if not self.analytics or not any(source.measured for source in self.sources):
            nothing = Said(
                "Nothing about visitors is stored (analytics are off).", "不保存任何参观者数据（统计已关闭）。"
            )
            return Section(heading, [nothing])
        measures = ", ".join(MEASURES)
        return Section(
            heading,
            [
                Said(
                    f"hourly aggregates only, never a single visitor: {measures}",
                    f"只保存每小时的汇总数字，从不保存单个参观者：{measures}",
                ),
                Said(f"in {self.database}", f"位置：{self.database}"),
                Said(
                    f"kept {self.retention_days} days; older hours are deleted every day",
                    f"保存 {self.retention_days} 天；更早的数据每天删除",
                ),
                Said(
                    f"a visitor who stays {self.stop_after:g} s counts as having stopped",
                    f"停留 {self.stop_after:g} 秒即计为驻足",
                ),
            ],
        )

    def _leaves(self) -> Section:
        heading = Said("What leaves this computer", "离开本机的数据")
        broker = "a broker on this computer" if self.broker == "embedded" else self.broker
        broker_zh = "本机内置代理" if self.broker == "embedded" else self.broker
        items = [
            Said(
                f"MQTT messages to {broker} (topics `{self.prefix}/{self.exhibit}/...`): device commands, status and "
                "health computed from counts, gestures and features; never an image or a landmark",
                f"发送到 {broker_zh} 的 MQTT 消息（主题 `{self.prefix}/{self.exhibit}/...`）："
                "由人数、手势和特征计算出的设备指令、状态与健康信息；从不包含图像或关键点",
            )
        ]
        if self.console:
            items.append(
                Said(
                    "the operators' web console, to signed-in staff only: counts, zones, and a box where each "
                    "visitor stands; never an image or a landmark",
                    "运营人员网页控制台（仅限登录的工作人员）：人数、区域，以及标出每位参观者位置的方框；从不包含图像或关键点",
                )
            )
        if self.analytics:
            topic = f"`{self.prefix}/{self.exhibit}/analytics/...`"
            items.append(
                Said(
                    f"analytics summaries on MQTT ({topic}), exports and reports: k-anonymous, every figure of "
                    f"fewer than {self.k} visitors is left out or merged",
                    f"MQTT 统计摘要（{topic}）、统计导出与报告：k-匿名，少于 {self.k} 位参观者的数字一律删去或合并",
                )
            )
        return Section(heading, items)

    def _never(self) -> Section:
        return Section(
            Said("Never", "从不"),
            [
                Said(
                    "No image or video of visitors is ever written, logged, published or sent.",
                    "从不写入、记录、发布或发送任何参观者的图像或视频。",
                ),
                Said("No face recognition: nobody is identified.", "不使用人脸识别，不识别任何人的身份。"),
            ],
        )


def disclose(exhibit: Any, state_dir: Path) -> Disclosure:
    """The facts of a loaded exhibit (:func:`engine.validate.load_exhibit`); ``state_dir`` is its node's state
    folder, where the analytics database lives."""
    settings = exhibit.analytics
    measured = settings.sensors
    sources = [
        _pose_source(name, config, settings.enabled and (measured is None or name in measured))
        for name, config in exhibit.sensors.items()
        if getattr(config, "kind", None) == "pose"
    ]
    mirror = getattr(getattr(exhibit, "scene", None), "mirror", None)
    return Disclosure(
        exhibit=exhibit.id,
        title_en=exhibit.title.en,
        title_zh=exhibit.title.zh,
        sources=sources,
        mirror=mirror is not None,
        preview_camera=bool(mirror is not None and mirror.preview_camera),
        analytics=settings.enabled,
        database=database_path(state_dir, simulated=False) if settings.enabled else None,
        retention_days=settings.retention_days,
        k=settings.k,
        stop_after=float(settings.stop_after),
        broker=exhibit.mqtt.broker,
        prefix=exhibit.mqtt.prefix,
        console=exhibit.console.enabled,
        heatmap_cell=float(settings.heatmap_cell),
    )


def _pose_source(name: str, config: Any, measured: bool) -> PoseSource:
    source = config.source
    zones = tuple(config.zones)
    floor = getattr(config, "floor", None) is not None
    if hasattr(source, "camera"):
        detail = f"{source.width}×{source.height}, {source.fps} fps"
        return PoseSource(name, "camera", str(source.camera), detail, config.num_poses, zones, measured, floor)
    kind: SourceKind = "video" if hasattr(source, "video") else "replay"
    where = source.video if kind == "video" else source.replay
    return PoseSource(name, kind, where, "", config.num_poses, zones, measured, floor)


def disclosure_text(disclosure: Disclosure) -> str:
    """The disclosure as text for a terminal: each heading and line in English, then in Chinese."""
    title = disclosure.title_en + (f" / {disclosure.title_zh}" if disclosure.title_zh else "")
    lines = [f"Privacy of `{disclosure.exhibit}` ({title}) / 隐私说明", ""]
    for section in disclosure.sections():
        lines.append(f"{section.heading.en} / {section.heading.zh}")
        for item in section.items:
            lines += [f"  - {item.en}", f"    {item.zh}"]
        lines.append("")
    return "\n".join(lines)
