"""Tests of the physics-constrained VAE (xr_physcube.vae).

Reference values come from independent computations in the tests: NumPy/SciPy Monte
Carlo and quadrature for the logit-normal moments and KL, scipy.stats for the Gaussian
likelihood, the standalone PROSAIL/WCM functions for the decoder, and the cube's own
arrays (NumPy) for the blockwise-vs-in-memory comparison.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import stats

import xr_physcube  # noqa: F401  (registers accessors)
from xr_physcube.cube.vae import VAEAccessor  # noqa: F401  (registers ds.vae)
from xr_physcube.inverse.priors import S1_PRIORS, S2_PRIORS
from xr_physcube.io.demo import demo_scene
from xr_physcube.models.prosail import Prosail, ProsailParameters
from xr_physcube.models.sar import water_cloud_backscatter
from xr_physcube.sensors.sentinel2 import BANDS, Sentinel2Bands
from xr_physcube.vae import PhysVAE, load_pretrained
from xr_physcube.vae.losses import gaussian_nll, kl_logit_normal_uniform, temporal_smoothness
from xr_physcube.vae.model import CAR_RATIO, LEGACY_LATENTS
from xr_physcube.vae.priors import kl_logit_normal_prior

torch.manual_seed(0)


@pytest.fixture(scope="module")
def scene():
    return demo_scene(size=16, seed=3, chunks=8)


def _obs_angles(n=6, t=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (n,) if t is None else (n, t)
    s2 = 0.05 + 0.3 * torch.rand(*shape, 10, generator=g)
    s1 = -20 + 10 * torch.rand(*shape, 2, generator=g)
    ang = torch.stack(
        [
            torch.full(shape, 35.0),
            torch.full(shape, 5.0),
            torch.full(shape, 120.0),
            torch.full(shape, 38.0),
        ],
        -1,
    )
    return torch.cat([s2, s1], -1), ang


def _cube_arrays(ds: xr.Dataset):
    """Independent NumPy preparation of a demo cube: obs (t, y, x, 12), angles (t, y, x, 4)."""
    bands = np.stack([ds[b].values for b in BANDS], -1)
    s1 = 10 * np.log10(np.stack([ds.VV.values, ds.VH.values], -1))
    shape = bands.shape[:-1]
    ang = np.stack(
        [np.broadcast_to(ds[a].values[:, None, None], shape) for a in ("tts", "tto", "psi")]
        + [ds.theta.values],
        -1,
    )
    return np.concatenate([bands, s1], -1).astype(np.float32), ang.astype(np.float32)


# --- shapes --------------------------------------------------------------------------


def test_pixel_encode_decode_shapes():
    model = PhysVAE()
    obs, ang = _obs_angles(6)
    obs, ang = obs.reshape(2, 3, 12), ang.reshape(2, 3, 4)
    mean, std = model.infer(obs, ang)
    n = len(model.latent_names)
    assert mean.shape == std.shape == (2, 3, n)
    lo, hi = model.lower, model.upper
    assert bool(((mean >= lo) & (mean <= hi)).all()) and bool((std > 0).all())
    assert model.decode(mean, ang).shape == (2, 3, 12)


def test_temporal_encode_shapes_and_free_latents():
    model = PhysVAE(temporal=True, n_free=2, hidden=32)
    obs, ang = _obs_angles(4, t=5)
    doy = torch.tensor([100.0, 130.0, 150.0, 200.0, 260.0])
    out = model(obs, ang, doy)
    n = len(model.latent_names)
    assert out.z.shape == (4, 5, n) and out.recon.shape == (4, 5, 12)
    assert out.free_mu.shape == (4, 5, 2)
    with pytest.raises(ValueError, match="day of year"):
        model(obs, ang)


# --- distributions and losses ----------------------------------------------------------


def _numpy_codistribute(names, base):
    """Independent NumPy version of the LAI co-distribution of PriorSet.sample."""
    out = dict(base)
    frac = np.clip(base["lai"] / S2_PRIORS.lai_max, 0, 1)
    for k in names:
        if k in S2_PRIORS.priors and S2_PRIORS[k].codistribution is not None:
            lo0, hi0 = S2_PRIORS[k].bounds
            co = S2_PRIORS[k].codistribution
            lo = lo0 + frac * (co.lower_at_max_lai - lo0)
            hi = hi0 + frac * (co.upper_at_max_lai - hi0)
            out[k] = lo + (base[k] - lo0) * (hi - lo) / (hi0 - lo0)
    return out


@pytest.mark.parametrize("prior", ["uniform", "inverse"])
def test_posterior_stats_match_numpy_monte_carlo(prior):
    model = PhysVAE(prior=prior)
    names = model.latent_names
    n = len(names)
    mu = torch.linspace(-2, 2, n)
    log_sigma = torch.linspace(-2, 0.5, n)
    mean, std = model.posterior_stats(mu, log_sigma)
    rng = np.random.default_rng(0)
    u = mu.numpy() + np.exp(log_sigma.numpy()) * rng.standard_normal((400_000, n))
    lo = np.array([model.config.ranges[k][0] for k in names])
    hi = np.array([model.config.ranges[k][1] for k in names])
    x0 = lo + (hi - lo) / (1 + np.exp(-u))
    base = {k: x0[:, i] for i, k in enumerate(names)}
    phys = _numpy_codistribute(names, base) if prior == "inverse" else base
    z = np.stack([phys[k] for k in names], -1)
    width = hi - lo
    np.testing.assert_allclose(mean.numpy() / width, z.mean(0) / width, rtol=0, atol=1e-3)
    np.testing.assert_allclose(std.numpy() / width, z.std(0) / width, rtol=0, atol=1e-3)
    # the map to physical values is the same as the sampler's, and is inverted exactly
    torch.testing.assert_close(model.to_physical(torch.as_tensor(u[:1000], dtype=torch.float32)),
                               torch.as_tensor(z[:1000], dtype=torch.float32), rtol=1e-5,
                               atol=1e-5)  # fmt: skip
    back = model.to_logit(torch.as_tensor(z[:1000], dtype=torch.float64).float())
    ok = np.abs(u[:1000]) < 8  # away from the float32 saturation of the sigmoid
    np.testing.assert_allclose(back.numpy()[ok], u[:1000][ok], atol=2e-2)


def test_shared_prior_is_the_inverse_modules():
    model = PhysVAE()  # prior="inverse" by default
    for k in model.latent_names:
        prior = S2_PRIORS[k] if k in S2_PRIORS.priors else S1_PRIORS[k]
        assert model.config.ranges[k] == prior.bounds
    # The co-distributed samples of PriorSet.sample are the image of its base draws.
    names = tuple(S2_PRIORS.priors)
    got = S2_PRIORS.sample(2000, seed=5)
    rng = np.random.default_rng(5)
    base = {k: S2_PRIORS[k].distribution.sample(2000, rng) for k in names}
    ref = _numpy_codistribute(names, base)
    soil = {"mv": np.full(2000, 0.2), "hrms": np.full(2000, 1.0)}
    cols = [base[k] if k in names else soil[k] for k in model.latent_names]
    x0 = torch.as_tensor(np.stack(cols, -1), dtype=torch.float64)
    phys = model.prior.double().to_physical(x0)
    for i, k in enumerate(model.latent_names):
        if k not in names:
            continue
        np.testing.assert_allclose(phys[:, i].numpy(), got[k], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(ref[k], got[k], rtol=1e-12)


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.5, 0.3), (-2.0, 0.1)])
def test_kl_to_inverse_prior_matches_scipy_quadrature(mu, sigma):
    # KL(q || p) over the box [lo, hi] for cab (truncated Gaussian prior of the ATBD),
    # q the logit-normal density in x, p scipy's truncnorm pdf.
    model = PhysVAE()
    i = model.latent_names.index("cab")
    _, mean, std, lo, hi, *_ = model.config.prior["latents"]["cab"]
    x = np.linspace(lo + 1e-9, hi - 1e-9, 2_000_001)
    s = (x - lo) / (hi - lo)
    q = stats.norm.pdf(np.log(s) - np.log1p(-s), mu, sigma) / (s * (1 - s) * (hi - lo))
    p = stats.truncnorm.pdf(x, (lo - mean) / std, (hi - mean) / std, mean, std)
    ok = q > 1e-300
    expected = np.trapezoid(np.where(ok, q * (np.log(np.where(ok, q, 1)) - np.log(p)), 0), x)
    mu_t = torch.zeros(len(model.latent_names), dtype=torch.float64)
    ls_t = torch.zeros_like(mu_t)
    mu_t[i], ls_t[i] = mu, np.log(sigma)
    prior = model.prior.double()
    kl = kl_logit_normal_prior(mu_t, ls_t, prior)[i]
    assert float(kl) == pytest.approx(expected, abs=2e-3 + 2e-3 * expected)
    u = mu + sigma * torch.randn(200_000, len(mu_t), dtype=torch.float64)
    kl_mc = kl_logit_normal_prior(mu_t, ls_t, prior, u)[:, i].mean()
    assert float(kl_mc) == pytest.approx(expected, abs=0.01 + 0.01 * expected)


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.5, 0.3), (-2.0, 0.1)])
def test_kl_logit_normal_vs_uniform_matches_quadrature(mu, sigma):
    # KL(q || U(0, 1)) = ∫ q(x) log q(x) dx for the logit-normal density q on (0, 1).
    x = np.linspace(1e-9, 1 - 1e-9, 2_000_001)
    logit = np.log(x) - np.log1p(-x)
    q = stats.norm.pdf(logit, mu, sigma) / (x * (1 - x))
    integrand = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)
    expected = np.trapezoid(integrand, x)
    u = mu + sigma * torch.randn(400_000, dtype=torch.float64)
    kl = kl_logit_normal_uniform(torch.tensor(mu), torch.tensor(np.log(sigma)), u).mean()
    assert float(kl) == pytest.approx(expected, abs=0.01 + 0.01 * expected)


def test_gaussian_nll_matches_scipy_and_masks():
    obs = torch.tensor([[0.1, np.nan, 0.3], [np.nan, np.nan, np.nan]], dtype=torch.float64)
    pred = torch.tensor([[0.12, 0.5, 0.25], [0.2, 0.2, 0.2]], dtype=torch.float64)
    log_sigma = torch.log(torch.tensor([0.01, 0.02, 0.05], dtype=torch.float64))
    nll = gaussian_nll(obs, pred, log_sigma, reduce=False)
    ref = -stats.norm.logpdf([0.1, 0.3], [0.12, 0.25], [0.01, 0.05])
    np.testing.assert_allclose(nll[0, [0, 2]].numpy(), ref, rtol=1e-12)
    assert float(nll[0, 1]) == 0.0 and float(nll[1].abs().sum()) == 0.0
    assert float(gaussian_nll(obs, pred, log_sigma)) == pytest.approx(ref.sum() / 2)


def test_masking_missing_observations_changes_nothing_for_observed():
    obs, _ = _obs_angles(8)
    pred = (obs + 0.01 * torch.randn_like(obs)).requires_grad_(True)
    log_sigma = torch.zeros(12) - 3.0
    full = gaussian_nll(obs, pred, log_sigma, reduce=False)
    (g_full,) = torch.autograd.grad(full.sum(), pred)
    masked_obs = obs.clone()
    masked_obs[::2, :10] = float("nan")  # clouds on half the rows
    masked_obs[1::4, 10:] = float("nan")  # S1 gap
    masked = gaussian_nll(masked_obs, pred, log_sigma, reduce=False)
    (g_masked,) = torch.autograd.grad(masked.sum(), pred)
    seen = torch.isfinite(masked_obs)
    torch.testing.assert_close(masked[seen], full[seen], rtol=0, atol=0)
    torch.testing.assert_close(g_masked[seen], g_full[seen], rtol=0, atol=0)
    assert float(g_masked[~seen].abs().sum()) == 0.0
    # In the model: the posterior of observed pixels does not depend on other, cloudy rows.
    model = PhysVAE()
    obs2, ang = _obs_angles(8, seed=1)
    ref_mean, _ = model.infer(obs2[:4], ang[:4])
    both = obs2.clone()
    both[4:] = float("nan")
    mean, _ = model.infer(both, ang)
    torch.testing.assert_close(mean[:4], ref_mean)


def test_temporal_smoothness_zero_for_linear_and_positive_for_kink():
    doy = torch.tensor([100.0, 120.0, 170.0, 175.0])
    linear = 0.02 * doy
    assert float(temporal_smoothness(linear, doy)) == pytest.approx(0.0, abs=1e-12)
    kink = torch.tensor([0.0, 1.0, 1.0, 3.0])
    # rates 1/20, 0/50, 2/5 -> squared changes (0.05)^2 and (0.4)^2, mean.
    assert float(temporal_smoothness(kink, doy)) == pytest.approx((0.05**2 + 0.4**2) / 2)


# --- the physics decoder ---------------------------------------------------------------


def test_decoder_is_prosail_and_water_cloud():
    model = PhysVAE(latents=LEGACY_LATENTS)  # Car = CAR_RATIO Cab, hspot/cbrown defaults
    names = model.latent_names
    z = torch.tensor([[3.0, 45.0, 0.015, 0.006, 1.6, 55.0, 0.4, 0.9, 0.25, 1.2]])
    assert names == ("lai", "cab", "cw", "cm", "N", "ala", "psoil", "rsoil", "mv", "hrms")
    ang = torch.tensor([[35.0, 5.0, 120.0, 40.0]])
    y = model.decode(z, ang)
    v = dict(zip(names, z[0], strict=True))
    p = {k: v[k] for k in names if k not in ("mv", "hrms")}
    full = Prosail("D", sensor=Sentinel2Bands())(
        ProsailParameters(**p, car=CAR_RATIO * v["cab"], tts=35.0, tto=5.0, psi=120.0)
    ).reflectance
    np.testing.assert_allclose(y[0, :10].detach(), full.detach(), atol=0.007)
    s1 = water_cloud_backscatter(mv=v["mv"], hrms=v["hrms"], theta=40.0, lai=v["lai"])
    np.testing.assert_allclose(
        y[0, 10:].detach(), 10 * np.log10([float(s1.vv), float(s1.vh)]), atol=1e-4
    )


def test_default_decoder_is_the_inverse_modules_simulation_model():
    # Every input that inverse.simulate varies (Car, hot spot, Cbrown included) is a latent,
    # so decoding the simulated truth gives back the simulation's noiseless reflectance
    # (up to the decoder's 5 nm spectral grid) and its noise-free WCM/Oh backscatter.
    from xr_physcube.inverse.simulate import SimulationConfig, simulate_s2

    model = PhysVAE()
    varied = set(S2_PRIORS.names()) | set(S1_PRIORS.names())
    assert varied <= set(model.latent_names)
    ds = simulate_s2(300, seed=4, config=SimulationConfig(keep_noiseless=True),
                     progress=False, num_threads=1)  # fmt: skip
    rng = np.random.default_rng(0)
    soil = {"mv": rng.uniform(0.05, 0.4, 300), "hrms": rng.uniform(0.5, 2.5, 300)}
    z = np.stack([soil[k] if k in soil else ds[k].values for k in model.latent_names], -1)
    theta = np.full(300, 40.0)
    ang = np.stack([ds.tts.values, ds.tto.values, ds.psi.values, theta], -1)
    with torch.no_grad():
        y = model.decode(torch.as_tensor(z, dtype=torch.float32),
                         torch.as_tensor(ang, dtype=torch.float32)).numpy()  # fmt: skip
    clean = np.stack([ds[f"{b}_noiseless"].values for b in BANDS], -1)
    np.testing.assert_allclose(y[:, :10], clean, atol=4e-3)
    s1 = water_cloud_backscatter(mv=torch.as_tensor(soil["mv"]), hrms=torch.as_tensor(soil["hrms"]),
                                 theta=torch.as_tensor(theta), lai=torch.as_tensor(ds.lai.values,
                                 dtype=torch.float64))  # fmt: skip
    np.testing.assert_allclose(y[:, 10], 10 * np.log10(s1.vv.numpy()), atol=1e-3)
    # the legacy decoder (hspot 0.01, Cbrown 0, Car 0.2 Cab) is far from these simulations
    legacy = PhysVAE(latents=LEGACY_LATENTS)
    zl = torch.as_tensor(np.stack([z[:, model.latent_names.index(k)] for k in LEGACY_LATENTS], -1),
                         dtype=torch.float32)  # fmt: skip
    with torch.no_grad():
        yl = legacy.decode(zl, torch.as_tensor(ang, dtype=torch.float32)).numpy()
    assert np.sqrt(np.mean((yl[:, 6] - clean[:, 6]) ** 2)) > 0.015  # B8 (noise: ~0.011)


def test_gradients_flow_into_encoder_through_physics():
    model = PhysVAE()
    assert not any(p.requires_grad for p in model.decoder.parameters())
    obs, ang = _obs_angles(16)
    obs[:4, :10] = float("nan")
    out = model(obs, ang)
    loss = gaussian_nll(obs, out.recon, model.log_noise)  # reconstruction only, no KL
    loss.backward()
    for name, p in model.encoder.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    first = model.encoder.net[0].weight.grad
    assert float(first.abs().sum()) > 0


# --- checkpoints -----------------------------------------------------------------------


def test_save_load_roundtrip(tmp_path, scene):
    model = PhysVAE(temporal=True, hidden=32, n_free=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = model.save(tmp_path / "m.pt")
    back = PhysVAE.load(path)
    assert back.config == model.config
    obs, ang = _obs_angles(3, t=4)
    doy = torch.tensor([90.0, 120.0, 160.0, 200.0])
    for a, b in zip(model.eval().infer(obs, ang, doy), back.infer(obs, ang, doy), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # a checkpoint path is a model for the (stateless) accessor
    ds = scene.cube
    model.save(tmp_path / "acc.pt")
    from_path = ds.vae.encode(tmp_path / "acc.pt").lai.values
    np.testing.assert_array_equal(from_path, ds.vae.encode(model).lai.values)


# --- the accessor ----------------------------------------------------------------------


def test_training_on_tiny_cube_lowers_loss(scene):
    ds = scene.cube  # dask-backed, 4 spatial chunks sampled one at a time
    model = ds.vae.fit(PhysVAE(hidden=64), epochs=20, max_steps=40, batch_size=256, lr=3e-3,
                       progress=False)  # fmt: skip
    history = model.history
    assert len(history) == 40 and isinstance(model, PhysVAE)
    assert np.mean(history[-5:]) < 0.5 * np.mean(history[:5])


def test_anchored_fine_tuning_keeps_the_encoder_on_the_simulated_truth():
    """Fine-tuning on unlabelled pixels with ``anchor`` simulations: the encoder's NLL of
    held-out simulated truth ends lower than after the same steps without the anchor."""
    from xr_physcube.vae.simulate import simulate_like as simulate_for
    from xr_physcube.vae.train import supervised_nll

    held_out = simulate_for(PhysVAE(), 500, seed=9)
    nll = {}
    for anchor in (None, 2000):
        cube = demo_scene(size=16, seed=3, chunks=8).cube
        torch.manual_seed(0)
        model = cube.vae.fit(PhysVAE(hidden=64), epochs=50, max_steps=60, batch_size=256,
                             lr=3e-3, anchor=anchor, progress=False)  # fmt: skip
        assert np.isfinite(model.history).all()
        with torch.no_grad():
            nll[anchor] = float(
                supervised_nll(model, held_out.obs, held_out.angles, None, held_out.truth)
            )
    assert nll[2000] < nll[None] - 1.0, nll


@pytest.mark.parametrize("temporal", [False, True])
def test_blockwise_encode_equals_in_memory(scene, temporal):
    ds = scene.cube  # chunks (1, 8, 8)
    model = PhysVAE(temporal=temporal, hidden=32)
    latent = ds.vae.encode(model)
    assert latent.lai.chunks is not None  # lazy, blockwise
    assert latent.lai.dims == ("time", "y", "x")
    assert latent.lai.attrs["units"] == "m2 m-2" and "posterior mean" in latent.lai.long_name
    obs, ang = _cube_arrays(ds.compute())
    if temporal:
        doy = torch.as_tensor(ds.time.dt.dayofyear.values, dtype=torch.float32)
        o = torch.as_tensor(obs).permute(1, 2, 0, 3)  # (y, x, t, 12)
        a = torch.as_tensor(ang).permute(1, 2, 0, 3)
        mean, std = model.infer(o, a, doy)
        mean, std = mean.permute(2, 0, 1, 3), std.permute(2, 0, 1, 3)
    else:
        mean, std = model.infer(torch.as_tensor(obs), torch.as_tensor(ang))
    got = latent.compute()
    for i, name in enumerate(model.latent_names):
        np.testing.assert_allclose(got[name].values, mean[..., i].numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            got[f"{name}_std"].values, std[..., i].numpy(), rtol=1e-5, atol=1e-6
        )


def test_reconstruct_and_missing_modality(scene):
    model = PhysVAE(hidden=32)
    ds = scene.cube.drop_vars(["VV", "VH", "theta"])  # S2 only
    rec = ds.vae.reconstruct(model)
    assert set(rec.data_vars) == {*BANDS, "VV", "VH"}
    out = rec.compute()
    observed = np.isfinite(scene.cube.B4.values)
    assert np.isfinite(out.B4.values[observed]).all()
    # cloudy pixels with no S1 either have no posterior, hence no reconstruction
    assert np.isnan(out.B4.values[~observed]).all()
    with pytest.raises(ValueError, match="tts"):
        scene.cube.drop_vars("tts").vae.encode(model)


def test_decode_and_reconstruct_keep_the_cube_dims_and_coords(scene):
    model = PhysVAE(hidden=16)
    cube = scene.cube
    for ds in (cube, cube.isel(time=1)):  # a time series, and one date (scalar time)
        dec = ds.vae.encode(model).vae.decode(model)
        rec = ds.vae.reconstruct(model)
        for out in (dec, rec):
            assert out.B4.dims == ds.B4.dims and out.B4.shape == ds.B4.shape
            for name in ("time", "y", "x", "tts", "psi"):
                np.testing.assert_array_equal(out[name].values, ds[name].values)
        np.testing.assert_allclose(dec.B4.values, rec.B4.values, rtol=1e-5, equal_nan=True)


def test_temporal_model_without_a_time_dimension_says_so(scene):
    one_date = scene.cube.isel(time=0)
    model = PhysVAE(temporal=True, hidden=16)
    for call in (one_date.vae.encode, one_date.vae.reconstruct):
        with pytest.raises(ValueError, match="'time' dimension.*expand_dims"):
            call(model)
    with pytest.raises(ValueError, match="'time' dimension"):
        one_date.vae.fit(model, max_steps=1, progress=False)
    assert one_date.expand_dims("time").vae.encode(model).lai.sizes["time"] == 1


def test_fit_without_any_valid_pixel_raises(scene):
    cube = scene.cube
    empty = cube.assign({v: cube[v].where(False) for v in (*BANDS, "VV", "VH")})
    with pytest.raises(ValueError, match="no pixel of the cube has a valid observation"):
        empty.vae.fit(untouched := PhysVAE(hidden=16), max_steps=2, progress=False)
    assert not hasattr(untouched, "history")  # no model came out of the failed fit


@pytest.mark.parametrize("name", ["pixel", "pixel_hybrid"])
def test_shipped_model_encodes_demo_cube(name):
    scene = demo_scene(size=32, seed=0, chunks=16)
    latent = scene.cube.vae.encode(load_pretrained(name)).compute()
    truth = scene.truth
    # Demo LAI spans 0..~6 m²/m²; an uninformed guess (prior mean 4) has RMSE > 2.
    ok = np.isfinite(scene.cube.B4.values)
    rmse = np.sqrt(np.mean((latent.lai.values[ok] - truth.lai.values[ok]) ** 2))
    assert rmse < 1.0, rmse
    assert (latent.lai_std.values[ok] > 0).all()


@pytest.mark.parametrize("name", ["temporal", "temporal_hybrid"])
def test_shipped_temporal_model_encodes_demo_cube(name):
    scene = demo_scene(size=32, seed=0, chunks=16)
    model = load_pretrained(name)
    assert model.config.temporal
    latent = scene.cube.vae.encode(model).compute()
    assert latent.lai.chunks is None and latent.lai.dims == ("time", "y", "x")
    # every pixel-date gets a posterior, clouds included (the other dates inform it)
    assert np.isfinite(latent.lai.values).all() and (latent.lai_std.values > 0).all()
    rmse = np.sqrt(np.mean((latent.lai.values - scene.truth.lai.values) ** 2))
    assert rmse < 1.0, rmse  # prior-mean guess: > 2 (see test above)


def test_temporal_fit_with_smoothness_runs_on_cube(scene):
    ds = scene.cube  # time chunks of 1: the sampler reads whole series per spatial block
    model = ds.vae.fit(PhysVAE(temporal=True, hidden=32), max_steps=3, batch_size=64,
                       smooth_weight=1.0, progress=False)  # fmt: skip
    assert len(model.history) == 3 and np.isfinite(model.history).all()
    assert model.config.temporal


def test_fit_max_steps_means_steps_not_a_cap_on_one_pass(scene):
    ds = scene.cube
    n_rows = ds.B4.size  # pixel-dates
    batch = 256
    steps_per_pass = -(-n_rows // batch)  # upper bound: rows with no observation are skipped
    model = ds.vae.fit(PhysVAE(hidden=32), max_steps=steps_per_pass + 3, batch_size=batch,
                       progress=False)  # fmt: skip
    assert len(model.history) == steps_per_pass + 3  # more than one pass over the cube
    model = ds.vae.fit(PhysVAE(hidden=32), epochs=1, max_steps=10 * steps_per_pass,
                       batch_size=batch, progress=False)  # fmt: skip
    assert 0 < len(model.history) <= steps_per_pass  # epochs given: it bounds the passes


@pytest.mark.parametrize("name", ["pixel", "pixel_hybrid", "temporal", "temporal_hybrid"])
def test_pretrain_recipe_runs_and_is_reproducible(tmp_path, name):
    from xr_physcube.vae.pretrained import pretrain

    hybrid = name.endswith("_hybrid")
    kw = dict(steps=2, n_sim=32, progress=False, encoder_steps=2 if hybrid else 0)
    a = pretrain(name, tmp_path / "a.pt", seed=3, **kw)
    pretrain(name, tmp_path / "b.pt", seed=3, **kw)
    b = PhysVAE.load(tmp_path / "b.pt")
    assert a.config.temporal == name.startswith("temporal") and "KL" in b.meta["objective"]
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=k)


def test_simulated_series_follow_the_shared_priors():
    from xr_physcube.vae.simulate import simulate_prior_series

    model = PhysVAE()
    sim = simulate_prior_series(300, model.latent_names, n_dates=6, seed=1)
    assert sim.obs.shape == (300, 6, 12) and sim.truth.shape == (300, 6, len(model.latent_names))
    assert bool((sim.doy[:, 1:] >= sim.doy[:, :-1]).all())
    # every simulated state lies in the prior's support: base values back in their boxes
    x0 = model.prior.to_base(sim.truth.double())
    lo, hi = model.lower.double(), model.upper.double()
    assert bool(((x0 >= lo - 1e-6) & (x0 <= hi + 1e-6)).all())
    # leaf base values are constant along a series (cw base in its box, same each date)
    i = model.latent_names.index("cw")
    assert float((x0[..., i] - x0[:, :1, i]).abs().max()) < 1e-5


def test_temporal_hybrid_beats_the_inverse_net_on_the_demo_cube():
    """The accessor's default model on time series against the S2 inverse network, on the
    demo cube's cloud-free pixel-dates (truth never used in training)."""
    scene = demo_scene(size=32, seed=0, chunks=16)
    ok = np.isfinite(scene.cube.B4.values)
    truth = scene.truth.lai.values[ok]
    vae = scene.cube.vae.encode(load_pretrained("temporal_hybrid")).lai.values[ok]
    net = scene.cube.physics.retrieve(["lai"]).lai.values[ok]
    rmse_vae = np.sqrt(np.mean((vae - truth) ** 2))
    rmse_net = np.sqrt(np.mean((net - truth) ** 2))
    assert rmse_vae < rmse_net, (rmse_vae, rmse_net)


def test_accessor_default_model_follows_the_number_of_dates():
    from xr_physcube.vae.pretrained import DEFAULT_PIXEL_MODEL, DEFAULT_TEMPORAL_MODEL

    cube = demo_scene(size=16, seed=3, chunks=8).cube  # fresh: no model fitted on its accessor
    series = cube.vae.encode()
    assert series.attrs["vae_model"] == "PhysVAE temporal"
    want = cube.vae.encode(load_pretrained(DEFAULT_TEMPORAL_MODEL))
    np.testing.assert_array_equal(series.lai.values, want.lai.values)
    one_date = cube.isel(time=[0])
    single = one_date.vae.encode()
    assert single.attrs["vae_model"] == "PhysVAE pixel"
    want = one_date.vae.encode(load_pretrained(DEFAULT_PIXEL_MODEL))
    np.testing.assert_array_equal(single.lai.values, want.lai.values)


# --- SAFY consistency --------------------------------------------------------------------


@pytest.fixture(scope="module")
def safy_term():
    from xr_physcube.vae.losses import SafyConsistency

    return SafyConsistency()


def _safy_season(d0_doy: float, elue: float, stt: float, doy: np.ndarray) -> np.ndarray:
    """GLAI on ``doy`` from a separate SAFY run (shipped climate, maize defaults)."""
    from xr_physcube._data import read_table
    from xr_physcube.models.safy import safy

    clim = read_table("xr_physcube.models", "safy_maize_climate.csv")
    temp = torch.tensor(np.array(clim["t_mean_c"]), dtype=torch.float64)
    rad = torch.tensor(np.array(clim["rg_mj_m2_day"]), dtype=torch.float64)
    first = int(clim["doy"][0])
    glai = safy(temp, rad, d0=d0_doy - first, elue=elue, stt=stt).glai.numpy()
    return glai[doy.astype(int) - first]


def test_safy_consistency_distances_match_separate_safy_runs(safy_term):
    doy = np.array([101.0, 136.0, 171.0, 206.0, 240.0])
    rng = np.random.default_rng(0)
    lai = rng.uniform(0, 5, (3, doy.size))
    d = safy_term.distances(torch.tensor(lai, dtype=torch.float32), torch.tensor(doy))
    for g in rng.choice(len(safy_term.grid), 5, replace=False):
        d0, elue, stt = safy_term.grid[g].tolist()
        season = _safy_season(d0, elue, stt, doy)
        want = ((lai - season) ** 2).mean(-1)
        np.testing.assert_allclose(d[g].numpy(), want, rtol=1e-4, atol=1e-5)


def test_safy_consistency_is_near_zero_on_a_safy_season_and_large_off_it(safy_term):
    doy = torch.tensor([101.0, 136.0, 171.0, 206.0])
    on = torch.tensor(_safy_season(150.0, 3.0, 1100.0, doy.numpy()), dtype=torch.float32)
    tau_log_g = safy_term.tau * np.log(len(safy_term.grid))
    assert float(safy_term(on[None], doy)) <= tau_log_g + 1e-5
    # a wheat-like season (high LAI in April, senescent by July) is no maize season
    off = torch.tensor([[3.4, 5.0, 0.9, 0.0]])
    assert float(safy_term(off, doy)) > 1.0
    # the gradient pulls an off-season trajectory towards the nearest season
    lai = on[None].clone() + torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    lai.requires_grad_(True)
    safy_term(lai, doy).backward()
    assert float(lai.grad[0, 2]) > 0 and torch.isfinite(lai.grad).all()


def test_fit_with_safy_consistency(safy_term):
    cube = demo_scene(size=16, seed=3, chunks=8).cube
    with pytest.raises(ValueError, match="temporal"):
        cube.vae.fit(PhysVAE(hidden=32), max_steps=1, safy=safy_term, progress=False)
    model = cube.vae.fit(PhysVAE(temporal=True, hidden=32), max_steps=3, batch_size=32,
                         safy=safy_term, progress=False)  # fmt: skip
    assert len(model.history) == 3 and np.isfinite(model.history).all()
