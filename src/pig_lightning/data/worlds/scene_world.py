"""The words and things of the quality benchmark's synthetic world, shared by its image corpus,
its video plans (:mod:`pig_lightning.data.worlds.scene_plans`) and one tokenizer (:func:`vocabulary`)."""

from __future__ import annotations

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 255),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "purple": (170, 50, 210),
}
SHAPES = ("circle", "square", "triangle", "cross")
SIZES: dict[str, float] = {"small": 0.2, "big": 0.32}  # side as a fraction of the frame
POSITIONS: dict[str, tuple[float, float]] = {  # centre as a fraction of the frame
    "on the left": (0.22, 0.5),
    "on the right": (0.78, 0.5),
    "at the top": (0.5, 0.22),
    "at the bottom": (0.5, 0.78),
    "in the middle": (0.5, 0.5),
}
MOTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}

OBJECT_TEMPLATES = ("a {size} {colour} {shape} {position}", "a {colour} {shape} {position}",
                    "{position} a {size} {colour} {shape}")
IMAGE_JOINERS = ("{a} and {b}", "{a}, {b}", "{a} next to {b}", "there is {a} and {b}")
EVENT_TEMPLATES = ("a {colour} {shape} moves {motion}", "the {colour} {shape} goes {motion}",
                   "a {shape} in {colour} slides {motion}")
EVENT_JOINERS = ("{a}, then {b}", "first {a} and later {b}", "{a} before {b}", "{b} after {a}")

ImageObject = tuple[str, str, str, str]  # colour, shape, size, position


def vocabulary() -> list[str]:
    """Every word of every caption the two sets can contain (one tokenizer for both)."""
    words = set(COLOURS) | set(SHAPES) | set(SIZES) | set(MOTIONS)
    for phrase in POSITIONS:
        words |= set(phrase.split())
    for template in OBJECT_TEMPLATES + IMAGE_JOINERS + EVENT_TEMPLATES + EVENT_JOINERS:
        words |= {w for w in template.replace(",", " ").split() if not w.startswith("{")}
    return sorted(words)
