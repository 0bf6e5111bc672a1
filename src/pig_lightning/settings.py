"""The data settings a model is trained with, as one record.

A model only gives the results it was trained for when its videos and captions are prepared the
same way: as many frames, the same image size and resize, the same caption length. A checkpoint
(``pig_lightning`` entry), a model folder (``config.json``'s ``data``) and a gallery record them;
``test``, ``index`` and ``search`` compare them with what they are about to use. This module is the
one place that names them, reads them from a module and says how two of them differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class DataSettings:
    """``data.<name>`` settings that change what a model sees; ``None`` where unknown
    (older files, or a model built in Python)."""

    num_frames: int | None = None
    image_size: int | None = None
    max_text_length: int | None = None
    resize: str | None = None
    interpolation: str | None = None
    frame_positions: str | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> DataSettings:
        """The known settings of ``values`` (a checkpoint entry, a model folder's ``data``, a data
        module's attributes); other keys are ignored, as older and newer files may hold them."""
        values = values or {}
        return cls(**{name: values[name] for name in cls.names() if values.get(name) is not None})

    @classmethod
    def of(cls, obj: Any) -> DataSettings:
        """The settings an object holds as attributes of these names (e.g. a data module)."""
        return cls(**{name: getattr(obj, name) for name in cls.names()
                      if isinstance(getattr(obj, name, None), (int, str))})

    @classmethod
    def fixed_by(cls, module: Any) -> DataSettings:
        """The settings a :class:`~pig_lightning.module.RetrievalModule` fixes itself: its tower's frames and
        its backbone's image size and caption length."""
        backbone = getattr(module.tower, "backbone", None)
        return cls(num_frames=module.tower.num_frames, image_size=getattr(backbone, "image_size", None),
                   max_text_length=getattr(backbone, "max_text_length", None))

    @classmethod
    def of_module(cls, module: Any) -> DataSettings:
        """What a module was trained with, under what it fixes itself (:meth:`fixed_by`)."""
        return cls.from_mapping(getattr(module, "trained_settings", None)).merged(cls.fixed_by(module))

    def to_dict(self) -> dict[str, Any]:
        """The known settings (``None`` left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def merged(self, other: DataSettings) -> DataSettings:
        """These settings, with ``other``'s known ones on top."""
        return DataSettings.from_mapping({**self.to_dict(), **other.to_dict()})

    def differences(self, other: DataSettings) -> list[tuple[str, Any, Any]]:
        """``(name, mine, other's)`` for every setting known on both sides that differs (names
        such as ``BICUBIC``/``bicubic`` compare equal)."""
        out = []
        for name in self.names():
            a, b = getattr(self, name), getattr(other, name)
            if a is not None and b is not None and str(a).lower() != str(b).lower():
                out.append((name, a, b))
        return out

    def training_differences(self, current: DataSettings) -> list[str]:
        """``"num_frames: trained with 8, this run uses 4"`` for each difference from ``current``
        (``self`` being the training run's settings)."""
        return [f"{name}: trained with {a}, this run uses {b}" for name, a, b in self.differences(current)]
