"""Biomass and yield maps from a cube's LAI series: SAFY calibrated per pixel
(``ds.physics.calibrate_safy``; Battude et al. 2016).

The xarray layer of :func:`xr_physcube.models.safy_calibration.calibrate`: weather
alignment (the daily axis checks of :mod:`xr_physcube.cube.grow`), the LAI dates as
indices into the daily weather, one blockwise call (:mod:`xr_physcube.cube.blockwise`,
the whole time axis in one chunk, space kept chunked) whose packed output is split into
CF-attributed variables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from xr_physcube.cube.blockwise import (
    blockwise,
    check_batch_size,
    map_rows,
    require,
    side_coords,
)
from xr_physcube.cube.grow import daily_times
from xr_physcube.exceptions import (
    DimensionError,
    InvalidArgumentError,
    MissingVariableError,
    TimeAxisError,
)
from xr_physcube.models.safy import SAFY_PARAMETERS
from xr_physcube.models.safy_calibration import (
    FITTED,
    calibrate,
    check_options,
    crop_prior,
)

CALIBRATION_BATCH = 4096
"""Pixel-starts per calibration call inside a chunk (``batch_size // starts`` pixels);
the finite-difference Jacobian needs about 35 kB per pixel-start for a 200-day season."""

SCALARS = ("biomass_final", "biomass_final_std", "yield", "yield_std", "rmse", "n_obs")
_ATTRS: dict[str, dict[str, str]] = {
    "biomass_final": {
        "long_name": "dry above-ground biomass at the end of the season (calibrated SAFY)",
        "units": "g m-2",
    },
    "biomass_final_std": {
        "long_name": "standard deviation of biomass_final (Laplace "
        "approximation + spread of starts)",
        "units": "g m-2",
    },
    "yield": {
        "long_name": "yield: harvest index x final dry above-ground biomass",
        "units": "g m-2",
    },
    "yield_std": {"long_name": "standard deviation of yield", "units": "g m-2"},
    "rmse": {"long_name": "RMSE of the calibrated GLAI on the valid LAI dates", "units": "m2 m-2"},
    "n_obs": {"long_name": "number of valid LAI dates used", "units": "1"},
    "glai": {"long_name": "green leaf area index (calibrated SAFY)", "units": "m2 m-2"},
    "biomass": {"long_name": "dry above-ground biomass (calibrated SAFY)", "units": "g m-2"},
}


def _weather(weather: xr.Dataset, temperature: str, radiation: str):
    if not isinstance(weather, xr.Dataset):
        raise InvalidArgumentError(
            "calibrate_safy() needs weather= as an xarray Dataset with daily "
            f"{temperature!r} (degC) and {radiation!r} (MJ m-2 day-1); got {type(weather)}"
        )
    days = daily_times(weather)
    require(weather, [temperature, radiation], "calibrate_safy() weather")
    out = []
    for name in (temperature, radiation):
        da = weather[name].reset_coords(drop=True)
        if "time" not in da.dims:
            raise TimeAxisError(f"calibrate_safy(): weather variable {name!r} has no 'time'")
        if da.chunks is None:
            values = np.asarray(da.values, dtype=float)
            if not np.isfinite(values).all():
                raise InvalidArgumentError(
                    f"calibrate_safy(): weather variable {name!r} has NaN or inf on "
                    f"{int((~np.isfinite(values)).sum())} value(s); fill the gaps first"
                )
        out.append(da.rename(time="day"))
    return days, out


def _obs_days(lai_times: np.ndarray, days: np.ndarray) -> np.ndarray:
    first = np.datetime64(pd.Timestamp(days[0]).floor("D"))
    idx = (pd.DatetimeIndex(lai_times).floor("D").values - first) // np.timedelta64(1, "D")
    bad = (idx < 0) | (idx > days.size - 1)
    if bad.any():
        raise TimeAxisError(
            f"calibrate_safy(): {int(bad.sum())} LAI date(s) outside the weather series "
            f"{days[0]} .. {days[-1]} (first: {lai_times[bad][0]}); give weather covering "
            "the whole LAI series"
        )
    return idx.astype(np.int64)


def _day_index(date: Any, days: np.ndarray, name: str, check: bool = True) -> float:
    """Index of calendar day ``date`` in the daily series ``days`` (checked inside)."""
    try:
        when = pd.Timestamp(date)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"calibrate_safy(): {name}={date!r} is not a date") from err
    if pd.isna(when):
        raise InvalidArgumentError(f"calibrate_safy(): {name} is NaT")
    first = np.datetime64(pd.Timestamp(days[0]).floor("D"))
    index = float((np.datetime64(when.floor("D")) - first) / np.timedelta64(1, "D"))
    if check and not 0 <= index <= days.size - 1:
        raise TimeAxisError(
            f"calibrate_safy(): {name} {when.date()} lies outside the weather series "
            f"{days[0]} .. {days[-1]}"
        )
    return index


def _d0_bounds(sowing: Any, days: np.ndarray, crop) -> tuple[float, float] | None:
    if sowing is None:
        return None
    s = _day_index(sowing, days, "sowing", check=False)
    lo, hi = s + crop.emergence_days[0], s + crop.emergence_days[1]
    if lo < 0 or lo > days.size - 2:
        raise TimeAxisError(
            f"calibrate_safy(): sowing {pd.Timestamp(sowing).date()} + "
            f"{crop.emergence_days[0]:g} days lies outside the weather series "
            f"{days[0]} .. {days[-1]}"
        )
    return lo, min(hi, days.size - 1.0)


class CalibrationBlock:
    """lai (..., T), [lai_std (..., T)], temperature, radiation (..., n_days) ->
    packed (..., K): fitted parameters, scalars, daily GLAI [, daily biomass]."""

    def __init__(self, obs_day, has_std, trajectory, options, batch, device, progress=False):
        self.obs_day, self.has_std, self.trajectory = np.asarray(obs_day), has_std, trajectory
        self.options, self.batch, self.device = dict(options), batch, device
        self.progress = progress

    def size(self, n_days: int) -> int:
        return len(FITTED) + len(SCALARS) + n_days * (2 if self.trajectory else 1)

    def __call__(self, lai, *rest):
        std = rest[0] if self.has_std else None
        temp, rad = rest[-2:]
        n_days = temp.shape[-1]
        shape = lai.shape[:-1]
        y = lai.reshape(-1, lai.shape[-1])
        s = None if std is None else np.broadcast_to(std, lai.shape).reshape(y.shape)
        t = np.broadcast_to(temp, (*np.broadcast_shapes(temp.shape[:-1], shape), n_days))
        r = np.broadcast_to(rad, t.shape)
        out = np.full((y.shape[0], self.size(n_days)), np.nan, np.float32)
        if not np.isfinite(t).all() or not np.isfinite(r).all():
            raise InvalidArgumentError("calibrate_safy(): weather has NaN or inf in a chunk")
        if np.prod(temp.shape[:-1]) == 1 and np.prod(rad.shape[:-1]) == 1:  # one series
            groups = [(t.reshape(-1, n_days)[0], r.reshape(-1, n_days)[0], np.arange(y.shape[0]))]
        else:
            tr = np.concatenate([t.reshape(-1, n_days), r.reshape(-1, n_days)], axis=1)
            uniq, inverse = np.unique(tr, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
            groups = [
                (u[:n_days], u[n_days:], np.flatnonzero(inverse == i)) for i, u in enumerate(uniq)
            ]
        enough = np.isfinite(y).sum(-1) >= 3
        batch = max(1, self.batch // self.options["starts"])
        bar = tqdm(
            total=int(enough.sum()), unit="px", disable=not self.progress, desc="calibrate_safy"
        )
        for tw, rw, group in groups:
            fit = self._fit(tw, rw)
            for i in range(0, group.size, batch):
                rows = group[i : i + batch]
                arrays = [y[rows]] + ([s[rows]] if s is not None else [])
                res = map_rows(
                    fit,
                    arrays,
                    out_shapes=[(out.shape[1],)],
                    batch=batch,
                    device=self.device,
                    valid=enough[rows],
                )
                out[rows] = res[0]
                bar.update(int(enough[rows].sum()))
        bar.close()
        return (out.reshape(*shape, -1),)

    def _fit(self, tw: np.ndarray, rw: np.ndarray):
        def fn(lai: torch.Tensor, std: torch.Tensor | None = None):
            dev = lai.device
            res = calibrate(
                torch.tensor(tw, device=dev),
                torch.tensor(rw, device=dev),
                lai,
                torch.as_tensor(self.obs_day, device=dev),
                lai_std=std,
                **self.options,
            )
            hi = crop_prior(self.options["crop"]).hi
            b = res.biomass[:, -1]
            cols = [res.params[k] for k in FITTED]
            cols += [b, res.biomass_std, hi * b, hi * res.biomass_std, res.rmse]
            cols += [res.n_obs.to(b.dtype)]
            parts = [torch.stack(cols, -1), res.glai]
            if self.trajectory:
                parts.append(res.biomass)
            return (torch.cat(parts, -1),)

        return fn


def calibrate_safy(
    ds: xr.Dataset,
    lai: str = "lai",
    weather: xr.Dataset | None = None,
    crop: str = "maize",
    *,
    sowing: Any = None,
    harvest: Any = None,
    lai_std: str | None = "auto",
    temperature: str = "temperature",
    radiation: str = "radiation",
    trajectory: bool = False,
    grid_size: int = 2048,
    starts: int = 1,
    steps: int = 2,
    prior_scale: float = 1.0,
    lai_sigma: float = 0.5,
    jacobian: str = "finite-difference",
    emergence_width: float = 1.0,
    seed: int = 0,
    batch_size: int = CALIBRATION_BATCH,
    device: str | torch.device | None = "cpu",
    progress: bool = False,
) -> xr.Dataset:
    """Calibrate SAFY per pixel on an LAI series; biomass and yield maps (Battude et al.
    2016). Method: :mod:`xr_physcube.models.safy_calibration` (bounded crop priors, a
    coarse Sobol' grid, batched Levenberg–Marquardt through SAFY, Laplace uncertainty).

    Lazy and blockwise over space (the LAI ``time`` axis and the weather in one chunk).

    Args:
        ds: Dataset with the LAI series ``lai`` (time, y, x) (or (time,) / (time, n)):
            e.g. the output of ``physics.retrieve`` or of ``vae.datacube``; dates may be
            irregular; NaN dates are skipped. Pixels with < 3 valid dates give NaN.
        lai: name of the green LAI variable (m² m⁻²).
        weather: daily forcing Dataset on a regular daily datetime64 ``time`` axis with
            ``temperature`` (daily mean air temperature, °C) and ``radiation`` (global
            radiation, MJ m⁻² day⁻¹), per date (time,) or per pixel (time, y, x) on the
            grid of ``ds``; must cover every LAI date; the season runs over its days.
        crop: "maize" or "winter_wheat" ("wheat", "corn" accepted): the crop prior
            (:data:`~xr_physcube.models.safy_calibration.CROPS`, sources there).
        sowing: sowing date (anything ``pd.Timestamp`` reads): bounds the emergence
            search to the crop's days after sowing; default the whole weather series.
        harvest: harvest date: the season (weather, daily outputs, ``biomass_final``
            and ``yield``) ends that day, and LAI dates after it are not used;
            default the last weather day (SAFY freezes biomass once its season ends).
        lai_std: LAI standard deviation variable (m² m⁻²) weighting the fit; "auto"
            uses ``<lai>_std`` when present, None ignores it.
        temperature, radiation: names of the weather variables.
        trajectory: also return the daily ``biomass`` (time, y, x).
        grid_size, starts, steps, prior_scale, lai_sigma, jacobian, emergence_width,
            seed: options of :func:`~xr_physcube.models.safy_calibration.calibrate`.
        batch_size: pixel-starts per calibration call inside a chunk (bounds memory:
            about 35 kB each for 200 days; ``batch_size // starts`` pixels per call).
        device: "cpu", "cuda" or None (CUDA when available).
        progress: a tqdm progress bar per chunk (pixels calibrated), for long
            in-memory runs (on dask, use its progress bar instead).

    Weather shared by many pixels (one series, or a coarse weather grid) is cheap: the
    coarse grid runs once per distinct series in a chunk; weather that differs on every
    pixel costs ``grid_size`` SAFY runs per pixel (lower ``grid_size`` then).

    Returns:
        Dataset on the spatial dims of ``lai``: the fitted ``d0`` (day index into the
        weather series), ``elue``, ``pla``, ``plb``, ``stt``, ``rs``; ``emergence``
        (date); ``biomass_final`` and ``yield`` (g m⁻²) with ``*_std``; ``rmse``,
        ``n_obs``; daily ``glai`` (time, ...) on the weather days (and ``biomass``
        with ``trajectory=True``). CF attributes; ``attrs`` record crop and options.

    Raises:
        MissingVariableError: no ``lai`` variable or weather variable.
        TimeAxisError: no daily weather axis, LAI dates outside the weather, a sowing
            date outside it.
        InvalidArgumentError: bad options (each named with its range), unknown crop,
            NaN weather, weather not a Dataset.
        DimensionError: LAI without a ``time`` dimension, weather dims not in ``ds``.
    """
    prior = crop_prior(crop)
    check_options(grid_size, starts, steps, prior_scale, lai_sigma, jacobian)
    batch_size = check_batch_size(batch_size)
    for flag, value in (("trajectory", trajectory), ("progress", progress)):
        if not isinstance(value, bool):
            raise InvalidArgumentError(f"{flag} must be True or False; got {value!r}")
    if isinstance(emergence_width, bool) or not 0.05 <= float(emergence_width) <= 10.0:
        raise InvalidArgumentError(
            f"emergence_width must lie in [0.05, 10] days; got {emergence_width!r}"
        )
    if weather is None:
        raise MissingVariableError(
            "calibrate_safy() needs weather= (daily temperature and radiation Dataset)"
        )
    if lai not in ds.variables:
        raise MissingVariableError(
            f"calibrate_safy() needs the LAI variable {lai!r}; the "
            f"Dataset has {sorted(map(str, ds.data_vars))}"
        )
    require(ds, [lai], "calibrate_safy()")
    y = ds[lai].reset_coords(drop=True)
    if "time" not in y.dims:
        raise DimensionError(f"calibrate_safy(): {lai!r} has dims {y.dims}, no 'time'")
    if y.sizes["time"] < 3:
        raise TimeAxisError(f"calibrate_safy() needs >= 3 LAI dates; got {y.sizes['time']}")
    lai_times = np.asarray(ds.indexes["time"].values)
    if not np.issubdtype(lai_times.dtype, np.datetime64):
        raise TimeAxisError("calibrate_safy(): the LAI 'time' must hold datetime64 dates")
    days, (temp, rad) = _weather(weather, temperature, radiation)
    keep = np.ones(lai_times.size, bool)
    if harvest is not None:  # the season, and the LAI used, end on the harvest day
        cut = int(_day_index(harvest, days, "harvest"))
        if cut < 2:
            raise TimeAxisError(f"calibrate_safy(): harvest {harvest} leaves < 3 weather days")
        days, temp, rad = (
            days[: cut + 1],
            temp.isel(day=slice(0, cut + 1)),
            rad.isel(day=slice(0, cut + 1)),
        )
        keep = lai_times < days[-1] + np.timedelta64(1, "D")
        if keep.sum() < 3:
            raise TimeAxisError("calibrate_safy(): fewer than 3 LAI dates before the harvest")
        y = y.isel(time=keep)
        lai_times = lai_times[keep]
    obs_day = _obs_days(lai_times, days)
    space_dims = [d for d in y.dims if d != "time"]
    for da in (temp, rad):
        extra = [d for d in da.dims if d != "day" and d not in space_dims]
        if extra:
            raise DimensionError(
                f"calibrate_safy(): weather dims {extra} are not dims of {lai!r} {y.dims}"
            )
    std_name = f"{lai}_std" if lai_std == "auto" else lai_std
    inputs = [y.transpose(*space_dims, "time")]
    if std_name is not None and (lai_std != "auto" or std_name in ds.variables):
        require(ds, [std_name], "calibrate_safy() lai_std")
        std_da = ds[std_name].reset_coords(drop=True).isel(time=keep)
        inputs.append(std_da.transpose(*space_dims, "time"))
    has_std = len(inputs) == 2
    d0_bounds = _d0_bounds(sowing, days, prior)
    if y.chunks is not None:
        spatial = {d: c for d, c in y.chunksizes.items() if d != "time"}
        temp, rad = (
            da.chunk({d: spatial.get(d, -1) for d in da.dims if d != "day"}) for da in (temp, rad)
        )
    options = dict(
        crop=prior,
        d0_bounds=d0_bounds,
        grid_size=grid_size,
        starts=starts,
        steps=steps,
        prior_scale=prior_scale,
        lai_sigma=lai_sigma,
        jacobian=jacobian,
        emergence_width=float(emergence_width),
        seed=seed,
    )
    block = CalibrationBlock(obs_day, has_std, trajectory, options, batch_size, device, progress)
    n_days = days.size
    (packed,) = blockwise(
        block,
        [*inputs, temp, rad],
        n_outputs=1,
        stack=False,
        core_dims=[["time"]] * len(inputs) + [["day"], ["day"]],
        out_core_dims=["packed"],
        out_sizes={"packed": block.size(n_days)},
    )
    return _unpack(packed, days, space_dims, prior, trajectory, ds, y, options)


def _unpack(packed, days, space_dims, prior, trajectory, ds, y, options) -> xr.Dataset:
    n_days, k = days.size, len(FITTED)
    out: dict[str, xr.DataArray] = {}
    first = pd.Timestamp(days[0]).floor("D")
    for i, name in enumerate(FITTED):
        spec = SAFY_PARAMETERS[name] if name == "d0" else prior.fitted[name]
        attrs = spec.attrs()
        if name == "d0":
            attrs["long_name"] += f" (0 = {first.date()})"
            attrs["valid_max"] = float(n_days - 1)
        out[name] = packed.isel(packed=i).assign_attrs(attrs)
    offset = (out["d0"].round() * 86400.0).astype("timedelta64[s]")  # NaN -> NaT
    out["emergence"] = (np.datetime64(first, "s") + offset).astype("datetime64[ns]")
    out["emergence"].attrs = {"long_name": "plant emergence date (calibrated SAFY d0)"}
    for j, name in enumerate(SCALARS):
        out[name] = packed.isel(packed=k + j).assign_attrs(_ATTRS[name])
    base = k + len(SCALARS)
    series = [("glai", base)] + ([("biomass", base + n_days)] if trajectory else [])
    for name, start in series:
        da = packed.isel(packed=slice(start, start + n_days)).rename(packed="time")
        out[name] = da.assign_coords(time=days).transpose("time", *space_dims)
        out[name].attrs = _ATTRS[name]
    result = xr.Dataset(out)
    result = result.assign_coords({d: ds[d] for d in space_dims if d in ds.coords})
    result = result.assign_coords(side_coords(ds, tuple(space_dims)))  # e.g. spatial_ref
    opts = {k: v for k, v in options.items() if k not in ("crop", "d0_bounds")}
    result.attrs = {
        "source": "SAFY calibrated per pixel on green LAI (xr_physcube.models.safy_calibration;"
        " Battude et al. 2016, RSE 184:668-681)",
        "crop": prior.name,
        "harvest_index": prior.hi,
        "season_end": str(pd.Timestamp(days[-1]).date()),
        **{f"calibration_{k}": str(v) for k, v in opts.items()},
        **({"crs": ds.attrs["crs"]} if "crs" in ds.attrs else {}),
    }
    return result
