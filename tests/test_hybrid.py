"""The hybrid-bridge simulation on hand-made inputs whose answers are known."""

import random

from toolchain.measure.bench.hybrid import Backends, poisson_arrivals, simulate, simulate_burst

# wasm ready at once but slow; the container fast once ready after 1 s
B = Backends(wasm_ready=0, wasm_service=[100.0], container_ready=1000, container_service=[10.0], slots=2)


def test_container_only_waits_for_the_container_and_wasm_only_never_does():
    arrivals = [0.0, 500.0, 2000.0]
    container = simulate_burst(B, arrivals, "container-only", random.Random(0))
    assert container == [(0.0, 1010.0), (500.0, 510.0), (2000.0, 10.0)]
    assert simulate_burst(B, arrivals, "wasm-only", random.Random(0)) == [(0.0, 100.0), (500.0, 100.0), (2000.0, 100.0)]


def test_hybrid_uses_wasm_before_the_container_is_ready_and_the_container_after():
    arrivals = [0.0, 500.0, 2000.0]
    assert simulate_burst(B, arrivals, "hybrid", random.Random(0)) == [(0.0, 100.0), (500.0, 100.0), (2000.0, 10.0)]


def test_earliest_finish_sends_late_early_requests_to_the_container():
    # at t=950 wasm would finish at 1050, the container at 1010: the container wins
    assert simulate_burst(B, [950.0], "hybrid-eft", random.Random(0)) == [(950.0, 60.0)]


def test_simulation_summary_and_crossover():
    sim = simulate(B, rates=(1,), requests=20, bursts=20)
    pol = sim["by_rate"]["1"]
    assert pol["hybrid"]["p99"] < pol["container-only"]["p99"] and pol["hybrid"]["median"] <= pol["wasm-only"]["median"]
    assert sim["crossover_ms"] == 1000 + 10 - 100


def test_poisson_arrivals_have_the_requested_rate():
    arrivals = poisson_arrivals(5000, 10, random.Random(1))
    assert abs(len(arrivals) / (arrivals[-1] / 1e3) - 10) < 0.5
