"""SAFY (Duchemin et al. 2008, Environ. Model. Softw. 23:876-892) crop model tests.

The reference below is the published daily algorithm written out separately in plain
NumPy/Python (per pixel, hard emergence on day D0), as in the original SAFY code.
Maize magnitudes: Battude et al. (2016), RSE 184:668-681, report dry aboveground maize
biomass at harvest of roughly 1-3 kg/m2 in south-west France and GLAI maxima of 3-6.
NOTE: the default field-calibrated parameters (D0, ELUE, PLa, PLb, STT, Rs) were chosen in
this project for the shipped synthetic climate (see models/safy.py), so the season test
checks consistency with those choices, not an independent calibration.
"""

import math

import numpy as np
import pytest
import torch

from xr_physcube._data import read_table
from xr_physcube.models.safy import SAFY_PARAMETERS, Safy, SafyParameters, safy


def _climate():
    c = read_table("xr_physcube.models", "safy_maize_climate.csv")
    return c["doy"], c["t_mean_c"], c["rg_mj_m2_day"]


def safy_reference(temp, rg, p):
    """Discrete SAFY for one pixel (emergence on integer day d0)."""
    n = len(temp)
    glai, dam, smt = np.zeros(n), np.zeros(n), np.zeros(n)
    lai0 = p["ms0"] * p["sla"]
    g = d = s = 0.0
    ended = False
    for t in range(n):
        if t == int(p["d0"]):
            s = max(temp[t] - p["tmin"], 0.0)
            d, g = p["ms0"], lai0
        elif t > p["d0"] and not ended:
            if s > p["stt"] and g < lai0:
                ended = True
                g = 0.0
            else:
                T = temp[t]
                if p["tmin"] > T or p["tmax"] < T:
                    ft = 0.0
                elif p["topt"] >= T:
                    ft = 1 - ((T - p["topt"]) / (p["tmin"] - p["topt"])) ** p["beta"]
                else:
                    ft = 1 - ((T - p["topt"]) / (p["tmax"] - p["topt"])) ** p["beta"]
                s += max(T - p["tmin"], 0.0)
                ddam = p["elue"] * p["eps_c"] * rg[t] * (1 - math.exp(-p["k"] * g)) * ft
                pl = max(1 - p["pla"] * math.exp(p["plb"] * s), 0.0)
                dlm = g * min(max(s - p["stt"], 0.0) / p["rs"], 1.0)
                g = g + ddam * pl * p["sla"] - dlm
                d += ddam
        glai[t], dam[t], smt[t] = g, d, s
    return glai, dam, smt


@pytest.mark.parametrize(
    "overrides",
    [{}, {"d0": 110.0, "elue": 3.5, "stt": 900.0, "rs": 5000.0}, {"tmin": 6.0, "pla": 0.5}],
)
def test_matches_discrete_reference_as_emergence_width_goes_to_zero(overrides):
    _, temp, rg = _climate()
    p = {**SAFY_PARAMETERS.defaults(), **overrides}
    ref_glai, ref_dam, ref_smt = safy_reference(temp, rg, p)
    out = safy(torch.tensor(temp), torch.tensor(rg), SafyParameters(**p), emergence_width=1e-3)
    np.testing.assert_allclose(out.glai.numpy(), ref_glai, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out.biomass.numpy(), ref_dam, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out.smt.numpy(), ref_smt, rtol=1e-9, atol=1e-9)


def test_maize_season_magnitudes():
    doy, temp, rg = _climate()
    out = safy(torch.tensor(temp), torch.tensor(rg))
    glai, dam = out.glai.numpy(), out.biomass.numpy()
    assert 3.0 <= glai.max() <= 6.0
    # maize GLAI peaks around silking, mid/late July in SW France (sown mid-late April)
    assert 190 <= doy[glai.argmax()] <= 215
    assert 1000.0 <= dam[-1] <= 3000.0  # Battude et al. 2016 range, g/m2
    np.testing.assert_allclose(out.yield_.numpy(), 0.5 * dam)
    assert glai[-1] == 0.0 and np.all(np.diff(dam) >= 0)  # season over; biomass monotone


def test_gradients_of_final_biomass():
    _, temp, rg = _climate()
    elue = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    sla = torch.tensor(0.024, dtype=torch.float64, requires_grad=True)
    d0 = torch.tensor(125.3, dtype=torch.float64, requires_grad=True)
    out = safy(torch.tensor(temp), torch.tensor(rg), elue=elue, sla=sla, d0=d0)
    g_elue, g_sla, g_d0 = torch.autograd.grad(out.biomass[-1], (elue, sla, d0))
    for g in (g_elue, g_sla, g_d0):
        assert torch.isfinite(g)
    assert g_elue > 0  # more efficient crop -> more biomass
    assert g_sla > 0  # more leaf area per gram -> more light intercepted -> more biomass

    # finite differences agree in sign and magnitude (10 %)
    def final(**kw):
        return safy(torch.tensor(temp), torch.tensor(rg), **kw).biomass[-1].item()

    fd = (final(elue=3.0 + 1e-4) - final(elue=3.0 - 1e-4)) / 2e-4
    assert g_elue.item() == pytest.approx(fd, rel=0.1)


def test_gradcheck_short_season_float64():
    rng = np.random.default_rng(0)
    n = 40
    temp = torch.tensor(18 + 4 * rng.standard_normal((2, n)))
    rg = torch.tensor(rng.uniform(12, 28, (2, n)))
    f64 = {"dtype": torch.float64, "requires_grad": True}
    names = ("d0", "elue", "sla", "pla", "plb", "stt", "rs", "tmin", "topt", "k", "ms0")
    values = {
        "d0": [2.3, 4.7], "elue": [3.0, 2.2], "sla": [0.03, 0.02], "pla": [0.3, 0.2],
        "plb": [1e-3, 1.5e-3], "stt": [150.0, 230.0], "rs": [3000.0, 2000.0],
        "tmin": [7.0, 8.5], "topt": [28.0, 31.0], "k": [0.5, 0.7], "ms0": [4.0, 6.0],
    }  # fmt: skip
    inputs = tuple(torch.tensor(values[k], **f64) for k in names)

    def f(*args):
        out = safy(
            temp, rg, SafyParameters(**dict(zip(names, args, strict=True))), emergence_width=1.0
        )
        return torch.cat([out.glai, out.biomass], dim=-1)

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_batched_equals_per_pixel_and_module():
    _, temp, rg = _climate()
    temp_b = torch.tensor(np.stack([temp, temp + 1.5, temp - 1.0]))
    rg_b = torch.tensor(np.stack([rg, rg * 0.9, rg]))
    elue = torch.tensor([[2.8], [3.2]], dtype=torch.float64)  # (2, 1) x pixels (3,) -> (2, 3)
    out = Safy()(temp_b, rg_b, SafyParameters(elue=elue))
    assert out.glai.shape == (2, 3, len(temp))
    single = safy(temp_b[1], rg_b[1], elue=3.2)
    torch.testing.assert_close(out.biomass[1, 1], single.biomass)


def test_validation_errors():
    _, temp, rg = _climate()
    t, r = torch.tensor(temp), torch.tensor(rg)
    with pytest.raises(ValueError, match="'elue'"):
        safy(t, r, elue=20.0)
    with pytest.raises(ValueError, match="tmin < topt < tmax"):
        safy(t, r, tmin=15.0, topt=12.0)
    r_nan = r.clone()
    r_nan[10] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        safy(t, r_nan)
    with pytest.raises(ValueError, match="day"):
        safy(t, r[:-1])
    with pytest.raises(ValueError, match="emergence_width"):
        safy(t, r, emergence_width=0.0)
    safy(t, r, elue=20.0, validate=False)  # opt-out


def test_shipped_climate_arrays_are_writable_copies():
    import warnings

    from xr_physcube.models.safy import shipped_climate

    c = shipped_climate()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "non-writable array" would be a UserWarning
        torch.as_tensor(c.temperature)
    assert all(a.flags.writeable for a in c)
    c.temperature[0] += 100.0  # a copy: the next call is unaffected
    assert shipped_climate().temperature[0] + 100.0 == c.temperature[0]
    # Day of year starts at 1, the emergence index d0 at 0 (see the d0 docs).
    _, temp, _ = _climate()
    assert c.doy[0] == 1.0 and len(c.doy) == len(temp)


def test_emergence_index_past_the_series_end_is_an_error():
    _, temp, rg = _climate()
    t, r = torch.tensor(temp[:100]), torch.tensor(rg[:100])
    with pytest.raises(ValueError, match=r"'d0'.*0-based index.*\(100, i.e. at most 99\)"):
        safy(t, r, d0=torch.tensor([10.0, 100.0]))
    with pytest.raises(ValueError, match="'d0'"):
        Safy()(t, r, SafyParameters(d0=150.0))
    # d0 = 99 (last day) emerges on the last day: GLAI there is the initial Ms0 * SLA.
    last = safy(t, r, d0=99.0, emergence_width=1e-3).glai
    assert last[-1].item() == pytest.approx(4.2 * 0.024, rel=1e-6) and last[-2].item() < 1e-9
    out = safy(t, r, d0=150.0, validate=False)  # opt-out: the crop never (visibly) emerges
    assert float(out.glai.abs().max()) < 1e-30


def test_docs_say_d0_is_a_series_index_not_a_day_of_year():
    from xr_physcube.models.safy import D0

    for doc in (safy.__doc__, SafyParameters.__doc__, D0.long_name, Safy.forward.__doc__):
        text = " ".join(doc.split()).replace("NOT", "not")
        assert "0-based index" in text and "not a day of year" in text
