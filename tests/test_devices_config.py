"""Device configs and device state parsing."""

from __future__ import annotations

import pytest

from latprof.devices.base import CoreState, DeviceState, cpus_in_mask, state_from_sysfs, sysfs_paths
from latprof.devices.config import ThermalLimits, list_configs, load_config
from latprof.errors import ParseError, UnknownDeviceError


def test_shipped_configs_have_the_documented_big_core_masks():
    configs = list_configs()
    masks = {name: configs[name].benchmark.core_mask for name in ("pixel1", "pixel2", "pixel3", "pixel4", "pixel6")}
    assert masks == {"pixel1": "c", "pixel2": "f0", "pixel3": "f0", "pixel4": "70", "pixel6": "c0"}
    assert configs["local"].kind == "host"
    for name in masks:
        hardware = configs[name].hardware
        big = cpus_in_mask(masks[name])
        # every pinned core is faster than the little cores (cpu0 is always a little core)
        assert min(hardware["cpu_max_khz"][c] for c in big) > hardware["cpu_max_khz"][0]


def test_unknown_device_lists_known_names():
    with pytest.raises(UnknownDeviceError, match="unknown device 'galaxy'.*pixel1"):
        load_config("galaxy")


def test_user_config_folder_adds_a_device(tmp_path, monkeypatch):
    (tmp_path / "myphone.toml").write_text(
        'name = "myphone"\nkind = "android"\n[match]\nmodel = "X1"\n[benchmark]\ncore_mask = "80"\n'
    )
    monkeypatch.setenv("LATPROF_DEVICE_CONFIGS", str(tmp_path))
    config = load_config("myphone")
    assert config.benchmark.core_mask == "80"
    assert config.matches({"ro.product.model": "X1"})
    assert not config.matches({"ro.product.model": "X2"})


def test_bad_config_is_a_one_line_parse_error(tmp_path, monkeypatch):
    (tmp_path / "broken.toml").write_text("name = \n")
    monkeypatch.setenv("LATPROF_DEVICE_CONFIGS", str(tmp_path))
    with pytest.raises(ParseError, match="broken.toml is not valid TOML") as info:
        list_configs()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("mask, cpus", [("c", [2, 3]), ("f0", [4, 5, 6, 7]), ("70", [4, 5, 6]), ("80", [7]), ("1", [0])])
def test_cpus_in_mask(mask, cpus):
    assert cpus_in_mask(mask) == cpus


def test_state_from_sysfs_reads_frequencies_and_millidegree_temperatures():
    files = {
        "/sys/devices/system/cpu/cpu2/cpufreq/scaling_governor": "schedutil",
        "/sys/devices/system/cpu/cpu2/cpufreq/scaling_cur_freq": "1286400",
        "/sys/devices/system/cpu/cpu2/cpufreq/scaling_max_freq": "1286400",
        "/sys/devices/system/cpu/cpu2/cpufreq/cpuinfo_max_freq": "2150400",
        "/sys/class/thermal/thermal_zone0/type": "battery",
        "/sys/class/thermal/thermal_zone0/temp": "31000",
        "/sys/class/thermal/thermal_zone7/type": "cpu2-gold",
        "/sys/class/thermal/thermal_zone7/temp": "52300",
        "/sys/class/thermal/thermal_zone9/temp": "-273000",  # a disabled sensor
    }
    state = state_from_sysfs(files, [2, 3])
    assert state.cores[0] == CoreState(cpu=2, governor="schedutil", cur_khz=1286400, max_khz=1286400, hw_max_khz=2150400)
    assert state.cores[1] == CoreState(cpu=3)  # nothing readable
    assert state.temps_c == {"thermal_zone0:battery": 31.0, "thermal_zone7:cpu2-gold": 52.3}
    warnings = state.throttle_warnings(ThermalLimits(max_temp_c=45, min_freq_ratio=0.9))
    assert any("thermal_zone7:cpu2-gold at 52.3 C" in w for w in warnings)
    assert any("cpu2 frequency capped at 1286 MHz of 2150 MHz" in w for w in warnings)


def test_cool_device_has_no_warnings():
    state = DeviceState(cores=(CoreState(2, "performance", 2150400, 2150400, 2150400),), temps_c={"z:cpu": 33.0})
    assert state.throttle_warnings(ThermalLimits()) == []


def test_sysfs_paths_cover_each_pinned_core():
    paths = sysfs_paths([4, 5])
    assert "/sys/devices/system/cpu/cpu5/cpufreq/cpuinfo_max_freq" in paths
    assert "/sys/class/thermal/thermal_zone*/temp" in paths
