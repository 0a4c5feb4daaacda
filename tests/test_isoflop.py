"""Chapter 17's own scaling law: the IsoFLOP runs spend the compute they are given, and the fits (approach 2's parabolas and
power laws, approach 3's L(N, D)) recover known answers from synthetic data."""
import math

import pytest
import torch
from conftest import raises
from llm_course.core import ConfigError
from llm_course.scaling import (CHINCHILLA, chinchilla_loss, compute_optimal, fit_loss_law, fit_parabola, fit_power_law,
                                flops_per_token, isoflop_config, isoflop_optima, matmul_params, parabola_vertex, train_for_flops)

LAW = dict(E=1.3, A=120.0, B=600.0, alpha=0.42, beta=0.33)   # not Chinchilla's: the fit must not lean on its grid's luck


def _grid(law, noise=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    N = [n for n in (1e4 * 2.5 ** i for i in range(6)) for _ in range(5)]
    D = [d for _ in range(6) for d in (1e5 * 3 ** j for j in range(5))]
    L = [chinchilla_loss(n, d, law) * math.exp(noise * float(torch.randn((), generator=g))) for n, d in zip(N, D)]
    return N, D, L


def test_parabola_recovers_its_vertex():
    xs = [math.log(n) for n in (1e4, 3e4, 1e5, 3e5, 1e6)]
    a, b, c = fit_parabola(xs, [0.2 * (x - 11.3) ** 2 + 1.75 for x in xs])
    x, y = parabola_vertex(a, b, c)
    assert x == pytest.approx(11.3, abs=1e-9) and y == pytest.approx(1.75, abs=1e-9) and a == pytest.approx(0.2)


def test_power_law_recovers_its_exponent():
    k, p = fit_power_law([1e11, 3e11, 9e11], [0.04 * c ** 0.51 for c in (1e11, 3e11, 9e11)])
    assert p == pytest.approx(0.51, abs=1e-9) and k == pytest.approx(0.04, rel=1e-6)


def test_loss_law_recovers_known_constants():
    fit = fit_loss_law(*_grid(LAW), n_starts=2)
    for k, v in LAW.items(): assert fit[k] == pytest.approx(v, rel=1e-3), k


def test_loss_law_with_noise_and_an_outlier():
    N, D, L = _grid(LAW, noise=0.005)
    L[7] *= 1.5   # one broken run: the Huber loss on ln L keeps it from dragging the fit
    fit = fit_loss_law(N, D, L, n_starts=2)
    assert fit["E"] == pytest.approx(LAW["E"], rel=0.1)
    assert fit["alpha"] == pytest.approx(LAW["alpha"], abs=0.05) and fit["beta"] == pytest.approx(LAW["beta"], abs=0.05)
    n_fit, _ = compute_optimal(1e14, fit)
    assert n_fit == pytest.approx(compute_optimal(1e14, LAW)[0], rel=0.3)


def test_approach_2_finds_the_optimum_of_a_known_law():
    runs = []
    for C in (1e16, 1e17, 1e18):
        n_opt, _ = compute_optimal(C, CHINCHILLA)
        runs += [dict(budget=C, N=n, D=C / (6 * n), val_loss=chinchilla_loss(n, C / (6 * n))) for n in (n_opt * 2.0 ** k for k in range(-2, 3))]
    optima = isoflop_optima(runs)
    for o in optima:   # a parabola in ln N is close to, not exactly, the curve: within a few percent
        n_opt, d_opt = compute_optimal(o["budget"])
        assert o["inside"] and o["N_opt"] == pytest.approx(n_opt, rel=0.03) and o["D_opt"] == pytest.approx(d_opt, rel=0.03)
    _, a = fit_power_law([o["budget"] for o in optima], [o["N_opt"] for o in optima])
    assert a == pytest.approx(CHINCHILLA["beta"] / (CHINCHILLA["alpha"] + CHINCHILLA["beta"]), abs=0.01)


def test_run_spends_its_budget():
    torch.set_num_threads(1)
    ids = torch.randint(0, 20, (20_000,), generator=torch.Generator().manual_seed(0))
    c = isoflop_config(16, 1, 20, 32)
    r = train_for_flops(c, 3e8, ids[:18_000], ids[18_000:], batch_size=4, eval_batches=2)
    fpt = flops_per_token(c, 32)
    assert r["N"] == matmul_params(c) and r["steps"] == r["planned_steps"] == round(3e8 / (fpt * 4 * 32))
    assert r["D"] == r["steps"] * 4 * 32 and abs(r["C"] - 3e8) <= fpt * 4 * 32 / 2 and math.isfinite(r["val_loss"])
    capped = train_for_flops(c, 3e9, ids[:18_000], ids[18_000:], batch_size=4, eval_batches=2, max_cpu_s=1e-9)
    assert capped["steps"] == 1 < capped["planned_steps"]   # the CPU cap stops the run after its first step


def test_bad_input():
    raises(ConfigError, fit_parabola, [1, 2], [1, 2], hint="at least 3")
    raises(ConfigError, parabola_vertex, -1.0, 0.0, 0.0, hint="no minimum")
    raises(ConfigError, fit_power_law, [1, 0], [1, 2], hint="positive")
    raises(ConfigError, fit_loss_law, [1e4] * 4, [1e5] * 4, [2.0] * 4, hint="at least 5 runs")
    raises(ConfigError, fit_loss_law, [1e4] * 5, [1e5] * 5, [2.0] * 4 + [float("nan")], hint="finite")
    raises(ConfigError, isoflop_config, 20, 2, 100, 64, hint="head_dim")
    raises(ConfigError, train_for_flops, isoflop_config(16, 1, 20, 32), 0, torch.arange(100), torch.arange(100), hint="positive number")
