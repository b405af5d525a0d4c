"""``exhibit new NAME --template T``: a new exhibit folder from one of the templates in ``content/templates/``.

A template is an exhibit folder like any other (valid, runnable with ``--simulate``); a new exhibit is a
copy of it under its own id. The copy is made beside the target and renamed into place, so a failure
leaves no half-made folder, and an existing folder is never touched.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserError

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "content" / "templates"
EXHIBIT_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
"""The exhibit model's id pattern: the folder name is the id, used in MQTT topics."""


@dataclass(frozen=True)
class Template:
    name: str
    summary: str


TEMPLATES = (
    Template("pose-lights", "a camera's visitors drive an MQTT light: hands up, brighter / 姿态驱动灯光"),
    Template("button-cue", "an Arduino button plays the next cue of a cue list / 按钮触发场景"),
    Template("osc-bridge", "OSC from a desk or tablet drives MQTT devices / OSC 桥接 MQTT 设备"),
    Template("ar-mirror", "the camera picture as the background, a lantern in each hand / AR 镜像"),
)


def template_names() -> list[str]:
    return [template.name for template in TEMPLATES]


def create_exhibit(name: str, template: str, exhibits_dir: Path) -> Path:
    """``exhibits_dir/name/``, a copy of ``template`` with ``id: name``; returns the folder."""
    if not EXHIBIT_ID.match(name):
        raise UserError(
            f"`{name}` cannot be an exhibit's name: use lower-case letters, digits and '-', starting with a letter "
            "or digit (it is the exhibit's id in MQTT topics) / 展项名称只能包含小写字母、数字和连字符"
        )
    if template not in template_names():
        raise UserError(
            f"there is no template `{template}`; there are {', '.join(template_names())} / 没有模板“{template}”"
        )
    target = exhibits_dir / name
    if target.exists():
        raise UserError(f"{target} already exists: nothing was changed / {target} 已存在，未作任何修改")
    exhibits_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=exhibits_dir) as scratch:
        draft = Path(scratch) / name
        shutil.copytree(TEMPLATES_DIR / template, draft, symlinks=False)  # shared recordings become files
        exhibit = draft / "exhibit.yaml"
        text = exhibit.read_text(encoding="utf-8")
        exhibit.write_text(re.sub(r"(?m)^id: .*$", f"id: {name}", text, count=1), encoding="utf-8")
        draft.rename(target)
    return target
