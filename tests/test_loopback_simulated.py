"""The simulated loopback phone: benchmark_model sleeps for the predicted latency and prints the real output."""

from __future__ import annotations

from click.testing import CliRunner

from latprof.cli import main
from latprof.devices import open_device
from latprof.loopback import SimulatedSpeed, serve
from latprof.loopback._simulated import MACS_PER_CYCLE, OP_OVERHEAD_MS
from latprof.measure import build_request, measure
from latprof.space import LayerConfig, read_tflite_ops, write_tflite

LAYER = "ir_k3_s1_e6_i24_o24_se0_none_relu_r28"


def test_a_simulated_phone_reports_the_predicted_latency_under_its_own_name(tmp_path):
    model = write_tflite(LayerConfig.from_key(LAYER), tmp_path / "layer.tflite", seed=0)
    speed = SimulatedSpeed("pixel1", seed=0)
    ops = read_tflite_ops(model)
    expected_ms = sum(op.macs() for op in ops) / (MACS_PER_CYCLE * 2150400e3) * 1e3 + OP_OVERHEAD_MS * len(ops)
    assert abs(speed.latency_ms(model) - expected_ms) < 1e-9  # no predictor stored: the multiply-add rate
    with serve("pixel1", accept_new_keys=True, simulated=speed) as phone, open_device(phone.address) as device:
        result = measure(model, device, build_request(device, runs=20, warmup=1))
    assert device.config.name == "simulated-pixel1"  # never filed with real (or real-running loopback) phones
    assert result.stats.count == 20
    assert abs(result.stats.headline_ms / expected_ms - 1) < 0.05  # 2% noise per run
    with serve("pixel1", accept_new_keys=True) as phone, open_device(phone.address) as real:
        assert real.config.name == "loopback-pixel1"
        real_run = measure(model, real, build_request(real, runs=2, warmup=0))
    assert real_run.runtime_version != result.runtime_version  # its placeholder binary differs, so its hash


def test_speed_of_needs_the_simulated_benchmark():
    result = CliRunner().invoke(main, ["device", "serve", "--port", "0", "--speed-of", "pixel2"])
    assert result.exit_code == 2 and "--speed-of needs --benchmark simulated" in result.output


def test_a_batch_runs_each_model_in_order_and_leaves_nothing_behind(tmp_path):
    from latprof.benchmarking.record import inspect_model

    keys = [LAYER, "ir_k5_s1_e6_i24_o24_se0_none_relu_r28", "ir_k3_s1_e3_i24_o24_se0_none_relu_r28"]
    models = [inspect_model(write_tflite(LayerConfig.from_key(k), tmp_path / f"m{i}.tflite", seed=i))
              for i, k in enumerate(keys)]
    speed = SimulatedSpeed("pixel1", seed=0)
    with serve("pixel1", accept_new_keys=True, simulated=speed) as phone, open_device(phone.address) as device:
        request = build_request(device, runs=5, warmup=0)
        steps = [(models[0], request), (models[1], request), (models[2], request), (models[0], request)]
        runs = device.run_sequence(steps)
        left = phone.run_shell("ls /data/local/tmp/latprof").text.split()
    expected = [speed.latency_ms(m.path) for m, _ in steps]
    assert [abs(r.stats.headline_ms / e - 1) < 0.05 for r, e in zip(runs, expected)] == [True] * 4
    assert len({r.runtime_version for r in runs}) == 1 and left == []  # hashed once, run folder removed
