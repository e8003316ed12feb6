"""Which GPU a process runs on: with pytest-xdist ``-n G`` on a machine with G GPUs, worker ``gwI``
takes GPU ``I mod G`` (onnxruntime's CUDAExecutionProvider option ``device_id``).

A pure function of the worker id (pytest-xdist's ``PYTEST_XDIST_WORKER``: ``gw0``, ``gw1``...) and the
GPU count (``--showdown-gpus N``, else the number of devices in ``CUDA_VISIBLE_DEVICES``), so every
worker computes its own device without talking to the others. ``device_id`` counts the devices CUDA
sees: with ``CUDA_VISIBLE_DEVICES=4,5`` device 1 is physical GPU 5.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

CUDA_PROVIDER: Final = "CUDAExecutionProvider"
#: onnxruntime providers that run on an accelerator, where batches pay off and a device is shared.
ACCELERATED_PROVIDERS: Final = frozenset(
    {
        CUDA_PROVIDER,
        "TensorrtExecutionProvider",
        "ROCMExecutionProvider",
        "MIGraphXExecutionProvider",
        "DmlExecutionProvider",
        "CoreMLExecutionProvider",
    }
)


def visible_gpus(environ: Mapping[str, str]) -> int | None:
    """How many devices ``CUDA_VISIBLE_DEVICES`` lists (0 for ``""`` or ``-1``: none), or None
    when it is unset."""
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    devices = [part for part in value.split(",") if part.strip()]
    return 0 if not devices or devices[0].strip() == "-1" else len(devices)


def worker_device(worker: str | None, gpus: int | None) -> int | None:
    """The CUDA device id of xdist worker ``worker`` (``gwI`` -> ``I mod gpus``); None (onnxruntime's
    default, device 0) without xdist or without a known GPU count."""
    if not worker or not gpus:
        return None
    match = re.fullmatch(r"gw(\d+)", worker)
    return None if match is None else int(match[1]) % gpus


def provider_list(providers: Sequence[str], device: int | None) -> list[str | tuple[str, dict[str, Any]]]:
    """onnxruntime's ``providers`` argument: the CUDA provider pinned to ``device`` when one is given."""
    if device is None:
        return list(providers)
    return [(name, {"device_id": device}) if name == CUDA_PROVIDER else name for name in providers]


def shared_gpu_warning(
    workers: int, gpus: int | None, provider: str | None, taggers: Sequence[str]
) -> str | None:
    """Why ``workers`` pytest-xdist workers will be no faster than fewer, or None: each loads its own
    copy of ``taggers`` on ``provider``, and more workers than devices put several copies on one
    device, which runs them one after another with that many times the memory (issue 14: ``-n 4``
    on one H200 ran at a third of one process's speed). Only the CUDA provider is spread over
    ``gpus`` devices (:func:`worker_device`); other accelerators all use device 0."""
    if workers < 2 or provider not in ACCELERATED_PROVIDERS or not taggers:
        return None
    devices = (gpus or 1) if provider == CUDA_PROVIDER else 1
    if workers <= devices:
        return None
    listed = ", ".join(sorted(taggers))
    placement = "one GPU" if devices == 1 else f"{devices} GPUs"
    return (
        f"tagger-showdown: warning: {workers} pytest-xdist workers each load their own copy of {listed} "
        f"on {placement} ({provider}): copies on the same GPU run one after another and hold its "
        f"memory once each, so this run is no faster than with -n {devices}; one process already "
        f"decodes on every core (pass --showdown-gpus N or CUDA_VISIBLE_DEVICES to spread workers "
        "over N GPUs)"
    )
