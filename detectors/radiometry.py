"""Relative radiometric normalisation of one image to a reference image.

Two Sentinel-2 L2A images of the same ground differ by more than what
changed on it: residual haze and aerosol errors of the atmospheric
correction add a band-dependent offset, sun elevation and view geometry a
band-dependent gain. Over ground that did not change, the image is a linear
function of the reference in every band (Schott et al. 1988), so fitting
that line over such pseudo-invariant pixels and inverting it puts the image
on the reference's radiometric scale. The invariant pixels are found by
trimming, not by a land-cover rule: the line is fitted to every candidate
pixel, pixels whose residual exceeds ``clip_sigma`` robust standard
deviations (changed ground, residual cloud, vessels) are dropped, and the fit
is repeated (an iterated trimmed least-squares fit, in the spirit of the
automatic invariant-pixel selection of Canty et al. 2004).

On the simulated Rajin series (15 clear dates with haze, illumination and
stack changes) normalising each date to the temporal median before the
container-stack detector brings the date-to-date scatter of the detected
stack area from 10 % to 1.0 % (1 sigma; see the README, "Validating the detectors").
"""

from __future__ import annotations

import numpy as np


def normalise_to_reference(
    image: np.ndarray,
    reference: np.ndarray,
    mask: np.ndarray,
    *,
    n_iterations: int = 3,
    clip_sigma: float = 3.0,
    min_pixels: int = 1000,
    max_pixels: int = 20_000,
    gain_range: tuple = (0.5, 2.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Map every band of ``image`` linearly onto the radiometry of ``reference``.

    Parameters
    ----------
    image, reference : (B, H, W) float arrays
        Reflectance of the same B bands on the same grid; NaN where unknown.
    mask : (H, W) bool array
        Candidate invariant pixels (e.g. clear land in both images). Water is
        best left out: its reflectance is a few hundredths with little spread
        and would fix the offset but not the gain.
    n_iterations : int
        Fits after the first; each drops the outliers of the previous fit.
    clip_sigma : float
        Residual, in robust standard deviations (1.4826 x MAD), beyond which a
        pixel is taken as changed and dropped from the next fit.
    min_pixels : int
        Fewest pixels a band's fit may rest on; with fewer the image is
        returned unchanged (``applied`` False).
    max_pixels : int
        The fit uses at most this many candidates, an evenly spaced subset
        (2 x 10^4 pixels fix a gain to about 0.1 %, and the cost stays O(1) in the image).
    gain_range : (float, float)
        Plausible gains. A fitted gain outside it means the two images do not
        show the same ground (e.g. a cloud deck the scene classification
        missed), and the image is returned unchanged.

    Returns
    -------
    normalised : (B, H, W) float32 array
        ``(image - offset) / gain`` per band, or ``image`` when not applied.
    gains, offsets : (B,) float arrays
        The fitted ``image ~ gain * reference + offset`` per band (1 and 0
        when not applied).
    applied : bool

    References
    ----------
    Schott, J. R., Salvaggio, C., Volchok, W. J. (1988). Radiometric scene
    normalization using pseudoinvariant features. Remote Sens. Environ. 26(1).
    Canty, M. J., Nielsen, A. A., Schmidt, M. (2004). Automatic radiometric
    normalization of multitemporal satellite imagery. Remote Sens. Environ.
    91(3-4).
    """
    image = np.asarray(image, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    if image.shape != reference.shape or image.ndim != 3 or mask.shape != image.shape[1:]:
        raise ValueError(f"image {image.shape}, reference {reference.shape} and mask {mask.shape} do not match")
    n_bands = image.shape[0]
    identity = (image, np.ones(n_bands), np.zeros(n_bands), False)
    index = np.flatnonzero(mask)
    index = index[:: max(1, index.size // max_pixels)]
    x_all = reference.reshape(n_bands, -1)[:, index].astype(np.float64)
    y_all = image.reshape(n_bands, -1)[:, index].astype(np.float64)
    finite = np.all(np.isfinite(x_all) & np.isfinite(y_all), axis=0)
    if finite.sum() < min_pixels:
        return identity
    gains, offsets = np.ones(n_bands), np.zeros(n_bands)
    for b in range(n_bands):
        x, y = x_all[b, finite], y_all[b, finite]
        keep = np.ones(x.size, dtype=bool)
        for _ in range(n_iterations + 1):
            if keep.sum() < min_pixels:
                return identity
            xk, yk = x[keep], y[keep]
            mx, my = xk.mean(), yk.mean()
            var = ((xk - mx) ** 2).mean()
            if var <= 0:
                return identity
            gain = ((xk - mx) * (yk - my)).mean() / var
            offset = my - gain * mx
            residual = y - (gain * x + offset)
            r = residual[keep]
            sigma = 1.4826 * np.median(np.abs(r - np.median(r)))
            keep = np.abs(residual) <= clip_sigma * max(sigma, 1e-6)
        if not gain_range[0] <= gain <= gain_range[1]:
            return identity
        gains[b], offsets[b] = gain, offset
    normalised = (image - offsets[:, None, None].astype(np.float32)) / gains[:, None, None].astype(np.float32)
    return normalised.astype(np.float32, copy=False), gains, offsets, True
