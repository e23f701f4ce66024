"""Fast tests of the wasm-opt command line per guest variant: feature flags and optimisation level."""

from __future__ import annotations

import json
import re

import pytest

from toolchain.build.optimize import ASSUMPTIONS, BASE_FEATURES, optimize_wasm, wasm_opt_flags
from toolchain.core.catalog import NATIVE_TARGET, VARIANTS, aot_targets
from toolchain.core.config import REPO_ROOT
from toolchain.core.versions import WASMTIME_ENGINE_KEYS, WASMTIME_ENGINE_SETTINGS, apply_wasmtime_engine_settings

WASM_VARIANTS = [name for name, v in VARIANTS.items() if v.is_wasm]


OPT_LEVEL_OF = {v.name: v.wasm_opt_level for v in VARIANTS.values() if v.is_wasm}


def test_the_wasm_variants_are_the_expected_four():
    assert sorted(WASM_VARIANTS) == ["wasm-nosimd", "wasm-relaxed", "wasm-simd", "wasm-wasinn"]


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
    assert OPT_LEVEL_OF == {"wasm-simd": "-O3", "wasm-nosimd": "-Oz", "wasm-relaxed": "-O3", "wasm-wasinn": "-O3"}


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
    assert nosimd.opt_level == "z" and dict(nosimd.crate_opt_levels) == {"tract-linalg": "3"}


def test_every_reader_of_the_engine_settings_knows_exactly_the_files_keys():
    # The Rust host compiles the file in (serde, deny_unknown_fields), the worker and the Python runtimes read it:
    # a key added to one reader or to the file alone fails here, before a five-minute host build would.
    keys = set(json.loads(WASMTIME_ENGINE_SETTINGS.read_text())) - {"why"}
    assert keys == set(WASMTIME_ENGINE_KEYS)
    host = (REPO_ROOT / "guest" / "host" / "src" / "main.rs").read_text()
    rust_struct = re.search(r"struct EngineSettings \{(.*?)\n\}", host, re.S)
    assert rust_struct, "guest/host/src/main.rs has no EngineSettings struct"
    rust_fields = set(re.findall(r"^\s+(\w+):", rust_struct.group(1), re.M)) - {"why"}
    assert rust_fields == keys
    assert 'include_str!("../../../toolchain/core/wasmtime_engine.json")' in host
    worker = (REPO_ROOT / "toolchain" / "hosts" / "wasmtime_worker.py").read_text()
    assert all(f'"{k}"' in worker for k in keys)


def test_the_python_engine_takes_the_shared_settings_and_refuses_unknown_ones(tmp_path):
    wasmtime = pytest.importorskip("wasmtime")
    config = wasmtime.Config()
    apply_wasmtime_engine_settings(config, simd=True, epoch=True)
    wasmtime.Engine(config)  # a consistent configuration (relaxed SIMD only with SIMD)
    stray = json.loads(WASMTIME_ENGINE_SETTINGS.read_text()) | {"cranelift_nan_canonicalization": True}
    (tmp_path / "engine.json").write_text(json.dumps(stray))
    with pytest.raises(ValueError, match="expected"):
        apply_wasmtime_engine_settings(wasmtime.Config(), simd=True, epoch=True, settings_file=tmp_path / "engine.json")
    other_gc = json.loads(WASMTIME_ENGINE_SETTINGS.read_text()) | {"collector": "null"}
    (tmp_path / "engine.json").write_text(json.dumps(other_gc))
    with pytest.raises(ValueError, match="collector"):
        apply_wasmtime_engine_settings(wasmtime.Config(), simd=True, epoch=True, settings_file=tmp_path / "engine.json")


def test_epoch_checks_are_compiled_in_only_for_the_long_lived_python_runtimes():
    # the Rust host runs one request per instance and bounds it with a watchdog, so its .cwasm has no epoch checks
    # (~20-25 % of the guest's time); the wasmtime-py runtimes live on after a runaway guest and need them
    from toolchain.build.host import host_command
    from toolchain.core.catalog import HOST_AOT_TARGET, PYTHON_AOT_TARGET, DistLayout, aot_target

    host, python = aot_target(HOST_AOT_TARGET), aot_target(PYTHON_AOT_TARGET)
    assert python.epoch and not host.epoch
    assert (host.version, host.simd, host.cpu_baseline) == (python.version, python.simd, python.cpu_baseline)
    for target in aot_targets():
        assert ("--epoch" in target.worker_args()) == target.epoch
    argv = host_command(DistLayout(REPO_ROOT / "dist"), "run", REPO_ROOT / "m.cwasm")
    assert argv[3:] == host.worker_args() and "--epoch" not in argv


def test_wasm_opt_folds_an_added_constant_into_the_load_offset(tmp_path):
    """What ASSUMPTIONS buys, through the real wasm-opt: `f32.load (i32.add x 12)` becomes `f32.load offset=12 x`,
    one instruction in Cranelift instead of three (the k loops of tract's kernels are full of these)."""
    wasmtime = pytest.importorskip("wasmtime")
    wat = """(module (memory (export "memory") 1)
      (func (export "f") (param i32) (result f32)
        (f32.load (i32.add (local.get 0) (i32.const 12)))))"""
    src = tmp_path / "in.wasm"
    src.write_bytes(wasmtime.wat2wasm(wat))
    out = optimize_wasm(src, tmp_path / "out.wasm", "wasm-nosimd").read_bytes()
    # the function's whole body: no locals, local.get 0, f32.load align=2^2 offset=12, end
    body = bytes([0x00, 0x20, 0x00, 0x2A, 0x02, 0x0C, 0x0B])
    assert body in out
    assert "--low-memory-unused" in ASSUMPTIONS
