"""Faces in crowds: the scenes of the ``synthetic-voc:faces`` variant (one class, ``face``).

The faces are the 100 face patches of scikit-image's bundled LFW subset (:func:`skimage.data.lfw_subset`: 200
grey 25 x 25 crops, the first 100 faces from Labeled Faces in the Wild, the other 100 background patches of
the same photographs), pasted into the suite's textured backgrounds (:func:`benchsuite.data.synthetic_scene.
background`) as people:

- **scale**: face heights from 8 to 200 pixels, in four kinds of scene: *crowds* (rows of people receding from
  about 60 to about 10 pixels per face, neighbours touching, back rows half hidden by the heads and shoulders in
  front), *groups* (one or two rows of 2-7 people, faces 22-110 px), *portraits* (one or two faces 80-200 px)
  and *scattered* people (faces 8-120 px anywhere). So one image can span a 10x range of face sizes;
- **pose and look**: mirrored (half), rotated in the image plane by up to 15 degrees (most), turned (a projective
  squeeze of one side, up to roughly 25 degrees of yaw, most) and framed a little differently in its box (zoom,
  offset), boxes 0.8-1 times as wide as high, lit (gain, offset and a linear gradient across the face), blurred
  (some) and tinted to a skin tone (below); a soft-edged mask
  between an ellipse and a rounded square (a superellipse of power 2-4, so no one outline marks a face), hair
  behind the head (most) and a neck and shoulders below it (most), so a face is not a grey square;
- **occlusion**: heads and shoulders of the rows in front, hands and objects over some faces, and people seen
  from behind (hair only, no face: not annotated);
- **distractors**: the 100 non-face patches, scaled, lit and tinted the same way (skin tones included), pasted
  into the background and sometimes over people; never annotated;
- **real texture**: crops of scikit-image's bundled photographs that show no person (:data:`TEXTURES`: brick,
  grass, gravel, print, coins, a cup, a rocket, a cat, ...) as walls and objects behind the people and as the
  pattern of half of their clothes, so the clutter around small faces has the edges of real scenes, not only the
  smooth noise and flat shapes of the suite's synthetic backgrounds.

Colour: the backgrounds are colour and the faces grey, so each face (and half of the distractors) is tinted by a
random skin tone whose luma is 1 (the grey value of a tinted pixel is the patch's, so a grey-scale detector sees
the LFW face unchanged) and one face in ten stays grey. Real face photographs are colour, and converting every
image to grey would make the variant a grey-scale one; tinting the distractors the same way keeps colour from
giving faces away.

Annotations follow the suite's rule for synthetic sets (:mod:`benchsuite.data.synthetic_scene`): the box is the
extent of the face's visible pixels (its mask: the pasted square), ``difficult`` when that box is shorter than
:data:`FACE_TINY` = 10 px on its longer side or more than half of the face's in-image pixels are hidden,
``truncated`` when part of it lies outside the image (faces less than 40% inside are not drawn). The size
threshold is the rule's parameter (the other variants use the suite's 16 px, ``tiny`` none): 10 px as in the
face set of issue 29, which marks only its smallest faces, under 10 px, difficult, so that the 10-16 px faces
of crowds count, as they do there.

No identity is shared between splits: the face patches are split by index (:data:`FACE_POOLS`: train 0-59, val
60-74, test 75-99), and so are the distractors (:data:`DISTRACTOR_POOLS`). (The subset does not name the people;
LFW has several photographs of some, so two patches may show one person, which the index split cannot see.)
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from skimage import data as skimage_data

from benchsuite.data.synthetic_scene import (
    SyntheticObject,
    background,
    finish,
    log_uniform,
    random_colour,
    visible_objects,
)

FACE = "face"
FACE_TINY = 10  # faces whose visible box is shorter than this on its longer side are difficult (module docstring)
#: LFW subset patches each split pastes, ``[start, stop)`` indices into :func:`lfw_patches`: faces 0-99 ...
FACE_POOLS: dict[str, tuple[int, int]] = {"train": (0, 60), "val": (60, 75), "test": (75, 100)}
#: ... and the non-face distractors 100-199, split the same way
DISTRACTOR_POOLS: dict[str, tuple[int, int]] = {"train": (100, 160), "val": (160, 175), "test": (175, 200)}
#: scene kinds and their probabilities
SCENES: dict[str, float] = {"crowd": 0.2, "group": 0.3, "portrait": 0.1, "scattered": 0.4}
IMAGE_WIDTH = (400, 640)  # pixels, uniform
IMAGE_HEIGHT = (300, 480)
FACE_HEIGHT = (8.0, 200.0)  # the smallest and largest face heights drawn, pixels
MAX_ROTATION = 15.0  # in-plane rotation of a face, degrees
MIN_INSIDE = 0.4  # a face less than this share inside the image is not drawn
OWNER_NONE = -1  # the owner map: background ...
OWNER_OTHER = -2  # ... and anything drawn that is not a face (hair, bodies, occluders, distractors)
#: scikit-image's bundled photographs with no person in them: real texture for the clutter (a cat's face is one)
TEXTURES = ("brick", "coffee", "coins", "grass", "gravel", "page", "rocket", "text", "hubble_deep_field", "chelsea",
            "clock", "immunohistochemistry", "moon", "cell")
#: hair colours (RGB), scaled by 0.7-1.3 per person
HAIR = ((25, 20, 18), (60, 40, 25), (100, 70, 40), (175, 145, 90), (150, 150, 150), (120, 45, 25))


@functools.cache
def lfw_patches() -> np.ndarray:
    """``(200, 25, 25)`` float32 grey levels 0..255 of scikit-image's bundled LFW subset (no download): patches
    0-99 are faces, 100-199 non-faces (:func:`skimage.data.lfw_subset`). Read-only."""
    patches = np.asarray(skimage_data.lfw_subset(), dtype=np.float32)
    if patches.shape != (200, 25, 25):
        raise ValueError(f"skimage.data.lfw_subset() returned shape {patches.shape}; expected (200, 25, 25)")
    if patches.max() <= 1.0:  # float images in [0, 1] (scikit-image returns these; its docstring says uint8)
        patches = patches * 255.0
    patches.setflags(write=False)
    return patches


@dataclass
class PastedFace:
    """Where one face patch went: ``patch`` index into :func:`lfw_patches`, ``rect`` ``(x0, y0, w, h)`` pixels
    of the pasted (unclipped) box, ``flip`` (mirrored), ``pose`` (:class:`Pose`), ``owner`` its index in the
    scene's owner map, ``power`` its mask's superellipse exponent (:func:`soft_mask`)."""

    patch: int
    rect: tuple[int, int, int, int]
    flip: bool
    pose: Pose
    owner: int
    power: float = 2.0


@dataclass
class FaceScene:
    """One generated image and everything about how it was made.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        objects: the annotations (one per face with visible pixels, in ``faces`` order).
        faces: every pasted face, in drawing order (``objects`` drops faces left without a visible pixel).
        distractors: ``(patch, (x0, y0, w, h))`` of every pasted non-face patch.
        owner: ``(H, W)`` int32: the face (its ``owner`` index) seen at each pixel, :data:`OWNER_OTHER` for other
            drawings, :data:`OWNER_NONE` for the background.
        kind: the scene kind (a key of :data:`SCENES`).
    """

    image: np.ndarray
    objects: list[SyntheticObject]
    faces: list[PastedFace] = field(default_factory=list)
    distractors: list[tuple[int, tuple[int, int, int, int]]] = field(default_factory=list)
    owner: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    kind: str = ""


@functools.cache
def texture_photos() -> tuple[np.ndarray, ...]:
    """scikit-image's bundled photographs without people in them (:data:`TEXTURES`), ``(H, W, 3)`` float32 RGB
    0..255 each (grey ones repeated over three channels). Read-only."""
    out = []
    for name in TEXTURES:
        a = np.asarray(getattr(skimage_data, name)(), dtype=np.float32)
        a = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3]
        a.setflags(write=False)
        out.append(a)
    return tuple(out)


def photo_texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """``(h, w, 3)`` float32 0..255: a crop of one of :func:`texture_photos` (0.5-2 times the output's size,
    mirrored or not) resized to ``w x h``, lit (gain 0.6-1.3, offset +-30) and, one time in two, tinted."""
    photo = texture_photos()[int(rng.integers(len(TEXTURES)))]
    ph, pw = photo.shape[:2]
    f = rng.uniform(0.5, 2.0)
    ch, cw = max(2, min(ph, round(h * f))), max(2, min(pw, round(w * f)))
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    crop = photo[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    out = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_AREA if ch >= h else cv2.INTER_LINEAR)
    out = out * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)
    if rng.random() < 0.5:
        out = out * colour_tint(rng)[None, None, :]
    return np.clip(out, 0, 255).astype(np.float32)


# ------------------------------------------------------------------------------------------ rendering
def posed_patch(patch: np.ndarray, w: int, h: int, flip: bool = False, pose: Pose | None = None) -> np.ndarray:
    """``(h, w)`` float32: a grey patch mirrored (``flip``), resized to ``w x h`` (area averaging when shrinking,
    bicubic when growing) and posed (``pose``, borders reflected); before lighting and colour."""
    g = patch[:, ::-1] if flip else patch
    shrink = w <= g.shape[1] and h <= g.shape[0]
    g = cv2.resize(np.ascontiguousarray(g), (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    if pose is not None and pose != Pose():
        g = cv2.warpPerspective(g, pose.matrix(w, h), (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return g.astype(np.float32)


def soft_mask(w: int, h: int, feather: float = 1.0, power: float = 2.0) -> np.ndarray:
    """``(h, w)`` float32 alpha of the superellipse ``|x|^p + |y|^p <= 1`` inscribed in a ``w x h`` box (``power``
    p = 2: an ellipse; larger: towards a rounded rectangle), 0.5 on its outline and a linear ramp ``feather``
    pixels wide across it (so the alpha >= 0.5 pixels span the whole box)."""
    ys = np.abs((np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1)
    xs = np.abs((np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1)
    d = (xs[None, :] ** power + ys[:, None] ** power) ** (1 / power)
    return np.clip((1 - d) * (min(w, h) / 2) / max(feather, 1e-3) + 0.5, 0, 1).astype(np.float32)


def skin_tone(rng: np.random.Generator) -> np.ndarray:
    """``(3,)`` float32 RGB multipliers of a skin tint with luma 1 (ITU-R 601), so tinting keeps grey levels;
    one in ten is neutral (1, 1, 1)."""
    if rng.random() < 0.1:
        return np.ones(3, np.float32)
    base = np.array([1.0, rng.uniform(0.7, 0.9), rng.uniform(0.5, 0.8)])
    tone = 1 + rng.uniform(0.4, 1.1) * (base - 1)
    return (tone / (0.299 * tone[0] + 0.587 * tone[1] + 0.114 * tone[2])).astype(np.float32)


def colour_tint(rng: np.random.Generator) -> np.ndarray:
    """``(3,)`` float32 RGB multipliers of a random tint with luma 1."""
    tone = rng.uniform(0.6, 1.4, 3)
    return (tone / (0.299 * tone[0] + 0.587 * tone[1] + 0.114 * tone[2])).astype(np.float32)


@dataclass(frozen=True)
class Pose:
    """How a face patch is turned inside its box: ``angle`` in-plane rotation (degrees, counter-clockwise),
    ``zoom`` (> 1: the face fills more than its box, chin and forehead cut), ``yaw`` (a projective squeeze of one
    side, as a head turned by roughly ``yaw * 100`` degrees; > 0 turns the right side away), ``shift`` (the
    face's offset in its box, fractions of the box's half-width and half-height)."""

    angle: float = 0.0
    zoom: float = 1.0
    yaw: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)

    def matrix(self, w: int, h: int) -> np.ndarray:
        """``(3, 3)`` float64 homography from the patch resized to ``w x h`` to its posed image (pixel
        coordinates, for :func:`cv2.warpPerspective`), built in box coordinates normalised to ``[-1, 1]``."""
        to_unit = np.array([[2 / w, 0, -(w - 1) / w], [0, 2 / h, -(h - 1) / h], [0, 0, 1]], np.float64)
        a = math.radians(self.angle)
        aspect = h / w  # rotate in square pixels, not in the box's normalised units
        rotate = np.array([[math.cos(a), math.sin(a) * aspect, 0], [-math.sin(a) / aspect, math.cos(a), 0], [0, 0, 1]])
        squeeze = np.array([[1, 0, 0], [0, 1, 0], [self.yaw, 0, 1]], np.float64)
        place = np.array([[self.zoom, 0, self.shift[0]], [0, self.zoom, self.shift[1]], [0, 0, 1]], np.float64)
        return np.linalg.inv(to_unit) @ place @ rotate @ squeeze @ to_unit


def random_pose(rng: np.random.Generator) -> Pose:
    """Most faces rotated by up to :data:`MAX_ROTATION` degrees, most turned (``yaw`` up to 0.25) and framed a
    little differently (zoom 1-1.15 beyond what the turn needs, offsets up to 6% of the box)."""
    angle = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION)) if rng.random() < 0.7 else 0.0
    yaw = float(rng.uniform(-0.25, 0.25)) if rng.random() < 0.6 else 0.0
    zoom = float(rng.uniform(1.0, 1.15) * (1 + 0.5 * abs(yaw)))
    return Pose(angle, zoom, yaw, (float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.06, 0.06))))


def render_patch(patch: np.ndarray, w: int, h: int, rng: np.random.Generator, tone: np.ndarray, flip: bool = False,
                 pose: Pose | None = None, power: float | None = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """A grey patch made ``w x h`` pixels: mirrored, posed (:class:`Pose`, borders reflected), lit (gain
    0.55-1.3, offset +-30 grey levels, a gradient of up to +-30% across it), blurred in four cases of ten and
    tinted by ``tone``. Returns ``(premultiplied RGB (h, w, 3) float32 0..255, alpha (h, w) float32)``, the alpha
    an inscribed soft superellipse of ``power`` (:func:`soft_mask`) or, with None, the whole square."""
    g = posed_patch(patch, w, h, flip, pose)
    yy = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h - 0.5
    xx = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w - 0.5
    gx, gy = rng.uniform(-0.6, 0.6, 2)
    g = g * rng.uniform(0.55, 1.3) * (1 + gx * xx + gy * yy) + rng.uniform(-30, 30)
    if rng.random() < 0.4:
        g = cv2.GaussianBlur(g.astype(np.float32), (0, 0), rng.uniform(0.4, 1.2) + 0.01 * h)
    rgb = np.clip(np.clip(g, 0, 255)[..., None] * tone[None, None, :], 0, 255).astype(np.float32)
    alpha = np.ones((h, w), np.float32) if power is None else soft_mask(w, h, 1.0 + 0.03 * min(w, h), power)
    return rgb * alpha[..., None], alpha


class _Canvas:
    """An image being composed, with its owner map and the faces' pixel counts."""

    def __init__(self, image: np.ndarray):
        self.image = image
        h, w = image.shape[:2]
        self.owner = np.full((h, w), OWNER_NONE, np.int32)
        self.area_in_image: list[int] = []
        self.full_area: list[int] = []

    def paste(self, x0: int, y0: int, rgb: np.ndarray, alpha: np.ndarray, owner: int) -> tuple[int, int]:
        """Alpha-composite a premultiplied patch with its top-left corner at ``(x0, y0)`` (it may reach past the
        border); its pixels with alpha >= 0.5 become ``owner``'s. Returns ``(pixels inside, pixels in all)`` of
        that mask."""
        h, w = alpha.shape
        H, W = self.owner.shape
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
        mask = alpha >= 0.5
        if ix1 <= ix0 or iy1 <= iy0:
            return 0, int(mask.sum())
        sub = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
        region = (slice(iy0, iy1), slice(ix0, ix1))
        self.image[region] = self.image[region] * (1 - alpha[sub][..., None]) + rgb[sub]
        self.owner[region][mask[sub]] = owner
        return int(mask[sub].sum()), int(mask.sum())

    def fill_ellipse(self, cx: float, cy: float, rx: float, ry: float, colour: np.ndarray,
                     texture: np.ndarray | None = None) -> None:
        """A soft ellipse of one colour (hair, shoulders), or filled with ``texture`` (``(h, w, 3)`` float32 of
        the ellipse's box, :func:`photo_texture`), owned by nobody in particular (:data:`OWNER_OTHER`)."""
        w, h = max(2, round(2 * rx)), max(2, round(2 * ry))
        alpha = soft_mask(w, h, 1.0)
        fill = colour[None, None, :] if texture is None else texture[:h, :w]
        self.paste(round(cx - w / 2), round(cy - h / 2), alpha[..., None] * fill, alpha, OWNER_OTHER)

    def fill_rect(self, x0: float, y0: float, w: float, h: float, colour: np.ndarray) -> None:
        alpha = np.ones((max(1, round(h)), max(1, round(w))), np.float32)
        self.paste(round(x0), round(y0), alpha[..., None] * colour[None, None, :], alpha, OWNER_OTHER)


@dataclass
class _Person:
    """A person to draw: the face square ``(x0, y0, size)`` (pixels; faces are square), seen from behind or not,
    with shoulders or not."""

    x0: float
    y0: float
    size: float
    facing: bool = True
    body: bool = True


def _draw_person(canvas: _Canvas, p: _Person, rng: np.random.Generator, pool: tuple[int, int],
                 faces: list[PastedFace]) -> None:
    """Shoulders, neck, hair and the face (or the back of the head) of one person, back to front. The face is
    ``p.size`` pixels high and 0.8-1 times that wide."""
    s = round(p.size)
    fw = max(2, round(s * rng.uniform(0.8, 1.0)))
    x0, y0 = round(p.x0 + (s - fw) / 2), round(p.y0)
    cx = x0 + fw / 2
    tone = skin_tone(rng)
    skin = 150 * tone * rng.uniform(0.6, 1.2)
    hair = np.array(HAIR[int(rng.integers(len(HAIR)))], np.float32) * rng.uniform(0.7, 1.3)
    if p.body:
        shoulders = rng.uniform(0.8, 1.3) * s
        clothes = 0.5 * np.array(random_colour(rng, 20, 200), np.float32) + 0.5 * rng.uniform(40, 160)
        rx = rng.uniform(1.0, 1.5) * s
        pattern = photo_texture(rng, max(2, round(2 * rx)), max(2, round(2 * shoulders))) if rng.random() < 0.5 \
            else None  # patterned clothes
        canvas.fill_ellipse(cx, y0 + 1.05 * s + shoulders, rx, shoulders, clothes, pattern)
        canvas.fill_rect(cx - 0.18 * s, y0 + 0.75 * s, 0.36 * s, 0.4 * s, skin)
    if not p.facing:  # seen from behind: hair over the whole head
        canvas.fill_ellipse(cx, y0 + 0.48 * s, 0.55 * s, 0.56 * s, hair)
        return
    if rng.random() < 0.85:
        canvas.fill_ellipse(cx, y0 + rng.uniform(0.2, 0.35) * s, rng.uniform(0.5, 0.6) * s, rng.uniform(0.42, 0.55) * s,
                            hair)
    H, W = canvas.owner.shape
    inside = (min(x0 + fw, W) - max(x0, 0)) * (min(y0 + s, H) - max(y0, 0))
    if min(x0 + fw, W) <= max(x0, 0) or min(y0 + s, H) <= max(y0, 0) or inside < MIN_INSIDE * fw * s:
        return
    patch = int(rng.integers(*pool))
    flip = bool(rng.random() < 0.5)
    pose = random_pose(rng)
    power = float(rng.uniform(2.0, 4.0))
    rgb, alpha = render_patch(lfw_patches()[patch], fw, s, rng, tone, flip, pose, power)
    owner = len(canvas.area_in_image)
    n_inside, n_all = canvas.paste(x0, y0, rgb, alpha, owner)
    canvas.area_in_image.append(n_inside)
    canvas.full_area.append(n_all)
    faces.append(PastedFace(patch, (x0, y0, fw, s), flip, pose, owner, power))
    if rng.random() < 0.12:  # a hand, a microphone, a sign over part of the face
        ow, oh = rng.uniform(0.3, 0.9) * fw, rng.uniform(0.2, 0.7) * s
        ox, oy = x0 + rng.uniform(-0.2, 0.9) * fw - ow / 2, y0 + rng.uniform(0.1, 1.0) * s - oh / 2
        colour = skin * rng.uniform(0.8, 1.1) if rng.random() < 0.5 else np.array(random_colour(rng), np.float32)
        if rng.random() < 0.5:
            canvas.fill_rect(ox, oy, ow, oh, colour)
        else:
            canvas.fill_ellipse(ox + ow / 2, oy + oh / 2, ow / 2, oh / 2, colour)


# -------------------------------------------------------------------------------------------- layouts
def _crowd(rng: np.random.Generator, W: int, H: int) -> list[_Person]:
    """Rows of people receding into the distance over part of the image's width, back row first: faces from
    8-16 px at the back, growing by 12-35% a row down to the bottom of the image (at most 8 rows, faces at most
    30-60 px), neighbours 1.05-1.9 face widths apart, each row partly hiding the one behind it."""
    size = log_uniform(rng, FACE_HEIGHT[0], 16.0)
    growth, largest = rng.uniform(1.12, 1.35), rng.uniform(30.0, 60.0)
    left = rng.uniform(0.0, 0.4) * W
    right = left + rng.uniform(0.5, 1.0) * W
    people = []
    y = rng.uniform(0.05, 0.35) * H
    for _ in range(8):
        if y + 0.6 * size > H:
            break
        x = left + rng.uniform(-0.6, 0.4) * size
        while x < right:
            s = size * rng.uniform(0.9, 1.1)
            if rng.random() > 0.15:  # gaps in the crowd
                people.append(_Person(x, y + rng.uniform(-0.15, 0.15) * size, s, facing=rng.random() > 0.1))
            x += s * rng.uniform(1.05, 1.9)
        y += size * rng.uniform(1.0, 1.5)
        size = min(size * growth, largest)
    return people


def _group(rng: np.random.Generator, W: int, H: int) -> list[_Person]:
    """One or two rows of 2-7 people, faces 22-110 px (at most a third of the image height)."""
    size = min(log_uniform(rng, 22.0, 110.0), H / 3)
    rows = 1 + int(rng.random() < 0.4)
    people = []
    y = rng.uniform(0.1, 0.6) * (H - 2.2 * size)
    for r in range(rows):
        s_row = size * (0.9 if r < rows - 1 else 1.0)
        n = int(rng.integers(2, 8))
        step = s_row * rng.uniform(1.25, 2.2)
        x = (W - step * (n - 1) - s_row) / 2 + rng.uniform(-0.3, 0.3) * step + (0.5 * step if r else 0.0)
        for _ in range(n):
            s = s_row * rng.uniform(0.92, 1.08)
            people.append(_Person(x, y + rng.uniform(-0.1, 0.1) * s_row, s, facing=rng.random() > 0.05))
            x += step * rng.uniform(0.9, 1.1)
        y += s_row * rng.uniform(0.8, 1.05)
    return people


def _portrait(rng: np.random.Generator, W: int, H: int) -> list[_Person]:
    """One or two large faces, 80-200 px (at most 55% of the image height)."""
    people = []
    for _ in range(1 + int(rng.random() < 0.3)):
        size = rng.uniform(80.0, min(FACE_HEIGHT[1], 0.55 * H))
        people.append(_Person(rng.uniform(0.05, 0.95) * (W - size), rng.uniform(0.05, 0.4) * (H - size), size))
    return people


def _scattered(rng: np.random.Generator, W: int, H: int) -> list[_Person]:
    """3-15 people anywhere, faces 10-150 px (at most 40% of the image height), the smaller (farther) drawn
    first; a face is placed where it overlaps no earlier face by more than IoU 0.2 (20 tries)."""
    people: list[_Person] = []
    for _ in range(int(rng.integers(3, 16))):
        for _try in range(20):
            size = min(log_uniform(rng, 10.0, 150.0), 0.4 * H)
            x, y = rng.uniform(-0.2 * size, W - 0.8 * size), rng.uniform(-0.1 * size, H - 0.9 * size)
            if all(_iou((x, y, size), (q.x0, q.y0, q.size)) < 0.2 for q in people):
                people.append(_Person(x, y, size, facing=rng.random() > 0.1, body=rng.random() < 0.7))
                break
    return sorted(people, key=lambda p: p.size)


def _iou(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """IoU of two squares ``(x0, y0, size)``."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1])
    inter = max(iw, 0.0) * max(ih, 0.0)
    return inter / (a[2] ** 2 + b[2] ** 2 - inter)


_LAYOUTS = {"crowd": _crowd, "group": _group, "portrait": _portrait, "scattered": _scattered}


def _distractor(canvas: _Canvas, rng: np.random.Generator, pool: tuple[int, int],
                out: list[tuple[int, tuple[int, int, int, int]]]) -> None:
    """One non-face patch, 10-120 px, square or masked as a face is, tinted like skin or at random."""
    H, W = canvas.owner.shape
    s = round(log_uniform(rng, 10.0, 120.0))
    patch = int(rng.integers(*pool))
    tone = skin_tone(rng) if rng.random() < 0.5 else colour_tint(rng)
    flip, pose = bool(rng.random() < 0.5), Pose(float(rng.uniform(-20, 20)))
    power = None if rng.random() < 0.5 else float(rng.uniform(2, 4))
    rgb, alpha = render_patch(lfw_patches()[patch], s, s, rng, tone, flip, pose, power)
    x0, y0 = int(rng.integers(-s // 3, W - 2 * s // 3)), int(rng.integers(-s // 3, H - 2 * s // 3))
    canvas.paste(x0, y0, rgb, alpha, OWNER_OTHER)
    out.append((patch, (x0, y0, s, s)))


# ---------------------------------------------------------------------------------------------- scene
def split_pool(role: str) -> str:
    """The patch pool of an image role: ``"train"``, ``"val"`` or ``"test"`` (``"trainval"`` counts as train)."""
    if role == "trainval":
        return "train"
    if role not in FACE_POOLS:
        raise ValueError(f"synthetic faces: role must be one of train, val, test (or trainval), got {role!r}")
    return role


def face_scene(rng: np.random.Generator, role: str) -> FaceScene:
    """One image of faces in a scene (module docstring), drawing on ``role``'s patches only."""
    pool = split_pool(role)
    W = int(rng.integers(IMAGE_WIDTH[0], IMAGE_WIDTH[1] + 1))
    H = int(rng.integers(IMAGE_HEIGHT[0], IMAGE_HEIGHT[1] + 1))
    canvas = _Canvas(background(rng, W, H))
    for _ in range(int(rng.integers(2, 7))):  # real texture: walls, ground, print, objects
        tw, th = round(rng.uniform(40, 0.7 * W)), round(rng.uniform(30, 0.7 * H))
        alpha = np.ones((th, tw), np.float32) if rng.random() < 0.6 else soft_mask(tw, th, 2.0, rng.uniform(2, 6))
        canvas.paste(int(rng.integers(-tw // 4, W - tw // 2)), int(rng.integers(-th // 4, H - th // 2)),
                     photo_texture(rng, tw, th) * alpha[..., None], alpha, OWNER_OTHER)
    kind = str(rng.choice(list(SCENES), p=np.array(list(SCENES.values())) / sum(SCENES.values())))
    people = _LAYOUTS[kind](rng, W, H)
    distractors: list[tuple[int, tuple[int, int, int, int]]] = []
    n_distractors = int(rng.integers(3, 11))
    in_front = rng.random(n_distractors) < 0.25
    for _ in range(int((~in_front).sum())):
        _distractor(canvas, rng, DISTRACTOR_POOLS[pool], distractors)
    faces: list[PastedFace] = []
    for person in people:
        _draw_person(canvas, person, rng, FACE_POOLS[pool], faces)
    for _ in range(int(in_front.sum())):
        _distractor(canvas, rng, DISTRACTOR_POOLS[pool], distractors)
    if rng.random() < 0.2:  # the whole photograph out of focus
        canvas.image = cv2.GaussianBlur(canvas.image, (0, 0), rng.uniform(0.5, 1.0))
    objects = visible_objects(canvas.owner, canvas.area_in_image, canvas.full_area, FACE, FACE_TINY)
    visible = np.bincount(canvas.owner[canvas.owner >= 0], minlength=len(faces))
    faces_seen = [f for f in faces if visible[f.owner]]
    return FaceScene(finish(canvas.image, rng), objects, faces_seen, distractors, canvas.owner, kind)


def generate_face_image(rng: np.random.Generator, role: str) -> tuple[np.ndarray, list[SyntheticObject]]:
    """``(uint8 (H, W, 3) RGB image, annotations)`` of :func:`face_scene` (what the VOC writer needs)."""
    scene = face_scene(rng, role)
    return scene.image, scene.objects


def face_height_bands(heights: np.ndarray, edges: tuple[float, ...] = (16, 24, 32, 48, 96)) -> dict[str, int]:
    """How many of ``heights`` (pixels) fall in each band ``<16``, ``16-24``, ..., ``>=96``: the size profile
    of a face set (a detector's reach is judged per band)."""
    h = np.asarray(heights, np.float64)
    names = [f"<{edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in itertools.pairwise(edges)] + [f">={edges[-1]:g}"]
    counts = np.bincount(np.searchsorted(np.asarray(edges, np.float64), h, side="right"), minlength=len(names))
    return {n: int(c) for n, c in zip(names, counts)}

