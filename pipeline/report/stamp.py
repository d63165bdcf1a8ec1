"""A SIMULATED stamp on every PNG made from simulated input, visible and in the metadata.

A PNG copied out of the report (into a slide, a chat) loses the page that said
the data were simulated. :func:`stamp_png` draws a red band across the top of
the image reading ``SIMULATED - not Sentinel imagery, not evidence`` and
writes PNG text chunks (``berthwatch:simulated = true``, ``Description``,
``Software``) that image viewers and ``exiftool`` show. Real input gets the
metadata (``berthwatch:simulated = false``) and no band.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from berthwatch import __version__

STAMP_TEXT = "SIMULATED - not Sentinel imagery, not evidence"
STAMP_RGB = (185, 28, 28)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def stamp_png(png: bytes, simulated: bool, description: str = "") -> bytes:
    """The PNG with the stamp (when ``simulated``) and berthwatch's text metadata."""
    img = Image.open(io.BytesIO(png))
    img.load()
    return png_bytes(stamp_image(img, simulated), simulated, description)


def stamp_image(img: Image.Image, simulated: bool) -> Image.Image:
    """The image with the red SIMULATED band above it when ``simulated`` (else unchanged).

    The band's height scales with the image (14 to 28 px) and is added above
    the image rather than over it, so nothing of the image is hidden.
    """
    if simulated:
        w, h = img.size
        band = max(14, min(28, w // 30))
        mode = "RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB"
        out = Image.new(mode, (w, h + band), (255, 255, 255) if mode == "RGB" else (255, 255, 255, 255))
        out.paste(img.convert(mode), (0, band))
        draw = ImageDraw.Draw(out)
        draw.rectangle([0, 0, w, band - 1], fill=STAMP_RGB)
        font = _font(band - 4)
        text = STAMP_TEXT
        while draw.textlength(text, font=font) > w - 6 and " - " in text:
            text = text.split(" - ")[0]
        draw.text((4, 1), text, fill=(255, 255, 255), font=font)
        img = out
    return img


def png_bytes(img: Image.Image, simulated: bool, description: str = "") -> bytes:
    """``img`` as PNG with berthwatch's text chunks (``berthwatch:simulated``, ``Description``)."""
    info = PngInfo()
    info.add_text("berthwatch:simulated", "true" if simulated else "false")
    info.add_text("Software", f"berthwatch {__version__}")
    desc = (STAMP_TEXT + ". " if simulated else "") + description
    if desc:
        info.add_text("Description", desc.strip())
    buf = io.BytesIO()
    # zlib level 3: half the time of the default level 6 and the same size on these 256-colour
    # images (the report writes some sixty of them on every run)
    img.save(buf, format="PNG", pnginfo=info, compress_level=3)
    return buf.getvalue()


def png_is_stamped(png: bytes) -> bool:
    """Whether a PNG's metadata says it was made from simulated input."""
    img = Image.open(io.BytesIO(png))
    return img.text.get("berthwatch:simulated") == "true"
