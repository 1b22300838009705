"""`latprof arch show|sample|export` and `latprof space show`, through click's test runner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from latprof.cli.arch import arch, space
from latprof.errors import ArchitectureError
from latprof.space import format_arch, parse_arch, read_tflite_ops


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_arch_show(runner):
    result = runner.invoke(arch, ["show", "mnasnet-a1"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("mnasnet-a1: 3.87M parameters, 311.6M multiply-adds at 224x224, 19 layers (16 in 7 blocks)")
    assert "b3.1" in out and "MEAN CONV_2D CONV_2D LOGISTIC MUL" in out
    assert f"string: {format_arch(parse_arch('mnasnet-a1'))}" in out
    assert 'json:   {"format": "latprof.arch/1"' in out


def test_arch_show_json_of_a_string(runner):
    s = "res64_stem16_head128_cls10_relu:ds_r1_k3_s1_i16_o8:ir_r2_k5_s2_e6_i8_o16_se0.25_pool"
    result = runner.invoke(arch, ["show", s, "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    assert d["string"] == s and d["name"] is None
    assert [r["position"] for r in d["layers"]] == ["stem", "b1.1", "b2.1", "b2.2", "head", "classifier"]
    assert d["params"] == sum(r["params"] for r in d["layers"])
    assert d["layers"][2]["key"] == "ir_k5_s2_e6_i8_o16_se0.25_pool_relu_r32"


def test_arch_sample_is_seeded_and_parses_back(runner):
    first = runner.invoke(arch, ["sample", "--n", "5", "--seed", "3"])
    again = runner.invoke(arch, ["sample", "--n", "5", "--seed", "3"])
    other = runner.invoke(arch, ["sample", "--n", "5", "--seed", "4"])
    assert first.exit_code == 0 and first.output == again.output != other.output
    lines = first.output.splitlines()
    assert len(lines) == 5
    for line in lines:
        assert format_arch(parse_arch(line)) == line
    small = runner.invoke(arch, ["sample", "-n", "1", "--depth-multiplier", "0.5", "--resolution", "96"])
    assert small.output.startswith("res96_stem16_")


def test_space_show(runner):
    result = runner.invoke(space, ["show"])
    assert result.exit_code == 0, result.output
    assert "size (distinct architectures): 770,351,078,729,318,400" in result.output
    assert "unique layer configurations: 2,837" in result.output
    data = json.loads(runner.invoke(space, ["show", "--json", "--layers"]).output)
    assert data["size"] == 770_351_078_729_318_400 and data["unique_layer_configs"] == 2837
    assert len(data["layer_keys"]) == 2837 and len(data["decisions"]) == 42


def test_errors_propagate_as_latprof_errors(runner):
    result = runner.invoke(arch, ["show", "ds_r1_k4_s1_i32_o16"])
    assert isinstance(result.exception, ArchitectureError)
    assert "kernel 4 is not allowed; allowed: 3, 5, 7 (field 'k')" in str(result.exception)


def test_main_prints_one_line_errors(runner):
    from latprof.cli import main

    result = runner.invoke(main, ["arch", "show", "mnasnet-a3"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown architecture name 'mnasnet-a3'; known: mnasnet-a1, ")
    assert result.output.count("\n") == 1


def test_arch_export(runner, tmp_path):
    out = tmp_path / "tiny.tflite"
    s = "res32_stem8_head32_cls5_relu:ds_r1_k3_s1_i8_o8:ir_r1_k3_s2_e3_i8_o16_se0.25"
    result = runner.invoke(arch, ["export", s, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and f"latprof measure {out}" in result.output
    assert read_tflite_ops(out)[-1].name == "SOFTMAX"
