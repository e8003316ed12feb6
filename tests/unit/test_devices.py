"""Several GPUs with pytest-xdist: worker gwI on GPU I mod G, passed to onnxruntime's CUDA provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tagger_showdown.devices import provider_list, shared_gpu_warning, visible_gpus, worker_device
from pytest_tagger_showdown.settings import parse_gpus
from pytest_tagger_showdown.taggers.base import LoadOptions
from pytest_tagger_showdown.taggers.builtin import default_registry


@pytest.mark.parametrize(
    ("worker", "gpus", "device"),
    [("gw0", 4, 0), ("gw3", 4, 3), ("gw5", 4, 1), ("gw7", 2, 1), ("gw2", 1, 0), (None, 4, None),
     ("gw1", None, None), ("gw1", 0, None), ("master", 2, None)],
)  # fmt: skip
def test_worker_i_runs_on_gpu_i_mod_g(worker: str | None, gpus: int | None, device: int | None) -> None:
    assert worker_device(worker, gpus) == device


def test_eight_workers_on_four_gpus_use_each_gpu_twice() -> None:
    devices = [worker_device(f"gw{i}", 4) for i in range(8)]
    assert sorted(devices) == [0, 0, 1, 1, 2, 2, 3, 3]  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("value", "count"), [(None, None), ("", 0), ("-1", 0), ("0", 1), ("4,5", 2), ("0,1,2,3", 4)]
)
def test_the_gpu_count_comes_from_cuda_visible_devices(value: str | None, count: int | None) -> None:
    environ = {} if value is None else {"CUDA_VISIBLE_DEVICES": value}
    assert visible_gpus(environ) == count


def test_the_cuda_provider_gets_the_device_id() -> None:
    providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert provider_list(providers, 3) == [
        ("CUDAExecutionProvider", {"device_id": 3}),
        "CPUExecutionProvider",
    ]
    assert provider_list(providers, None) == list(providers)


@pytest.mark.parametrize("text", ["0", "-2", "two"])
def test_a_bad_gpu_count_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--showdown-gpus"):
        parse_gpus(text)


def test_an_onnx_tagger_loads_with_a_device_on_a_machine_without_cuda(tmp_path: Path) -> None:
    """onnxruntime takes the (provider, options) form; without CUDA it runs on the CPU provider."""
    pytest.importorskip("onnxruntime")
    options = LoadOptions(providers=("CUDAExecutionProvider", "CPUExecutionProvider"), cuda_device=1)
    registry = default_registry()
    tagger = registry.load(registry.resolve("demo-large"), options)
    assert tagger.providers[-1] == "CPUExecutionProvider"


CUDA = "CUDAExecutionProvider"


@pytest.mark.parametrize(
    ("workers", "gpus", "provider", "placement", "fewer"),
    [(2, None, CUDA, "one GPU", 1), (4, 1, CUDA, "one GPU", 1), (8, 4, CUDA, "4 GPUs", 4),
     (4, 4, "TensorrtExecutionProvider", "one GPU", 1)],  # only CUDA is spread over the GPUs
)  # fmt: skip
def test_more_workers_than_gpus_warn_naming_the_taggers_and_the_fix(
    workers: int, gpus: int | None, provider: str, placement: str, fewer: int
) -> None:
    message = shared_gpu_warning(workers, gpus, provider, ["wd14-vit", "wd14-eva02"])
    assert message == (
        f"tagger-showdown: warning: {workers} pytest-xdist workers each load their own copy of "
        f"wd14-eva02, wd14-vit on {placement} ({provider}): copies on the same GPU run one after "
        f"another and hold its memory once each, so this run is no faster than with -n {fewer}; one "
        "process already decodes on every core (pass --showdown-gpus N or CUDA_VISIBLE_DEVICES to "
        "spread workers over N GPUs)"
    )


@pytest.mark.parametrize(
    ("workers", "gpus", "provider", "taggers"),
    [(4, 4, CUDA, ["wd14-vit"]),  # one worker per GPU: issue 14's fine case
     (2, 8, CUDA, ["wd14-vit"]), (0, None, CUDA, ["wd14-vit"]), (1, None, CUDA, ["wd14-vit"]),
     (4, None, "CPUExecutionProvider", ["wd14-vit"]),  # CPU copies use their own cores
     (4, None, None, ["wd14-vit"]), (4, None, CUDA, [])],  # no onnxruntime; no ONNX tagger
)  # fmt: skip
def test_no_warning_while_each_worker_has_a_gpu_or_none_is_used(
    workers: int, gpus: int | None, provider: str | None, taggers: list[str]
) -> None:
    assert shared_gpu_warning(workers, gpus, provider, taggers) is None
