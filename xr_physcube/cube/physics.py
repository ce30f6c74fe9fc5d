"""The ``ds.physics`` accessor: forward models, retrievals, soil moisture from Sentinel-1
series, SAFY crop growth on a cube and SAFY calibrated per pixel on an LAI series.

Glue only: each method gathers the variables a model needs from the Dataset and maps a
block function over the chunks with the one mechanism of
:mod:`xr_physcube.cube.blockwise`. Nothing is computed before
``.compute()``/``.to_zarr()``; NaN (masked) pixels pass through as NaN. The physics
lives in :mod:`xr_physcube.models` and :mod:`xr_physcube.inverse`.

Angles (degrees) are read from variables or coordinates named ``tts`` (sun zenith),
``tto`` (view zenith) and ``psi`` (relative azimuth) for Sentinel-2, ``theta``
(incidence) for Sentinel-1; per date (dim ``time``) or per pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from xr_physcube.checkpoints import state_checksum
from xr_physcube.cube import grow as _grow
from xr_physcube.cube import safy_calibration as _safy_calibration
from xr_physcube.cube import soil_moisture as _soil_moisture
from xr_physcube.cube.blockwise import (
    DEFAULT_BATCH,
    DefaultsBlock,
    blockwise,
    check_batch_size,
    gather,
    map_rows,
    private_copy,
    require,
    side_coords,
    std_attrs,
)
from xr_physcube.cube.checks import angle_hint, band_hint, check_observations, descriptor_hint
from xr_physcube.cube.conventions import conventional_outputs
from xr_physcube.exceptions import InvalidArgumentError, MissingVariableError
from xr_physcube.models.change_detection import ChangeDetectionParameters
from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.sensors.sentinel1 import POLARISATIONS
from xr_physcube.sensors.sentinel2 import BAND_INFO, BANDS, Sentinel2Bands

# ----------------------------------------------------------------------------------------
# Block functions (picklable: they run on dask workers)
# ----------------------------------------------------------------------------------------


class ProsailBlock:
    """(..., n_params) -> (..., n_bands) reflectance with PROSAIL + S2 SRFs."""

    def __init__(self, names, version, lidf_type, satellite, device, validate, batch):
        self.names = list(names)
        self.model = Prosail(version, lidf_type, sensor=Sentinel2Bands(satellite), validate=False)
        self.device, self.validate, self.batch = device, validate, batch

    def _run(self, t: torch.Tensor) -> tuple[torch.Tensor]:
        params = ProsailParameters(**dict(zip(self.names, t.unbind(-1), strict=True)))
        return (self.model.to(t.device).run(params, self.validate).reflectance,)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray]:
        flat = x.reshape(-1, x.shape[-1])
        n_bands = len(self.model.sensor.bands)
        (out,) = map_rows(
            self._run, [flat], out_shapes=[(n_bands,)], batch=self.batch, device=self.device
        )
        return (out.reshape(*x.shape[:-1], -1),)


class RetrieveBlock:
    """(..., n_inputs) -> mean, std (..., n_outputs) with an inverse network; inputs in
    wrong units (digital numbers, dB, radians) raise (:func:`check_observations`)."""

    def __init__(self, model: torch.nn.Module, device, batch):
        self.model, self.device, self.batch = private_copy(model), device, batch

    def _run(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.to(t.device).predict(t, check_units=False)  # checked per chunk

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        check_observations(x, self.model.input_names)
        flat = x.reshape(-1, x.shape[-1])
        n_out = len(self.model.output_names)
        mean, std = map_rows(
            self._run, [flat], out_shapes=[(n_out,)] * 2, batch=self.batch, device=self.device
        )
        shape = (*x.shape[:-1], n_out)
        return mean.reshape(shape), std.reshape(shape)


class SarBlock:
    """(..., [mv, hrms, theta, lai | ndvi, (sand, clay)]) -> (..., [VV, VH]) linear sigma0."""

    def __init__(self, names, device, validate, batch, **options: str):
        self.names, self.device, self.validate, self.options = names, device, validate, options
        self.batch = batch

    def _run(self, t: torch.Tensor) -> tuple[torch.Tensor]:
        from xr_physcube.models.sar import water_cloud_backscatter

        kwargs = dict(zip(self.names, t.unbind(-1), strict=True))
        res = water_cloud_backscatter(**kwargs, **self.options, validate=self.validate)
        return (torch.stack([res.vv, res.vh], dim=-1),)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray]:
        flat = x.reshape(-1, x.shape[-1])
        (out,) = map_rows(
            self._run, [flat], out_shapes=[(2,)], batch=self.batch, device=self.device
        )
        return (out.reshape(*x.shape[:-1], 2),)


def other_model_hint(current: str, unknown: list[str]) -> str:
    """Hint naming another shipped network that predicts ``unknown`` (or "")."""
    from xr_physcube.inverse.pretrained import NETWORKS

    names = [
        f"pretrained-{name}"
        for name, spec in NETWORKS.items()
        if f"pretrained-{name}" != current and set(unknown) <= set(spec.outputs)
    ]
    return f"; use model={names[0]!r}" if names else ""


def load_model(model: str | torch.nn.Module, ds: xr.Dataset | None = None) -> torch.nn.Module:
    """An inverse network: ``model`` itself, or the shipped one of that name (for a name
    that stands for several, e.g. ``"pretrained-s1"``, the one that fits the variables
    of ``ds``: :func:`~xr_physcube.inverse.pretrained.choose_network`)."""
    if isinstance(model, torch.nn.Module):
        return model
    from xr_physcube.inverse.pretrained import choose_network, load_pretrained

    if ds is None:
        return load_pretrained(model)
    derivable = ["ndvi"] if {"B4", "B8"} <= set(ds.variables) else []
    return load_pretrained(choose_network(model, list(ds.variables), derivable).name)


def alternatives_hint(model: str | torch.nn.Module, missing: list[str]) -> str:
    """Hint naming what the other networks of an alias read (e.g. ``pretrained-s1``:
    ``ndvi``, or B4 and B8, for ``s1``; ``lai`` for ``s1_lai``), or ""."""
    if not isinstance(model, str):
        return band_hint(missing)
    from xr_physcube.inverse.pretrained import alias_networks

    networks = alias_networks(model)
    if len(networks) < 2:
        return band_hint(missing)
    reads = " or ".join(
        f"{', '.join(repr(n) for n in spec.inputs)} (network {spec.name!r})" for spec in networks
    )
    return f"{band_hint(missing)}; {model!r} reads {reads}"


# ----------------------------------------------------------------------------------------
# The .physics accessor
# ----------------------------------------------------------------------------------------


@xr.register_dataset_accessor("physics")
@conventional_outputs
class PhysicsAccessor:
    """Forward models and retrievals on a Dataset, blockwise and lazy.

    Examples:
        >>> cube = xr_physcube.io.demo.load_demo()
        >>> lai = cube.physics.retrieve(["lai"]).lai  # lazy (time, y, x)
        >>> sim = params.physics.simulate()  # PROSAIL -> S2 bands
    """

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # ---- forward -----------------------------------------------------------------------
    def simulate(
        self,
        sensor: str = "S2",
        *,
        version: str = "D",
        lidf_type: str = "campbell",
        satellite: str = "S2A",
        device: str | torch.device | None = None,
        validate: bool = True,
        batch_size: int = DEFAULT_BATCH,
        soil_model: str = "oh",
        dielectric: str = "hallikainen",
    ) -> xr.Dataset:
        """Run a forward model on a cube of physical parameters.

        ``sensor="S2"``: PROSAIL variables named like
        :data:`~xr_physcube.models.prosail.PROSAIL_PARAMETERS` (``lai``, ``cab``, ...,
        angles ``tts``/``tto``/``psi``); absent leaf/canopy variables take their
        defaults, absent angles raise. Returns the 10 Sentinel-2 land bands
        (reflectance). ``sensor="S1"``: Water Cloud Model
        (:func:`~xr_physcube.models.sar.water_cloud_backscatter`) from ``mv`` (m³/m³),
        ``hrms`` (cm), incidence ``theta`` (degrees) and the vegetation descriptor
        ``lai`` (or ``ndvi`` when there is no ``lai``), with ``sand``/``clay``
        fractions when present (used by ``soil_model="dubois"`` through the
        ``dielectric`` model); returns ``VV``, ``VH`` (linear sigma0).
        ``batch_size``: pixels per model call inside a chunk (bounds memory).
        Out-of-range parameters raise ``OutOfRangeError`` (a ``ValueError``) when the
        chunk is computed; NaN pixels give NaN.
        """
        batch_size = check_batch_size(batch_size)
        sensor = sensor.upper()
        if sensor == "S1":
            return self._simulate_s1(device, validate, batch_size, soil_model, dielectric)
        if sensor != "S2":
            raise InvalidArgumentError(f"sensor must be 'S2' or 'S1'; got {sensor!r}")
        ds = self._ds
        names = [n for n in PROSAIL_PARAMETERS if n in ds.variables]
        if not any(n in ds.data_vars for n in names):
            raise MissingVariableError(
                f"simulate(sensor='S2') needs PROSAIL parameter variables among "
                f"{list(PROSAIL_PARAMETERS)}; found none in {list(ds.data_vars)}"
            )
        require(ds, [*names, "tts", "tto", "psi"], "simulate(sensor='S2')", angle_hint)
        defaults = {n: s.default for n, s in PROSAIL_PARAMETERS.items() if n not in names}
        if lidf_type == "campbell":
            defaults.pop("lidfa", None), defaults.pop("lidfb", None)
        block = DefaultsBlock(
            ProsailBlock(
                [*names, *defaults], version, lidf_type, satellite, device, validate, batch_size
            ),
            list(defaults.values()),
        )
        (refl,) = blockwise(
            block, gather(ds, names), n_outputs=1, out_dim="band", out_size=len(BANDS)
        )
        out = xr.Dataset(
            {
                b: refl.isel(band=i).assign_attrs(
                    long_name=f"simulated Sentinel-2 {b} surface reflectance",
                    units="1",
                    central_wavelength_nm=BAND_INFO[b].central_wavelength_nm,
                )
                for i, b in enumerate(BANDS)
            }
        )
        return out.assign_attrs(source=f"PROSAIL-{version} ({lidf_type} LIDF), {satellite} SRF")

    def _simulate_s1(
        self, device, validate, batch_size: int, soil_model: str, dielectric: str
    ) -> xr.Dataset:
        from xr_physcube.models.dielectric import check_dielectric_model
        from xr_physcube.models.sar import check_soil_model

        soil_model, dielectric = check_soil_model(soil_model), check_dielectric_model(dielectric)
        ds = self._ds
        descriptor = "ndvi" if "lai" not in ds.variables and "ndvi" in ds.variables else "lai"
        texture = [n for n in ("sand", "clay") if n in ds.variables]
        names = ["mv", "hrms", "theta", descriptor, *texture]
        require(ds, names, "simulate(sensor='S1')", descriptor_hint)
        block = SarBlock(
            names, device, validate, batch_size, soil_model=soil_model, dielectric=dielectric
        )
        (sigma,) = blockwise(
            block, gather(ds, names), n_outputs=1, out_dim="polarisation", out_size=2
        )
        source = f"Water Cloud Model ({descriptor}) over {soil_model} (xr_physcube.models.sar)"
        attrs = {"units": "1", "source": source}
        return xr.Dataset(
            {
                p: sigma.isel(polarisation=i).assign_attrs(
                    long_name=f"simulated Sentinel-1 {p} backscatter coefficient", **attrs
                )
                for i, p in enumerate(POLARISATIONS)
            }
        )

    # ---- inverse -----------------------------------------------------------------------
    def retrieve(
        self,
        variables: Sequence[str] | None = None,
        model: str | torch.nn.Module = "pretrained-s2",
        *,
        device: str | torch.device | None = None,
        batch_size: int = DEFAULT_BATCH,
        std: bool = True,
    ) -> xr.Dataset:
        """Retrieve biophysical variables with an inverse network, per pixel.

        Inputs, read from the Dataset (variables or coordinates, per pixel or per date):

        - ``"pretrained-s2"``: bands ``B2``…``B12`` as surface reflectance (0–1, L2A
          scaling applied), angles ``tts``, ``tto``, ``psi`` in degrees;
        - ``"pretrained-s1"``: ``VV``, ``VH`` as linear sigma0 (not dB), incidence
          ``theta`` in degrees, and a vegetation descriptor: with ``ndvi`` the network
          ``s1`` is used; with ``lai`` (m²/m²) and no ``ndvi``, the network ``s1_lai``
          (same training design, LAI input); with neither, ``ndvi`` is derived from
          bands ``B4`` and ``B8`` for ``s1``. The network used is recorded in the
          attribute ``retrieval_network``.

        Pixels with any NaN input (clouds, no acquisition) give NaN. Inputs in wrong
        units (digital numbers, dB, radians, angles out of range) raise
        ``InputUnitsError``/``OutOfRangeError`` (both ``ValueError``) when the chunk is
        computed. A network passed as ``model`` is copied for the computation: it is
        never moved to ``device`` nor switched to eval mode.

        Args:
            variables: a name or names among the network's outputs (default all), e.g.
                ``lai``, ``cab``, ``cw``, ``cm``, ``fcover``, ``fapar``, ``ccc``, ``cwc``
                for ``"pretrained-s2"``; ``mv`` for ``"pretrained-s1"``.
            model: a shipped network name or an ``InverseModel`` instance.
            device: "cpu", "cuda" or None (CUDA when available).
            batch_size: pixels per network call inside a chunk (bounds memory).
            std: also return the predicted standard deviation as ``<name>_std``.

        Returns:
            Dataset with one variable per retrieved quantity (and ``_std``), CF attrs,
            same dims and chunks as the input bands; lazy on dask input.
        """
        batch_size = check_batch_size(batch_size)
        net = load_model(model, self._ds)
        if isinstance(variables, str):
            variables = [variables]
        wanted = list(net.output_names) if variables is None else list(variables)
        unknown = [v for v in wanted if v not in net.output_names]
        if unknown:
            raise InvalidArgumentError(
                f"model {model!r} cannot retrieve {unknown}; it predicts "
                f"{list(net.output_names)}{other_model_hint(getattr(net, 'name', ''), unknown)}"
            )
        ds = self._ds
        if "ndvi" in net.input_names and "ndvi" not in ds.variables and {"B4", "B8"} <= set(ds):
            ds = ds.assign(ndvi=self.ndvi())  # derived input, computed lazily
        require(
            ds,
            list(net.input_names),
            f"retrieve(model={model!r})",
            lambda missing: alternatives_hint(model, missing),
        )
        mean, sd = blockwise(
            RetrieveBlock(net, device, batch_size),
            gather(ds, list(net.input_names)),
            n_outputs=2,
            out_dim="output",
            out_size=len(net.output_names),
        )
        out = {}
        for name in wanted:
            i = net.output_names.index(name)
            attrs = dict(net.output_attrs.get(name, {}))
            out[name] = mean.isel(output=i).assign_attrs(attrs)
            if std:
                out[f"{name}_std"] = sd.isel(output=i).assign_attrs(std_attrs(attrs))
        attrs = {"retrieval_model": str(model), "model_sha256": state_checksum(net)}
        if isinstance(model, str) and getattr(net, "name", model) != model:
            attrs["retrieval_network"] = net.name  # the network an alias stood for
        dims = tuple(d for d in mean.dims if d != "output")
        return xr.Dataset(out, coords=side_coords(self._ds, dims), attrs=attrs)

    def lai(self, **kwargs: Any) -> xr.DataArray:
        """Leaf area index (m²/m²) from the shipped S2 network."""
        return self.retrieve(["lai"], std=False, **kwargs)["lai"]

    def fcover(self, **kwargs: Any) -> xr.DataArray:
        """Fraction of vegetation cover (nadir), from the shipped S2 network."""
        return self.retrieve(["fcover"], std=False, **kwargs)["fcover"]

    def fapar(self, **kwargs: Any) -> xr.DataArray:
        """Fraction of absorbed PAR, from the shipped S2 network."""
        return self.retrieve(["fapar"], std=False, **kwargs)["fapar"]

    def ccc(self, **kwargs: Any) -> xr.DataArray:
        """Canopy chlorophyll content LAI·Cab (µg/cm² of ground), from the S2 network."""
        return self.retrieve(["ccc"], std=False, **kwargs)["ccc"]

    def cwc(self, **kwargs: Any) -> xr.DataArray:
        """Canopy water content LAI·Cw (cm of ground), from the S2 network."""
        return self.retrieve(["cwc"], std=False, **kwargs)["cwc"]

    def ndvi(self) -> xr.DataArray:
        """NDVI from B8 and B4 (lazy, elementwise)."""
        missing = [b for b in ("B4", "B8") if b not in self._ds]
        if missing:
            raise MissingVariableError(f"ndvi needs Sentinel-2 band(s) {missing}")
        nir, red = self._ds["B8"], self._ds["B4"]
        return (
            ((nir - red) / (nir + red))
            .rename("ndvi")
            .assign_attrs(long_name="normalised difference vegetation index (B8, B4)", units="1")
        )

    # ---- soil moisture from S1 series ---------------------------------------------------
    def soil_moisture(
        self,
        method: str = _soil_moisture.DEFAULT_METHOD,
        *,
        parameters: ChangeDetectionParameters | None = None,
        orbit: str | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        **params: float,
    ) -> xr.Dataset:
        return _soil_moisture.soil_moisture(
            self._ds,
            method,
            parameters=parameters,
            orbit=orbit,
            device=device,
            batch_size=batch_size,
            **params,
        )

    soil_moisture.__doc__ = _soil_moisture.soil_moisture.__doc__

    # ---- crop growth -------------------------------------------------------------------
    def grow(
        self,
        temperature: str = "temperature",
        radiation: str = "radiation",
        *,
        emergence: str | np.datetime64 | pd.Timestamp | xr.DataArray | None = None,
        emergence_width: float = 0.5,
        device: str | torch.device | None = None,
        validate: bool = True,
        batch_size: int = _grow.SAFY_BATCH,
        **params: float,
    ) -> xr.Dataset:
        return _grow.grow(
            self._ds,
            temperature,
            radiation,
            emergence=emergence,
            emergence_width=emergence_width,
            device=device,
            validate=validate,
            batch_size=batch_size,
            **params,
        )

    grow.__doc__ = _grow.grow.__doc__

    def calibrate_safy(
        self,
        lai: str = "lai",
        weather: xr.Dataset | None = None,
        crop: str = "maize",
        **options: Any,
    ) -> xr.Dataset:
        return _safy_calibration.calibrate_safy(self._ds, lai, weather, crop, **options)

    calibrate_safy.__doc__ = _safy_calibration.calibrate_safy.__doc__
