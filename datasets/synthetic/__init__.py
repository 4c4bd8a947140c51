"""Synthetic Cityscapes: procedurally generated street scenes in the Cityscapes layout.

`generate` writes them as files (what `python -m datasets.synthetic` runs, see
__main__.py); `render_scene` and `labelled_scenes` give them as arrays.

A scene is a street seen from a car: a pinhole camera over a ground plane, the road,
sidewalks and terrain on the ground, building facades (with windows) and front walls,
fences and hedges on vertical planes along the street, a closing row of buildings at
the street's end, and objects (vehicles as 3-D boxes; people, two-wheelers, poles,
signs, lights and trees as upright sprites) drawn back to front, so they shrink toward
the horizon. Labels are Cityscapes labelIds, void regions included (ego vehicle,
rectification border, static and dynamic objects, parking, rail track, guard rail).
Classes share colours (vehicles and clothes draw from one palette; greys are shared by
road, sidewalk, building, wall and pole); texture, shape and context tell them apart.
Each image depends only on (seed, split, index).
"""
import dataclasses
import math
import multiprocessing
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from datasets import camvid
from datasets import cityscapes

ID = {name: label.id for name, label in cityscapes.NAME_TO_LABEL.items()}
_SPLIT_CODES = {"train": 0, "val": 1}
# Real Cityscapes city names, so that tools keyed on them (e.g. evaluation) work.
CITIES = {
    "train": ("aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt",
              "hamburg", "hanover", "jena", "krefeld", "monchengladbach", "strasbourg",
              "stuttgart", "tubingen", "ulm", "weimar", "zurich"),
    "val": ("frankfurt", "lindau", "munster"),
}
_FRAME = 19  # Cityscapes annotates the 20th frame of each snippet.

# Vehicles and clothes draw from one palette (RGB in 0..1), so colour alone never
# tells a car from a bus or a person.
_OBJECT_COLOURS = np.array([
    (0.08, 0.08, 0.09), (0.85, 0.85, 0.83), (0.48, 0.49, 0.52), (0.68, 0.70, 0.73),
    (0.62, 0.10, 0.10), (0.12, 0.20, 0.50), (0.14, 0.30, 0.20), (0.80, 0.68, 0.18),
    (0.42, 0.28, 0.18), (0.28, 0.28, 0.38)], dtype=np.float32)
_BUILDING_COLOURS = np.array([
    (0.55, 0.53, 0.50), (0.70, 0.65, 0.55), (0.58, 0.38, 0.30), (0.45, 0.45, 0.47),
    (0.80, 0.77, 0.70), (0.50, 0.47, 0.40), (0.65, 0.60, 0.52), (0.62, 0.55, 0.45)],
    dtype=np.float32)
_GREENS = np.array([(0.20, 0.32, 0.12), (0.26, 0.38, 0.14), (0.16, 0.27, 0.13),
                    (0.30, 0.36, 0.16)], dtype=np.float32)
_GLASS = np.array((0.13, 0.15, 0.19), dtype=np.float32)
_TYRE = np.array((0.05, 0.05, 0.05), dtype=np.float32)
_SKIN = np.array([(0.86, 0.67, 0.55), (0.62, 0.44, 0.32), (0.40, 0.27, 0.20)], dtype=np.float32)


def _texture_amplitudes():
  """Per-labelId amplitudes of the fine (per pixel) and medium (blob) luminance noise."""
  fine = np.full(256, 0.02, np.float32)
  medium = np.full(256, 0.02, np.float32)
  for name, a_fine, a_medium in (("sky", 0.004, 0.008), ("building", 0.02, 0.03),
                                 ("road", 0.035, 0.025), ("sidewalk", 0.025, 0.015),
                                 ("terrain", 0.07, 0.03), ("vegetation", 0.05, 0.06),
                                 ("wall", 0.03, 0.01), ("car", 0.01, 0.01),
                                 ("rectification border", 0.0, 0.0)):
    fine[ID[name]] = a_fine
    medium[ID[name]] = a_medium
  return fine, medium


_FINE_AMPLITUDE, _MEDIUM_AMPLITUDE = _texture_amplitudes()


def _jitter(rng, colour, amount=0.08):
  return np.minimum(colour * rng.uniform(1 - amount, 1 + amount, 3), 1).astype(np.float32)


def _pick(rng, palette, amount=0.08):
  return _jitter(rng, palette[rng.integers(len(palette))], amount)


def _between(rng, a, b):
  """Uniform between a and b in either order (sides of the street mirror each other)."""
  return rng.uniform(min(a, b), max(a, b))


def _hash(a, b):
  """Deterministic pseudo-random values in [0, 1) for integer grids (window variety)."""
  return np.modf(np.abs(np.sin(a * 12.9898 + b * 78.233)) * 43758.5453)[0]


def _value_noise(rng, height, width, cell):
  """Smooth noise with unit variance-ish, features about `cell` pixels wide."""
  grid = rng.standard_normal((int(height / cell) + 2, int(width / cell) + 2)).astype(np.float32)
  ys = np.arange(height, dtype=np.float32) / cell
  xs = np.arange(width, dtype=np.float32) / cell
  y0, x0 = ys.astype(np.int32), xs.astype(np.int32)
  fy, fx = (ys - y0)[:, None], xs - x0
  rows = grid[y0] * (1 - fy) + grid[y0 + 1] * fy
  return rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx


@dataclasses.dataclass(frozen=True)
class _Camera:
  """Pinhole camera at height `cam_y` over flat ground, looking along +z."""
  height: int
  width: int
  focal: float  # pixels
  cx: float  # column of the vanishing point
  horizon: float  # row of the vanishing point
  cam_y: float  # metres
  min_px: float  # thin structures are drawn at least this many pixels wide

  def col(self, x, z):
    return self.cx + self.focal * x / z

  def row(self, y, z):
    return self.horizon + self.focal * (self.cam_y - y) / z


def _clip_box(cam, y0, y1, x0, x1):
  y0, x0 = max(int(math.floor(y0)), 0), max(int(math.floor(x0)), 0)
  y1, x1 = min(int(math.ceil(y1)) + 1, cam.height), min(int(math.ceil(x1)) + 1, cam.width)
  return (y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None


class _Canvas:
  """labelIds and surface colours (before lighting and noise) of the scene."""

  def __init__(self, cam, fields):
    self.cam = cam
    self.fields = fields
    self.label = np.zeros((cam.height, cam.width), np.uint8)
    self.albedo = np.zeros((cam.height, cam.width, 3), np.float32)

  def paint(self, box, mask, label_id, colour):
    """Paints where mask holds, inside box.

    label_id: an int or a box-shaped [h, w] array; colour: (3,) or box-shaped [h, w, 3].
    """
    y0, y1, x0, x1 = box
    mask = np.broadcast_to(mask, (y1 - y0, x1 - x0))
    label_id = np.asarray(label_id)
    self.label[y0:y1, x0:x1][mask] = label_id[mask] if label_id.ndim == 2 else label_id
    colour = np.asarray(colour, np.float32)
    self.albedo[y0:y1, x0:x1][mask] = colour[mask] if colour.ndim == 3 else colour

  def fill(self, box, label, colour):
    """Overwrites the whole box: label [h, w] or int, colour [h, w, 3] or (3,)."""
    y0, y1, x0, x1 = box
    self.label[y0:y1, x0:x1] = label
    self.albedo[y0:y1, x0:x1] = colour

  def field(self, name, box):
    y0, y1, x0, x1 = box
    return self.fields[name][y0:y1, x0:x1]


class _Frame:
  """Metric coordinates of the pixels around an upright sprite standing at (x, z).

  u: metres to the right of the sprite's axis (mirrored when the sprite faces left),
  v: metres above the ground. Shapes below are boolean masks over these.
  """

  def __init__(self, cam, x, z, half_width, top, mirror=False):
    scale = cam.focal / z  # pixels per metre
    centre = cam.col(x, z)
    self.box = _clip_box(cam, cam.row(top, z), cam.row(0.0, z), centre - half_width * scale,
                         centre + half_width * scale)
    if self.box is None:
      return
    y0, y1, x0, x1 = self.box
    self.u = ((np.arange(x0, x1, dtype=np.float32) - centre) / scale)[None, :]
    if mirror:
      self.u = -self.u
    self.v = (cam.cam_y - (np.arange(y0, y1, dtype=np.float32) - cam.horizon) / scale)[:, None]
    self.min_r = 0.5 * cam.min_px / scale  # half of the thinnest stroke, in metres

  def rect(self, u0, u1, v0, v1):
    return (self.u >= u0) & (self.u <= u1) & (self.v >= v0) & (self.v <= v1)

  def bar(self, u, v0, v1, half_width):
    half_width = max(half_width, self.min_r)
    return self.rect(u - half_width, u + half_width, v0, v1)

  def ellipse(self, cu, cv, ru, rv):
    return ((self.u - cu) / ru) ** 2 + ((self.v - cv) / rv) ** 2 <= 1.0

  def segment(self, p, q, r):
    du, dv = q[0] - p[0], q[1] - p[1]
    t = np.clip(((self.u - p[0]) * du + (self.v - p[1]) * dv) / (du * du + dv * dv + 1e-9), 0, 1)
    r = max(r, self.min_r)
    return (self.u - p[0] - t * du) ** 2 + (self.v - p[1] - t * dv) ** 2 <= r * r

  def ring(self, cu, cv, radius, half_width):
    half_width = max(half_width, self.min_r)
    return np.abs(np.hypot(self.u - cu, self.v - cv) - radius) <= half_width


class _Plane:
  """Pixels of the vertical plane X = x_plane (parallel to the street), z0 <= z <= z1.

  z: depth of each column [1, w]; y: height above ground of each pixel [h, w];
  inside: the pixel lies on the plane between the ground and `top`.
  """

  def __init__(self, cam, x_plane, z0, z1, top):
    # Nearer than this, the plane leaves the image sideways (or below).
    edge = (cam.width - 1 - cam.cx) if x_plane > 0 else cam.cx
    z0 = max(z0, cam.focal * abs(x_plane) / max(edge, 1.0), 0.3)
    self.box = None
    if z0 >= z1 or abs(x_plane) < 0.05:
      return
    c0, c1 = sorted((cam.col(x_plane, z0), cam.col(x_plane, z1)))
    self.box = _clip_box(cam, cam.row(top, z0), cam.row(0.0, z0), c0, c1)
    if self.box is None:
      return
    y0, y1, x0, x1 = self.box
    dx = np.arange(x0, x1, dtype=np.float32) - cam.cx
    same_side = dx * x_plane > 0
    z = np.where(same_side, cam.focal * x_plane / np.where(same_side, dx, 1.0), np.inf)
    self.z = z[None, :].astype(np.float32)
    rows = (np.arange(y0, y1, dtype=np.float32) - cam.horizon)[:, None]
    self.y = cam.cam_y - rows * np.minimum(self.z, 1e6) / cam.focal
    self.inside = (self.z >= z0) & (self.z <= z1) & (self.y >= 0) & (self.y <= top)
    self.px = self.z / cam.focal  # metres per pixel


@dataclasses.dataclass
class _Street:
  """Lateral layout in metres (camera at x = 0, the street runs along +z)."""
  lane_width: float
  road_left: float
  road_right: float
  walk_left: float  # outer edges of the sidewalks
  walk_right: float
  facade_left: float
  facade_right: float
  parking_right: float  # width of the parking strip inside the road, 0 if none
  tram_x: float  # centre of the tram track, None without a tram
  tram_bed: bool  # the track has its own bed (void "rail track") rather than lying in the road
  z_end: float  # where the street ends in a row of buildings


def _make_street(rng):
  lane = rng.uniform(2.9, 3.6)
  left_lanes = int(rng.integers(1, 3))
  parking_right = rng.uniform(2.1, 2.5) if rng.random() < 0.7 else 0.0
  road_right = lane / 2 + parking_right
  road_left = -lane / 2 - left_lanes * lane
  walk_left = road_left - rng.uniform(2.0, 4.0)
  walk_right = road_right + rng.uniform(2.0, 4.0)
  terrain_left = rng.uniform(1.5, 4.5) if rng.random() < 0.6 else 0.0
  terrain_right = rng.uniform(1.5, 4.5) if rng.random() < 0.6 else 0.0
  tram_x = -lane if rng.random() < 0.85 else None  # in the first oncoming lane
  return _Street(lane, road_left, road_right, walk_left, walk_right,
                 walk_left - terrain_left - 0.3, walk_right + terrain_right + 0.3,
                 parking_right, tram_x, rng.random() < 0.3, rng.uniform(60.0, 140.0))


def _make_camera(rng, height, width):
  return _Camera(height=height, width=width, focal=width * rng.uniform(0.5, 0.6),
                 cx=width * rng.uniform(0.45, 0.55), horizon=height * rng.uniform(0.38, 0.47),
                 cam_y=rng.uniform(1.35, 1.65), min_px=max(2.0, 2.5 * width / 512))


def _make_fields(rng, height, width):
  """Noise fields shared by the textures, each [H, W] float32."""
  unit = width / 512
  return {
      "fine": rng.standard_normal((height, width), dtype=np.float32),
      "leaf": _value_noise(rng, height, width, max(1.2, 1.6 * unit)),
      "medium": _value_noise(rng, height, width, 6 * unit),
      "coarse": _value_noise(rng, height, width, 90 * unit),
  }


# ---------------------------------------------------------------- background layers


def _paint_sky(canvas, rng, street):
  cam = canvas.cam
  t = np.clip(np.arange(cam.height, dtype=np.float32) / max(cam.horizon, 1.0), 0, 1)[:, None, None]
  if rng.random() < 0.5:  # clear: deep blue at the top, pale at the horizon
    top, bottom = (_jitter(rng, np.array([0.35, 0.55, 0.85])),
                   _jitter(rng, np.array([0.72, 0.80, 0.90])))
  else:  # overcast: the grey that buildings and roads also have
    top, bottom = (_jitter(rng, np.array([0.70, 0.72, 0.76])),
                   _jitter(rng, np.array([0.80, 0.81, 0.83])))
  # Below the far end of the street the ground and buildings cover everything.
  rows = min(cam.height, int(math.ceil(cam.horizon + cam.focal * cam.cam_y / street.z_end)) + 1)
  clouds = np.maximum(
      canvas.fields["coarse"][:rows] + 0.5 * canvas.fields["medium"][:rows], 0)[..., None]
  canvas.fill((0, rows, 0, cam.width), ID["sky"],
              top * (1 - t[:rows]) + bottom * t[:rows] + 0.12 * clouds)


def _facade_colour(canvas, box, along, height, seg, floor_h, spacing, base, colours):
  """Facade colours with a grid of windows in facade coordinates (metres)."""
  floor = np.floor((height - base[seg]) / floor_h[seg])
  column = np.floor(along / spacing[seg])
  in_floor = (height - base[seg]) / floor_h[seg] - floor
  in_column = along / spacing[seg] - column
  window = ((in_floor > 0.3) & (in_floor < 0.8) & (in_column > 0.25) & (in_column < 0.75)
            & (floor >= 0))
  shade = 0.7 + 0.6 * _hash(floor + 31 * seg, column)  # some windows reflect the sky
  colour = colours[seg] * (1.0 + 0.05 * canvas.field("medium", box)[..., None])
  glass = _GLASS * shade[..., None]
  return np.where(window[..., None], glass, colour)


def _segments(rng, z0, z1, min_len, max_len):
  """Random consecutive intervals covering [z0, z1]: returns their start points."""
  starts = [z0]
  while starts[-1] < z1:
    starts.append(starts[-1] + rng.uniform(min_len, max_len))
  return np.array(starts[:-1], np.float32)


def _paint_far_end(canvas, rng, street):
  """The row of buildings (and trees) closing the street at z_end."""
  cam = canvas.cam
  z = street.z_end
  starts = _segments(rng, -80.0, 80.0, 8.0, 25.0)
  n = len(starts)
  tops = rng.uniform(6.0, 22.0, n).astype(np.float32)
  is_tree = rng.random(n) < 0.25
  colours = np.stack([_pick(rng, _BUILDING_COLOURS) for _ in range(n)])
  box = _clip_box(cam, cam.row(tops.max(), z), cam.row(0.0, z), 0, cam.width - 1)
  if box is None:
    return
  y0, y1, x0, x1 = box
  shape = (y1 - y0, x1 - x0)
  xw = (np.arange(x0, x1, dtype=np.float32) - cam.cx) * z / cam.focal
  seg = np.broadcast_to(np.clip(np.searchsorted(starts, xw) - 1, 0, n - 1), shape)
  yw = np.broadcast_to(
      cam.cam_y - (np.arange(y0, y1, dtype=np.float32)[:, None] - cam.horizon) * z / cam.focal,
      shape)
  solid = (yw >= 0) & (yw <= tops[seg])
  building = solid & ~is_tree[seg]
  n_ones = np.ones(n, np.float32)
  colour = _facade_colour(canvas, box, xw - starts[seg], yw, seg, 3.2 * n_ones, 2.6 * n_ones,
                          n_ones, colours)
  canvas.paint(box, building, ID["building"], colour)
  leaf = canvas.field("leaf", box)[..., None]
  canvas.paint(box, solid & is_tree[seg], ID["vegetation"], _GREENS[1] * (0.6 + 0.3 * leaf))


# Ground surfaces (indices into the scene's ground palette) and their labelIds.
_ASPHALT, _PAVING, _GRASS, _KERB, _MARKING, _PARKING, _TRACK, _RAIL, _BARE, _ROAD_RAIL = range(10)
_SURFACE_LABELS = np.array([ID["road"], ID["sidewalk"], ID["terrain"], ID["sidewalk"], ID["road"],
                            ID["parking"], ID["rail track"], ID["rail track"], ID["ground"],
                            ID["road"]], np.uint8)


def _paint_ground(canvas, rng, street):
  """Road (lane markings, crossing), tram track, parking, sidewalks (tiles, kerb), terrain."""
  cam = canvas.cam
  # Rows nearer than the end of the street; the rows above belong to its far end.
  y_start = int(math.ceil(cam.horizon + cam.focal * cam.cam_y / street.z_end))
  if y_start >= cam.height:
    return
  rows = np.arange(y_start, cam.height, dtype=np.float32)[:, None] - cam.horizon
  z = cam.focal * cam.cam_y / rows  # [h, 1]
  x = (np.arange(cam.width, dtype=np.float32)[None, :] - cam.cx) * cam.cam_y / rows  # [h, w]
  box = (y_start, cam.height, 0, cam.width)
  px = z / cam.focal  # metres per pixel
  thin = np.maximum(0.07, 0.5 * cam.min_px * px)  # half width of painted lines

  road = (x >= street.road_left) & (x <= street.road_right)
  walk = ~road & (x >= street.walk_left) & (x <= street.walk_right)
  surface = np.where(road, _ASPHALT, np.where(walk, _PAVING, _GRASS)).astype(np.uint8)
  surface[walk & ((np.abs(x - street.road_left) < 0.2)
                  | (np.abs(x - street.road_right) < 0.2))] = _KERB

  # White lane markings: dashed between lanes, solid at the edges; a zebra crossing.
  lines = street.road_left + street.lane_width * np.arange(1, 6)
  marking = np.zeros_like(road)
  for line in lines[lines < street.road_right - street.parking_right - 0.5]:
    marking |= np.abs(x - line) < thin
  marking &= np.modf(z / 9.0)[0] < 0.45
  marking |= np.abs(x - street.road_left - 0.3) < thin
  if street.parking_right:
    marking |= np.abs(x - (street.road_right - street.parking_right)) < thin
  crossing = rng.uniform(12.0, 40.0)
  marking |= ((z > crossing) & (z < crossing + 3.0)
              & (np.modf((x - street.road_left) / 1.0)[0] < 0.5))
  surface[road & marking] = _MARKING

  if street.parking_right and rng.random() < 0.5:  # a marked parking area: void
    p0 = rng.uniform(6.0, 30.0)
    surface[road & (x > street.road_right - street.parking_right) & (z > p0)
            & (z < p0 + rng.uniform(10, 40))] = _PARKING
  if street.tram_x is not None:  # two bright rails, in the road or on their own bed (void)
    offset = np.abs(x - street.tram_x)
    if street.tram_bed:
      surface[offset < 0.85] = _TRACK
    surface[np.abs(offset - 0.72) < np.maximum(0.05, 0.4 * cam.min_px * px)] = (
        _RAIL if street.tram_bed else _ROAD_RAIL)
  if rng.random() < 0.5:  # a patch of bare ground in the terrain
    g0 = rng.uniform(8.0, 30.0)
    surface[(surface == _GRASS) & (z > g0) & (z < g0 + rng.uniform(4.0, 12.0))] = _BARE

  asphalt = _jitter(rng, np.array([0.34, 0.34, 0.36]), 0.1)
  paving = _jitter(rng, np.array([0.55, 0.53, 0.52]) if rng.random() < 0.6
                   else np.array([0.58, 0.45, 0.42]), 0.1)
  grass = _pick(rng, np.array([(0.36, 0.46, 0.20), (0.45, 0.50, 0.24), (0.44, 0.40, 0.28)],
                              np.float32))
  palette = np.stack([asphalt, paving, grass, np.minimum(paving * 1.25, 1),
                      np.array([0.85, 0.85, 0.82]), paving * 0.8, asphalt * 0.8,
                      np.minimum(asphalt * 1.9, 1), np.array([0.45, 0.38, 0.30]),
                      np.minimum(asphalt * 1.9, 1)]).astype(np.float32)

  # Brightness: soft variation, paving tiles (faded out where they would only alias),
  # and a building's shadow across part of the street.
  shade = 1 + 0.08 * canvas.field("coarse", box)
  tile = 0.5
  grout = (np.modf(np.abs(x) / tile)[0] < 0.1) | (np.modf(z / tile)[0] < 0.1)
  shade *= 1 - 0.25 * (grout & (surface == _PAVING)) * np.clip((tile / px - 3.0) / 4.0, 0, 1)
  shade *= np.where(surface == _PARKING, 1 + 0.15 * canvas.field("medium", box), 1.0)
  if rng.random() < 0.6:
    shade *= np.where(
        x > rng.uniform(street.road_left, street.road_right) + rng.uniform(-0.15, 0.15) * z,
        0.6, 1.0)
  canvas.fill(box, _SURFACE_LABELS[surface], palette[surface] * shade[..., None])


def _paint_side(canvas, rng, street, facade_x):
  """Buildings along one side of the street, with trees behind the gaps between them."""
  cam = canvas.cam
  starts = _segments(rng, 0.0, street.z_end, 8.0, 30.0)
  n = len(starts)
  tops = rng.uniform(8.0, 24.0, n).astype(np.float32)
  gap = (rng.random(n) < 0.3) & (np.arange(n) > 0)
  floor_h = rng.uniform(2.8, 3.6, n).astype(np.float32)
  spacing = rng.uniform(2.0, 3.6, n).astype(np.float32)
  base = rng.uniform(0.5, 1.5, n).astype(np.float32)
  colours = np.stack([_pick(rng, _BUILDING_COLOURS) for _ in range(n)])

  # Trees far behind the gaps: a high vegetation band.
  behind = _Plane(cam, facade_x * 1.6, 0.0, street.z_end * 1.6, 14.0)
  if behind.box is not None and gap.any():
    seg = np.clip(np.searchsorted(starts * 1.6, behind.z) - 1, 0, n - 1)
    crown = 8.0 + 3.0 * canvas.field("medium", behind.box)
    mask = behind.inside & gap[seg] & (behind.y <= crown)
    leaf = canvas.field("leaf", behind.box)[..., None]
    canvas.paint(behind.box, mask, ID["vegetation"], _GREENS[2] * (0.55 + 0.35 * leaf))

  plane = _Plane(cam, facade_x, 0.0, street.z_end, float(tops.max()))
  if plane.box is None:
    return
  seg = np.clip(np.searchsorted(starts, plane.z) - 1, 0, n - 1)
  seg = np.broadcast_to(seg, plane.y.shape)
  mask = plane.inside & (plane.y <= tops[seg]) & ~gap[seg]
  along = np.broadcast_to(plane.z - starts[seg[:1]], plane.y.shape)
  colour = _facade_colour(canvas, plane.box, along, plane.y, seg, floor_h, spacing, base, colours)
  # Windows smaller than ~2 pixels would only alias: fade them into the wall colour.
  fade = np.clip((spacing[seg] * 0.5 / plane.px - 1.5) / 2.0, 0, 1)[..., None]
  colour = colours[seg] * (1 - fade) + colour * fade
  canvas.paint(plane.box, mask, ID["building"], colour)

  # Front walls, fences and hedges just in front of the facades.
  x_front = facade_x - np.sign(facade_x) * 0.2
  z = rng.uniform(0.0, 15.0)
  while z < street.z_end * 0.6:
    length = rng.uniform(6.0, 25.0)
    kind = rng.choice(["wall", "fence", "hedge", "none"], p=[0.3, 0.3, 0.2, 0.2])
    if kind != "none":
      _paint_front(canvas, rng, x_front, z, z + length, kind)
    z += length + rng.uniform(0.0, 12.0)


def _paint_front(canvas, rng, x_plane, z0, z1, kind):
  cam = canvas.cam
  top = {"wall": rng.uniform(0.8, 2.4), "fence": rng.uniform(1.0, 1.8),
         "hedge": rng.uniform(0.9, 1.6)}[kind]
  plane = _Plane(cam, x_plane, z0, z1, top + 0.4)
  if plane.box is None:
    return
  along, up, px = plane.z - z0, plane.y, plane.px
  if kind == "wall":
    colour = _pick(rng, _BUILDING_COLOURS)
    courses = np.modf(up / 0.3)[0] < 0.12  # masonry courses, where they are visible
    joints = np.modf(along / rng.uniform(1.5, 3.0))[0] < 0.04
    visible = np.clip((0.3 / px - 2.0) / 3.0, 0, 1)
    pattern = 1 - 0.2 * (courses | joints) * visible
    canvas.paint(plane.box, plane.inside, ID["wall"], colour * pattern[..., None])
  elif kind == "fence":
    colour = _pick(rng, np.array([(0.45, 0.35, 0.25), (0.35, 0.37, 0.35), (0.2, 0.3, 0.22)],
                                 np.float32))
    slat = np.modf(along / 0.15)[0] < 0.5  # vertical slats, light/dark
    rail = (np.abs(up - 0.3) < 0.06) | (np.abs(up - top + 0.1) < 0.06)
    post = np.modf(along / 2.5)[0] < 0.06
    visible = np.clip((0.15 / px - 1.5) / 2.0, 0, 1)
    pattern = np.where(rail | post, 0.55, 1.0 - 0.45 * slat * visible)
    canvas.paint(plane.box, plane.inside, ID["fence"], colour * pattern[..., None])
  else:
    bumpy = up <= top + 0.2 * canvas.field("medium", plane.box)
    leaf = canvas.field("leaf", plane.box)[..., None]
    canvas.paint(plane.box, plane.inside & bumpy, ID["vegetation"],
                 _pick(rng, _GREENS) * (0.6 + 0.35 * leaf))


# ---------------------------------------------------------------- objects


def _vehicle_size(rng, kind):
  """(width, height, length) in metres."""
  return {
      "car": (rng.uniform(1.7, 1.9), rng.uniform(1.4, 1.6), rng.uniform(4.1, 4.8)),
      "truck": (2.5, rng.uniform(3.2, 3.8), rng.uniform(7.0, 9.5)),
      "bus": (2.55, rng.uniform(3.0, 3.2), rng.uniform(11.0, 13.0)),
      "train": (2.6, rng.uniform(3.3, 3.6), rng.uniform(24.0, 32.0)),
  }[kind]


def _draw_vehicle(canvas, rng, kind, x, z0, towards, colour, size):
  """A vehicle as a box: its side face (when visible) and its near (rear/front) face."""
  cam = canvas.cam
  label = ID[kind]
  width, height, length = size
  x_side = x + width / 2 if x + width / 2 < 0 else x - width / 2 if x - width / 2 > 0 else None
  if x_side is not None:
    plane = _Plane(cam, x_side, z0, z0 + length, height + 1.2)
    if plane.box is not None:
      s = plane.z - z0  # metres along the vehicle from its near face
      s = (length - s) if towards else s  # s runs rear -> front
      mask, part = _side_profile(kind, s, plane.y, height, length)
      # Parts: body (in the shade, 0.85), glass (with reflections), tyre, hub cap.
      palette = np.stack([colour * 0.85, _GLASS, _TYRE, np.full(3, 0.55, np.float32)])
      reflection = 1 + 0.3 * (part == 1) * canvas.field("medium", plane.box)
      canvas.paint(plane.box, mask & plane.inside, label, palette[part] * reflection[..., None])
  frame = _Frame(cam, x, z0, width / 2 + 0.1, height + 1.2)
  if frame.box is not None:
    mask, body = _near_face(frame, kind, width, height, towards, colour)
    canvas.paint(frame.box, mask, label, body)


def _side_profile(kind, s, y, height, length):
  """Silhouette (mask) and parts (0 body, 1 glass, 2 tyre, 3 hub) of a side face."""
  part = np.zeros(np.broadcast_shapes(s.shape, y.shape), np.int8)
  if kind == "car":
    waist = 0.55 * height
    cabin_lo, cabin_hi = 0.2 * length, 0.75 * length
    slope = np.clip(np.minimum(s - cabin_lo, cabin_hi - s) / 0.6, 0, 1)  # sloped pillars
    mask = ((y >= 0.22) & (y <= waist)) | ((y > waist) & (y <= waist + (height - waist) * slope))
    part[(y > waist + 0.06) & (y < height - 0.08) & (slope > 0.35)] = 1
    wheels = (0.75, length - 0.85)
    radius = 0.33
  elif kind == "truck":
    cab = s > length - 2.3
    mask = ((y >= 0.5) & (y <= 1.0)) | (~cab & (y > 1.0) & (y <= height) & (s < length - 2.45)) | (
        cab & (y > 1.0) & (y <= height * 0.85))
    part[cab & (y > 1.7) & (y < height * 0.8) & (s > length - 1.3)] = 1
    wheels = (1.2, 2.5, length - 1.4)
    radius = 0.5
  elif kind == "bus":
    mask = (y >= 0.3) & (y <= height)
    pillar = np.modf(s / 1.6)[0] < 0.12
    part[(y > 0.5 * height) & (y < 0.9 * height) & ~pillar & (s > 0.4) & (s < length - 0.3)] = 1
    wheels = (2.2, length - 2.8)
    radius = 0.5
  else:  # train (tram): skirt over the wheels, doors, pantograph on the roof
    roof = height - 0.35
    mask = (y >= 0.25) & (y <= roof)
    window = (np.modf(s / 2.2)[0] > 0.2) & (y > 0.5 * height) & (y < 0.82 * roof)
    door = (np.modf(s / 6.5)[0] < 0.2) & (y > 0.35) & (y < 0.82 * roof)
    part[window | door] = 1
    mid = length / 2
    mask = mask | ((np.abs(s - mid) < 1.0) & (y > roof) & (y < roof + 0.25))
    mask = mask | ((np.abs(np.abs(s - mid) - (y - roof) * 0.8) < 0.08) & (y > roof)
                   & (y < roof + 1.0))
    return mask, part
  for w in wheels:
    d = np.hypot(s - w, y - radius)
    mask = mask | (d <= radius)
    part[d <= radius] = 2
    part[d <= 0.45 * radius] = 3
  return mask, part


def _near_face(frame, kind, width, height, towards, colour):
  """Silhouette and colours of the rear face (or the front one, when `towards`)."""
  u, v = frame.u, frame.v
  half = width / 2
  light = np.array([0.95, 0.92, 0.75] if towards else [0.8, 0.05, 0.05], np.float32)
  shape = np.broadcast_shapes(u.shape, v.shape)
  out = np.broadcast_to(colour, shape + (3,)).copy()
  tyres = (np.abs(u) > half - 0.3) & (np.abs(u) <= half) & (v < 0.4)
  if kind == "car":
    waist = 0.55 * height
    taper = half - 0.25 * (v - waist) / (height - waist)
    mask = ((np.abs(u) <= half) & (v >= 0.25) & (v <= waist)) | (
        (np.abs(u) <= taper) & (v > waist) & (v <= height))
    glass = (np.abs(u) <= taper - 0.08) & (v > waist + 0.06) & (v < height - 0.07)
    lamps = ((np.abs(u) > half - 0.38) & (np.abs(u) < half - 0.05) & (v > 0.72 * waist)
             & (v < 0.92 * waist))
    plate = (np.abs(u) < 0.26) & (v > 0.35) & (v < 0.47)
  else:
    bottom = 0.5 if kind == "truck" else 0.3
    top = height - 0.35 if kind == "train" else height
    mask = (np.abs(u) <= half) & (v >= bottom) & (v <= top)
    glass_lo = 0.4 * height if towards or kind == "train" else 0.7 * height
    glass = (np.abs(u) <= half - 0.12) & (v > glass_lo) & (v < top - 0.25)
    if kind == "truck" and not towards:  # a cargo box: two doors, no window
      glass = np.zeros_like(glass)
      out = np.where((np.abs(u) < 0.03)[..., None], colour * 0.6, out)
    lamps = ((np.abs(u) > half - 0.4) & (np.abs(u) < half - 0.1) & (v > bottom + 0.1)
             & (v < bottom + 0.3))
    plate = (np.abs(u) < 0.26) & (v > bottom + 0.05) & (v < bottom + 0.17)
    if kind == "train":
      mask = mask | ((np.abs(u) < 0.5) & (v > top) & (v < top + 1.0)
                     & (np.abs(np.abs(u) - (v - top) * 0.5) < 0.06))
  out = np.where(glass[..., None], _GLASS * (1.0 + 0.4 * (v - 1.0) / height)[..., None], out)
  out = np.where(lamps[..., None], light, out)
  out = np.where(plate[..., None], np.float32(0.9), out)
  out = np.where(tyres[..., None], _TYRE, out)
  return mask | tyres, out


def _draw_person(canvas, rng, x, z):
  """A pedestrian: legs (mid-stride), torso, an arm and a head."""
  height = rng.uniform(1.6, 1.9)
  frame = _Frame(canvas.cam, x, z, 0.45, height + 0.1, mirror=rng.random() < 0.5)
  if frame.box is None:
    return
  shirt, trousers = _pick(rng, _OBJECT_COLOURS, 0.15), _pick(rng, _OBJECT_COLOURS, 0.15)
  hip, shoulder = (0.0, 0.5 * height), (0.0, 0.82 * height)
  stride = rng.uniform(0.0, 0.25)
  legs = frame.segment(hip, (stride, 0.04), 0.075) | frame.segment(hip, (-stride, 0.04), 0.075)
  torso = frame.segment(hip, shoulder, 0.17)
  arm = frame.segment(shoulder, (rng.uniform(-0.2, 0.2), 0.45 * height), 0.055)
  head = (0.03, shoulder[1] + 0.19)
  head_mask = frame.ellipse(head[0], head[1], 0.11, 0.13)
  canvas.paint(frame.box, legs, ID["person"], trousers)
  canvas.paint(frame.box, torso | arm, ID["person"], shirt)
  canvas.paint(frame.box, head_mask, ID["person"], _SKIN[rng.integers(len(_SKIN))])
  canvas.paint(frame.box, head_mask & (frame.v > head[1] + 0.03), ID["person"],
               np.array([0.12, 0.09, 0.07], np.float32))


def _draw_two_wheeler(canvas, rng, kind, x, z, mirror):
  """A bicycle (thin frame and rims) or a motorcycle (solid body and wheels), side view."""
  frame = _Frame(canvas.cam, x, z, 1.0, 1.4, mirror)
  if frame.box is None:
    return
  colour = _pick(rng, _OBJECT_COLOURS, 0.15)
  label = ID[kind]
  if kind == "bicycle":
    radius = 0.34
    rear, front = (-0.52, radius), (0.52, radius)
    crank, seat, head = (0.0, 0.3), (-0.15, 0.85), (0.4, 0.82)
    tubes = [(rear, crank), (crank, seat), (rear, seat), (seat, head), (crank, head), (head, front),
             (head, (0.34, 1.0)), ((-0.25, 0.9), (-0.05, 0.9))]
    frame_mask = np.zeros(np.broadcast_shapes(frame.u.shape, frame.v.shape), bool)
    for p, q in tubes:
      frame_mask |= frame.segment(p, q, 0.025)
    rims = frame.ring(*rear, radius, 0.03) | frame.ring(*front, radius, 0.03)
    canvas.paint(frame.box, rims, label, _TYRE)
    canvas.paint(frame.box, frame_mask, label, colour)
  else:
    radius = 0.3
    rear, front = (-0.7, radius), (0.7, radius)
    wheels = frame.ellipse(*rear, radius, radius) | frame.ellipse(*front, radius, radius)
    hubs = (frame.ellipse(*rear, 0.5 * radius, 0.5 * radius)
            | frame.ellipse(*front, 0.5 * radius, 0.5 * radius))
    body = frame.ellipse(0.0, 0.62, 0.55, 0.2) | frame.segment(front, (0.45, 1.0), 0.05)
    engine = frame.rect(-0.3, 0.25, 0.25, 0.55)
    canvas.paint(frame.box, wheels, label, _TYRE)
    canvas.paint(frame.box, hubs, label, np.float32(0.6))
    canvas.paint(frame.box, engine, label, np.float32(0.35))
    canvas.paint(frame.box, body, label, colour)


def _draw_pole(canvas, rng, x, z):
  """A pole, optionally carrying a traffic sign and/or a traffic light."""
  height = rng.uniform(3.5, 7.5)
  frame = _Frame(canvas.cam, x, z, 1.6, height + 0.3)
  if frame.box is None:
    return
  grey = _jitter(rng, np.array([0.5, 0.5, 0.52]) if rng.random() < 0.7
                 else np.array([0.2, 0.28, 0.22]))
  canvas.paint(frame.box, frame.bar(0.0, 0.0, height, 0.06), ID["pole"], grey)
  kind = rng.choice(["plain", "sign", "light", "both"], p=[0.25, 0.35, 0.25, 0.15])
  if kind == "plain" and rng.random() < 0.5:  # a street lamp on an arm
    arm = frame.segment((0.0, height), (-0.9, height + 0.2), 0.04)
    canvas.paint(frame.box, arm | frame.ellipse(-0.9, height + 0.1, 0.25, 0.08), ID["pole"], grey)
  if kind in ("light", "both"):
    housing = _jitter(rng, np.array([0.1, 0.1, 0.1]) if rng.random() < 0.7
                      else np.array([0.7, 0.6, 0.1]))
    top = height
    box = frame.rect(-0.18, 0.18, top - 0.95, top)
    canvas.paint(frame.box, box, ID["traffic light"], housing)
    if rng.random() < 0.8:  # seen from the front: three lamps, one lit
      lit = rng.integers(3)
      for i, lamp in enumerate([(0.95, 0.1, 0.05), (0.95, 0.7, 0.05), (0.1, 0.9, 0.3)]):
        colour = np.array(lamp, np.float32) * (1.0 if i == lit else 0.3)
        canvas.paint(frame.box, frame.ellipse(0.0, top - 0.17 - 0.3 * i, 0.1, 0.1),
                     ID["traffic light"], colour)
  if kind in ("sign", "both"):
    centre = rng.uniform(2.2, 2.9) if kind == "sign" else rng.uniform(2.0, 2.4)
    _draw_sign(canvas, rng, frame, centre)


def _draw_sign(canvas, rng, frame, centre):
  r = rng.uniform(0.3, 0.4)
  shape = rng.choice(["disc", "triangle", "square", "diamond"])
  du, dv = frame.u, frame.v - centre
  if shape == "disc":
    outer = du ** 2 + dv ** 2 <= r * r
    inner = du ** 2 + dv ** 2 <= (0.75 * r) ** 2
  elif shape == "triangle":
    outer = (dv >= -0.6 * r) & (dv <= 0.9 * r - 1.6 * np.abs(du))
    inner = (dv >= -0.4 * r) & (dv <= 0.65 * r - 1.6 * np.abs(du))
  elif shape == "square":
    outer = (np.abs(du) <= r) & (np.abs(dv) <= r)
    inner = (np.abs(du) <= 0.8 * r) & (np.abs(dv) <= 0.8 * r)
  else:
    outer = np.abs(du) + np.abs(dv) <= 1.2 * r
    inner = np.abs(du) + np.abs(dv) <= 0.85 * r
  if rng.random() < 0.25:  # seen from behind: a plain grey plate
    canvas.paint(frame.box, outer, ID["traffic sign"], _jitter(rng, np.array([0.55, 0.55, 0.57])))
    return
  palettes = [((0.8, 0.1, 0.1), (0.92, 0.92, 0.9)), ((0.1, 0.25, 0.65), (0.1, 0.25, 0.65)),
              ((0.92, 0.92, 0.9), (0.9, 0.75, 0.1)), ((0.1, 0.25, 0.65), (0.92, 0.92, 0.9))]
  rim, face = palettes[rng.integers(len(palettes))]
  canvas.paint(frame.box, outer, ID["traffic sign"], np.array(rim, np.float32))
  canvas.paint(frame.box, inner, ID["traffic sign"], np.array(face, np.float32))
  symbol = (np.abs(du) < 0.25 * r) & (np.abs(dv) < 0.35 * r)
  canvas.paint(frame.box, inner & symbol, ID["traffic sign"], np.float32(0.1))


def _draw_tree(canvas, rng, x, z):
  radius = rng.uniform(1.5, 3.5)
  trunk = rng.uniform(1.8, 3.5)
  centre = trunk + radius * 0.8
  frame = _Frame(canvas.cam, x, z, radius * 1.4, centre + radius * 1.4)
  if frame.box is None:
    return
  dv = (frame.v - centre) / 1.15
  distance = np.hypot(frame.u, dv)
  # Lobes: cos(3 angle) and cos(2 angle) as polynomials of the direction (no arctan).
  cos = frame.u / np.maximum(distance, 1e-6)
  lobes = (rng.uniform(-0.15, 0.15) * (4 * cos ** 3 - 3 * cos)
           + rng.uniform(-0.1, 0.1) * (2 * cos ** 2 - 1))
  leaf = canvas.field("leaf", frame.box)
  crown = distance <= radius * (1 + lobes + 0.15 * leaf)
  stem = frame.bar(0.0, 0.0, centre, 0.15)
  canvas.paint(frame.box, stem, ID["vegetation"], _jitter(rng, np.array([0.3, 0.22, 0.15])))
  canvas.paint(frame.box, crown, ID["vegetation"],
               _pick(rng, _GREENS) * (0.55 + 0.4 * leaf)[..., None])


def _draw_clutter(canvas, rng, x, z):
  """Static (bins, boxes) or dynamic (carts) void objects on the sidewalk."""
  dynamic = rng.random() < 0.4
  w, h = ((rng.uniform(0.4, 0.8), rng.uniform(0.8, 1.1)) if dynamic
          else (rng.uniform(0.5, 1.5), rng.uniform(0.6, 1.3)))
  frame = _Frame(canvas.cam, x, z, w / 2, h)
  if frame.box is None:
    return
  mask = frame.rect(-w / 2, w / 2, 0.1 if dynamic else 0.0, h)
  if dynamic:
    mask |= frame.ellipse(-w / 3, 0.08, 0.08, 0.08) | frame.ellipse(w / 3, 0.08, 0.08, 0.08)
  canvas.paint(frame.box, mask, ID["dynamic" if dynamic else "static"], _pick(rng, _OBJECT_COLOURS))


def _draw_guard_rail(canvas, rng, street):
  x = street.road_left - 0.1
  z0 = rng.uniform(5.0, 20.0)
  plane = _Plane(canvas.cam, x, z0, z0 + rng.uniform(15.0, 40.0), 0.85)
  if plane.box is None:
    return
  band = (plane.y > 0.45) & (plane.y < 0.8)
  posts = np.modf((plane.z - z0) / 2.0)[0] < 0.08
  canvas.paint(plane.box, plane.inside & (band | posts), ID["guard rail"], np.float32(0.62))


class _Lanes:
  """Occupied depth intervals per lateral slot, so that vehicles do not overlap."""

  def __init__(self):
    self.used = {}

  def place(self, rng, slot, length, z_lo, z_hi, tries=8):
    for _ in range(tries):
      z = rng.uniform(z_lo, z_hi)
      taken = self.used.setdefault(slot, [])
      if all(z + length + 1.0 < a or z > b + 1.0 for a, b in taken):
        taken.append((z, z + length))
        return z
    return None


def _scene_objects(rng, street):
  """Where the objects go: a list of (depth, draw(canvas)) to paint back to front."""
  objects = []
  lanes = _Lanes()

  def vehicle(kind, x, slot, z_lo, z_hi, towards):
    size = _vehicle_size(rng, kind)
    z = lanes.place(rng, slot, size[2], z_lo, z_hi)
    if z is not None:
      colour = _pick(rng, _OBJECT_COLOURS)
      seed = rng.integers(1 << 31)
      objects.append((z, lambda c: _draw_vehicle(c, np.random.default_rng(seed), kind, x, z,
                                                 towards, colour, size)))

  lane = street.lane_width
  oncoming = [-lane * (i + 1) for i in range(int(round((-lane / 2 - street.road_left) / lane)))]
  # Lanes: (centre, slot, facing the camera); big vehicles spread over different lanes.
  lanes_xs = [(0.0, "own", False)] + [(x, f"oncoming{i}", True) for i, x in enumerate(oncoming)]
  if street.parking_right:
    lanes_xs.append((street.road_right - street.parking_right / 2, "parked", False))
  if street.tram_x is not None and rng.random() < 0.95:
    vehicle("train", street.tram_x, "oncoming0", 8.0, 45.0, rng.random() < 0.6)  # the tram's lane
  for kind, i in zip(("bus", "truck"), rng.permutation(len(lanes_xs))[:2]):
    if rng.random() < 0.9:
      x, slot, towards = lanes_xs[i]
      vehicle(kind, x, slot, 8.0, 45.0, towards)
  for x, slot, towards in lanes_xs:
    for _ in range(int(rng.integers(5, 11) if slot == "parked" else rng.integers(1, 4))):
      vehicle("car", x, slot, 4.0 if slot == "parked" else 7.0, 55.0,
              rng.random() < 0.3 if slot == "parked" else towards)

  def sprite(z, draw, *args):
    seed = rng.integers(1 << 31)
    objects.append((z, lambda c: draw(c, np.random.default_rng(seed), *args)))

  sides = ((street.road_left, street.walk_left, -1.0), (street.road_right, street.walk_right, 1.0))
  for kerb, outer, sign in sides:
    z = rng.uniform(4.0, 12.0)
    while z < 70.0:  # poles near the kerb, some with signs or lights
      sprite(z, _draw_pole, kerb + sign * 0.5, z)
      z += rng.uniform(8.0, 22.0)
    if abs(outer - kerb) > 1.0:
      for _ in range(int(rng.integers(2, 7))):  # pedestrians
        x, zp = _between(rng, kerb + sign * 0.6, outer - sign * 0.3), rng.uniform(4.0, 35.0)
        sprite(zp, _draw_person, x, zp)
    if abs(street.facade_left if sign < 0 else street.facade_right) - abs(outer) > 1.5:
      zt = rng.uniform(3.0, 10.0)
      while zt < 80.0:  # an avenue of trees on the terrain strip
        sprite(zt, _draw_tree, outer + sign * 0.9, zt)
        zt += rng.uniform(6.0, 14.0)
    else:
      for _ in range(int(rng.integers(0, 3))):  # a few trees at the sidewalk's edge
        x, zt = _between(rng, outer, outer - sign * 0.8), rng.uniform(6.0, 60.0)
        sprite(zt, _draw_tree, x, zt)
    for _ in range(int(rng.integers(0, 3))):
      x, zc = _between(rng, kerb + sign * 0.5, outer), rng.uniform(4.0, 30.0)
      sprite(zc, _draw_clutter, x, zc)
    if rng.random() < 0.5:  # a parked bicycle
      x, zb = _between(rng, kerb + sign * 0.6, outer - sign * 0.5), rng.uniform(4.0, 25.0)
      sprite(zb, _draw_bike, "bicycle", x, zb, False)
  for _ in range(int(rng.integers(1, 4))):  # riders
    kind = "bicycle" if rng.random() < 0.55 else "motorcycle"
    x = ((street.road_right - street.parking_right - 0.7) if kind == "bicycle"
         else rng.uniform(-1.0, 1.0))
    zr = rng.uniform(5.0, 30.0)
    sprite(zr, _draw_bike, kind, x, zr, True)
  if rng.random() < 0.5:  # a parked motorcycle
    x, zm = street.road_right - 0.6, rng.uniform(5.0, 25.0)
    sprite(zm, _draw_bike, "motorcycle", x, zm, False)
  if rng.random() < 0.25:  # someone crossing the road
    zp = rng.uniform(6.0, 25.0)
    sprite(zp, _draw_person, rng.uniform(street.road_left, street.road_right), zp)
  return objects


def _draw_bike(canvas, rng, kind, x, z, ridden):
  mirror = rng.random() < 0.5
  _draw_two_wheeler(canvas, rng, kind, x, z, mirror)
  if ridden:
    _draw_rider(canvas, rng, kind, x, z, mirror)


def _draw_rider(canvas, rng, kind, x, z, mirror):
  # The rider sits above the two-wheeler; the same mirror keeps the pose aligned.
  frame = _Frame(canvas.cam, x, z, 0.9, 2.2, mirror)
  if frame.box is None:
    return
  shirt, trousers = _pick(rng, _OBJECT_COLOURS, 0.15), _pick(rng, _OBJECT_COLOURS, 0.15)
  seat = (-0.15, 0.9) if kind == "bicycle" else (-0.2, 0.85)
  bar = (0.34, 1.0) if kind == "bicycle" else (0.45, 1.0)
  shoulder = (seat[0] + 0.15, seat[1] + 0.58)
  knee = (seat[0] + 0.35, seat[1] - 0.25)
  foot = (0.05, 0.35)
  head = (shoulder[0] + 0.06, shoulder[1] + 0.2)
  legs = frame.segment(seat, knee, 0.08) | frame.segment(knee, foot, 0.065)
  torso = frame.segment(seat, shoulder, 0.16)
  arm = frame.segment(shoulder, bar, 0.05)
  head_mask = frame.ellipse(head[0], head[1], 0.11 if kind == "bicycle" else 0.15,
                            0.13 if kind == "bicycle" else 0.15)
  head_colour = (_SKIN[rng.integers(len(_SKIN))] if kind == "bicycle"
                 else _pick(rng, _OBJECT_COLOURS))
  canvas.paint(frame.box, legs, ID["rider"], trousers)
  canvas.paint(frame.box, torso | arm, ID["rider"], shirt)
  canvas.paint(frame.box, head_mask, ID["rider"], head_colour)


def _paint_ego_and_border(canvas, rng):
  """The ego vehicle's bonnet at the bottom and the rectification border: void."""
  cam = canvas.cam
  lift = cam.height * rng.uniform(0.04, 0.07)
  xs = (np.arange(cam.width, dtype=np.float32) - cam.cx) / (0.75 * cam.width)
  bonnet_top = cam.height - lift * np.sqrt(np.clip(1 - xs ** 2, 0, 1))
  y0 = int(cam.height - lift) - 1
  rows = np.arange(y0, cam.height, dtype=np.float32)[:, None]
  box = (y0, cam.height, 0, cam.width)
  mask = rows >= bonnet_top[None, :]
  shine = (0.12 + 0.2 * np.exp(-((rows - bonnet_top) / (0.3 * lift + 1)) ** 2))[..., None]
  canvas.paint(box, mask, ID["ego vehicle"],
               np.broadcast_to(shine, mask.shape + (1,)) * np.ones(3, np.float32))
  # Rectification: a black wedge along the left edge and in the bottom-right corner.
  wedge = max(1, int(round(cam.width * 0.006)))
  cols = np.arange(wedge, dtype=np.float32)[None, :]
  rows_all = np.arange(cam.height, dtype=np.float32)[:, None]
  left = cols < wedge * (1 - rows_all / cam.height) + 0.5
  canvas.paint((0, cam.height, 0, wedge), left, ID["rectification border"], np.zeros(3, np.float32))
  corner = int(round(cam.height * 0.04))
  if corner > 0:
    r = np.arange(corner, dtype=np.float32)[:, None]
    c = np.arange(corner, dtype=np.float32)[None, :]
    tri = r + c >= corner
    canvas.paint((cam.height - corner, cam.height, cam.width - corner, cam.width), tri,
                 ID["rectification border"], np.zeros(3, np.float32))


def render_scene(rng, height=256, width=512):
  """Renders one street scene.

  Args:
    rng: numpy Generator; the scene is a function of its state.
    height, width: image size in pixels.

  Returns:
    (image uint8 [height, width, 3], label_ids uint8 [height, width]) where the labels
    are Cityscapes labelIds.
  """
  cam = _make_camera(rng, height, width)
  street = _make_street(rng)
  canvas = _Canvas(cam, _make_fields(rng, height, width))
  _paint_sky(canvas, rng, street)
  _paint_far_end(canvas, rng, street)
  _paint_ground(canvas, rng, street)
  _paint_side(canvas, rng, street, street.facade_left)
  _paint_side(canvas, rng, street, street.facade_right)
  if rng.random() < 0.2:
    _draw_guard_rail(canvas, rng, street)
  for _, draw in sorted(_scene_objects(rng, street), key=lambda item: -item[0]):
    draw(canvas)
  _paint_ego_and_border(canvas, rng)

  # Lighting (exposure, tint, soft illumination changes), texture and sensor noise.
  fields = canvas.fields
  light = 255 * rng.uniform(0.75, 1.2) * rng.uniform(0.93, 1.07, 3).astype(np.float32)
  image = canvas.albedo
  image *= (1 + 0.12 * fields["coarse"])[..., None]
  sensor_noise = rng.uniform(0.004, 0.02)
  image += ((_FINE_AMPLITUDE[canvas.label] + sensor_noise) * fields["fine"]
            + _MEDIUM_AMPLITUDE[canvas.label] * fields["medium"])[..., None]
  image *= light
  np.clip(image + 0.5, 0, 255, out=image)
  return image.astype(np.uint8), canvas.label


# ---------------------------------------------------------------- files


def _colour_label_ids(label_ids):
  palette = np.zeros((256, 3), np.uint8)
  for label in cityscapes.LABELS:
    if label.id >= 0:
      palette[label.id] = label.color
  return palette[label_ids]


def example_picture(image, label_ids):
  """image | colour label | overlay, side by side (uint8 [H, 3W, 3])."""
  colour = _colour_label_ids(label_ids)
  overlay = ((image.astype(np.uint16) + colour) // 2).astype(np.uint8)
  return np.concatenate([image, colour, overlay], axis=1)


def scene_name(split, index):
  """Cityscapes stem `<city>_<seq>_<frame>` and city of image `index` of `split`."""
  cities = CITIES[split]
  city = cities[index % len(cities)]
  return f"{city}_{index // len(cities):06d}_{_FRAME:06d}", city


def scene_rng(seed, split, index):
  # Each image depends only on (seed, split, index): independent of the set size and
  # of the order in which workers produce images.
  return np.random.default_rng([seed, _SPLIT_CODES[split], index])


# What each Cityscapes label is in CamVid's 11 classes, as CamVid's 32 classes group into
# them (SegNet): trucks, buses and trams are cars, traffic lights signs, motorcycles and
# riders bicyclists, terrain trees, walls and bridges buildings; the rest is void.
_CAMVID_CLASS = {
    "road": "road", "parking": "road", "sidewalk": "sidewalk", "building": "building",
    "wall": "building", "bridge": "building", "tunnel": "building", "fence": "fence",
    "guard rail": "fence", "pole": "pole", "polegroup": "pole", "traffic light": "sign",
    "traffic sign": "sign", "vegetation": "tree", "terrain": "tree", "sky": "sky",
    "person": "pedestrian", "rider": "bicyclist", "car": "car", "truck": "car", "bus": "car",
    "caravan": "car", "trailer": "car", "train": "car", "motorcycle": "bicyclist",
    "bicycle": "bicyclist",
}


def _camvid_value_table():
  table = np.full(256, camvid.VOID, np.uint8)
  names = camvid.CAMVID.class_names
  for name, label in cityscapes.NAME_TO_LABEL.items():
    if label.id >= 0 and name in _CAMVID_CLASS:
      table[label.id] = names.index(_CAMVID_CLASS[name])
  return table


_CAMVID_VALUES = _camvid_value_table()


def camvid_values(label_ids: np.ndarray) -> np.ndarray:
  """CamVid's stored mask values (0..10, void 11) of a scene's Cityscapes labelIds."""
  return _CAMVID_VALUES[label_ids]


def train_ids(label_ids: np.ndarray, dataset: str = "cityscapes") -> np.ndarray:
  """The train ids of a scene's Cityscapes labelIds in `dataset` ("cityscapes", "camvid").

  Raises:
    ValueError: another dataset (the scenes have no labels of its classes).
  """
  if dataset == "cityscapes":
    return cityscapes.label_ids_to_train_ids(label_ids)
  if dataset == "camvid":
    return camvid.CAMVID.to_train_ids(camvid_values(label_ids))
  raise ValueError(f"synthetic scenes have labels of cityscapes and camvid, not of '{dataset}'")


def labelled_scenes(count: int, height: int, width: int, seed: int = 0,
                    split: str = "val", dataset: str = "cityscapes") -> list:
  """The first `count` scenes of a split in memory, as models are fed and scored.

  Returns:
    list of (image float32 [1, H, W, 3] raw pixels, train ids of `dataset` int32 [1, H, W]).
  """
  scenes = []
  for index in range(count):
    image, label_ids = render_scene(scene_rng(seed, split, index), height, width)
    scenes.append((image[None].astype(np.float32),
                   train_ids(label_ids, dataset)[None].astype(np.int32)))
  return scenes


def _write_png(path, array):
  tmp = path + ".tmp.png"
  Image.fromarray(array).save(tmp, compress_level=3)
  os.replace(tmp, path)


def _write_scene(task):
  """Renders and writes one image and its three label files; returns trainId counts."""
  output_dir, split, index, height, width, seed = task
  image, label_ids = render_scene(scene_rng(seed, split, index), height, width)
  stem, city = scene_name(split, index)
  image_dir = os.path.join(output_dir, "leftImg8bit", split, city)
  label_dir = os.path.join(output_dir, "gtFine", split, city)
  os.makedirs(image_dir, exist_ok=True)
  os.makedirs(label_dir, exist_ok=True)
  scene_train_ids = cityscapes.label_ids_to_train_ids(label_ids)
  rgba = np.concatenate(
      [_colour_label_ids(label_ids), np.full(label_ids.shape + (1,), 255, np.uint8)], -1)
  _write_png(os.path.join(image_dir, f"{stem}_leftImg8bit.png"), image)
  _write_png(os.path.join(label_dir, f"{stem}_gtFine_labelIds.png"), label_ids)
  _write_png(os.path.join(label_dir, f"{stem}_gtFine_labelTrainIds.png"), scene_train_ids)
  _write_png(os.path.join(label_dir, f"{stem}_gtFine_color.png"), rgba)
  return np.bincount(scene_train_ids.ravel(), minlength=256)


def generate(output_dir, num_train=200, num_val=40, height=256, width=512, seed=0,
             num_workers=None):
  """Writes a synthetic Cityscapes under output_dir.

  Files: leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png and, next
  to it under gtFine/, `_gtFine_labelIds.png`, `_gtFine_labelTrainIds.png` and
  `_gtFine_color.png`, plus `example.png` (image | colour label | overlay).

  Args:
    output_dir: root of the dataset.
    num_train, num_val: number of images per split.
    height, width: image size (the real Cityscapes size is 1024 x 2048).
    seed: the data set is a function of the seed.
    num_workers: processes that render; None = all cores, 1 = in this process.

  Returns:
    {split: int64 [256] pixel counts per trainId} over the written images.
  """
  if height < 32 or width < 32:
    raise ValueError(f"image size {height}x{width} is too small: height and width must be >= 32")
  if num_train < 0 or num_val < 0 or num_train + num_val == 0:
    raise ValueError(
        f"need a positive number of images, got num_train={num_train} num_val={num_val}")
  num_workers = num_workers or os.cpu_count()
  counts = {}
  for split, n in (("train", num_train), ("val", num_val)):
    if n == 0:
      continue
    tasks = [(output_dir, split, i, height, width, seed) for i in range(n)]
    bar = tqdm(total=n, desc=f"synthetic {split}", unit="img")
    total = np.zeros(256, np.int64)
    if num_workers == 1:
      results = map(_write_scene, tasks)
      for result in results:
        total += result
        bar.update()
    else:
      # spawn: safe whatever the parent has loaded (e.g. TensorFlow's threads).
      with multiprocessing.get_context("spawn").Pool(min(num_workers, n)) as pool:
        for result in pool.imap_unordered(_write_scene, tasks, chunksize=4):
          total += result
          bar.update()
    bar.close()
    counts[split] = total
  first = "train" if num_train else "val"
  image, label_ids = render_scene(scene_rng(seed, first, 0), height, width)
  _write_png(os.path.join(output_dir, "example.png"), example_picture(image, label_ids))
  return counts
