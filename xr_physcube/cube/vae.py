"""The ``ds.vae`` accessor: fit, encode, decode and reconstruct a cube with a PhysVAE.

Glue only (the model is :mod:`xr_physcube.vae.model`): variables are gathered and the
network mapped over the chunks with :mod:`xr_physcube.cube.blockwise`. Per-pixel models
work on any chunking; temporal models need whole time series per chunk, so ``time`` is
one chunk inside the method.

The accessor keeps no state (xarray makes a new accessor for every new Dataset):
:meth:`VAEAccessor.fit` returns the trained model, and every method takes the model to
use as ``model=`` (a :class:`~xr_physcube.vae.model.PhysVAE`, a checkpoint path or a
shipped name; default: the shipped model for the cube, see
:func:`~xr_physcube.vae.pretrained.default_model_name`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import xarray as xr

from xr_physcube.checkpoints import state_checksum
from xr_physcube.cube.blockwise import (
    DEFAULT_BATCH,
    blockwise,
    check_batch_size,
    gather,
    map_rows,
    private_copy,
    require,
    side_coords,
    std_attrs,
)
from xr_physcube.cube.checks import check_observations
from xr_physcube.cube.conventions import conventional_outputs
from xr_physcube.cube.datacube import MEMORY_BUDGET, datacube
from xr_physcube.cube.sampling import CubeSampler, prepare_cube
from xr_physcube.exceptions import DimensionError, MissingVariableError, OutOfRangeError
from xr_physcube.sensors.sentinel1 import POLARISATIONS, db_to_linear
from xr_physcube.sensors.sentinel2 import BAND_INFO, BANDS
from xr_physcube.vae.datacube import DataCubeVAE, load_datacube
from xr_physcube.vae.losses import SafyConsistency
from xr_physcube.vae.model import (
    INPUT_NAMES,
    OUTPUTS,
    S1_COLUMNS,
    Observations,
    PhysVAE,
    latent_spec,
)
from xr_physcube.vae.pretrained import default_model_name, load_pretrained
from xr_physcube.vae.simulate import SimulatedPixels, simulate_like
from xr_physcube.vae.train import fit
from xr_physcube.validation import positive_int

DECODE_ANGLES = ("tts", "tto", "psi", "theta")


class EncodeBlock:
    """(..., 16 [+ doy]) inputs ((..., T, 17) for temporal models) -> posterior mean, std
    (..., [T,] n_latent); NaN where nothing was observed."""

    def __init__(self, model: PhysVAE, device, batch: int, temporal: bool):
        self.model, self.device, self.batch = private_copy(model), device, batch
        self.temporal = temporal

    def _run(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.model.to(t.device)
        doy = None
        if self.temporal:
            doy, t = t[..., -1], t[..., :-1]
        o = Observations.from_columns(t)
        m, s = model.infer(o.obs, o.angles, doy)
        observed = o.observed()[..., None]
        nan = torch.full_like(m, float("nan"))
        return torch.where(observed, m, nan), torch.where(observed, s, nan)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        check_observations(x, (*INPUT_NAMES, "doy") if self.temporal else INPUT_NAMES)
        n_lat = len(self.model.latent_names)
        lead = x.shape[:-2] if self.temporal else x.shape[:-1]
        rows = x.reshape(-1, *x.shape[len(lead) :])
        tail = rows.shape[1:-1]  # (T,) or ()
        mean, std = map_rows(
            self._run,
            [rows],
            out_shapes=[(*tail, n_lat)] * 2,
            batch=self.batch,
            device=self.device,
            valid=np.ones(rows.shape[0], dtype=bool),  # unobserved rows: NaN from _run
        )
        shape = (*lead, *tail, n_lat)
        return mean.reshape(shape), std.reshape(shape)


class DecodeBlock:
    """(..., n_latent + 4) latents and angles -> (..., 12) S2 reflectance, S1 linear sigma0.

    Latents outside the model's box and angles outside their bounds (or in radians)
    raise (:func:`check_latents`, :func:`check_observations`); NaN latents stay NaN."""

    def __init__(self, model: PhysVAE, device, batch: int):
        self.model, self.device, self.batch = private_copy(model), device, batch

    def _run(self, t: torch.Tensor) -> tuple[torch.Tensor]:
        model = self.model.to(t.device)
        n_lat = len(model.latent_names)
        z = torch.maximum(torch.minimum(t[:, :n_lat], model.upper), model.lower)
        y = model.decode(z, t[:, n_lat:])
        y[:, S1_COLUMNS] = db_to_linear(y[:, S1_COLUMNS])
        return (y,)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray]:
        n_lat = len(self.model.latent_names)
        flat = x.reshape(-1, x.shape[-1])
        check_latents(self.model, flat[:, :n_lat])
        check_observations(flat[:, n_lat:], DECODE_ANGLES)
        (out,) = map_rows(
            self._run,
            [flat],
            out_shapes=[(len(OUTPUTS),)],
            batch=self.batch,
            device=self.device,
            valid=np.isfinite(flat[:, :n_lat]).all(-1),
        )
        return (out.reshape(*x.shape[:-1], -1),)


ENCODE_BYTES_PER_DATE = 12 * 1024
"""Temporaries of the temporal encoder per series date in one call (embedding, attention
layer, quadrature of the posterior moments), measured: ~12 kB (``bench_memory.py``)."""


def temporal_task_size(n_dates: int, model: PhysVAE, budget: int) -> tuple[int, int]:
    """(pixels per spatial chunk, series per network call) of a temporal encode task under
    ``budget`` bytes: half for its float32 inputs (17 columns, about three copies) and
    outputs (mean and std, twice), a quarter for one call's temporaries."""
    n_lat = len(model.latent_names)
    io = 4 * n_dates * (3 * (len(INPUT_NAMES) + 1) + 4 * n_lat)
    heads = getattr(model.encoder, "mix", None)
    heads = heads.self_attn.num_heads if heads is not None else 4
    tmp = ENCODE_BYTES_PER_DATE * n_dates + 4 * 6 * heads * n_dates**2
    return max(1, (budget // 2) // io), max(1, (budget // 4) // tmp)


def limit_spatial_chunks(da: xr.DataArray, pixels: int) -> xr.DataArray:
    """``da`` rechunked so that a chunk spans at most ``pixels`` along its non-``time``
    dims (square-ish); unchanged if it is not a dask array or already small enough."""
    if da.chunks is None:
        return da
    spatial = [d for d in da.dims if d != "time"]
    sizes = {d: max(da.chunksizes[d]) for d in spatial}
    if int(np.prod(list(sizes.values()))) <= pixels:
        return da
    side = max(1, int(pixels ** (1.0 / max(len(spatial), 1))))
    return da.chunk({d: min(sizes[d], side) for d in spatial})


def check_latents(model: PhysVAE, z: np.ndarray) -> None:
    """Raise :class:`OutOfRangeError` if a finite latent of ``z`` (n, n_latent) lies
    outside the model's box (its decoder is only defined there; it would clamp)."""
    lower, upper = model.lower.cpu().numpy(), model.upper.cpu().numpy()
    for i, name in enumerate(model.latent_names):
        column = z[:, i]
        values = column[np.isfinite(column)]
        if values.size == 0:
            continue
        lo, hi = float(values.min()), float(values.max())
        slack = 1e-4 * float(upper[i] - lower[i])  # float32 rounding of posterior means
        if lo < lower[i] - slack or hi > upper[i] + slack:
            spec = latent_spec(name)
            units = "" if spec.units == "1" else f" {spec.units}"
            raise OutOfRangeError(
                f"vae.decode: latent {name!r} ({spec.long_name}) has values in "
                f"[{lo:g}, {hi:g}]; this model decodes [{lower[i]:g}, {upper[i]:g}]{units}"
            )


def _doy_hint(missing: list[str]) -> str:
    if "doy" not in missing:
        return ""
    return (
        "; a temporal model needs the day of year of each date: datetime64 values on "
        "'time' or a 'doy' coordinate"
    )


def resolve_model(model: PhysVAE | str | Path | None, ds: xr.Dataset) -> PhysVAE:
    """The model to use: ``model`` itself, a checkpoint path or a shipped name; ``None``:
    the shipped default for ``ds`` (:func:`default_model_name`)."""
    if isinstance(model, PhysVAE):
        return model
    if model is None:
        return load_pretrained(default_model_name(ds.sizes.get("time", 1)))
    path = Path(model)
    return (
        PhysVAE.load(path) if path.suffix == ".pt" or path.exists() else load_pretrained(str(model))
    )


def _check_time(net: PhysVAE, ds: xr.Dataset) -> None:
    """A temporal model needs a ``time`` dimension (a single date selected with
    ``isel(time=0)`` leaves a scalar ``time``)."""
    if net.config.temporal and "time" not in ds.dims:
        raise DimensionError(
            f"this VAE is temporal and needs a 'time' dimension; the cube has dims "
            f"{tuple(ds.dims)}: pass a per-pixel model (e.g. 'pixel_hybrid') or add the "
            "dimension (ds.expand_dims('time') for a single date)"
        )


@xr.register_dataset_accessor("vae")
@conventional_outputs
class VAEAccessor:
    """Physics-constrained VAE on a Dataset (S2 bands ``B2``…``B12``, S1 ``VV``/``VH``,
    angles ``tts``/``tto``/``psi`` (S2) and ``theta`` (S1)).

    Stateless: :meth:`fit` returns the model; pass it on with ``model=``.

    Examples:
        >>> cube = xr_physcube.io.demo.demo_scene().cube
        >>> latent = cube.vae.encode()  # lazy: lai, lai_std, cab, ..., mv, mv_std
        >>> recon = cube.vae.reconstruct()  # lazy modelled B2..B12, VV, VH
        >>> model = cube.vae.fit(max_steps=200)  # fine-tune the shipped model on the cube
        >>> tuned = cube.vae.encode(model)
    """

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # ---- training ------------------------------------------------------------------
    def fit(
        self,
        model: PhysVAE | str | Path | None = None,
        *,
        epochs: int | None = None,
        max_steps: int | None = None,
        batch_size: int = 512,
        lr: float = 5e-4,
        kl_weight: float = 1.0,
        smooth_weight: float = 0.0,
        anchor: int | SimulatedPixels | None = None,
        anchor_weight: float = 10.0,
        safy: SafyConsistency | bool = False,
        safy_weight: float = 10.0,
        device: str | torch.device | None = None,
        progress: bool = True,
        checkpoint: str | Path | None = None,
        seed: int = 0,
    ) -> PhysVAE:
        """Train (fine-tune) a VAE on this cube's pixels, chunk by chunk (never the whole
        cube in memory); unsupervised: masked NLL + KL (+ LAI smoothness for temporal
        models).

        Args:
            model: a :class:`PhysVAE` (trained in place, e.g. a fresh
                ``PhysVAE(temporal=True)``), a checkpoint path or a shipped name;
                default: the shipped model for this cube (``temporal_hybrid`` with ≥ 2
                dates, else ``pixel_hybrid``).
            epochs: passes over the cube (one pass if neither this nor ``max_steps``).
            max_steps: optimiser steps of ``batch_size`` pixels (or series), over as
                many passes of the cube as needed.
            anchor: simulations with known truth mixed into every step
                (``anchor_weight`` × their supervised NLL, see
                :func:`xr_physcube.vae.train.fit`); an ``int`` draws that many from
                the shared priors (pixels, or 8-date series for temporal models).
                The VAE objective alone can trade physical accuracy for
                reconstruction (``benchmarks/bench_vae.py`` measures both).
            safy: temporal models: add ``safy_weight`` × the distance of each
                pixel's LAI trajectory to the nearest SAFY season
                (:class:`SafyConsistency`; ``True``: maize parameters under the
                shipped Toulouse climate). Use it on cubes (or masks) of the crop the
                SAFY parameters describe.
            checkpoint: path saved after each pass.

        Returns:
            The trained model, with the loss of every step as ``model.history``. Pass
            it on: ``cube.vae.encode(model)``.
        """
        net = resolve_model(model, self._ds)
        _check_time(net, self._ds)
        sampler = CubeSampler(self._ds, temporal=net.config.temporal)
        if isinstance(anchor, int):
            anchor = simulate_like(net, anchor, seed=seed + 1)
        safy_term = SafyConsistency() if safy is True else (safy or None)
        history = fit(
            net, sampler, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr,
            kl_weight=kl_weight, smooth_weight=smooth_weight, anchor=anchor,
            anchor_weight=anchor_weight, safy=safy_term, safy_weight=safy_weight,
            device=device, seed=seed, progress=progress, checkpoint=checkpoint,
        )  # fmt: skip
        if not history:
            raise MissingVariableError(
                "nothing to fit: no pixel of the cube has a valid observation (every S2 band "
                "and VV/VH NaN or SCL-masked)"
            )
        net.history = history
        return net

    # ---- the regular-grid data cube -----------------------------------------------
    def _modalities(self, s1: xr.Dataset | None) -> tuple[xr.Dataset | None, xr.Dataset | None]:
        """(S2 cube, S1 cube): ``self`` is the S2 cube, or the S1 cube when it has no S2
        bands and ``s1`` is not given."""
        has_s2 = any(b in self._ds.data_vars for b in BANDS)
        if not has_s2 and s1 is None and "VV" in self._ds.data_vars:
            return None, self._ds
        return (self._ds if has_s2 else None), s1

    def datacube(
        self,
        s1: xr.Dataset | None = None,
        *,
        freq: str = "5D",
        times=None,
        start=None,
        end=None,
        model: DataCubeVAE | str | Path | None = None,
        device: str | torch.device | None = None,
        memory_budget: int = MEMORY_BUDGET,
    ) -> xr.Dataset:
        """Physical variables on a regular time grid from S2 and S1 on their own dates.

        ``self`` is the S2 cube (bands ``B2``…``B12``, SCL optional, per-date ``tts``,
        ``tto``, ``psi`` in degrees) or, without S2 bands, the S1 cube; ``s1`` an S1 cube
        (``VV``, ``VH`` linear or ``units="dB"``, ``theta`` in degrees) on the same
        spatial grid (``load_s1(..., like=s2)``) and its own ``time`` axis.

        Args:
            freq: spacing of the grid (a pandas frequency, e.g. "5D", "1W").
            times: explicit grid dates (instead of ``freq``/``start``/``end``).
            start, end: grid bounds (default: the first and last acquisition).
            model: a :class:`~xr_physcube.vae.datacube.DataCubeVAE`, a checkpoint path,
                or None for the shipped one (pre-trained on simulated seasons).
            memory_budget: peak bytes per dask task (spatial chunks sized to fit).

        Returns:
            Lazy Dataset (time, y, x) on the grid: posterior mean ``<name>`` and
            ``<name>_std`` of every physical latent (LAI, Cab, …, mv) with CF attrs; NaN
            for pixels with no valid acquisition at all. Acquisitions far from a grid
            date inform it less (its std grows with the gap).
        """
        net = load_datacube(model)
        s2, s1 = self._modalities(s1)
        return datacube(
            s2, s1, net, freq=freq, times=times, start=start, end=end, device=device,
            memory_budget=memory_budget,
        )  # fmt: skip

    def reconstruct_observations(
        self,
        s1: xr.Dataset | None = None,
        *,
        model: DataCubeVAE | str | Path | None = None,
        device: str | torch.device | None = None,
        memory_budget: int = MEMORY_BUDGET,
    ) -> tuple[xr.Dataset | None, xr.Dataset | None]:
        """The S2 and S1 acquisitions as the data cube explains them: the posterior mean
        at each acquisition date (:meth:`datacube` with ``times=`` those dates), through
        the physical decoder (PROSAIL-D at the S2 angles, Water Cloud/Oh at ``theta``).

        Cloudy or missing acquisitions are reconstructed too (gap filling); compare with
        the clear ones to see how well the physics explains the cube.

        Returns:
            ``(s2_model, s1_model)``: ``B2``…``B12`` (reflectance, 1) on the S2 dates and
            ``VV``, ``VH`` (linear sigma0, 1) on the S1 dates, lazy; None for an absent
            modality.
        """
        net = load_datacube(model)
        s2, s1 = self._modalities(s1)
        kw = dict(model=net, device=device, memory_budget=memory_budget)
        s2_model = s1_model = None
        if s2 is not None:
            ds = prepare_cube(s2)
            latent = s2.vae.datacube(s1=s1, times=ds.indexes["time"], **kw)
            optical = gather(ds, ["B2", *DECODE_ANGLES[:3]])[1:]
            angles = dict(zip(DECODE_ANGLES[:3], optical, strict=True))
            decoded = latent.assign(angles).vae.decode(net, device=device)
            s2_model = decoded[list(BANDS)].assign_coords(time=ds.time)
        if s1 is not None:
            times = s1.indexes["time"]
            source = s2 if s2 is not None else s1
            latent = source.vae.datacube(s1=s1, times=times, **kw)
            theta = s1["theta"].astype(np.float32).assign_coords(time=latent.time)
            optical = {a: np.float32(0.0) for a in DECODE_ANGLES[:3]}  # unused by VV/VH
            decoded = latent.assign({**optical, "theta": theta}).vae.decode(net, device=device)
            s1_model = decoded[list(POLARISATIONS)].assign_coords(time=s1.time)
        return s2_model, s1_model

    # ---- encode / decode -----------------------------------------------------------
    def encode(
        self,
        model: PhysVAE | str | Path | None = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int = DEFAULT_BATCH,
        memory_budget: int = MEMORY_BUDGET,
    ) -> xr.Dataset:
        """Posterior mean and standard deviation of each physical latent, per pixel (and
        date), lazily and blockwise. Variables ``<name>`` and ``<name>_std`` with CF
        attrs; NaN where nothing was observed. Same dims as the input bands. ``model``:
        as in :meth:`fit` (default: the shipped temporal model on time series);
        ``batch_size``: pixel-dates per network call. Temporal models see whole series
        (``time`` is one chunk): larger spatial chunks of a dask cube are split so that
        a task stays under ``memory_budget`` bytes (:func:`temporal_task_size`)."""
        batch_size = check_batch_size(batch_size)
        memory_budget = positive_int(memory_budget, "memory_budget")
        net = resolve_model(model, self._ds)
        _check_time(net, self._ds)
        ds = prepare_cube(self._ds)
        temporal = net.config.temporal
        names = list(INPUT_NAMES) + (["doy"] if temporal else [])
        require(ds, names, "vae.encode", _doy_hint)
        inputs = gather(ds, names)
        n_lat = len(net.latent_names)
        per_call = batch_size // (ds.sizes.get("time", 1) if temporal else 1) or 1
        if temporal:
            per_chunk, budget_call = temporal_task_size(ds.sizes["time"], net, memory_budget)
            inputs = [limit_spatial_chunks(da, per_chunk) for da in inputs]
            per_call = min(per_call, budget_call)
        block = EncodeBlock(net, device, per_call, temporal)
        mean, std = blockwise(
            block, inputs, n_outputs=2, out_dim="latent", out_size=n_lat, time_core=temporal
        )
        if temporal:
            dims = (*inputs[0].dims, "latent")
            mean, std = mean.transpose(*dims), std.transpose(*dims)
        out: dict[str, xr.DataArray] = {}
        for i, name in enumerate(net.latent_names):
            attrs = latent_spec(name).attrs()
            out[name] = mean.isel(latent=i).assign_attrs(
                {**attrs, "long_name": f"posterior mean of {attrs['long_name']}"}
            )
            out[f"{name}_std"] = std.isel(latent=i).assign_attrs(
                std_attrs({**attrs, "long_name": f"posterior {attrs['long_name']}"})
            )
        kind = "PhysVAE " + ("temporal" if temporal else "pixel")
        result = xr.Dataset(out, attrs={"vae_model": kind, "model_sha256": state_checksum(net)})
        return result.assign_coords(side_coords(self._ds, tuple(mean.dims)))

    def decode(
        self,
        model: PhysVAE | str | Path | None = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> xr.Dataset:
        """Run the VAE's physical decoder on a Dataset of latents (e.g. the output of
        :meth:`encode`, posterior means) with angles ``tts``, ``tto``, ``psi`` (and
        ``theta``; 38° if absent). Returns modelled ``B2``…``B12`` (reflectance) and
        ``VV``, ``VH`` (linear sigma0), with the input's non-index coordinates (per-date
        angles, a single date's scalar ``time``)."""
        batch_size = check_batch_size(batch_size)
        net = resolve_model(model, self._ds)
        ds = self._ds
        if "theta" not in ds.variables:
            ref = ds.get(net.latent_names[0], None)
            if ref is not None:
                ds = ds.assign(theta=xr.full_like(ref, 38.0, dtype=np.float32))
        names = [*net.latent_names, *DECODE_ANGLES]
        require(ds, names, "vae.decode")
        (y,) = blockwise(
            DecodeBlock(net, device, batch_size),
            gather(ds, names),
            n_outputs=1,
            out_dim="output",
            out_size=len(OUTPUTS),
        )
        out = {}
        for b in BANDS:
            out[b] = y.isel(output=OUTPUTS.index(b)).assign_attrs(
                long_name=f"VAE-modelled Sentinel-2 {b} surface reflectance",
                units="1",
                central_wavelength_nm=BAND_INFO[b].central_wavelength_nm,
            )
        for p in POLARISATIONS:
            out[p] = y.isel(output=OUTPUTS.index(p)).assign_attrs(
                long_name=f"VAE-modelled Sentinel-1 {p} backscatter coefficient", units="1"
            )
        result = xr.Dataset(out, attrs={"source": "PhysVAE decoder: PROSAIL-D + WCM/Oh"})
        return result.assign_coords(side_coords(self._ds, tuple(y.dims[:-1])))

    def reconstruct(
        self,
        model: PhysVAE | str | Path | None = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> xr.Dataset:
        """Encode then decode the posterior means: the cube as the physics explains it
        (dims and coordinates of the cube's bands)."""
        net = resolve_model(model, self._ds)
        latent = self.encode(net, device=device, batch_size=batch_size)
        ds = prepare_cube(self._ds)
        angles = gather(ds, ["B2", *DECODE_ANGLES])[1:]
        latent = latent.drop_vars(list(DECODE_ANGLES), errors="ignore")
        latent = latent.assign(dict(zip(DECODE_ANGLES, angles, strict=True)))
        recon = latent.vae.decode(net, device=device)
        return recon.assign_coords(side_coords(self._ds, tuple(recon["B2"].dims)))
