"""Fast tests of the wasm-opt command line per guest variant: feature flags and optimisation level."""

from __future__ import annotations

import pytest

from toolchain.build.optimize import BASE_FEATURES, wasm_opt_flags
from toolchain.core.catalog import NATIVE_TARGET, VARIANTS, aot_targets
from toolchain.core.config import REPO_ROOT

WASM_VARIANTS = [name for name, v in VARIANTS.items() if v.is_wasm]


OPT_LEVEL_OF = {v.name: v.wasm_opt_level for v in VARIANTS.values() if v.is_wasm}


def test_the_wasm_variants_are_the_expected_three():
    assert sorted(WASM_VARIANTS) == ["wasm-nosimd", "wasm-relaxed", "wasm-simd"]


def test_simd_variant_flags():
    assert wasm_opt_flags("wasm-simd") == [*BASE_FEATURES, "--enable-simd"]


def test_nosimd_variant_flags_have_no_simd():
    flags = wasm_opt_flags("wasm-nosimd")
    assert flags == list(BASE_FEATURES)
    assert not any("simd" in f for f in flags)


def test_relaxed_variant_flags_enable_simd_and_relaxed_simd():
    assert wasm_opt_flags("wasm-relaxed") == [*BASE_FEATURES, "--enable-simd", "--enable-relaxed-simd"]


def test_base_features_name_rustcs_default_wasm_features():
    assert set(BASE_FEATURES) == {
        "--enable-bulk-memory",
        "--enable-sign-ext",
        "--enable-mutable-globals",
        "--enable-nontrapping-float-to-int",
        "--enable-multivalue",
        "--enable-reference-types",
    }


@pytest.mark.parametrize("variant", WASM_VARIANTS)
def test_every_variant_has_the_base_features_once_and_only_enable_flags(variant):
    flags = wasm_opt_flags(variant)
    assert flags[: len(BASE_FEATURES)] == list(BASE_FEATURES)
    assert len(flags) == len(set(flags))
    assert all(f.startswith("--enable-") for f in flags)
    assert ("--enable-simd" in flags) == ("simd128" in VARIANTS[variant].features)


def test_the_returned_list_is_a_fresh_copy():
    flags = wasm_opt_flags("wasm-simd")
    flags.append("--enable-gc")
    flags.clear()
    assert wasm_opt_flags("wasm-simd") == [*BASE_FEATURES, "--enable-simd"]
    assert len(BASE_FEATURES) == 6


def test_an_unknown_variant_is_refused():
    with pytest.raises(KeyError):
        wasm_opt_flags("wasm-gc")


def test_optimisation_level_per_variant():
    assert OPT_LEVEL_OF == {"wasm-simd": "-O3", "wasm-nosimd": "-Oz", "wasm-relaxed": "-O3"}


def test_every_wasm_variant_has_an_optimisation_level_and_only_those():
    assert set(OPT_LEVEL_OF) == set(WASM_VARIANTS)
    assert all(level in {"-O0", "-O1", "-O2", "-O3", "-O4", "-Os", "-Oz"} for level in OPT_LEVEL_OF.values())


def test_the_module_for_openwhisk_wasm01_is_optimised_for_size():
    # the wasmtime-0.23 .cwasm must fit OpenWhisk's code limit: its variant gets -Oz, the SIMD one -O3
    by_simd = {t.simd: t.variant for t in aot_targets()}
    assert OPT_LEVEL_OF[by_simd[False]] == "-Oz"
    assert OPT_LEVEL_OF[by_simd[True]] == "-O3"


def test_a_declared_cpu_baseline_reaches_the_worker_with_the_catalogs_triple():
    # the worker script (stdlib + wasmtime only) takes the triple from here instead of writing its own
    for target in aot_targets():
        args = target.worker_args()
        if target.cpu_flags:
            assert args[args.index("--target") + 1] == NATIVE_TARGET
            assert [args[i + 1] for i, a in enumerate(args) if a == "--cpu-flag"] == list(target.cpu_flags)
        else:
            assert "--target" not in args and "--cpu-flag" not in args
    assert NATIVE_TARGET not in (REPO_ROOT / "toolchain" / "hosts" / "wasmtime_worker.py").read_text()


def test_the_no_simd_build_spends_its_size_on_the_kernels_only():
    nosimd = VARIANTS["wasm-nosimd"]
    assert nosimd.opt_level == "z" and dict(nosimd.crate_opt_levels) == {"tract-linalg": "3", "tract-core": "s"}
